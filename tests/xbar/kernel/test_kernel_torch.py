"""The PyTorch MVM kernel (backend "torch-cpu", the CUDA code path on torch's CPU device)
against the Numba kernel: bit for bit without noise, in distribution with noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from naive import naive_matmul
from xbar.analog import AnalogMatrix
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.devices import Device, preset
from xbar.errors import ConfigError, ResourceError
from xbar.kernel_torch import resolve_backend
from xbar.mapping.cli.main import main

# Levels 1, 2, ..., 128 uS: every bit-line sum is an exact integer in float32, so both
# backends' GEMMs are exact whatever their summation order.
DYADIC = Device(name="dyadic", g_min_us=1.0, g_max_us=128.0, n_levels=128)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")


def _cfg(rows=16, mapping="differential", in_bits=4, k=1, adc_bits=6,
         adc_range="calibrated") -> XbarConfig:
    return XbarConfig(ArrayConfig(rows=rows, cols=8, weight_mapping=mapping),
                      DACConfig(input_bits=in_bits, bits_per_read=k),
                      ADCConfig(bits=adc_bits, range_mode=adc_range))


@pytest.mark.parametrize("n_out,n_in", [(8, 16), (5, 37), (19, 33), (1, 1), (24, 100)])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("in_bits,k", [(4, 1), (5, 2), (6, 3), (3, 3), (8, 8)])
@pytest.mark.parametrize("signed", [False, True])
def test_torch_equals_numba_bit_for_bit_without_noise(n_out, n_in, mapping, in_bits, k,
                                                       signed, rng):
    m = AnalogMatrix.program(rng.uniform(-1, 1, (n_out, n_in)), DYADIC,
                             _cfg(mapping=mapping, in_bits=in_bits, k=k), rng)
    x = rng.uniform(-1 if signed else 0, 1, (9, n_in)).astype(np.float32)
    ranges = m.calibrate_adc(x[:4], x_max=1.0, signed=signed, backend="cpu").copy()
    np.testing.assert_array_equal(
        m.calibrate_adc(x[:4], x_max=1.0, signed=signed, backend="torch-cpu"), ranges)
    numba_y = m.matmul(x, x_max=1.0, signed=signed, backend="cpu")
    torch_y = m.matmul(x, x_max=1.0, signed=signed, backend="torch-cpu")
    np.testing.assert_array_equal(torch_y, numba_y)
    np.testing.assert_array_equal(torch_y, naive_matmul(m, x, 1.0, signed))


@pytest.mark.parametrize("adc_bits,adc_range", [(1, "full-scale"), (8, "full-scale"),
                                                (8, "calibrated"), (16, "calibrated")])
def test_torch_equals_numba_realistic_conductances(adc_bits, adc_range, rng):
    """Non-integer conductances: only float32 GEMM rounding may flip a rare ADC code."""
    m = AnalogMatrix.program(rng.normal(size=(20, 70)), preset("charan2020-jxcdc"),
                             _cfg(rows=32, in_bits=8, adc_bits=adc_bits, adc_range=adc_range),
                             rng)
    x = rng.uniform(-1, 1, (64, 70)).astype(np.float32)
    if adc_range == "calibrated":
        m.calibrate_adc(x, backend="cpu")
    numba_y = m.matmul(x, x_max=1.0, backend="cpu")
    torch_y = m.matmul(x, x_max=1.0, backend="torch-cpu")
    lsb_weight = np.abs(numba_y).max() / (1 << adc_bits)
    assert np.mean(torch_y == numba_y) > 0.95
    np.testing.assert_allclose(torch_y, numba_y, atol=4 * lsb_weight)


def test_clipping_and_input_range_match(rng):
    """Inputs beyond x_max clip to the full DAC code; currents beyond the ADC range clip."""
    m = AnalogMatrix.program(rng.uniform(-1, 1, (6, 40)), DYADIC,
                             _cfg(in_bits=6, k=2, adc_bits=3, adc_range="full-scale"), rng)
    x = rng.uniform(-3, 3, (20, 40)).astype(np.float32)
    x[0, :] = 0.0  # no driven cell at all
    np.testing.assert_array_equal(m.matmul(x, x_max=1.0, backend="torch-cpu"),
                                  m.matmul(x, x_max=1.0, backend="cpu"))


def test_chunks_do_not_change_noise_free_results(rng, monkeypatch):
    m = AnalogMatrix.program(rng.uniform(-1, 1, (10, 50)), DYADIC, _cfg(in_bits=5), rng)
    x = rng.uniform(-1, 1, (40, 50)).astype(np.float32)
    m.calibrate_adc(x, backend="cpu")
    whole = m.matmul(x, backend="torch-cpu")
    monkeypatch.setitem(__import__("xbar.kernel_torch").kernel_torch.CHUNK_ELEMS, "cpu", 500)
    np.testing.assert_array_equal(m.matmul(x, backend="torch-cpu"), whole)


@pytest.mark.parametrize("k", [1, 3])
def test_read_noise_equal_in_distribution_to_numba(k):
    """Repeated reads of one input: per output, two-sample KS against the Numba kernel."""
    rng = np.random.default_rng(7)
    dev = DYADIC.replace(read_noise=0.05)
    m = AnalogMatrix.program(rng.uniform(-1, 1, (4, 24)), dev,
                             _cfg(in_bits=6, k=k, adc_bits=16, adc_range="full-scale"), rng)
    x = np.repeat(rng.uniform(-1, 1, (1, 24)).astype(np.float32), 3000, axis=0)
    numba_y = m.matmul(x, rng=np.random.default_rng(1), x_max=1.0, backend="cpu")
    torch_y = m.matmul(x, rng=np.random.default_rng(2), x_max=1.0, backend="torch-cpu")
    clean = m.matmul(x[:1], x_max=1.0, read_noise=False, backend="cpu")[0]
    for j in range(m.n_out):
        assert stats.ks_2samp(torch_y[:, j], numba_y[:, j]).pvalue > 1e-3
        assert torch_y[:, j].std() == pytest.approx(numba_y[:, j].std(), rel=0.1)
        assert torch_y[:, j].std() > 0
        assert abs(torch_y[:, j].mean() - clean[j]) < 4 * torch_y[:, j].std() / np.sqrt(len(x))


def test_same_seed_same_result_run_to_run(rng):
    m = AnalogMatrix.program(rng.normal(size=(30, 150)), preset("wan2022"),
                             XbarConfig(array=ArrayConfig(rows=64, cols=32)), rng)
    x = rng.uniform(-1, 1, (33, 150)).astype(np.float32)
    m.calibrate_adc(x, backend="torch-cpu")
    one = m.matmul(x, rng=np.random.default_rng(9), backend="torch-cpu")
    np.testing.assert_array_equal(m.matmul(x, rng=np.random.default_rng(9),
                                           backend="torch-cpu"), one)
    assert not np.array_equal(m.matmul(x, rng=np.random.default_rng(10),
                                       backend="torch-cpu"), one)
    # A bit line with no driven cell draws no noise: a zero input reads exactly zero.
    assert not m.matmul(np.zeros((3, 150), np.float32), rng=np.random.default_rng(9),
                        x_max=1.0, backend="torch-cpu").any()


def test_matmul_tensor_matches_matmul(rng):
    """The layer path: a tensor in, a tensor out on the same device, same values."""
    m = AnalogMatrix.program(rng.uniform(-1, 1, (7, 30)), DYADIC, _cfg(in_bits=5), rng)
    x = rng.uniform(-1, 1, (12, 30)).astype(np.float32)
    m.calibrate_adc(x)
    ref = m.matmul(x, backend="cpu")
    for backend in ("cpu", "torch-cpu"):
        y = m.matmul_tensor(torch.from_numpy(x), backend=backend)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
        np.testing.assert_array_equal(y.numpy(), ref)
    with pytest.raises(ConfigError, match=r"shape \(batch, 30\)"):
        m.matmul_tensor(torch.zeros(2, 31), backend="torch-cpu")
    with pytest.raises(ConfigError, match="NaN"):
        m.matmul_tensor(torch.full((2, 30), float("nan")), backend="torch-cpu")


def test_backend_names_are_checked(rng):
    with pytest.raises(ConfigError, match=r"backend = 'gpu' is invalid; allowed: one of auto, "
                                          r"cpu, cuda, torch-cpu"):
        resolve_backend("gpu")
    m = AnalogMatrix.program(np.ones((2, 3)), DYADIC, _cfg(adc_range="full-scale"), rng)
    with pytest.raises(ConfigError, match="backend = 'numba' is invalid"):
        m.matmul(np.ones((1, 3), np.float32), backend="numba")
    assert resolve_backend("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@NO_CUDA
def test_cuda_without_gpu_is_a_clear_error(capsys):
    with pytest.raises(ResourceError, match="backend 'cuda' needs a CUDA GPU"):
        resolve_backend("cuda")
    assert main(["mvm", "--backend", "cuda", "--shape", "4x8", "--batch", "2"]) == 2
    assert "backend 'cuda' needs a CUDA GPU" in capsys.readouterr().err
    assert main(["simulate", "--backend", "cuda"]) == 2
    assert "use backend 'cpu' or 'auto'" in capsys.readouterr().err


def test_cli_mvm_torch_cpu_backend(capsys):
    import json

    rows = {}
    for backend in ("cpu", "torch-cpu"):
        assert main(["mvm", "--backend", backend, "--device", "ideal", "--shape", "16x200",
                     "--batch", "8", "--json"]) == 0
        rows[backend] = json.loads(capsys.readouterr().out)
        assert rows[backend]["backend"] == backend
    assert rows["torch-cpu"]["relative_error_vs_float"] == pytest.approx(
        rows["cpu"]["relative_error_vs_float"], abs=1e-3)


def test_chip_layers_run_on_the_torch_backend(rng):
    """A conv + linear network through the chip: the same logits on both backends."""
    from torch import nn

    from xbar.mapping.chip import Chip

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 5 * 5, 4))
    chip = Chip.program(model, DYADIC, _cfg(in_bits=5, k=2), seed=1, input_shape=(2, 5, 5))
    x = rng.uniform(-1, 1, (6, 2, 5, 5)).astype(np.float32)
    chip.calibrate(x)
    logits = {}
    for backend in ("cpu", "torch-cpu"):
        for layer in chip.layers:
            layer.matrix.backend = backend
        chip.reset_reads()
        logits[backend] = chip.predict(x)
    np.testing.assert_array_equal(logits["torch-cpu"], logits["cpu"])


def test_replaced_conductances_are_not_read_from_the_device_copy(rng):
    """Conductances stay on the device between calls, until g_us is replaced (as R-V-W does)."""
    m = AnalogMatrix.program(rng.uniform(-1, 1, (5, 20)), DYADIC, _cfg(adc_range="full-scale"),
                             rng)
    x = rng.uniform(0, 1, (6, 20)).astype(np.float32)
    before = m.matmul(x, x_max=1.0, backend="torch-cpu")
    m.g_us = AnalogMatrix.program(rng.uniform(-1, 1, (5, 20)), DYADIC, m.config, rng).g_us
    after = m.matmul(x, x_max=1.0, backend="torch-cpu")
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, m.matmul(x, x_max=1.0, backend="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_numba_and_repeats(rng):
    """On a GPU: bit for bit without noise, run to run with noise, equal in distribution."""
    m = AnalogMatrix.program(rng.uniform(-1, 1, (24, 100)), DYADIC, _cfg(in_bits=6, k=2), rng)
    x = rng.uniform(-1, 1, (50, 100)).astype(np.float32)
    ranges = m.calibrate_adc(x, backend="cpu").copy()
    np.testing.assert_array_equal(m.calibrate_adc(x, backend="cuda"), ranges)
    np.testing.assert_array_equal(m.matmul(x, backend="cuda"), m.matmul(x, backend="cpu"))
    y = m.matmul_tensor(torch.from_numpy(x).cuda(), backend="cuda")
    assert y.is_cuda
    np.testing.assert_array_equal(y.cpu().numpy(), m.matmul(x, backend="cpu"))
    noisy = AnalogMatrix.program(rng.uniform(-1, 1, (4, 24)), DYADIC.replace(read_noise=0.05),
                                 _cfg(in_bits=6, adc_bits=16, adc_range="full-scale"), rng)
    xr = np.repeat(rng.uniform(0, 1, (1, 24)).astype(np.float32), 3000, axis=0)
    one = noisy.matmul(xr, rng=np.random.default_rng(1), x_max=1.0, backend="cuda")
    np.testing.assert_array_equal(
        noisy.matmul(xr, rng=np.random.default_rng(1), x_max=1.0, backend="cuda"), one)
    ref = noisy.matmul(xr, rng=np.random.default_rng(2), x_max=1.0, backend="cpu")
    for j in range(noisy.n_out):
        assert stats.ks_2samp(one[:, j], ref[:, j]).pvalue > 1e-3
