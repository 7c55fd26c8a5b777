"""KD's training noise is the chip's one-shot programming, in distribution.

For every device preset (read from the registry), a few devices covering the variation
models no preset uses, and both weight mappings: the effective weights of many
:class:`xbar.mapping.recovery.techniques.kd.DeviceNoise` draws and of many programmed
:class:`xbar.analog.AnalogMatrix` instances of the same weights agree per weight (mean,
and the pooled error distribution by a two-sample KS statistic) and in how the errors of
weights sharing an array correlate (offset: through the shared reference column;
differential: not at all). Seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xbar.devices.programming import write_rng
from scipy.stats import ks_2samp
from torch import nn
from torch.nn.utils import parametrize

from xbar.analog import AnalogMatrix
from xbar.config import ArrayConfig, XbarConfig
from xbar.devices import Device
from xbar.devices.presets import PRESETS
from xbar.errors import ConfigError
from xbar.layout import weight_layout
from xbar.mapping.recovery.techniques.kd import DeviceNoise

DRAWS = 600
N_OUT, N_IN = 8, 12
# Variation models (and sigma references) that no preset exercises.
EXTRA = {
    "lognormal": Device(name="lognormal", g_min_us=1.0, g_max_us=100.0, n_levels=8,
                        variation="lognormal", sigma=0.3, sa0_rate=0.02, sa1_rate=0.01),
    "gaussian-range": Device(name="gaussian-range", g_min_us=2.0, g_max_us=50.0, n_levels=5,
                             variation="gaussian", sigma=0.05, sigma_reference="range"),
    "polynomial": Device(name="polynomial", g_min_us=1.0, g_max_us=40.0, n_levels=6,
                         variation="polynomial", sigma_poly_us=(0.5, 0.1, 0.02),
                         poly_g_ref_us=10.0),
}
DEVICES = {**{name: make for name, make in PRESETS.items()},
           **{name: (lambda d=d: d) for name, d in EXTRA.items()}}
MAPPINGS = ("differential", "offset")


def _weights() -> np.ndarray:
    """Fixed weights with a different scale per output column (float32-exact)."""
    w = np.random.default_rng(0).uniform(-1, 1, (N_OUT, N_IN))
    w *= np.linspace(0.3, 1.0, N_OUT)[:, None]
    w[2, 3] = 0.0
    return w.astype(np.float32).astype(np.float64)


def _config(mapping: str) -> XbarConfig:
    # 5 columns per array: offset holds 4 weight columns and the reference, so the 8
    # outputs span two arrays (differential: two array pairs); 8 rows make two row tiles.
    return XbarConfig(array=ArrayConfig(rows=8, cols=5, weight_mapping=mapping))


def _draws(device: Device, config: XbarConfig, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chip = np.stack([AnalogMatrix.program(w, device, config, np.random.default_rng(s))
                     .effective_weights() for s in range(DRAWS)])
    noise = DeviceNoise(device, config.array, torch.Generator().manual_seed(2024))
    wt = torch.tensor(w, dtype=torch.float32)
    with torch.no_grad():
        kd = np.stack([noise(wt).numpy().astype(np.float64) for _ in range(DRAWS)])
    return chip, kd


def _errors(eff: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weight errors in units of each column's largest weight, on a 1e-5 grid (KD returns
    float32 weights: the grid keeps float rounding from splitting the fault's point masses)."""
    return np.round((eff - w) / np.abs(w).max(axis=1, keepdims=True), 5)


def _same_array_correlation(err: np.ndarray, device: Device, config: XbarConfig) -> float:
    """Mean correlation, over draws, of the errors of two weights in one row whose cells sit
    in the same array (pairs of weights that can share a reference cell)."""
    cm = weight_layout(config.array).columns(N_OUT)
    array = cm.array[cm.pos_cols]
    std = err.std(axis=0)
    z = np.divide(err - err.mean(axis=0), std, out=np.zeros_like(err), where=std > 0)
    values = []
    for j in range(N_OUT):
        for k in range(j + 1, N_OUT):
            if array[j] == array[k]:
                both = (std[j] > 0) & (std[k] > 0)                    # rows where defined
                values.append((z[:, j, both] * z[:, k, both]).mean(axis=0))
    return float(np.mean(np.concatenate(values)))


@pytest.mark.parametrize("mapping", MAPPINGS)
@pytest.mark.parametrize("name", list(DEVICES))
def test_kd_noise_is_the_chips_programming_in_distribution(name: str, mapping: str) -> None:
    device = DEVICES[name]()
    config = _config(mapping)
    w = _weights()
    if device.weight_mapping not in ("", mapping):  # the preset's source fixes the other one
        for build in (lambda: AnalogMatrix.program(w, device, config, np.random.default_rng(0)),
                      lambda: DeviceNoise(device, config.array, torch.Generator())):
            with pytest.raises(ConfigError, match=f"fixes weight_mapping = "
                                                  f"'{device.weight_mapping}'"):
                build()
        device = device.replace(weight_mapping="")  # the same cell, freed: still compared
    if mapping == "offset" and device.n_levels < 3:
        with pytest.raises(ConfigError, match="offset weight mapping needs"):
            AnalogMatrix.program(w, device, config, np.random.default_rng(0))
        with pytest.raises(ConfigError, match="offset weight mapping needs"):
            DeviceNoise(device, config.array, torch.Generator())
        return
    chip, kd = _draws(device, config, w)
    if np.ptp(chip, axis=0).max() == 0:            # nothing random: the quantised weights
        assert np.ptp(kd, axis=0).max() == 0
        np.testing.assert_allclose(kd[0], chip[0], rtol=0, atol=1e-6)
        return
    e_chip, e_kd = _errors(chip, w), _errors(kd, w)
    # Per weight: the same mean error (within 5 standard errors).
    se = np.sqrt((e_chip.var(axis=0) + e_kd.var(axis=0)) / DRAWS)
    diff = np.abs(e_chip.mean(axis=0) - e_kd.mean(axis=0))
    assert np.all(diff <= 5 * se + 1e-5), (diff / np.maximum(se, 1e-12)).max()
    # The error distribution, pooled over weights: two chips of other seeds give KS
    # statistics up to about 0.01 here; the old noise model (table devices around the
    # nominal levels) gave 0.033-0.036.
    assert ks_2samp(e_chip.ravel(), e_kd.ravel()).statistic < 0.015
    # Errors along an array's reference column: shared on the chip, so shared in KD.
    r_chip = _same_array_correlation(e_chip, device, config)
    r_kd = _same_array_correlation(e_kd, device, config)
    assert abs(r_chip - r_kd) < 0.05, (r_chip, r_kd)
    if mapping == "offset":
        assert r_chip > 0.1, r_chip   # the shared reference cell's error
    else:
        assert abs(r_chip) < 0.05 and abs(r_kd) < 0.05, (r_chip, r_kd)


@pytest.mark.parametrize("name", list(DEVICES))
def test_numpy_and_torch_programming_share_one_formula(name: str) -> None:
    """Given the same draws, the chip's (NumPy) and KD's (torch) cells are the same."""
    device = DEVICES[name]()
    levels = np.random.default_rng(1).integers(0, device.n_levels, (40, 30)).astype(np.int32)
    rng = np.random.default_rng(2)
    eps, u = device.draw(levels.shape, rng)
    # the write's cycle-to-cycle part: keyed by the chip's stream and the levels written
    c2c = device.draw_c2c(levels.shape, write_rng(int(rng.integers(0, 2**63)), levels)) \
        if device.has_c2c() else None
    assert (c2c is None) == (device.c2c_fraction == 0 or eps is None)
    g_np, sa0_np, sa1_np = device.conductances(levels, eps, u, c2c)
    as_t = (lambda a: None if a is None else torch.from_numpy(a))
    g_t, sa0_t, sa1_t = device.conductances(torch.from_numpy(levels).long(), as_t(eps), as_t(u),
                                            as_t(c2c))
    assert g_t.dtype == torch.float32 and g_np.dtype == np.float32
    np.testing.assert_allclose(g_t.numpy(), g_np, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(sa0_t.numpy(), sa0_np)
    np.testing.assert_array_equal(sa1_t.numpy(), sa1_np)
    # and program_cells is that formula on the generator's draws
    g, stuck = device.program_cells(levels, np.random.default_rng(2))
    np.testing.assert_array_equal(g, g_np)
    np.testing.assert_array_equal(stuck, sa0_np.astype(np.int8) + 2 * sa1_np.astype(np.int8))
    g_t, stuck_t = device.program_cells(torch.from_numpy(levels), torch.Generator())
    assert g_t.shape == levels.shape and stuck_t.dtype == torch.int8
    assert float(g_t.min()) >= np.float32(device.g_min_us)     # clipped, in float32
    assert float(g_t.max()) <= np.float32(device.g_max_us)


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_kd_noise_on_a_conv_layer_places_cells_as_the_chip(mapping: str) -> None:
    """A 4-D conv weight is flattened as the chip flattens it (out x in*kh*kw); with no
    randomness KD's weights are the chip's quantised weights, arrays and references alike."""
    device = Device(name="q", g_min_us=1.0, g_max_us=100.0, n_levels=7)
    conv = nn.Conv2d(3, 6, 3)
    config = XbarConfig(array=ArrayConfig(rows=10, cols=4, weight_mapping=mapping))
    w = conv.weight.detach().double().numpy().reshape(6, -1)
    chip = AnalogMatrix.program(w, device, config, np.random.default_rng(0))
    parametrize.register_parametrization(conv, "weight", DeviceNoise(device, config.array,
                                                                      torch.Generator()))
    np.testing.assert_allclose(conv.weight.detach().double().numpy().reshape(6, -1),
                               chip.quantised_weights(), rtol=0, atol=1e-6)


def test_kd_noise_refuses_what_the_chip_refuses() -> None:
    with pytest.raises(ConfigError, match="scale = 'row' is invalid"):
        DeviceNoise(PRESETS["ideal"](), "differential", torch.Generator(), scale="row")(
            torch.ones(2, 3))
    with pytest.raises(ConfigError, match="rng must be a numpy.random.Generator or a "
                                          "torch.Generator; got int"):
        PRESETS["charan2020-jxcdc"]().program_cells(np.zeros(3, np.int32), 7)
