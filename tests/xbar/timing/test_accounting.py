"""The two R-V-W accountings: ``full-chip`` (the default) and the papers' ``cell-by-cell``
(one cell at a time per array, verify through the column's shared ADC), against closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xbar.config import ProgrammingConfig, load_hardware
from xbar.errors import ConfigError
from xbar.timing.programming import LayerCells, programming_time


def test_full_chip_is_the_default() -> None:
    assert load_hardware("full-chip") == load_hardware("default") == load_hardware(None)


@pytest.mark.parametrize("drivers", [1, 8, 16, 17, 128])
def test_adc_verify_closed_form(drivers: int) -> None:
    hw = load_hardware("default")
    prog = ProgrammingConfig(verify_read="adc", drivers_per_array=drivers)
    adcs = math.ceil(hw.xbar.array.cols / hw.xbar.adc.cols_per_adc)  # 16
    t_read = hw.timing.read_cycles()  # 10 ns at 1 GHz
    t_conv = hw.timing.adc_cycles(hw.xbar.adc.bits)  # (8 + 2) / 1 GS/s = 10 cycles
    assert prog.verify_cycles(hw.timing, hw.xbar) == \
        t_read + math.ceil(drivers / adcs) * t_conv
    with pytest.raises(ConfigError, match="needs the array and ADC"):
        prog.verify_cycles(hw.timing)


def test_cell_by_cell_programs_one_cell_at_a_time_per_array() -> None:
    hw = load_hardware("cell-by-cell")
    assert hw.programming.drivers_per_array == 1 and hw.programming.arrays_at_once == 0
    rng = np.random.default_rng(0)
    n_in, n_out = 200, 5  # two row tiles, one column tile: 2 x 2 arrays (a pair per tile)
    pulses = rng.integers(1, 40, size=(n_in, 2 * n_out))
    cells = LayerCells("fc", n_in, n_out, pulses, pulses + 1)
    res = programming_time([cells], hw)
    t_p = hw.programming.pulse_cycles(hw.timing)
    t_v = hw.programming.verify_cycles(hw.timing, hw.xbar)
    per_cell = pulses * t_p + (pulses + 1) * t_v
    rows = hw.xbar.array.rows
    # One driver: an array's cells one after another; every array at once: the slowest.
    arrays = [per_cell[r0:r0 + rows, half * n_out:(half + 1) * n_out].sum()
              for r0 in range(0, n_in, rows) for half in (0, 1)]
    assert res.total_cycles == max(arrays)

    # On a wide layer the full-chip accounting (a driver on every bit line, one array at a
    # time) is faster; on this narrow one (5 of 128 bit lines) the four arrays at once of
    # cell-by-cell win: the accounting, not the device, sets the speedup.
    wide = LayerCells("fc", n_in, 100, rng.integers(1, 40, size=(n_in, 200)),
                      rng.integers(1, 40, size=(n_in, 200)))
    full = load_hardware("full-chip")
    t_full = programming_time([wide], full).total_cycles
    t_cbc = programming_time([wide], hw).total_cycles
    assert t_full < t_cbc
    narrow_full = programming_time([cells], full)
    assert narrow_full.total_cycles > res.total_cycles
