"""A chip's physical cells and the test pass that maps them (work 3: ITT-RNA, DATE 2017).

**The cells.** A chip's cells are a property of its seed: :meth:`xbar.mapping.chip.Chip.program`
draws, for mapped layer ``k``, the device-to-device standard normals and the uniforms
(stuck-at faults) of its ``n_in x n_phys`` cell matrix from stream ``k`` of
``SeedSequence([seed, 0])``, in an order that does not depend on the weights
(:meth:`xbar.devices.Device.draw`), then the cycle-to-cycle normals of that first write.
:func:`xbar.mapping.cells.chip_cells` draws the same numbers, so physical row ``r`` of layer ``k``
has the same stuck state and the same device-to-device draw whatever is programmed onto it; every
write
adds a fresh cycle-to-cycle draw (``Device.c2c_fraction`` of the variance,
:meth:`xbar.devices.Device.landed`). The DATE 2017 map presumes one constant theta per cell
(``w exp(theta)``): the test pass can know only the device-to-device part. Spare rows (the
unused word lines of a layer's last row tile, offered to fault-aware mapping) draw from
their own stream, ``SeedSequence([seed, 5])``.

**The test pass.** Before mapping, every cell (spare rows included) is written twice and
read twice: pattern 1 writes the middle level ``(n_levels - 1) // 2`` to every cell and reads
it, pattern 2 writes the lowest level and reads it. Each read selects one cell alone at
``V_read`` and digitises its current on the column's shared ADC at the single-cell full
scale (``g_max``: lsb = g_max / (2^bits - 1)), with the device's read noise. Then

* SA0 (our SA0: stuck at g_min, the high-resistance state): the pattern-1 read is at or
  below the code of g_min;
* SA1 (stuck at g_max, the low-resistance state): the pattern-2 read is at full scale;
* each healthy cell's deviation: the log-ratio of its pattern-1 read to the middle level,
  ``ln(read_1 / level_1)`` (``theta_read``), holds the cell's device-to-device deviation plus
  the test write's own cycle-to-cycle draw (and read noise and ADC steps); the map keeps
  ``theta = (1 - c2c_fraction) * theta_read``, the expected device-to-device part given the
  read (the best linear estimate for Gaussian parts in log space: exact in form for
  ``lognormal`` variation, a multiplicative approximation for the additive models). With
  ``c2c_fraction = 1`` the map knows nothing of the variation, only the stuck cells.

Time and energy come from the programming engine (:func:`xbar.timing.programming.
programming_time`): each cell costs two one-shot pulses and two reads, the reads timed as
verify reads through the shared ADC (``verify_read = "adc"``: an array read plus
``ceil(D / adcs)`` conversions, ``D`` the drivers working on the selected row), whatever the
programming section's own verify mode; energy from :func:`xbar.timing.energy.
programming_energy` with the same reads. Left out: march-test sequences beyond two
patterns, faults other than stuck-at (coupling, transition), and drift between test and use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xbar.config import HardwareConfig
from xbar.devices import Device
from xbar.layout import weight_layout
from xbar.timing.energy import programming_energy
from xbar.mapping.cells import LayerCellsDraw
from xbar.timing.programming import LayerCells, programming_time

__all__ = ["LayerMap", "FaultMap", "layer_shapes", "run_test_pass", "cost_of_test_pass"]

TEST_PULSES = 2
"""Writes per cell in the test pass (middle level, lowest level)."""
TEST_READS = 2
"""Reads per cell in the test pass."""


@dataclass(frozen=True)
class LayerMap:
    """What the test pass found in one layer's physical cells (rows, n_phys).

    Attributes:
        name: The layer's name.
        stuck: 0 healthy, 1 SA0 (g_min), 2 SA1 (g_max), as detected; int8.
        theta: Expected device-to-device log deviation of each healthy cell given its read
            (0 for stuck cells); float32 (module docstring).
        theta_read: The measured log ratio itself, ``ln(read_1 / level_1)``; float32.
    """

    name: str
    stuck: np.ndarray
    theta: np.ndarray
    theta_read: np.ndarray | None = None


@dataclass(frozen=True)
class FaultMap:
    """The chip's map, one :class:`LayerMap` per mapped layer, and what the test cost.

    Attributes:
        layers: Per layer, physical row order.
        test_s: Time of the test pass (s), from the programming engine.
        test_pj: Its energy (pJ).
        cells: Cells tested.
    """

    layers: list[LayerMap]
    test_s: float
    test_pj: float
    cells: int


def cost_of_test_pass(cells: list[LayerCellsDraw], hw: HardwareConfig) -> tuple[float, float]:
    """(seconds, pJ) of the test pass over ``cells``: two pulses and two ADC reads per cell,
    through the programming engine (module docstring)."""
    prog = hw.programming.replace(verify_read="adc")
    layout = weight_layout(hw.array)
    counts = []
    for c in cells:
        shape = (c.rows, layout.physical_columns(c.n_out))
        counts.append(LayerCells(c.name, c.rows, c.n_out, np.full(shape, TEST_PULSES, np.int64),
                                 np.full(shape, TEST_READS, np.int64)))
    tester = hw.replace(programming=prog)
    result = programming_time(counts, tester, method="test")
    energy = programming_energy(counts, tester)
    return result.total_s, energy.total_pj


def _read(g: np.ndarray, device: Device, bits: int, rng: np.random.Generator) -> np.ndarray:
    """ADC codes of single-cell reads of ``g`` (full scale g_max), with read noise."""
    if device.read_noise > 0:
        g = g * (1 + device.read_noise * rng.standard_normal(g.shape))
    top = (1 << bits) - 1
    return np.clip(np.rint(g * top / device.g_max_us), 0, top)


def run_test_pass(cells: list[LayerCellsDraw], device: Device, hw: HardwareConfig,
              seed: int) -> FaultMap:
    """Run the test pass over a chip's physical cells (module docstring); the reads' noise
    and the test writes' cycle-to-cycle draws come from ``SeedSequence([seed, 6])``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 6]))
    bits = hw.adc.bits
    top = (1 << bits) - 1
    lsb = device.g_max_us / top
    mid = (device.n_levels - 1) // 2
    g_mid = float(device.levels[mid])
    floor_code = np.rint(device.g_min_us / lsb)
    layers = []
    n_cells = 0
    for c in cells:
        shape = (c.rows, weight_layout(hw.array).physical_columns(c.n_out))
        n_cells += shape[0] * shape[1]
        g1 = c.write(device, np.full(shape, mid, np.int32), rng)
        g2 = c.write(device, np.zeros(shape, np.int32), rng)
        r1, r2 = _read(g1, device, bits, rng), _read(g2, device, bits, rng)
        stuck = np.zeros(shape, np.int8)
        stuck[r1 <= floor_code] = 1
        stuck[(r2 >= top) & (stuck == 0)] = 2
        theta_read = np.log(np.maximum(r1, 0.5) * lsb / g_mid).astype(np.float32)
        theta_read[stuck != 0] = 0.0
        known = np.float32(1.0 - device.c2c_fraction) if device.has_c2c() else np.float32(1)
        layers.append(LayerMap(c.name, stuck, theta_read * known, theta_read))
    test_s, test_pj = cost_of_test_pass(cells, hw)
    return FaultMap(layers, test_s, test_pj, n_cells)


def layer_shapes(chip: Any) -> list[tuple[str, int, int]]:
    """(name, n_in, n_out) of every analog layer of a programmed chip, in mapping order."""
    return [(layer.layer_name, layer.matrix.n_in, layer.matrix.n_out) for layer in chip.layers]
