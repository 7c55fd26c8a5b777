"""Read disturb: every read pulse nudges a cell's conductance toward a fixed state.

A read applies a small voltage of one polarity across the cell; over many reads it acts as a
very weak SET (or RESET) and the filament drifts toward the low- (or high-) resistance state.
The model is generic and parametrised by two :class:`~xbar.devices.Device` fields:

* ``read_disturb_rate`` r: the fraction of its remaining distance to the target a healthy
  cell moves on each read pulse;
* ``read_disturb_toward``: the target G_*, ``"g_max"`` (reads of SET polarity, the common
  case for 1T1R arrays read on the bit line) or ``"g_min"``.

So after n read pulses a cell programmed to G_0 holds

    G_n = G_* + (G_0 - G_*) (1 - r)^n          (r = 0: G_n = G_0 exactly)

a first-order relaxation: the change per read is proportional to the distance left, the
conductance never leaves [g_min_us, g_max_us] and n reads in one go equal n reads one by
one. Stuck cells (stuck-at faults) do not move. Re-programming a cell resets its history.

Source and scale: the form is a generic first-order model (no published fit is used); its
scale is anchored by the measurement of Yao et al., "Fully hardware-implemented memristor
convolutional neural network", Nature 577, 2020 (doi 10.1038/s41586-020-1942-4), Extended
Data Fig. 7: 10^6 read pulses at 0.2 V on 936 programmed TaOx/HfOx weight cells left the
eight conductance states inside their programming spread, i.e. r << 1e-7 at that read
voltage; Yaldagard et al. (IEEE TCAS-I 2026, doi 10.1109/TCSI.2026.3675336) measure
read-disturb drift large enough at higher read voltages to need reprogramming after a
number of reads. A rate is therefore a device's (and read voltage's) parameter, off by
default; the work 5 preset (``lv2024-mlc``) documents the rate it uses.

What the model leaves out: the dependence of the rate on the read voltage and on the
conductance (one r for every level), cell-to-cell spread of the rate, recovery between
reads, and that a read slice whose input bit is 0 applies no voltage (every slice is counted
as a read pulse: an upper bound, see :func:`read_pulses_per_inference`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xbar.devices.cell import Device
from xbar.errors import ConfigError

__all__ = ["disturbed", "read_pulses_per_inference", "remaining_fraction"]


def remaining_fraction(device: Device, n_reads: Any) -> np.ndarray:
    """(1 - r)^n: the fraction of a cell's distance to the target left after ``n_reads``
    read pulses (float64; ``n_reads`` a count >= 0 or an array of them)."""
    n = np.asarray(n_reads, dtype=np.float64)
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ConfigError(f"n_reads = {n_reads!r} is invalid; allowed: read-pulse counts >= 0")
    r = device.read_disturb_rate
    if r == 0.0:
        return np.ones_like(n)
    if r == 1.0:
        return np.where(n > 0, 0.0, 1.0)
    return np.exp(n * np.log1p(-r))   # exact for large n, no underflow surprises


def disturbed(device: Device, g_us: np.ndarray, n_reads: Any,
              stuck: np.ndarray | None = None) -> np.ndarray:
    """Conductances (uS) after ``n_reads`` read pulses: a NEW float32 array (the input is
    never modified), ``G_* + (G_0 - G_*) (1 - r)^n`` for healthy cells, stuck cells as they
    are. With ``read_disturb_rate = 0`` the result is bit-identical to ``g_us``.

    Args:
        device: The cell technology (its ``read_disturb_rate`` and ``read_disturb_toward``).
        g_us: Conductances, any shape.
        n_reads: Read pulses each cell has seen since it was last programmed: a count, or an
            array broadcastable to ``g_us`` (e.g. one count per row).
        stuck: The stuck map (0 healthy, 1 SA0, 2 SA1) of the cells, or None (all healthy).
    """
    g = np.asarray(g_us, dtype=np.float32)
    left = remaining_fraction(device, n_reads)
    if device.read_disturb_rate == 0.0:
        return g.copy()
    target = device.g_max_us if device.read_disturb_toward == "g_max" else device.g_min_us
    new = (target + (g.astype(np.float64) - target) * left).astype(np.float32)
    new = np.clip(new, np.float32(device.g_min_us), np.float32(device.g_max_us))
    if stuck is not None:
        s = np.asarray(stuck)
        if s.shape != g.shape:
            raise ConfigError(f"stuck has shape {s.shape} but g_us has {g.shape}; allowed: "
                              "one stuck code per cell")
        new = np.where(s != 0, g, new)
    return new


def read_pulses_per_inference(positions: int, slices: int) -> int:
    """Read pulses every cell of a layer sees per inference: one per input slice (DAC bit
    slice, both signs counted) of every input vector (output position) the layer computes,
    ``positions * slices`` (:func:`xbar.timing.closed_form.slices_per_mvm` gives ``slices``).
    Every row of the layer's arrays is driven for every vector, so every cell counts them
    all; a slice whose bit is 0 drives 0 V, so this is an upper bound."""
    for name, value in (("positions", positions), ("slices", slices)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} = {value!r} is invalid; allowed: an integer >= 1")
    return int(positions) * int(slices)
