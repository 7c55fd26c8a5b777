"""Cells rewritten, disturbed and refreshed through the array model (issue 21 item 4).

``AnalogMatrix.write`` (one pulse per cell), ``AnalogMatrix.write_verify`` (the write-verify
loop) and ``AnalogMatrix.disturb`` (read disturb) are the only ways recovery code changes a
programmed matrix's cells; ``AnalogLayer.refresh_weights`` brings the layer's straight-through
weights along. Each is checked against the device-level functions called directly on the
cells it should touch (computed here, not through the matrix), and the stuck-cell rule both
rewrites share: a written stuck cell takes its pulse and stays stuck; a skipped cell is not
pulsed and keeps its conductance and level.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xbar.analog import AnalogMatrix
from xbar.config import ArrayConfig, XbarConfig
from xbar.devices import preset
from xbar.devices.read_disturb import disturbed
from xbar.devices.write_verify import program_write_verify
from xbar.errors import ConfigError
from xbar.mapping.analog_layers import AnalogLinear
from xbar.mapping.recovery.techniques.rvw import rvw_params

XB = XbarConfig(array=ArrayConfig(rows=16, cols=16))


def _matrix(device_name: str = "charan2020-jxcdc", seed: int = 0) -> AnalogMatrix:
    w = np.random.default_rng(seed).normal(size=(6, 10))
    device = preset(device_name).replace(weight_mapping="")  # on XB's differential pairs
    return AnalogMatrix.program(w, device, XB, np.random.default_rng(seed + 1))


def _new_levels(m: AnalogMatrix, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, m.device.n_levels, size=m.target_levels.shape).astype(np.int32)


def test_one_shot_write_lands_by_the_device_and_keeps_stuck_cells_stuck() -> None:
    m = _matrix()
    assert (m.stuck == 1).any() and (m.stuck == 2).any()  # the JxCDC cell has both kinds
    levels = _new_levels(m)
    skip = np.zeros(levels.shape, bool)
    skip[::3] = True                                 # e.g. a fault map's known stuck cells
    g0, lv0 = m.g_us.copy(), m.target_levels.copy()
    written = (levels != lv0) & ~skip
    # the same draws, by the device directly on the written cells
    expect = m.device.write(levels[written], m.d2d[written] if m.d2d is not None else None,
                            m.stuck[written], np.random.default_rng(7))
    n = m.write(levels, np.random.default_rng(7), skip=skip)
    assert n == int(written.sum()) > 0
    assert np.array_equal(m.g_us[written], expect)
    assert np.array_equal(m.g_us[~written], g0[~written])         # skipped, unchanged: as were
    assert np.array_equal(m.target_levels[written], levels[written])
    assert np.array_equal(m.target_levels[~written], lv0[~written])
    assert np.all(m.g_us[m.stuck == 1] == m.device.g_min_us)      # written or not: stuck
    assert np.all(m.g_us[m.stuck == 2] == m.device.g_max_us)


def test_write_verify_is_the_loop_on_the_written_cells() -> None:
    m = _matrix()
    loop = rvw_params(m.device)
    levels = _new_levels(m, 3)
    skip = m.stuck != 0                                   # a controller that knows the map
    g0 = m.g_us.copy()
    written = (levels != m.target_levels) & ~skip
    r = program_write_verify(loop, levels[written], seed=11, cell_offset=5)
    pulses, reads = m.write_verify(levels, loop, 11, skip=skip, offset=5)
    dev = m.device
    assert np.array_equal(m.g_us[written],
                          np.clip(r.g_us, dev.g_min_us, dev.g_max_us).astype(np.float32))
    assert np.array_equal(m.g_us[~written], g0[~written])
    assert np.array_equal(pulses[written], r.pulses) and not pulses[~written].any()
    assert np.array_equal(reads[written], r.reads) and not reads[~written].any()
    assert np.array_equal(m.target_levels[written], levels[written])


def test_a_written_stuck_cell_goes_through_the_loop_stuck() -> None:
    m = _matrix(seed=4)
    loop = rvw_params(m.device)
    every = np.ones(m.target_levels.shape, bool)
    stuck_us = np.clip(np.where(m.stuck == 1, m.device.g_min_us,
                                np.where(m.stuck == 2, m.device.g_max_us, np.nan)),
                       loop.g_min_us, loop.g_max_us)
    r = program_write_verify(loop, m.target_levels, seed=2, stuck_us=stuck_us)
    pulses, _ = m.write_verify(m.target_levels, loop, 2, cells=every)
    assert np.array_equal(pulses, r.pulses.reshape(pulses.shape))
    # a stuck cell outside its target's window is pulsed to the loop's cap (one inside
    # verifies at once) ...
    assert pulses[m.stuck != 0].max() == pulses.max() > 0
    assert np.all(m.g_us[m.stuck == 1] == m.device.g_min_us)   # ... and stayed stuck
    assert np.all(m.g_us[m.stuck == 2] == m.device.g_max_us)


def test_disturb_and_refresh() -> None:
    m = _matrix("lv2024-mlc")
    layer = AnalogLinear(m, None, "fc")
    g0 = m.g_us.copy()
    m.disturb(10**6)
    assert np.array_equal(m.g_us, disturbed(m.device, g0, 10**6, m.stuck))
    assert not np.array_equal(m.g_us, g0)                      # the cell disturbs
    assert not torch.equal(layer.w_eff, torch.as_tensor(m.effective_weights(),
                                                        dtype=torch.float32))
    layer.refresh_weights()
    assert torch.equal(layer.w_eff, torch.as_tensor(m.effective_weights(),
                                                    dtype=torch.float32))
    quiet = _matrix("charan2020-jxcdc")
    assert quiet.device.read_disturb_rate == 0
    before = quiet.g_us.copy()
    quiet.disturb(10**6)
    assert np.array_equal(quiet.g_us, before)


def test_bad_masks_are_refused() -> None:
    m = _matrix()
    with pytest.raises(ConfigError, match="levels have shape"):
        m.write(np.zeros((2, 2), np.int32), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="cells have shape"):
        m.write(m.target_levels, np.random.default_rng(0), cells=np.ones((2, 2), bool))
