"""Measured write-verify data in the RADAR release format, and the fit of the write-verify model.

Format (Le, Levy et al., "RADAR", IEEE TED 2021, doi 10.1109/TED.2021.3097975, public data
release; see ``../shared/data/README.md``): tab-separated, CRLF line ends, no header, one cell
per row, 11 numeric columns::

    addr, nreads, nsets, nresets, r_final_ohm, i_final, r_lo_ohm, r_hi_ohm, success,
    attempts1, attempts2

A row's target level is its verify window ``[r_lo_ohm, r_hi_ohm]`` (the lowest-resistance
level has ``r_lo = 0``, the highest-resistance level the open bound ``1e10``). Pulses applied
to a cell are ``nsets + nresets - 1``; ``success`` is 1 where the final resistance landed in
the window.

Level numbering. The data's levels ``L0, L1, ...`` go up in resistance (L0 is the most
conductive); a :class:`~xbar.devices.cell.Device` numbers levels up in conductance. Both are kept:
:attr:`RadarLevel.name` is the data's label, :attr:`RadarLevel.device_level` the device index.

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
from xbar.devices.write_verify import WriteVerifyParams, program_write_verify
from xbar.errors import FileFormatError, MissingFileError

N_COLUMNS = 11
COLUMNS = ("addr", "nreads", "nsets", "nresets", "r_final_ohm", "i_final", "r_lo_ohm",
           "r_hi_ohm", "success", "attempts1", "attempts2")
OPEN_HIGH_OHM = 1e10
#: Relative standard deviation of a verify read assumed by the fit (not identifiable from
#: the data, which records only verify reads): a quarter of the narrowest window's half
#: width in the 3-bit file (0.4 %), so that the verify can resolve the windows it uses.
FIT_READ_NOISE = 0.001


@dataclass(frozen=True)
class RadarData:
    """One RADAR write-verify measurement: per-cell columns as arrays.

    Attributes:
        path: The file read.
        addr: Cell address per row.
        n_reads, n_sets, n_resets: Counts per row (int64).
        r_final_ohm: Final resistance per row, ohm (0 where the instrument recorded none).
        r_lo_ohm, r_hi_ohm: Verify window per row, ohm.
        success: True where the final resistance is inside the window.
    """

    path: str
    addr: np.ndarray
    n_reads: np.ndarray
    n_sets: np.ndarray
    n_resets: np.ndarray
    r_final_ohm: np.ndarray
    r_lo_ohm: np.ndarray
    r_hi_ohm: np.ndarray
    success: np.ndarray

    @property
    def pulses(self) -> np.ndarray:
        """Pulses applied per cell: nsets + nresets - 1."""
        return self.n_sets + self.n_resets - 1

    @property
    def windows_ohm(self) -> list[tuple[float, float]]:
        """Distinct verify windows, ascending in resistance (the data's L0, L1, ...)."""
        return sorted(set(zip(self.r_lo_ohm.tolist(), self.r_hi_ohm.tolist())))

    def level_of_rows(self) -> np.ndarray:
        """Data level index (into :attr:`windows_ohm`) of every row."""
        lookup = {w: i for i, w in enumerate(self.windows_ohm)}
        return np.array([lookup[w] for w in zip(self.r_lo_ohm.tolist(),
                                                 self.r_hi_ohm.tolist())], dtype=np.int64)


def read_radar(path: str | Path) -> RadarData:
    """Read a RADAR write-verify TSV file; ValueError naming file and line if malformed."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"RADAR data file {str(path)!r} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory, expected a RADAR .tsv file")
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise FileFormatError(f"{path}:{line}: not a RADAR text file (non-ASCII byte "
                         f"0x{raw[exc.start]:02x})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise FileFormatError(f"{path}: empty file, expected one row per cell with {N_COLUMNS} "
                         f"tab-separated columns")
    rows = np.empty((len(lines), N_COLUMNS), dtype=np.float64)
    for k, line in enumerate(lines):
        where = f"{path}:{k + 1}"
        if line.endswith("\r"):
            line = line[:-1]
        parts = line.split("\t")
        if len(parts) != N_COLUMNS:
            raise FileFormatError(f"{where}: expected {N_COLUMNS} tab-separated columns "
                             f"({', '.join(COLUMNS)}), found {len(parts)}")
        try:
            rows[k] = [float(p) for p in parts]
        except ValueError:
            bad = next(i for i, p in enumerate(parts) if not _is_number(p))
            raise FileFormatError(f"{where}: column {bad + 1} ({COLUMNS[bad]}) = {parts[bad]!r} "
                             f"is not a number") from None
    _check_rows(rows, path)
    c = {name: rows[:, i] for i, name in enumerate(COLUMNS)}
    return RadarData(str(path), c["addr"].astype(np.int64), c["nreads"].astype(np.int64),
                     c["nsets"].astype(np.int64), c["nresets"].astype(np.int64),
                     c["r_final_ohm"].copy(), c["r_lo_ohm"].copy(), c["r_hi_ohm"].copy(),
                     c["success"] == 1)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_rows(rows: np.ndarray, path: Path) -> None:
    """Range checks; the first offending line is named."""
    col = {name: i for i, name in enumerate(COLUMNS)}

    def first_bad(mask: np.ndarray, what: str, column: str) -> None:
        if mask.any():
            k = int(np.argmax(mask))
            raise FileFormatError(f"{path}:{k + 1}: {column} = {rows[k, col[column]]:g} is invalid;"
                             f" allowed: {what}")

    finite = np.isfinite(rows)
    if not finite.all():
        k, j = (int(v) for v in np.argwhere(~finite)[0])
        raise FileFormatError(f"{path}:{k + 1}: column {j + 1} ({COLUMNS[j]}) = {rows[k, j]:g} "
                         f"is not a finite number")
    for name in ("nreads", "nsets", "nresets"):
        v = rows[:, col[name]]
        first_bad(~np.isfinite(v) | (v < 0) | (v != np.floor(v)), "an integer >= 0", name)
    first_bad(rows[:, col["nsets"]] + rows[:, col["nresets"]] < 1,
              "nsets + nresets >= 1 (pulses = nsets + nresets - 1 must be >= 0)", "nresets")
    for name in ("r_final_ohm", "r_lo_ohm"):
        v = rows[:, col[name]]
        first_bad(~np.isfinite(v) | (v < 0), "a finite resistance >= 0 ohm", name)
    hi = rows[:, col["r_hi_ohm"]]
    first_bad(~(hi > rows[:, col["r_lo_ohm"]]), "> r_lo_ohm of the same row", "r_hi_ohm")
    s = rows[:, col["success"]]
    first_bad((s != 0) & (s != 1), "0 or 1", "success")


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class LevelStats:
    """Pulse-count and outcome statistics of one target level.

    Attributes:
        n_cells: Cells programmed to the level.
        mean_pulses, median_pulses, p90_pulses: Pulse-count statistics (percentile with
            linear interpolation, as ``numpy.percentile``).
        success_rate: Fraction of cells verified inside the window.
        g_mean_us, g_std_us: Final conductance mean and standard deviation over all cells
            of the level, uS (cells without a final reading left out).
    """

    n_cells: int
    mean_pulses: float
    median_pulses: float
    p90_pulses: float
    success_rate: float
    g_mean_us: float
    g_std_us: float

    def pulse_dict(self) -> dict[str, float]:
        """The four fitted statistics, by their JSON names."""
        return {"mean_pulses": self.mean_pulses, "median_pulses": self.median_pulses,
                "p90_pulses": self.p90_pulses, "success_rate": self.success_rate}

    def to_dict(self) -> dict[str, float]:
        """Every statistic by name."""
        return {"n_cells": self.n_cells, **self.pulse_dict(), "g_mean_us": self.g_mean_us,
                "g_std_us": self.g_std_us}


def level_stats(pulses: np.ndarray, success: np.ndarray, g_us: np.ndarray) -> LevelStats:
    """Statistics of one level's cells; non-finite conductances are left out of g stats."""
    p = np.asarray(pulses, dtype=np.float64)
    g = np.asarray(g_us, dtype=np.float64)
    g = g[np.isfinite(g)]
    return LevelStats(int(p.size), float(p.mean()), float(np.median(p)),
                      float(np.percentile(p, 90)), float(np.mean(success)),
                      float(g.mean()) if g.size else math.nan,
                      float(g.std()) if g.size else math.nan)


@dataclass(frozen=True)
class RadarLevel:
    """One target level of a RADAR file, with its measured statistics.

    Attributes:
        name: The data's label, ``L0`` = lowest resistance window.
        device_level: Index of the level in the fitted device (ascending conductance).
        r_lo_ohm, r_hi_ohm: Verify window, ohm (1e10 = open above).
        g_lo_us, g_hi_us: The same window in conductance, uS (0 / inf when open).
        measured: Statistics over the level's rows.
        stuck_g_us: Median final conductance of the level's failed cells (nan if none).
        g_success_median_us: Median final conductance of the verified cells.
        max_pulses: The pulse cap the model uses: the mean pulse count of the level's failed
            cells (what a failing cell costs; the 3-bit file mixes blocks programmed with
            caps of 1000 and 2000 pulses per polarity), or, without failures, the most SETs
            or RESETs (after the initial one) any cell received.
    """

    name: str
    device_level: int
    r_lo_ohm: float
    r_hi_ohm: float
    g_lo_us: float
    g_hi_us: float
    measured: LevelStats
    stuck_g_us: float
    g_success_median_us: float
    max_pulses: int


def _conductance_us(r_ohm: np.ndarray) -> np.ndarray:
    r = np.asarray(r_ohm, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, 1e6 / np.where(r > 0, r, 1.0), np.inf)


def measured_levels(data: RadarData) -> list[RadarLevel]:
    """Per-level measured statistics, in the data's order (L0 = lowest resistance)."""
    rows_level = data.level_of_rows()
    windows = data.windows_ohm
    n = len(windows)
    g_final = _conductance_us(data.r_final_ohm)
    out = []
    for i, (r_lo, r_hi) in enumerate(windows):
        m = rows_level == i
        succ = data.success[m]
        g = g_final[m]
        failed = g[~succ & np.isfinite(g)]
        verified = g[succ & np.isfinite(g)]
        fail_pulses = data.pulses[m & ~data.success]
        cap = int(round(fail_pulses.mean())) if fail_pulses.size else \
            int(max(data.n_sets[m].max(), data.n_resets[m].max() - 1, 1))
        out.append(RadarLevel(
            name=f"L{i}", device_level=n - 1 - i, r_lo_ohm=r_lo, r_hi_ohm=r_hi,
            g_lo_us=0.0 if r_hi >= OPEN_HIGH_OHM else 1e6 / r_hi,
            g_hi_us=math.inf if r_lo == 0 else 1e6 / r_lo,
            measured=level_stats(data.pulses[m], succ, g),
            stuck_g_us=float(np.median(failed)) if failed.size else math.nan,
            g_success_median_us=float(np.median(verified)) if verified.size else math.nan,
            max_pulses=cap))
    return out


# --------------------------------------------------------------------------- the fit
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
        raise FileFormatError(f"n_fit_cells = {n_fit_cells!r} is invalid; allowed: an integer >= 64")
    levels = measured_levels(data)
    if len(levels) < 2:
        raise FileFormatError(f"{data.path}: only {len(levels)} verify window(s); a device needs "
                         f"at least 2 levels")
    g_final = _conductance_us(data.r_final_ohm)
    g_ok = g_final[np.isfinite(g_final)]
    if g_ok.size == 0:
        raise FileFormatError(f"{data.path}: no row has a final resistance (r_final_ohm > 0); "
                         f"the conductance range cannot be measured")
    g_min, g_max = float(g_ok.min()), float(g_ok.max())
    stem = Path(data.path).name
    source = (f"write-verify fit to {stem} (Le, Levy et al., RADAR, IEEE TED 2021, "
              f"doi 10.1109/TED.2021.3097975), seed {seed}")
    params = base_params(levels, g_min, g_max, source=source)
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
