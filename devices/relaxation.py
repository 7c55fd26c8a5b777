"""Conductance relaxation: how a written cell's conductance moves with the time since its write.

Model (the form and figures of IBM aihwkit's CMO/HfOx ReRAM model,
``aihwkit.inference.noise.reram.ReRamCMONoiseModel.apply_drift_noise_to_conductance``, fitted
by IBM Research Zurich to CMO/HfOx devices: Falcone et al., cited there as in review; the
statistical model is described in aihwkit's docs, "Inference with Analog CMO-ReRAM
Statistical Model"). A healthy cell written to G_0 holds, at age a seconds after that write,

    L(a)  = ln(max(a, t0) / t0)                           (a > 0; dimensionless)
    G(a)  = clip(G_0 + mu * L(a) + z * (s1 * L(a) + s0),  g_min, g_max)
    G(0)  = G_0 exactly

with ``mu`` = ``Device.relax_mean_us_per_ln_t`` (uS per unit of ln t; aihwkit's fit
-0.08900206), ``s1`` = ``relax_std_us_per_ln_t`` (uS; 0.04201137), ``s0`` = ``relax_std0_us``
(uS; 0.41183342) and ``t0`` = ``relax_t0_s`` (s; aihwkit's ln t is of t in seconds, t0 = 1 s).
So over cells the deviation at age a has mean ``mu L`` and standard deviation ``s1 L + s0``
(before the clip), the same for every level: aihwkit's fit found the decay independent of
the target conductance ("Conductance relaxation is independent of the conductance level"),
so no per-level figures exist to use. The clip at [g_min_us, g_max_us] is the one programming
applies (:meth:`xbar.devices.Device.landed`, docs/variation.md): near either bound the cells'
mean moves inward and their spread shrinks.

How ages are correlated (one trajectory per cell): ``z`` is one standard normal per cell per
write event, fixed from that write until the next one. A cell's deviation is then linear in
L(a), so monotone in time, and the trajectory is consistent: one chip aged to 1 s, 1e4 s and
1e8 s is the same cells further along, each cell's z-score the same at every age. aihwkit
instead draws a fresh normal at every inference time (ages independent of each other); the
two agree at any single age, in distribution. z is the counter-based draw number ``w`` of the
cell's stream (:mod:`xbar.rng`): the stream is keyed by the matrix's key (the chip's seed
and the layer: :meth:`xbar.mapping.chip.Chip.age_to`) and the cell's position, ``w`` is
the cell's write count (0 for the one-shot programming, +1 at every rewrite). So it is
reproducible by seed, independent of the order cells are written in, and a rewrite draws
afresh and restarts the cell's clock (its age counts from the rewrite).

Stuck cells (stuck-at faults) do not move. Time 0 (and a device with all four fields 0)
leaves every cell bit for bit as written.

What the model leaves out: the read-noise term of aihwkit's model (1/f noise growing with
the read time; the device's ``read_noise`` is this simulator's read noise), temperature
(retention bakes accelerate relaxation), any dependence on the level or on the write
history beyond the last write, ages below t0 (treated as t0: aihwkit's ln t would shrink the
spread below s0 for t < 1 s), correlation between a cell's relaxation and its programming
draws, and read disturb's interaction with the same clock (:mod:`xbar.devices.read_disturb`
counts reads, not time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from xbar.errors import ConfigError
from xbar.rng import cell_key, normal_draw

__all__ = ["CellClock", "log_age", "relax_moments", "relaxed", "relaxation_key",
           "relaxation_normals"]


def _check_ages(age_s: Any) -> np.ndarray:
    a = np.asarray(age_s, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ConfigError(f"age = {age_s!r} s is invalid; allowed: finite ages >= 0 s")
    return a


def log_age(device: Any, age_s: Any) -> np.ndarray:
    """L(a) = ln(max(a, t0) / t0) (float64, 0 where the device does not relax)."""
    a = _check_ages(age_s)
    if not device.has_relaxation():
        return np.zeros_like(a)
    t0 = device.relax_t0_s
    return np.log(np.maximum(a, t0) / t0)


def relax_moments(device: Any, age_s: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mean shift and the standard deviation (uS, before the clip) of a healthy cell's
    deviation from its written conductance at age ``age_s`` (s): ``mu L`` and ``s1 L + s0``
    for a > 0, (0, 0) at a = 0."""
    a = _check_ages(age_s)
    L = log_age(device, a)
    on = (a > 0) & device.has_relaxation()
    mean = np.where(on, device.relax_mean_us_per_ln_t * L, 0.0)
    std = np.where(on, device.relax_std_us_per_ln_t * L + device.relax_std0_us, 0.0)
    return mean, std


def relaxed(device: Any, g_written: np.ndarray, age_s: Any, z: np.ndarray,
            stuck: np.ndarray | None = None) -> np.ndarray:
    """Conductances (uS, a NEW float32 array) of cells written to ``g_written`` after
    ``age_s`` seconds (a number or one age per cell), with relaxation normals ``z`` (one per
    cell, :func:`relaxation_normals`); stuck cells (``stuck`` != 0) and age-0 cells exactly
    as written. Bit-identical to ``g_written`` for a device without relaxation."""
    g = np.asarray(g_written, dtype=np.float32)
    if not device.has_relaxation():
        return g.copy()
    a = np.broadcast_to(_check_ages(age_s), g.shape)
    mean, std = relax_moments(device, a)
    new = g.astype(np.float64) + mean + np.asarray(z, dtype=np.float64) * std
    new = np.clip(new, device.g_min_us, device.g_max_us).astype(np.float32)
    keep = a == 0
    if stuck is not None:
        keep = keep | (np.asarray(stuck) != 0)
    return np.where(keep, g, new)


def relaxation_key(seed: int, layer: int) -> int:
    """The 64-bit key of a chip layer's relaxation draws: from ``SeedSequence([seed, 24,
    layer])`` (a stream no other draw of the chip uses)."""
    return int(np.random.SeedSequence([int(seed), 24, int(layer)]).generate_state(
        1, np.uint64)[0])


@njit(cache=True)
def _normals(key: np.uint64, writes: np.ndarray) -> np.ndarray:
    out = np.empty(writes.size, np.float32)
    for i in range(writes.size):
        out[i] = normal_draw(cell_key(key, np.uint64(i)), np.uint64(writes[i]))
    return out


def relaxation_normals(key: int, writes: np.ndarray) -> np.ndarray:
    """z of every cell (float32, ``writes``' shape): draw number ``writes[i]`` (the cell's
    write count) of cell ``i``'s stream under ``key`` (cells numbered in C order)."""
    w = np.ascontiguousarray(writes, dtype=np.uint32)
    return _normals(np.uint64(key), w.reshape(-1)).reshape(w.shape)


@dataclass
class CellClock:
    """One matrix's cells in time: what each cell was written to, when, and how often.

    Attributes:
        key: The matrix's relaxation key (:func:`relaxation_key`).
        g_written: Each cell's conductance as its last write left it, float32 (uS).
        written_s: When each cell was last written, float64 (s on the chip's clock: 0 = the
            one-shot programming).
        writes: Each cell's write events after the first, uint32 (the counter of its z).
        now_s: The chip's clock (s) the matrix's ``g_us`` shows.
        shown: The conductances last handed out (the matrix's ``g_us`` at ``now_s``): a
            matrix whose ``g_us`` is no longer this object was written behind the clock's
            back (a direct assignment), see :meth:`sync`.
    """

    key: int
    g_written: np.ndarray
    written_s: np.ndarray
    writes: np.ndarray
    now_s: float = 0.0
    shown: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def start(cls, g_us: np.ndarray, key: int, now_s: float = 0.0) -> "CellClock":
        """A clock for cells just written to ``g_us`` at ``now_s``."""
        g = np.asarray(g_us, dtype=np.float32)
        return cls(int(key), g, np.full(g.shape, float(now_s)), np.zeros(g.shape, np.uint32),
                   float(now_s), g_us)

    def sync(self, g_us: np.ndarray) -> None:
        """Cells whose conductance differs from what the clock last showed were rewritten at
        ``now_s`` (by code that assigns ``g_us`` directly, such as R-V-W re-programming):
        their written value, write time and write count are updated."""
        if g_us is self.shown:
            return
        changed = np.asarray(g_us) != self.shown
        if changed.any():
            self.rewrite(changed, np.asarray(g_us)[changed])

    def rewrite(self, mask: np.ndarray, g_new: np.ndarray) -> None:
        """Cells ``mask`` written now to ``g_new``: their clocks restart, their z is drawn
        afresh (write count + 1)."""
        self.g_written = self.g_written.copy()
        self.g_written[mask] = g_new
        self.written_s = np.where(mask, self.now_s, self.written_s)
        self.writes = self.writes + mask.astype(np.uint32)

    def at(self, device: Any, t_s: float, stuck: np.ndarray | None) -> np.ndarray:
        """Move the clock to ``t_s`` (s, not before the latest write) and return the cells
        then (a new array, remembered as :attr:`shown`)."""
        t = float(t_s)
        if not math.isfinite(t) or t < 0:
            raise ConfigError(f"age = {t_s!r} s is invalid; allowed: a finite time >= 0 s")
        last = float(self.written_s.max()) if self.written_s.size else 0.0
        if t < last:
            raise ConfigError(f"time {t:g} s is before the latest write of these cells "
                              f"({last:g} s); allowed: >= {last:g} s")
        self.now_s = t
        z = relaxation_normals(self.key, self.writes)
        self.shown = relaxed(device, self.g_written, t - self.written_s, z, stuck)
        return self.shown
