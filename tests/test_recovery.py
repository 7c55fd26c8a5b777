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
from xbar.mapping.recovery.sram import AdaptConfig, adapt, attach_sram, fisher_importance, sram_words
from xbar.mapping.chip import Chip
from xbar.mapping.cli.main import main
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.recovery.kd import DeviceNoise
from xbar.mapping.recovery.rvw import program_rvw, rvw_params
from xbar.analog import AnalogMatrix
from xbar.config import ArrayConfig, XbarConfig


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
        assert np.all(c.pulses[~healthy] == cap)
        assert c.pulses[healthy].min() >= 0 and c.reads.shape == m.g_us.shape
    with pytest.raises(ValueError, match="unknown write-verify template"):
        rvw_params(dev, "nope")


def test_compare_json_schema_and_results_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cmp.h5"
    assert main(["compare", "--model", "digits-cnn", "--dataset", "digits", "--device",
                 "charan2020-jxcdc", "--chips", "1", "--steps", "3", "--batch", "8",
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
