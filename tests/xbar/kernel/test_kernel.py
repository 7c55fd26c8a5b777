"""The Numba analog MVM kernel against the naive reference, float matmul, and statistics."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from xbar.devices import Device, preset
from naive import naive_matmul
from xbar.analog import AnalogMatrix
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.kernel_noise import normals

# Levels 1, 2, ..., 128 uS: every bit-line sum is an exact integer in float32 and float64, so
# kernel and reference can be compared bit for bit.
DYADIC = Device(name="dyadic", g_min_us=1.0, g_max_us=128.0, n_levels=128)


def _cfg(rows=16, cols=8, mapping="differential", in_bits=4, k=1, adc_bits=6,
         adc_range="full-scale") -> XbarConfig:
    return XbarConfig(ArrayConfig(rows=rows, cols=cols, weight_mapping=mapping),
                      DACConfig(input_bits=in_bits, bits_per_read=k),
                      ADCConfig(bits=adc_bits, range_mode=adc_range))


@pytest.mark.parametrize("n_out,n_in", [(8, 16), (5, 37), (19, 33), (1, 1), (24, 100)])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("in_bits,k", [(4, 1), (5, 2), (6, 3), (3, 3)])
@pytest.mark.parametrize("signed", [False, True])
def test_kernel_equals_reference_without_noise(n_out, n_in, mapping, in_bits, k, signed, rng):
    cfg = _cfg(mapping=mapping, in_bits=in_bits, k=k, adc_range="calibrated")
    m = AnalogMatrix.program(rng.uniform(-1, 1, (n_out, n_in)), DYADIC, cfg, rng)
    x = rng.uniform(-1 if signed else 0, 1, (7, n_in)).astype(np.float32)
    m.calibrate_adc(x[:3], x_max=1.0, signed=signed)
    got = m.matmul(x, x_max=1.0, signed=signed)
    np.testing.assert_array_equal(got, naive_matmul(m, x, 1.0, signed))


@pytest.mark.parametrize("adc_bits", [1, 4, 8, 16])
def test_kernel_equals_reference_realistic_conductances(adc_bits, rng):
    """Non-dyadic conductances: float32 GEMM rounding may flip a rare ADC code only."""
    cfg = _cfg(rows=32, adc_bits=adc_bits, in_bits=8)
    m = AnalogMatrix.program(rng.normal(size=(20, 70)), preset("charan2020-jxcdc"), cfg, rng)
    x = rng.uniform(-1, 1, (16, 70)).astype(np.float32)
    got, ref = m.matmul(x, x_max=1.0), naive_matmul(m, x, 1.0, True)
    lsb_weight = np.abs(ref).max() / (1 << adc_bits)
    assert np.mean(np.isclose(got, ref, rtol=1e-6, atol=1e-6)) > 0.95
    np.testing.assert_allclose(got, ref, atol=4 * lsb_weight)


def test_ideal_device_matches_float_matmul(rng):
    """Ideal device, 12-bit DAC and ADC: within 1e-3 of float matmul of the level weights.

    The ideal device has 256 levels, so weights themselves are quantised (about 9 bits signed
    with the differential pair); that error, about 2e-3 here, belongs to the device, not to
    the MVM, and is bounded separately.
    """
    cfg = XbarConfig(dac=DACConfig(input_bits=12), adc=ADCConfig(bits=12))
    w = rng.uniform(-1, 1, (50, 300))
    m = AnalogMatrix.program(w, preset("ideal"), cfg, rng)
    x = rng.uniform(0, 1, (64, 300)).astype(np.float32)
    m.calibrate_adc(x)
    y = m.matmul(x).astype(np.float64)
    ref = x.astype(np.float64) @ m.quantised_weights().T
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-3
    exact = x.astype(np.float64) @ w.T
    assert np.linalg.norm(y - exact) / np.linalg.norm(exact) < 4e-3


def test_read_noise_output_referred_equals_per_cell_in_distribution():
    """One Gaussian per column and read is the per-cell read noise, in distribution."""
    rng = np.random.default_rng(7)
    dev = DYADIC.replace(read_noise=0.05)
    cfg = _cfg(rows=16, in_bits=3, k=1, adc_bits=16)
    m = AnalogMatrix.program(rng.uniform(-1, 1, (4, 24)), dev, cfg, rng)
    x = np.repeat(rng.uniform(0, 1, (1, 24)).astype(np.float32), 3000, axis=0)
    fast = m.matmul(x, rng=np.random.default_rng(1), x_max=1.0)
    slow = naive_matmul(m, x, 1.0, False, cell_noise_rng=np.random.default_rng(2))
    clean = m.matmul(x[:1], x_max=1.0, read_noise=False)[0]
    for j in range(m.n_out):
        assert stats.ks_2samp(fast[:, j], slow[:, j]).pvalue > 1e-3
        assert fast[:, j].std() == pytest.approx(slow[:, j].std(), rel=0.1)
        assert fast[:, j].std() > 0
        # Noise is zero-mean: the average read is the noise-free read.
        assert abs(fast[:, j].mean() - clean[j]) < 4 * fast[:, j].std() / np.sqrt(len(x))


def test_counter_based_normals_are_standard_normal():
    z = normals(np.uint64(123), 200_000)
    assert abs(z.mean()) < 4 / np.sqrt(len(z))
    assert z.std() == pytest.approx(1.0, abs=0.01)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01


def test_same_seed_same_output_on_1_and_2_threads():
    rng = np.random.default_rng(3)
    cfg = XbarConfig(array=ArrayConfig(rows=64, cols=32))
    m = AnalogMatrix.program(rng.normal(size=(40, 150)), preset("wan2022"), cfg, rng)
    x = rng.uniform(-1, 1, (33, 150)).astype(np.float32)
    m.calibrate_adc(x)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = m.matmul(x, rng=np.random.default_rng(9))
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = m.matmul(x, rng=np.random.default_rng(9))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    three = m.matmul(x, rng=np.random.default_rng(10))
    assert not np.array_equal(one, three)


def test_batch_chunking_does_not_change_noise(monkeypatch):
    rng = np.random.default_rng(4)
    m = AnalogMatrix.program(rng.normal(size=(10, 40)), preset("wan2022"),
                             _cfg(rows=16, in_bits=8), rng)
    x = rng.uniform(0, 1, (50, 40)).astype(np.float32)
    whole = m.matmul(x, rng=np.random.default_rng(5))
    monkeypatch.setattr("xbar.analog._CHUNK_ELEMS", 8 * 16 * 7)  # chunks of 7 samples
    np.testing.assert_array_equal(whole, m.matmul(x, rng=np.random.default_rng(5)))


def test_tile_counts_and_layout(rng):
    cfg = XbarConfig(array=ArrayConfig(rows=128, cols=128))
    m = AnalogMatrix.program(rng.normal(size=(300, 200)), preset("ideal"), cfg, rng)
    assert (m.n_row_tiles, m.n_col_tiles, m.n_tiles) == (2, 3, 6)
    assert m.n_cells == 200 * 600
    off = AnalogMatrix.program(rng.normal(size=(300, 200)), preset("ideal"),
                               cfg.replace(**{"array.weight_mapping": "offset"}), rng)
    assert off.n_col_tiles == 3 and off.n_cells == 200 * (300 + 3)


def test_effective_weights_of_ideal_device_are_quantised_weights(rng):
    m = AnalogMatrix.program(rng.normal(size=(6, 9)), preset("ideal"), XbarConfig(), rng)
    np.testing.assert_allclose(m.effective_weights(), m.quantised_weights(), rtol=1e-5,
                               atol=1e-6)


def test_bad_inputs_raise(rng):
    m = AnalogMatrix.program(rng.normal(size=(4, 5)), preset("ideal"), XbarConfig(), rng)
    with pytest.raises(ValueError, match=r"shape \(batch, 5\)"):
        m.matmul(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="not been calibrated"):
        m.matmul(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        m.calibrate_adc(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        AnalogMatrix.program(np.zeros(5), preset("ideal"), XbarConfig(), rng)
    with pytest.raises(ValueError, match="scale"):
        AnalogMatrix.program(np.zeros((2, 2)), preset("ideal"), XbarConfig(), rng, scale="x")
    noisy = AnalogMatrix.program(np.ones((2, 2)), preset("wan2022"),
                                 _cfg(adc_range="full-scale"), rng)
    with pytest.raises(ValueError, match="pass rng"):
        noisy.matmul(np.ones((1, 2)))
    with pytest.raises(ValueError, match=">= 3 levels"):
        AnalogMatrix.program(np.ones((2, 2)), Device(n_levels=2),
                             _cfg(mapping="offset"), rng)
