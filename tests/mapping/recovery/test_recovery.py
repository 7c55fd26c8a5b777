"""Recovery methods: device-aware KD noise, sparse SRAM adaptation, bias-only, R-V-W, compare."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from xbar.devices import Device, preset
from xbar.mapping.recovery.techniques.sram import (AdaptConfig, adapt, attach_sram,
                                                   fisher_importance, sram_words)
from xbar.mapping.chip import Chip
from xbar.mapping.cli.main import main
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.recovery.techniques.kd import DeviceNoise
from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params
from xbar.analog import AnalogMatrix
from xbar.config import ArrayConfig, HardwareConfig, XbarConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


def _chip(device: Device, digits, seed: int = 0) -> Chip:
    chip = Chip.program(_small_model(), device, XbarConfig(), seed=seed, input_shape=(1, 8, 8))
    chip.calibrate(digits.x_train[:128])
    return chip


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_kd_noise_without_variation_is_the_mapping_quantisation(mapping):
    """The torch programming model and AnalogMatrix agree when nothing is random."""
    dev = Device(name="q", g_min_us=1.0, g_max_us=100.0, n_levels=9)
    w = torch.randn(7, 20)
    noisy = DeviceNoise(dev, mapping, torch.Generator().manual_seed(0))(w)
    cfg = XbarConfig(array=ArrayConfig(weight_mapping=mapping))
    m = AnalogMatrix.program(w.double().numpy(), dev, cfg, np.random.default_rng(0))
    np.testing.assert_allclose(noisy.detach().numpy(), m.quantised_weights(), rtol=1e-5,
                               atol=1e-6)


def test_kd_noise_is_straight_through_and_random():
    dev = preset("charan2020-jxcdc")
    layer = nn.Linear(30, 5)
    parametrize.register_parametrization(layer, "weight",
                                         DeviceNoise(dev, "differential",
                                                     torch.Generator().manual_seed(1)))
    a, b = layer.weight.detach().clone(), layer.weight.detach().clone()
    assert not torch.equal(a, b)  # fresh variation and faults on every access
    layer.weight.sum().backward()
    torch.testing.assert_close(layer.parametrizations.weight.original.grad,
                               torch.ones(5, 30))


def test_sram_starts_at_zero_and_adaptation_never_rewrites_rram(digits):
    chip = _chip(preset("charan2020-jxcdc"), digits)
    before = chip.predict(digits.x_test[:50])
    g_before = [layer.matrix.g_us.copy() for layer in chip.layers]
    words = attach_sram(chip, 0.05, seed=3)
    assert words == sram_words(chip) == round(0.05 * 64 * 32) + round(0.05 * 32 * 10)
    chip.reset_reads()
    np.testing.assert_array_equal(chip.predict(digits.x_test[:50]), before)
    info = adapt(chip, digits, "sram", AdaptConfig(steps=30, batch_size=32), seed=0)
    for layer, g in zip(chip.layers, g_before):
        np.testing.assert_array_equal(layer.matrix.g_us, g)
        assert layer.sram_weights().detach()[layer.sram_mask == 0].abs().max() == 0
        assert layer.sram_code.detach().abs().max() > 0
    assert info["images_seen"] == 960


def test_rsa_recovers_accuracy_on_a_faulty_chip(digits):
    chip = _chip(preset("charan2020-jxcdc"), digits, seed=1)
    one_shot = chip.evaluate(digits.x_test, digits.y_test)
    attach_sram(chip, 0.1, seed=1)
    adapt(chip, digits, "sram", AdaptConfig(steps=150, batch_size=32), seed=1)
    assert chip.evaluate(digits.x_test, digits.y_test) > one_shot + 0.02


def test_adapted_chip_round_trips_through_hdf5(digits, tmp_path):
    chip = _chip(preset("charan2020-jxcdc"), digits, seed=2)
    attach_sram(chip, 0.05, seed=2)
    adapt(chip, digits, "sram", AdaptConfig(steps=10, batch_size=16), seed=0)
    chip.save(tmp_path / "c.h5")
    back = Chip.load(tmp_path / "c.h5", _small_model())
    chip.reset_reads()
    back.reset_reads()
    np.testing.assert_allclose(back.predict(digits.x_test[:40]),
                               chip.predict(digits.x_test[:40]), rtol=1e-5, atol=1e-5)


def test_fisher_selection_prefers_important_positions(digits):
    chip = _chip(preset("charan2020-jxcdc"), digits)
    importance = fisher_importance(chip, digits, n_images=64)
    attach_sram(chip, 0.05, selection="fisher", dataset=digits, seed=0)
    for layer, f in zip(chip.layers, importance):
        chosen = f[layer.sram_mask.numpy() > 0]
        assert chosen.mean() > f.mean()


def test_bias_only_trains_only_biases_and_gains(digits):
    chip = _chip(preset("charan2020-jxcdc"), digits)
    g = [layer.matrix.g_us.copy() for layer in chip.layers]
    b = [layer.bias.clone() for layer in chip.layers]
    adapt(chip, digits, "bias", AdaptConfig(steps=20, batch_size=32), seed=0)
    for layer, g0, b0 in zip(chip.layers, g, b):
        np.testing.assert_array_equal(layer.matrix.g_us, g0)
        assert layer.sram_code is None
        assert not torch.equal(layer.bias.detach(), b0)


def test_rvw_lands_cells_in_their_windows_and_leaves_stuck_cells(digits):
    dev = preset("charan2020-jxcdc")
    chip = _chip(dev, digits)
    params = rvw_params(dev)
    counts = program_rvw(chip, params, seed=0)
    cap = max(params.max_pulses)
    for layer, c in zip(chip.layers, counts):
        m = layer.matrix
        healthy = m.stuck == 0
        lo = np.asarray(params.window_lo_us)[m.target_levels]
        hi = np.asarray(params.window_hi_us)[m.target_levels]
        inside = (m.g_us >= lo * 0.98) & (m.g_us <= hi * 1.02)
        assert inside[healthy].mean() > 0.95
        assert np.all(m.g_us[m.stuck == 1] == dev.g_min_us)
        # a stuck cell costs the cap unless it sits inside its window (then 0 pulses, 1 read)
        stuck_in = ~healthy & inside
        assert stuck_in.sum() > 0 and np.all(c.pulses[stuck_in] == 0)
        assert np.all(c.reads[stuck_in] == 1)
        assert np.all(c.pulses[~healthy & ~inside] == cap)
        assert c.pulses[healthy].min() >= 0 and c.reads.shape == m.g_us.shape
    with pytest.raises(ValueError, match="unknown write-verify template"):
        rvw_params(dev, "nope")


def _exact_loop(dev: Device, cap: int) -> "WriteVerifyParams":
    """A loop without randomness: a pulse lands exactly on its target (step 1, no spread)."""
    from xbar.devices.write_verify import WriteVerifyParams
    lv = dev.levels
    half = 0.1 * (lv[1] - lv[0])
    n = dev.n_levels
    return WriteVerifyParams(window_lo_us=tuple(lv - half), window_hi_us=tuple(lv + half),
                             target_us=tuple(lv), step_fraction=(1.0,) * n,
                             step_sigma=(0.0,) * n, cell_sigma=(0.0,) * n,
                             stuck_fraction=(0.0,) * n, stuck_g_us=tuple(lv),
                             max_pulses=(cap,) * n, g_start_us=float(lv[0]),
                             g_min_us=dev.g_min_us, g_max_us=dev.g_max_us, read_noise=0.0)


@pytest.mark.parametrize("abort_after", [0, 5])
def test_rvw_counts_a_tiny_chip_by_hand(abort_after):
    """2 inputs x 2 outputs on differential pairs: 8 cells whose counts follow from the
    rules alone. A healthy cell at level 0 starts inside its window (0 pulses, 1 read); at a
    higher level one exact pulse lands it (1 pulse, 2 reads). A stuck cell inside its window
    costs 0 pulses and 1 read; outside it, the cap (or the early abort's k) and one more read.
    """
    from xbar.devices.write_verify import StoppingRule
    from xbar.mapping.recovery.techniques.rvw import healthy_median_pulses, stuck_time_share
    from xbar.config import ProgrammingConfig, TimingConfig
    from xbar.timing.programming import programming_time

    dev = Device(name="tiny", g_min_us=1.0, g_max_us=4.0, n_levels=4)
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
    chip = Chip.program(model, dev, XbarConfig(), seed=0, input_shape=(2,))
    m = chip.layers[0].matrix
    # cells (input row, physical column): columns 0-1 are G+ of outputs 0-1, 2-3 their G-
    np.testing.assert_array_equal(m.target_levels, [[3, 0, 0, 0], [0, 3, 3, 0]])
    stuck = np.array([[1, 1, 0, 2], [0, 0, 1, 0]], np.int8)  # 1: SA0 (g_min), 2: SA1 (g_max)
    m.stuck = stuck
    cap = 40
    counts = program_rvw(chip, _exact_loop(dev, cap), seed=0,
                         stopping=StoppingRule(abort_after=abort_after))
    stop = abort_after or cap
    # by hand, cell by cell (row 0: SA0 at level 3: out; SA0 at level 0: in; healthy level 0;
    # SA1 at level 0: out. Row 1: healthy 0; healthy 3; SA0 at level 3: out; healthy 0)
    want_pulses = np.array([[stop, 0, 0, stop], [0, 1, stop, 0]])
    np.testing.assert_array_equal(counts[0].pulses, want_pulses)
    np.testing.assert_array_equal(counts[0].reads, want_pulses + 1)
    np.testing.assert_array_equal(m.g_us, [[1.0, 1.0, 1.0, 4.0], [1.0, 4.0, 1.0, 1.0]])
    assert healthy_median_pulses(chip, counts) == 1
    # one driver, one array at a time, 1-cycle pulse and verify at 1 GHz: the arrays' times
    # add up, each the sum of its cells' pulses + reads (row-synchronous with one driver)
    prog = ProgrammingConfig(t_pulse_ns=1.0, t_verify_ns=1.0, drivers_per_array=1)
    timing = TimingConfig(clock_ghz=1.0)
    on = HardwareConfig.from_parts(chip.config, programming=prog, timing=timing)
    share = stuck_time_share(chip, counts, on)
    total = int((want_pulses + want_pulses + 1).sum())
    free = int(np.where(stuck != 0, 1, 2 * want_pulses + 1).sum())
    assert programming_time(counts, on).total_s == \
        pytest.approx(total * 1e-9)
    assert share["stuck_time_share"] == pytest.approx(1 - free / total)
    assert share["stuck_pulse_share"] == pytest.approx(3 * stop / (3 * stop + 1))
    assert share["stuck_cells"] == pytest.approx(4 / 8)


@pytest.mark.slow
def test_compare_json_schema_and_results_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cmp.h5"
    assert main(["compare", "--model", "digits-cnn", "--dataset", "digits", "--device",
                 "charan2020-jxcdc", "--chips", "1", "--steps", "3", "--adapt-batch", "8",
                 "--kd-epochs", "1", "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["methods"]) == {"software", "one-shot", "bias-only", "kd", "rsa", "kd+rsa",
                                   "osa", "kd+osa", "rvw"}
    for name, m in doc["methods"].items():
        assert 0 <= m["accuracy"] <= 1 and m["time_s"] >= 0
    assert doc["methods"]["rsa"]["sram_fraction"] == pytest.approx(0.05, rel=0.05)
    assert doc["methods"]["rvw"]["time_s"] > doc["methods"]["one-shot"]["time_s"] > 0
    assert doc["speedup_rsa_vs_rvw"] == pytest.approx(
        doc["methods"]["rvw"]["time_s"] / doc["methods"]["kd+rsa"]["time_s"])
    with h5py.File(out) as f:
        assert f.attrs["format"] == "xbar-sim compare"
        assert "accuracy.png" in f["plots"] and "time.png" in f["plots"]
        assert len(f["methods/rsa/accuracies"]) == 1
    assert (tmp_path / "cmp-accuracy.png").exists()
    assert main(["compare", "--methods", "rsa,magic", "--chips", "1"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["compare", "--sram-ratio", "5", "--chips", "1"]) == 2
    assert "sram_ratio" in capsys.readouterr().err


def test_compare_refuses_a_model_whose_outputs_are_not_the_classes() -> None:
    """The Python API checks the output width before any work, as the CLI does at load: a
    3-output network on the 10-class digits is refused by name, not scored or trained into
    an IndexError inside the loss."""
    import xbar
    from torch import nn

    from xbar.errors import ModelError

    data = xbar.load_dataset("digits")
    narrow = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(ModelError, match=r"compare\(teacher=...\): 'teacher' has 3 output"):
        xbar.compare(narrow, data, xbar.preset("charan2020-jxcdc"),
                     xbar.load_hardware("default"),
                     xbar.CompareSettings(chips=1, methods=("one-shot", "kd")))
