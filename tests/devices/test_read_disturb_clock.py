"""Read disturb on the lifetime clock (issue 24 item 4): a chip read ``reads_per_s`` times a
second while it ages has each healthy cell pulled toward the disturb target by
``(1 - r)^(reads_per_s x age since its last write)``, computed here by hand; a rewrite
restarts the count; no reads (or no disturb) leave the chip as it is; the disturb is not
mistaken for a rewrite by the relaxation clock."""

from __future__ import annotations

import numpy as np
import pytest

from xbar.config import load_hardware
from xbar.devices import preset
from xbar.devices.relaxation import relaxation_key, relaxation_normals, relaxed
from xbar.errors import ConfigError

from test_relaxation import _chip

# lv2024-mlc's read disturb, strengthened so a second of reads moves the cells visibly
# (the preset's 1e-9 per read takes 1e9 reads for a 63 % move).
RATE = 1e-6


def _disturb_device(relax: bool = False):
    dev = preset("lv2024-mlc").replace(read_disturb_rate=RATE, weight_mapping="")
    if relax:
        cmo = preset("cmo-hfox")
        dev = dev.replace(relax_mean_us_per_ln_t=cmo.relax_mean_us_per_ln_t,
                          relax_std_us_per_ln_t=cmo.relax_std_us_per_ln_t,
                          relax_std0_us=cmo.relax_std0_us, relax_t0_s=cmo.relax_t0_s)
    return dev


def _by_hand(dev, g0: np.ndarray, n_reads, stuck: np.ndarray) -> np.ndarray:
    """G* + (G0 - G*) (1 - r)^n for healthy cells, written out from the model's definition."""
    target = dev.g_max_us if dev.read_disturb_toward == "g_max" else dev.g_min_us
    left = (1.0 - dev.read_disturb_rate) ** np.asarray(n_reads, np.float64)
    new = np.clip(target + (g0.astype(np.float64) - target) * left, dev.g_min_us, dev.g_max_us)
    return np.where(stuck != 0, g0, new.astype(np.float32))


def test_reads_while_aging_disturb_every_cell_by_its_read_count() -> None:
    dev = _disturb_device()
    chip = _chip(dev)
    programmed = [layer.matrix.g_us.copy() for layer in chip.layers]
    chip.age_to(2e4, reads_per_s=50.0)          # 1e6 reads: (1 - 1e-6)^1e6 = e^-1
    for layer, g0 in zip(chip.layers, programmed):
        m = layer.matrix
        expect = _by_hand(dev, g0, 1e6, m.stuck)
        np.testing.assert_allclose(m.g_us, expect, rtol=2e-6, atol=1e-4)
        healthy = m.stuck == 0
        assert np.abs(m.g_us[healthy] - g0[healthy]).max() > 1.0   # it moved
        np.testing.assert_array_equal(m.g_us[~healthy], g0[~healthy])
        assert np.array_equal(layer.w_eff.numpy(),
                              m.effective_weights().astype(np.float32))
        assert not m.clock.writes.any()          # a disturb is not a rewrite


def test_no_reads_or_no_disturb_leaves_the_chip_as_it_is() -> None:
    chip = _chip(_disturb_device())
    before = [layer.matrix.g_us for layer in chip.layers]
    chip.age_to(1e8)                                 # no reads, no relaxation
    chip.age_to(1e8, reads_per_s=0.0)
    assert all(layer.matrix.g_us is g for layer, g in zip(chip.layers, before))
    quiet = _chip(preset("lv2024-mlc").replace(read_disturb_rate=0.0, weight_mapping=""))
    before = [layer.matrix.g_us for layer in quiet.layers]
    quiet.age_to(1e8, reads_per_s=1e3)
    assert all(layer.matrix.g_us is g for layer, g in zip(quiet.layers, before))
    with pytest.raises(ConfigError, match="reads_per_s"):
        quiet.age_to(1.0, reads_per_s=-1.0)


def test_a_rewrite_restarts_the_read_count_and_relaxation_runs_beside_it() -> None:
    """Relaxation and disturb on one clock: the cells rewritten at 1e4 s have been read
    (1e8 - 1e4) x rate times at 1e8 s, the others 1e8 x rate; each relaxed from its own write
    first (its own z), then disturbed."""
    dev = _disturb_device(relax=True)
    reads = 1e-2                                   # 1e6 reads in 1e8 s
    chip = _chip(dev)
    m = chip.layers[0].matrix
    chip.age_to(1e4, reads_per_s=reads)
    mask = np.zeros(m.target_levels.shape, bool)
    mask[::3] = True
    levels = np.where(mask, (m.target_levels + 5) % dev.n_levels, m.target_levels)
    m.write(levels, np.random.default_rng(1), cells=mask)
    written = m.g_us.copy()
    g0 = m.clock.g_written.copy()
    chip.age_to(1e8, reads_per_s=reads)
    key = relaxation_key(chip.seed, 0)
    new = relaxed(dev, written, 1e8 - 1e4, relaxation_normals(key, mask.astype(np.uint32)),
                  m.stuck)
    old = relaxed(dev, g0, 1e8, relaxation_normals(key, np.zeros(mask.shape, np.uint32)),
                  m.stuck)
    expect = np.where(mask, _by_hand(dev, new, reads * (1e8 - 1e4), m.stuck),
                      _by_hand(dev, old, reads * 1e8, m.stuck))
    np.testing.assert_allclose(m.g_us, expect, rtol=2e-6, atol=1e-4)
    assert np.array_equal(m.clock.writes, mask.astype(np.uint32))


def test_compare_at_an_age_with_reads_names_them_and_moves_the_accuracy() -> None:
    """CompareSettings.reads_per_s reaches the aged chips: one-shot at 1e8 s with reads
    differs from the same chip aged without them, and the settings record the rate."""
    import xbar
    from xbar.mapping.recovery.compare import CompareSettings, compare

    data = xbar.load_dataset("digits")
    model, _ = xbar.train_model("digits-cnn", data, seed=0)
    dev = _disturb_device()
    hw = load_hardware(xbar.implied_hardware(dev))
    runs = [compare(model, data, dev, hw,
                    CompareSettings(chips=1, methods=("one-shot",), age_s=1e8,
                                    reads_per_s=r))
            for r in (0.0, 1e-2)]
    assert runs[1]["settings"]["reads_per_s"] == 1e-2
    a0 = runs[0]["methods"]["one-shot"]["accuracy"]
    a1 = runs[1]["methods"]["one-shot"]["accuracy"]
    assert a0 != a1
