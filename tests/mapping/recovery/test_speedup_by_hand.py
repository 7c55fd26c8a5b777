"""The headline speedup, recomputed outside ``compare`` from per-cell counts.

``compare`` programs R-V-W through :func:`xbar.mapping.recovery.techniques.rvw.program_rvw` and
times it with the SimPy engine. Here the same chip's cells are run through the write-verify loop
directly (:func:`xbar.devices.write_verify.program_write_verify`, the chip's stuck cells
passed as such) and the default hardware's R-V-W time is summed by hand from the counts:
one array at a time, a write driver per bit line, rows one after another, each row as long
as its slowest cell (``pulses * t_pulse + reads * t_verify``); one-shot is one pulse per row
of every array. Only the adaptation term comes from the engine (its own closed-form tests
cover it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import load_hardware
from xbar.devices import preset
from xbar.devices.write_verify import program_write_verify
from xbar.mapping.chip import Chip
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.compare import CompareSettings, compare
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.techniques.rvw import rvw_params
from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.timing.adaptation import adaptation_time, sram_words_per_layer


def _array_seconds(pulses: np.ndarray, reads: np.ndarray, n_out: int, rows: int, cols: int,
                   t_p: float, t_v: float) -> float:
    """Sum over the differential layout's arrays of sum over rows of the slowest cell."""
    n_in = pulses.shape[0]
    cost = pulses * t_p + reads * t_v                       # (n_in, 2 n_out), seconds
    total = 0.0
    for half in (cost[:, :n_out], cost[:, n_out:]):        # G+ arrays, then G- arrays
        for c0 in range(0, n_out, cols):                    # column tiles
            for r0 in range(0, n_in, rows):                 # row tiles
                block = half[r0:r0 + rows, c0:c0 + cols]
                total += float(block.max(axis=1).sum())     # rows in turn, slowest cell
    return total


def test_speedup_equals_the_one_summed_by_hand_from_cell_counts() -> None:
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10)).eval()
    device = preset("charan2020-jxcdc")
    hw = load_hardware("full-chip")
    settings = CompareSettings(chips=1, seed=4, methods=("kd+rsa", "rvw"),
                               adapt=AdaptConfig(steps=3, batch_size=8), kd=KDConfig(epochs=1))
    res = compare(model, data, device, hw, settings)
    # the same chip, its cells through the loop by hand
    chip = Chip.program(model, device, hw.xbar, 4, input_shape=(1, 8, 8))
    loop = rvw_params(device)
    t_p = hw.programming.pulse_cycles(hw.timing) / (hw.timing.clock_ghz * 1e9)
    t_v = hw.programming.verify_cycles(hw.timing, hw.xbar) / (hw.timing.clock_ghz * 1e9)
    rows, cols = hw.xbar.array.rows, hw.xbar.array.cols
    t_rvw = t_one = 0.0
    pulses_all = stuck_pulses = offset = 0
    for layer in chip.layers:
        m = layer.matrix
        stuck_us = np.where(m.stuck == 1, device.g_min_us,
                            np.where(m.stuck == 2, device.g_max_us, np.nan))
        r = program_write_verify(loop, m.target_levels, seed=4, cell_offset=offset,
                                 stuck_us=np.clip(stuck_us, loop.g_min_us, loop.g_max_us))
        offset += m.target_levels.size
        # a stuck cell inside its window costs one read; outside, the loop's cap
        lo = np.asarray(loop.window_lo_us)[m.target_levels]
        hi = np.asarray(loop.window_hi_us)[m.target_levels]
        g_stuck = np.where(m.stuck == 1, device.g_min_us, device.g_max_us)
        inside = (g_stuck >= lo) & (g_stuck <= hi)
        stuck = m.stuck != 0
        assert np.all(r.pulses[stuck & inside] == 0)
        assert np.all(r.pulses[stuck & ~inside] == max(loop.max_pulses))
        t_rvw += _array_seconds(r.pulses, r.reads, m.n_out, rows, cols, t_p, t_v)
        t_one += _array_seconds(np.ones_like(r.pulses), np.zeros_like(r.reads), m.n_out, rows,
                                cols, t_p, t_v)
        pulses_all += int(r.pulses.sum())
        stuck_pulses += int(r.pulses[stuck].sum())
    specs = layer_specs(model, (1, 8, 8))
    rsa = res["methods"]["kd+rsa"]
    words = rsa["sram_words"]
    assert rsa["program_s"] == pytest.approx(t_one, rel=1e-9)
    t_adapt = rsa["adapt_s"]
    rvw = res["methods"]["rvw"]
    assert rvw["program_s"] == pytest.approx(t_rvw, rel=1e-9)
    assert rvw["pulses"] == pulses_all
    assert rvw["stuck_pulse_share"] == pytest.approx(stuck_pulses / pulses_all)
    assert res["speedup_rsa_vs_rvw"] == pytest.approx(t_rvw / (t_one + t_adapt), rel=1e-9)
    # the adaptation term: the engine's, for the words RSA kept (5 % of each layer)
    per_layer = sram_words_per_layer(specs, 0.05)
    assert words == sum(per_layer) > 0
    assert t_adapt == pytest.approx(adaptation_time(specs, hw, 3, 8, per_layer).total_s, rel=1e-9)
