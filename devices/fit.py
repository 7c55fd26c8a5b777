"""The write-verify model fitted to measured RADAR data (:mod:`xbar.devices.radar`).

The fit (:func:`fit_radar`) treats every level on its own (each cell was programmed to each
level in a separate run) and fits four parameters per level (step_fraction, step_sigma,
cell_sigma, stuck_fraction): a coarse grid, then Nelder-Mead from its two best points, on a
loss that puts the simulated mean, median and 90th percentile of the pulse count (relative
error) and the success rate (in units of its sampling error) on one scale, with common random
numbers (a fixed seed). Windows, pulse caps, targets, the stuck conductance and the start
conductance are read off the data, not fitted (:func:`base_params`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xbar.devices.cell import Device
from xbar.devices.radar import (OPEN_HIGH_OHM, LevelStats, RadarData, RadarLevel,
                                conductance_us, level_stats, measured_levels, read_radar)
from xbar.devices.write_verify import WriteVerifyParams, program_write_verify
from xbar.errors import ConfigError, FileFormatError

#: Relative standard deviation of a verify read assumed by the fit (not identifiable from
#: the data, which records only verify reads): a quarter of the narrowest window's half
#: width in the 3-bit file (0.4 %), so that the verify can resolve the windows it uses.
FIT_READ_NOISE = 0.001

FITTED = ("step_fraction", "step_sigma", "cell_sigma", "stuck_fraction")
#: Upper bounds of the fitted parameters (the lower bounds are 0); the optimiser works on
#: logits of value / bound, so every trial point is valid.
_FIT_BOUNDS = (10.0, 5.0, 5.0, 1.0)
#: Coarse grid (step_fraction x step_sigma x cell_sigma) searched before Nelder-Mead.
_GRID = (np.geomspace(0.05, 6.0, 7), (0.1, 0.5, 1.0, 1.6, 2.4), (0.05, 0.6, 1.2, 2.0))
#: Nelder-Mead: first simplex edge (logit units) and evaluation budget per level.
_SIMPLEX_STEP = 0.7
_MAX_NM_EVALUATIONS = 160
#: Nelder-Mead runs per level, from the best grid points.
_STARTS = 2
#: Cells per level in the simulation reported beside the measurement (not fitted to).
N_REPORT_CELLS = 20_000
#: Relative tolerance each pulse statistic is scaled by in the loss (5 %).
_PULSE_TOL = 0.05
#: Measured cells a level needs for a fit: its 90th percentile of pulses, success rate and
#: conductance spread mean nothing below this (the RADAR files hold thousands per level).
MIN_FIT_CELLS = 10


@dataclass(frozen=True)
class FitLevel:
    """The outcome of fitting one level.

    Attributes:
        loss: Final loss (sum of squared errors in tolerance units; 0 is a perfect fit).
        evaluations: Simulations run for this level.
    """

    loss: float
    evaluations: int


@dataclass
class RadarFit:
    """A device and write-verify parameters fitted to a RADAR file, with the comparison.

    Attributes:
        path: The data file.
        device: The fitted device (levels from the windows, variation="table" of the measured
            final conductances).
        write_verify: The fitted write-verify parameters.
        levels: Measured levels in the data's order (L0 = lowest resistance).
        simulated: Simulated statistics, aligned with ``levels`` (a fresh seed,
            :data:`N_REPORT_CELLS` cells per level).
        fit_levels: Loss and evaluations per level, aligned with ``levels``.
        seed: The fit's seed.
        n_fit_cells: Cells simulated per level and evaluation during the fit.
        seconds: Wall time of the fit.
    """

    path: str
    device: Device
    write_verify: WriteVerifyParams
    levels: list[RadarLevel]
    simulated: list[LevelStats]
    fit_levels: list[FitLevel]
    seed: int
    n_fit_cells: int
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The comparison as plain JSON types (open bounds as null)."""

        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        def stats(s: LevelStats) -> dict[str, float | None]:
            return {k: finite(v) for k, v in s.to_dict().items()}

        rows = []
        for lvl, sim, fit in zip(self.levels, self.simulated, self.fit_levels):
            rows.append({"name": lvl.name, "device_level": lvl.device_level,
                         "r_lo_ohm": lvl.r_lo_ohm, "r_hi_ohm": lvl.r_hi_ohm,
                         "g_lo_us": lvl.g_lo_us, "g_hi_us": finite(lvl.g_hi_us),
                         "measured": stats(lvl.measured), "simulated": stats(sim),
                         "fit_loss": fit.loss})
        wv = {k: ([finite(x) for x in v] if isinstance(v, list) else v)
              for k, v in self.write_verify.to_dict().items()}
        return {"data": self.path, "format": "radar", "seed": self.seed,
                "n_fit_cells": self.n_fit_cells, "fit_seconds": self.seconds,
                "levels": rows, "device": self.device.to_dict(), "write_verify": wv}

    def table(self) -> str:
        """Per-level measured vs simulated statistics as aligned text."""
        head = (f"{'level':>5} {'window (ohm)':>21} {'cells':>6} | {'mean':>13} {'median':>11} "
                f"{'p90':>13} {'success':>15} | {'G mean+-std (uS) meas / sim':>27}")
        sub = (f"{'':>5} {'':>21} {'':>6} | {'meas':>6} {'sim':>6} {'meas':>5} {'sim':>5} "
               f"{'meas':>6} {'sim':>6} {'meas':>7} {'sim':>7} |")
        out = [head, sub]
        for lvl, sim in zip(self.levels, self.simulated):
            m = lvl.measured
            hi = "open" if lvl.r_hi_ohm >= OPEN_HIGH_OHM else f"{lvl.r_hi_ohm:.0f}"
            out.append(
                f"{lvl.name:>5} {f'[{lvl.r_lo_ohm:.0f}, {hi}]':>21} {m.n_cells:>6} | "
                f"{m.mean_pulses:>6.1f} {sim.mean_pulses:>6.1f} {m.median_pulses:>5.0f} "
                f"{sim.median_pulses:>5.0f} {m.p90_pulses:>6.1f} {sim.p90_pulses:>6.1f} "
                f"{m.success_rate:>7.4f} {sim.success_rate:>7.4f} | "
                f"{m.g_mean_us:6.1f}+-{m.g_std_us:<5.1f} / {sim.g_mean_us:6.1f}+-"
                f"{sim.g_std_us:<5.1f}".rstrip())
        return "\n".join(out)


def _mid_quantile(sorted_pulses: np.ndarray, q: float) -> float:
    """Quantile of integer counts spread uniformly over [k - 1/2, k + 1/2]: continuous in
    the counts' distribution, so the fit's loss has no integer plateaus."""
    n = sorted_pulses.size
    target = q * n
    k_lo = sorted_pulses[min(int(target), n - 1)]
    below = np.searchsorted(sorted_pulses, k_lo, side="left")
    upto = np.searchsorted(sorted_pulses, k_lo, side="right")
    return float(k_lo - 0.5 + (target - below) / max(upto - below, 1))


def _loss_targets(pulses: np.ndarray) -> np.ndarray:
    """log(1 + x) of mean, mid-median and mid-90th percentile of a pulse-count sample."""
    s = np.sort(np.asarray(pulses, dtype=np.float64))
    return np.log1p(np.array([s.mean(), _mid_quantile(s, 0.5), _mid_quantile(s, 0.9)]))


def _from_unit(z: np.ndarray) -> tuple[float, ...]:
    return tuple(b / (1.0 + math.exp(-float(v))) for v, b in zip(z, _FIT_BOUNDS))


def _to_unit(values: tuple[float, ...]) -> np.ndarray:
    out = []
    for v, b in zip(values, _FIT_BOUNDS):
        f = min(max(v / b, 1e-6), 1 - 1e-6)
        out.append(math.log(f / (1 - f)))
    return np.array(out)


def base_params(levels: list[RadarLevel], g_min_us: float, g_max_us: float,
                read_noise: float = FIT_READ_NOISE, source: str = "user") -> WriteVerifyParams:
    """Write-verify parameters with everything the data fixes, and neutral fitted values.

    Windows and caps come from the data; targets are window centres (open windows: the
    median verified conductance); a stuck cell sits at the median final conductance of the
    level's failed cells; cells start at the geometric mean of the two open windows' inner
    bounds (the data records no initial state: at most 1.6 % of a level's cells need no pulse).
    """
    by_dev = sorted(levels, key=lambda lv: lv.device_level)
    lo = [lv.g_lo_us for lv in by_dev]
    hi = [lv.g_hi_us for lv in by_dev]
    target = []
    for lv in by_dev:
        if lv.g_lo_us > 0 and math.isfinite(lv.g_hi_us):
            t = 0.5 * (lv.g_lo_us + lv.g_hi_us)
        else:
            t = lv.g_success_median_us if math.isfinite(lv.g_success_median_us) else (
                lv.g_lo_us * 1.05 if lv.g_lo_us > 0 else 0.5 * lv.g_hi_us)
        target.append(min(max(t, lv.g_lo_us, g_min_us), lv.g_hi_us, g_max_us))
    stuck_g = [min(max(lv.stuck_g_us if math.isfinite(lv.stuck_g_us) else t, g_min_us),
                   g_max_us) for lv, t in zip(by_dev, target)]
    inner = math.sqrt(hi[0] * lo[-1]) if math.isfinite(hi[0]) and lo[-1] > 0 else math.nan
    g_start = inner if math.isfinite(inner) else math.sqrt(g_min_us * g_max_us)
    n = len(by_dev)
    return WriteVerifyParams(
        window_lo_us=tuple(lo), window_hi_us=tuple(hi), target_us=tuple(target),
        step_fraction=(0.5,) * n, step_sigma=(0.5,) * n, cell_sigma=(0.5,) * n,
        stuck_fraction=tuple(1.0 - lv.measured.success_rate for lv in by_dev),
        stuck_g_us=tuple(stuck_g), max_pulses=tuple(lv.max_pulses for lv in by_dev),
        g_start_us=min(max(g_start, g_min_us), g_max_us), g_min_us=g_min_us,
        g_max_us=g_max_us, read_noise=read_noise, source=source)


def _with_level(params: WriteVerifyParams, level: int, values: tuple[float, ...]
                ) -> WriteVerifyParams:
    changes = {}
    for name, v in zip(FITTED, values):
        cur = list(getattr(params, name))
        cur[level] = v
        changes[name] = tuple(cur)
    return params.replace(**changes)


def simulate_level(params: WriteVerifyParams, level: int, n_cells: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pulses, verified flags and final conductances of ``n_cells`` cells sent to one level."""
    r = program_write_verify(params, np.full(n_cells, level, dtype=np.int64), seed)
    return r.pulses, r.verified, r.g_us


def fit_level(params: WriteVerifyParams, level: int, measured: LevelStats,
              measured_pulses: np.ndarray, n_cells: int, seed: int
              ) -> tuple[WriteVerifyParams, FitLevel]:
    """Fit the four per-level parameters of one device level (see the module docstring)."""
    target = _loss_targets(measured_pulses)
    s_meas = measured.success_rate
    se = math.sqrt(max(s_meas * (1 - s_meas), 1e-4) * (1 / measured.n_cells + 1 / n_cells))
    evaluations = 0

    def loss(values: tuple[float, ...], n: int) -> float:
        nonlocal evaluations
        evaluations += 1
        pulses, verified, _ = simulate_level(_with_level(params, level, values), level, n,
                                             seed)
        err = (_loss_targets(pulses) - target) / _PULSE_TOL
        return float(err @ err + ((verified.mean() - s_meas) / se) ** 2)

    q0 = 1.0 - s_meas
    grid = []
    n_grid = max(n_cells // 4, 256)
    for k in _GRID[0]:
        for ss in _GRID[1]:
            for cs in _GRID[2]:
                values = (float(k), ss, cs, q0)
                grid.append((loss(values, n_grid), values))
    grid.sort(key=lambda item: item[0])
    from scipy.optimize import minimize

    best, best_loss = grid[0][1], math.inf
    for _, start in grid[:_STARTS]:
        z0 = _to_unit(start)
        simplex = np.vstack([z0] + [z0 + _SIMPLEX_STEP * np.eye(len(z0))[i]
                                    for i in range(len(z0))])
        res = minimize(lambda z: loss(_from_unit(z), n_cells), z0, method="Nelder-Mead",
                       options={"maxfev": _MAX_NM_EVALUATIONS, "xatol": 0.02, "fatol": 0.01,
                                "initial_simplex": simplex})
        if res.fun < best_loss:
            best, best_loss = _from_unit(res.x), float(res.fun)
    best = tuple(float(f"{v:.6g}") for v in best)
    return _with_level(params, level, best), FitLevel(loss(best, n_cells), evaluations)


def fit_radar(data: RadarData | str | Path, seed: int = 0, n_fit_cells: int = 4096,
              name: str | None = None) -> RadarFit:
    """Fit a device and write-verify parameters to a RADAR file (see the module docstring).

    Args:
        data: A file path or what :func:`read_radar` returned.
        seed: Seed of the fit's simulations (common random numbers) and, plus one, of the
            reported simulation.
        n_fit_cells: Cells per level in each simulation of the fit.
        name: Device name (default: the file's stem).
    """
    t0 = time.perf_counter()
    if not isinstance(data, RadarData):
        data = read_radar(data)
    if isinstance(n_fit_cells, bool) or not isinstance(n_fit_cells, (int, np.integer)) or \
            n_fit_cells < 64:
        raise FileFormatError(f"n_fit_cells = {n_fit_cells!r} is invalid; allowed: an integer "
                              ">= 64")
    levels = measured_levels(data)
    if len(levels) < 2:
        raise FileFormatError(f"{data.path}: only {len(levels)} verify window(s); a device needs "
                         f"at least 2 levels")
    for lvl in levels:
        if lvl.measured.n_cells < MIN_FIT_CELLS:
            hi = "open" if lvl.r_hi_ohm >= OPEN_HIGH_OHM else f"{lvl.r_hi_ohm:g}"
            raise FileFormatError(
                f"{data.path}: level {lvl.name} (verify window [{lvl.r_lo_ohm:g}, {hi}] ohm) "
                f"has {lvl.measured.n_cells} cell(s); the fit needs at least {MIN_FIT_CELLS} "
                "per level (the mean, median and 90th percentile of their pulse counts and "
                "their success rate): measure more cells of that level")
    g_final = conductance_us(data.r_final_ohm)
    g_ok = g_final[np.isfinite(g_final)]
    if g_ok.size == 0:
        raise FileFormatError(f"{data.path}: no row has a final resistance (r_final_ohm > 0); "
                         f"the conductance range cannot be measured")
    g_min, g_max = float(g_ok.min()), float(g_ok.max())
    stem = Path(data.path).name
    source = (f"write-verify fit to {stem} (Le, Levy et al., RADAR, IEEE TED 2021, "
              f"doi 10.1109/TED.2021.3097975), seed {seed}")
    try:
        params = base_params(levels, g_min, g_max, source=source)
    except ConfigError as exc:  # a level's window outside every measured conductance
        raise FileFormatError(f"{data.path}: the measured final conductances "
                              f"({g_min:.4g}-{g_max:.4g} uS) do not reach every verify "
                              f"window: {exc}") from None
    rows_level = data.level_of_rows()
    fits: dict[int, FitLevel] = {}
    for i, lvl in enumerate(levels):
        params, fits[i] = fit_level(params, lvl.device_level, lvl.measured,
                                    data.pulses[rows_level == i], n_fit_cells, seed)
    simulated = []
    for lvl in levels:
        pulses, verified, g = simulate_level(params, lvl.device_level, N_REPORT_CELLS,
                                             seed + 1)
        simulated.append(level_stats(pulses, verified, g))
    device = _device(levels, params, g_min, g_max, name or Path(data.path).stem, source)
    return RadarFit(data.path, device, params, levels, simulated,
                    [fits[i] for i in range(len(levels))], seed, n_fit_cells,
                    time.perf_counter() - t0)


def _device(levels: list[RadarLevel], params: WriteVerifyParams, g_min: float, g_max: float,
            name: str, source: str) -> Device:
    by_dev = sorted(levels, key=lambda lv: lv.device_level)
    return Device(name=name, g_min_us=g_min, g_max_us=g_max, n_levels=len(by_dev),
                  levels_us=params.target_us, variation="table",
                  level_mean_us=tuple(lv.measured.g_mean_us for lv in by_dev),
                  level_std_us=tuple(lv.measured.g_std_us for lv in by_dev),
                  read_noise=params.read_noise, source=source)
