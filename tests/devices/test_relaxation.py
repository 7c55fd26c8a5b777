"""Conductance relaxation (issue 24): the cells' distribution at an age against the stated
closed form, one chip's ages consistent with each other, a rewrite restarting the clock,
stuck cells staying stuck, no relaxation (or age 0) leaving every cell bit for bit, and files
written before relaxation loading with it off."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from xbar.config import load_hardware
from xbar.devices import Device, load_device_file, preset, save_device
from xbar.devices.relaxation import (CellClock, relax_moments, relaxation_key,
                                     relaxation_normals, relaxed)
from xbar.errors import ConfigError

CMO = dict(relax_mean_us_per_ln_t=-0.08900206, relax_std_us_per_ln_t=0.04201137,
           relax_std0_us=0.41183342, relax_t0_s=1.0)
# A range wide enough that no cell reaches a bound: the unclipped closed form applies.
WIDE = Device(name="wide", g_min_us=1.0, g_max_us=1000.0, n_levels=2, **CMO)


def _clock(n: int, g0: float = 500.0, key: int = 7) -> CellClock:
    return CellClock.start(np.full(n, g0, np.float32), key)


@pytest.mark.parametrize("age", [0.5, 1.0, 10.0, 3600.0, 1e4, 86400.0, 1e8])
def test_spread_and_mean_at_an_age_match_the_closed_form(age: float) -> None:
    """Over 200,000 cells the deviation's sample mean and std equal mu ln(a/t0) and s1 ln(a/t0)
    + s0 (aihwkit's CMO figures, written out here by hand) within 5 standard errors."""
    n = 200_000
    g = _clock(n).at(WIDE, age, None).astype(np.float64) - 500.0
    L = math.log(max(age, 1.0))
    mean, std = -0.08900206 * L, 0.04201137 * L + 0.41183342
    assert abs(g.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(g.std() - std) < 5 * std / math.sqrt(2 * n)
    m, s = relax_moments(WIDE, age)
    assert m == pytest.approx(mean, rel=1e-12, abs=1e-15) and s == pytest.approx(std)


def test_one_chips_ages_are_one_trajectory_per_cell() -> None:
    """Each cell keeps its z-score at every age (one normal per write), so its deviation is
    linear in ln t: monotone, and the ages of one chip agree with each other."""
    clock = _clock(5000)
    ages = [1.0, 10.0, 1e4, 1e8]
    devs = np.array([clock.at(WIDE, a, None).astype(np.float64) - 500.0 for a in ages])
    zs = [(d - relax_moments(WIDE, a)[0]) / relax_moments(WIDE, a)[1] for d, a in zip(devs, ages)]
    for z in zs[1:]:
        np.testing.assert_allclose(z, zs[0], atol=2e-4)   # float32 conductances near 500 uS
    assert np.corrcoef(devs[0], devs[-1])[0, 1] > 0.999
    step = np.diff(devs, axis=0)
    # monotone: the sign of each cell's change is the same over every interval
    signs = np.sign(step[:, np.abs(step).min(axis=0) > 1e-3])
    assert np.all(signs == signs[0])


def test_z_is_the_cells_stream_draw_and_reproducible_by_key() -> None:
    from xbar.rng import cell_draws
    z = relaxation_normals(123, np.array([[0, 2], [1, 0]], np.uint32))
    for i, w in enumerate([0, 2, 1, 0]):
        assert z.reshape(-1)[i] == np.float32(cell_draws(np.uint64(123), i, 3)[w])
    assert np.array_equal(z, relaxation_normals(123, np.array([[0, 2], [1, 0]], np.uint32)))
    assert not np.array_equal(z, relaxation_normals(124, np.array([[0, 2], [1, 0]])))
    assert relaxation_key(3, 0) != relaxation_key(3, 1) != relaxation_key(4, 1)


def test_clip_and_stuck_cells() -> None:
    dev = Device(name="narrow", g_min_us=9.0, g_max_us=88.19, n_levels=2,
                 **{k: 20 * v if k != "relax_t0_s" else v for k, v in CMO.items()})
    g0 = np.array([9.0, 88.19, 50.0, 9.0, 88.19] * 200, np.float32)
    stuck = np.array([0, 0, 0, 1, 2] * 200, np.int8)
    z = relaxation_normals(5, np.zeros(g0.shape, np.uint32))
    g = relaxed(dev, g0, 1e8, z, stuck)
    assert g.min() >= np.float32(9.0) and g.max() <= np.float32(88.19)
    assert np.array_equal(g[stuck != 0], g0[stuck != 0])
    assert np.any(g[stuck == 0] != g0[stuck == 0])
    assert np.array_equal(relaxed(dev, g0, 0.0, z, stuck), g0)


def test_no_relaxation_or_age_zero_is_bit_for_bit() -> None:
    g0 = np.linspace(1, 100, 50, dtype=np.float32)
    assert np.array_equal(relaxed(Device(), g0, 1e8, np.ones(50)), g0)
    assert np.array_equal(relaxed(WIDE, g0, 0.0, np.ones(50)), g0)


def _model():
    import torch

    from xbar.mapping.data.zoo import build_model
    torch.manual_seed(0)
    return build_model("digits-cnn")


def _chip(device: Device, seed: int = 3):
    from xbar.mapping.chip import Chip
    return Chip.program(_model(), device, load_hardware("default").xbar, seed,
                        "column", "digits-cnn", (1, 8, 8))


def test_a_chip_without_relaxation_or_at_age_zero_is_unchanged() -> None:
    """Programming does not depend on the relaxation fields; aging a chip whose device does
    not relax leaves its arrays the same objects; age 0 reproduces the programmed cells."""
    cmo = preset("cmo-hfox")
    off = cmo.replace(relax_mean_us_per_ln_t=0.0, relax_std_us_per_ln_t=0.0,
                      relax_std0_us=0.0, relax_t0_s=0.0)
    a, b = _chip(cmo), _chip(off)
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.matrix.g_us, lb.matrix.g_us)
    before = [lay.matrix.g_us for lay in b.layers]
    b.age_to(1e8)
    assert all(lay.matrix.g_us is g for lay, g in zip(b.layers, before))
    programmed = [lay.matrix.g_us.copy() for lay in a.layers]
    a.age_to(1e8)
    assert any(not np.array_equal(lay.matrix.g_us, g) for lay, g in zip(a.layers, programmed))
    a.age_to(1e8)   # the same clock again: the same cells
    a2 = _chip(cmo).age_to(1e8)
    for la, lb in zip(a.layers, a2.layers):
        assert np.array_equal(la.matrix.g_us, lb.matrix.g_us)
        assert np.array_equal(la.w_eff.numpy(), la.matrix.effective_weights().astype(np.float32))
    with pytest.raises(ConfigError, match="age"):
        a.age_to(-1.0)
    fresh = _chip(cmo).age_to(0.0)
    for lay, g in zip(fresh.layers, programmed):
        assert np.array_equal(lay.matrix.g_us, g)
    other = _chip(cmo, seed=4).age_to(1e8)
    assert not np.array_equal(other.layers[0].matrix.g_us, a.layers[0].matrix.g_us)


def test_a_rewrite_restarts_the_cells_clock() -> None:
    """Cells rewritten at 1e4 s hold their written value then, and at 1e8 s are 1e8 - 1e4 s
    old with their second draw (write count 1); the others age from 0 with their first."""
    cmo = preset("cmo-hfox")
    chip = _chip(cmo)
    m = chip.layers[0].matrix
    chip.age_to(1e4)
    mask = np.zeros(m.target_levels.shape, bool)
    mask[::2] = True
    levels = np.where(mask, (m.target_levels + 3) % cmo.n_levels, m.target_levels)
    aged_before = m.g_us.copy()
    m.write(levels, np.random.default_rng(0), cells=mask)
    written = m.g_us.copy()
    assert np.array_equal(m.g_us[~mask], aged_before[~mask])
    assert np.array_equal(m.clock.written_s, np.where(mask, 1e4, 0.0))
    assert np.array_equal(m.clock.writes, mask.astype(np.uint32))
    chip.age_to(1e8)
    key = relaxation_key(chip.seed, 0)
    z = relaxation_normals(key, mask.astype(np.uint32))
    expect = relaxed(cmo, written, 1e8 - 1e4, z, m.stuck)
    np.testing.assert_array_equal(m.g_us[mask], expect[mask])
    z0 = relaxation_normals(key, np.zeros(mask.shape, np.uint32))
    first = relaxed(cmo, m.clock.g_written, 1e8, z0, m.stuck)
    np.testing.assert_array_equal(m.g_us[~mask], first[~mask])
    with pytest.raises(ConfigError, match="before the latest write"):
        chip.age_to(10.0)


def test_a_direct_assignment_counts_as_a_rewrite_at_the_clocks_time() -> None:
    """Code that replaces g_us (R-V-W re-programming) rewrites the changed cells then."""
    chip = _chip(preset("cmo-hfox")).age_to(100.0)
    m = chip.layers[1].matrix
    g = m.g_us.copy()
    g[0, :3] = 40.0
    m.g_us = g
    chip.age_to(100.0)
    assert np.all(m.g_us[0, :3] == 40.0)
    assert np.all(m.clock.written_s[0, :3] == 100.0) and m.clock.written_s[1, 0] == 0.0


def test_relaxation_fields_are_validated() -> None:
    with pytest.raises(ConfigError, match="relax_t0_s"):
        Device(relax_std0_us=0.4)
    with pytest.raises(ConfigError, match="relax_std_us_per_ln_t"):
        Device(relax_std_us_per_ln_t=-0.1, relax_t0_s=1.0)
    assert not Device(relax_t0_s=5.0).has_relaxation()
    assert Device(**CMO).has_relaxation() and not Device(**CMO).is_ideal
    d = preset("cmo-hfox")
    assert (d.relax_mean_us_per_ln_t, d.relax_std_us_per_ln_t, d.relax_std0_us,
            d.relax_t0_s) == (-0.08900206, 0.04201137, 0.41183342, 1.0)
    assert preset("cmo-hfox-x5").relax_std0_us == pytest.approx(5 * 0.41183342)


def test_device_files_round_trip_and_old_versions_load_with_relaxation_off(tmp_path) -> None:
    path = tmp_path / "cmo.h5"
    save_device(preset("cmo-hfox"), path)
    assert load_device_file(path).device == preset("cmo-hfox")
    toml = tmp_path / "cmo.toml"
    toml.write_text('[device]\nname = "t"\ng_min_us = 9.0\ng_max_us = 88.19\nn_levels = 4\n'
                    'relax_mean_us_per_ln_t = -0.089\nrelax_std_us_per_ln_t = 0.042\n'
                    'relax_std0_us = 0.412\nrelax_t0_s = 1.0\n')
    assert load_device_file(toml).device.relax_std0_us == 0.412
    with h5py.File(path, "r+") as f:
        for k in ("relax_mean_us_per_ln_t", "relax_std_us_per_ln_t", "relax_std0_us",
                  "relax_t0_s"):
            del f["device"].attrs[k]
    with pytest.raises(Exception, match="missing device field.*relax_"):
        load_device_file(path)     # a version 4 file must hold them
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 3
    old = load_device_file(path).device
    assert not old.has_relaxation() and old.name == "cmo-hfox"


def test_a_chip_file_before_relaxation_loads_with_it_off(tmp_path) -> None:
    from xbar.mapping.chip import Chip
    chip = _chip(preset("cmo-hfox"))
    path = tmp_path / "chip.h5"
    chip.save(path)
    assert Chip.load(path, _model()).device == preset("cmo-hfox")
    with h5py.File(path, "r+") as f:
        for k in ("relax_mean_us_per_ln_t", "relax_std_us_per_ln_t", "relax_std0_us",
                  "relax_t0_s"):
            del f["device"].attrs[k]
        f.attrs["format_version"] = 3
    loaded = Chip.load(path, _model())
    assert not loaded.device.has_relaxation()
    assert np.array_equal(loaded.layers[0].matrix.g_us, chip.layers[0].matrix.g_us)
