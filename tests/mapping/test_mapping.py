"""Mapping PyTorch networks onto crossbars: equality with torch, folding, chips, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xbar.errors import ModelError
from xbar.devices import Device, preset
from xbar.mapping.chip import Chip
from xbar.mapping.cli.main import main
from xbar.mapping.convert import fold_batchnorm
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig

HI_RES = XbarConfig(array=ArrayConfig(rows=32, cols=16), dac=DACConfig(input_bits=14),
                    adc=ADCConfig(bits=14))
# Ideal apart from levels: 65,536 of them, so weights are near float.
FINE = Device(name="fine", g_min_us=1.0, g_max_us=100.0, n_levels=65536)


class Residual(nn.Module):
    """Conv-BN-ReLU, a residual block with dilation, average pooling, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b1(self.c1(x)))
        h = h + torch.relu(self.b2(self.c2(h)))
        return self.fc(torch.flatten(self.pool(h), 1))


def _residual() -> nn.Module:
    torch.manual_seed(0)
    m = Residual()
    for bn in (m.b1, m.b2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (3, 1, 1, 1), (5, 2, 0, 1), ((3, 1), (1, 2), (2, 0), 1), (3, 1, 2, 2), (1, 1, 0, 1)])
def test_mapped_conv_equals_torch(kernel, stride, padding, dilation):
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 7, kernel, stride=stride, padding=padding, dilation=dilation).eval()
    x = torch.rand(3, 5, 11, 10) - 0.3  # signed inputs: two DAC passes
    chip = Chip.program(nn.Sequential(conv), preset("ideal"), HI_RES, seed=0)
    chip.calibrate(x)
    got = torch.as_tensor(chip.predict(x))
    layer = chip.layers[0]
    w_levels = torch.as_tensor(layer.matrix.quantised_weights(), dtype=torch.float32)
    ref_levels = F.conv2d(x, w_levels.reshape(conv.weight.shape), conv.bias, stride, padding,
                          dilation)
    assert got.shape == ref_levels.shape
    assert _rel(got, ref_levels) < 1e-3
    fine = Chip.program(nn.Sequential(conv), FINE, HI_RES, seed=0)
    fine.calibrate(x)
    assert _rel(torch.as_tensor(fine.predict(x)), conv(x).detach()) < 1e-3


def test_mapped_linear_equals_torch():
    torch.manual_seed(2)
    lin = nn.Linear(70, 9).eval()  # 70 inputs over 32-row arrays: ragged last row tile
    x = torch.rand(16, 70)
    chip = Chip.program(nn.Sequential(lin), FINE, HI_RES, seed=0)
    chip.calibrate(x)
    assert chip.layers[0].matrix.n_row_tiles == 3
    assert _rel(torch.as_tensor(chip.predict(x)), lin(x).detach()) < 1e-3


def test_batchnorm_folding_preserves_the_function():
    m = _residual()
    folded, pairs = fold_batchnorm(m)
    assert pairs == [("c1", "b1"), ("c2", "b2")]
    x = torch.randn(4, 3, 9, 9)
    torch.testing.assert_close(folded(x), m(x), rtol=1e-5, atol=1e-5)


def test_residual_network_with_average_pooling_maps_and_runs():
    m = _residual()
    x = torch.randn(6, 3, 12, 12)
    chip = Chip.program(m, preset("ideal"), HI_RES, seed=3)
    chip.calibrate(x)
    assert [type(layer).__name__ for layer in chip.layers] == \
        ["AnalogConv2d", "AnalogConv2d", "AnalogLinear"]
    assert isinstance(chip.module.b1, nn.Identity)
    assert _rel(torch.as_tensor(chip.predict(x)), m(x).detach()) < 5e-3


def test_same_seed_same_chip_and_accuracy():
    m = _residual()
    x = torch.randn(40, 3, 8, 8)
    y = m(x).argmax(1).numpy()
    dev = preset("wan2022")

    def run(seed: int) -> tuple[np.ndarray, float, float]:
        chip = Chip.program(m, dev, XbarConfig(), seed=seed)
        chip.calibrate(x[:10])
        return chip.layers[0].matrix.g_us, chip.evaluate(x, y), chip.evaluate(x, y)

    g1, acc1, again = run(5)
    g2, acc2, _ = run(5)
    np.testing.assert_array_equal(g1, g2)
    assert acc1 == acc2 == again
    g3, _, _ = run(6)
    assert not np.array_equal(g1, g3)


def test_chip_save_load_round_trip(tmp_path):
    m = _residual()
    x = torch.randn(8, 3, 8, 8)
    chip = Chip.program(m, preset("charan2020-jxcdc"), XbarConfig(), seed=4,
                        input_shape=(3, 8, 8))
    chip.calibrate(x)
    chip.save(tmp_path / "chip.h5")
    back = Chip.load(tmp_path / "chip.h5", _residual())
    for a, b in zip(chip.layers, back.layers):
        np.testing.assert_array_equal(a.matrix.g_us, b.matrix.g_us)
        np.testing.assert_array_equal(a.matrix.stuck, b.matrix.stuck)
        assert (a.x_max, a.signed) == (b.x_max, b.signed)
    assert back.device == chip.device and back.config == chip.config and back.seed == 4
    chip.reset_reads()
    back.reset_reads()
    np.testing.assert_array_equal(chip.predict(x), back.predict(x))
    with pytest.raises(ValueError, match="analog layers"):
        Chip.load(tmp_path / "chip.h5", nn.Sequential(nn.Linear(3, 2)))


@pytest.mark.parametrize("layer,why", [
    (nn.Conv3d(4, 4, 3), "3-D convolution"), (nn.ConvTranspose1d(4, 4, 3), "transposed 1-D"),
    (nn.LSTM(4, 4, proj_size=2), "proj_size"), (nn.EmbeddingBag(4, 4), "embedding bags"),
    (nn.MultiheadAttention(4, 2, add_bias_kv=True), "add_bias_kv"),
    (nn.Bilinear(4, 4, 4), "bilinear")])
def test_unsupported_layers_are_named(layer, why):
    model = nn.Sequential(nn.Linear(4, 4), layer)
    with pytest.raises(ValueError, match=rf"layer '1' .*{why}"):
        Chip.program(model, preset("ideal"), XbarConfig())


def test_wrong_input_shape_and_uncalibrated_chip_errors():
    chip = Chip.program(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), preset("ideal"),
                        XbarConfig(), input_shape=(1, 4, 4))
    with pytest.raises(ModelError, match="calibrate"):
        chip.predict(np.zeros((2, 1, 4, 4)))
    chip.calibrate(np.random.default_rng(0).random((4, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"mapped for \(1, 4, 4\)"):
        chip.predict(np.zeros((2, 1, 5, 5)))
    conv = Chip.program(nn.Sequential(nn.Conv2d(2, 3, 3)), preset("ideal"), XbarConfig())
    conv.calibrate(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"expects input \(N, 2, H, W\)"):
        conv.predict(np.ones((1, 3, 5, 5)))


@pytest.mark.slow
def test_simulate_digits_ideal_matches_software(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path))
    assert main(["simulate", "--model", "digits-cnn", "--dataset", "digits", "--device",
                 "ideal", "--json", "--save-chip", str(tmp_path / "c.h5")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["software_accuracy"] > 0.95
    assert abs(out["hardware_accuracy"] - out["software_accuracy"]) <= 0.005
    assert out["n_tiles"] == 8 and out["device"] == "ideal" and out["seed"] == 0
    assert (tmp_path / "c.h5").exists()


def test_simulate_user_model_file_and_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    torch.save(model, tmp_path / "m.pt")
    assert main(["simulate", "--model", str(tmp_path / "m.pt"), "--dataset", "digits",
                 "--json", "--test-limit", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_test"] == 50 and out["n_tiles"] == 1
    assert main(["simulate", "--model", "nonexistent-model", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert "load_model_spec(spec='nonexistent-model'): unknown model" in err
    assert err.endswith("(option --model)"), err
    assert main(["simulate", "--model", "lenet5", "--dataset", "digits"]) == 2
    assert "expects inputs of shape" in capsys.readouterr().err
    assert main(["simulate", "--model", "lenet5", "--dataset", "mnist", "--data-dir",
                 str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "t10k" in err and "load_mnist(data_dir=...)" in err
    assert err.endswith("(option --data-dir)"), err
