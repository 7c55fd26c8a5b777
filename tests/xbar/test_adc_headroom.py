"""ADC calibration headroom (``[adc] calibration_headroom``): the calibrated full-scale
current is the largest noise-free bit-line current on the calibration inputs times the
headroom, on both backends; the default 1 leaves every result as it was (the kernel digests
of tests/xbar/kernel/test_kernel_regression.py pin that)."""

from __future__ import annotations

import numpy as np
import pytest

from xbar.analog import AnalogMatrix
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig, load_hardware
from xbar.devices import Device
from xbar.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DYADIC = Device(name="dyadic", g_min_us=1.0, g_max_us=128.0, n_levels=128)


def _matrix(headroom: float, seed: int = 0, mapping: str = "differential") -> AnalogMatrix:
    rng = np.random.default_rng(seed)
    cfg = XbarConfig(ArrayConfig(rows=32, cols=16, weight_mapping=mapping),
                     DACConfig(input_bits=8, bits_per_read=1),
                     ADCConfig(bits=8, range_mode="calibrated",
                               calibration_headroom=headroom))
    return AnalogMatrix.program(rng.normal(size=(12, 70)), DYADIC, cfg, rng)


@pytest.mark.parametrize("backend", ["cpu", "torch-cpu"])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_headroom_multiplies_the_calibrated_ranges_exactly(backend, mapping):
    x = np.random.default_rng(1).uniform(0, 1, (40, 70)).astype(np.float32)
    plain, wide = _matrix(1.0, mapping=mapping), _matrix(2.0, mapping=mapping)
    r1 = plain.calibrate_adc(x, x_max=1.0, backend=backend)
    r2 = wide.calibrate_adc(x, x_max=1.0, backend=backend)
    assert np.all(r1 > 0)
    assert np.array_equal(r2, 2.0 * r1)          # exact: a power of two
    assert np.array_equal(wide.adc_range_ua, r2)
    r3 = _matrix(0.75, mapping=mapping).calibrate_adc(x, x_max=1.0, backend=backend)
    assert np.array_equal(r3, r1 * 0.75)


def test_headroom_keeps_a_stronger_input_out_of_saturation():
    """Calibrated on inputs in [0, 0.5), a matrix of non-negative weights sees inputs in
    [0.5, 1): with no headroom its bit-line currents exceed the range and clip at the top
    code, so outputs fall short of the exact product; with headroom 2.5 they fit."""
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 1, (8, 60))
    calib = rng.uniform(0, 0.5, (64, 60)).astype(np.float32)
    strong = rng.uniform(0.5, 1.0, (32, 60)).astype(np.float32)
    exact = strong.astype(np.float64) @ w.T
    errors = {}
    for headroom in (1.0, 2.5):
        cfg = XbarConfig(ArrayConfig(rows=64, cols=16), DACConfig(input_bits=8),
                         ADCConfig(bits=8, calibration_headroom=headroom))
        m = AnalogMatrix.program(w, DYADIC, cfg, np.random.default_rng(4))
        m.calibrate_adc(calib, x_max=1.0)
        y = m.matmul(strong, x_max=1.0)
        errors[headroom] = float(np.max(np.abs(y - exact) / np.abs(exact)))
        assert y.shape == exact.shape
    assert errors[1.0] > 0.1          # saturated: outputs cut by the top code
    assert errors[2.5] < 0.02         # in range: quantisation error only
    assert errors[2.5] < errors[1.0] / 10


def test_headroom_one_is_the_default_and_invalid_values_are_refused(tmp_path):
    assert ADCConfig().calibration_headroom == 1.0
    assert load_hardware("default").xbar.adc.calibration_headroom == 1.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="calibration_headroom"):
            ADCConfig(calibration_headroom=bad)
    f = tmp_path / "hw.toml"
    f.write_text("[adc]\ncalibration_headroom = 1.5\n")
    assert load_hardware(f).xbar.adc.calibration_headroom == 1.5
