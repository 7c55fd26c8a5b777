"""Measured write-verify data in the RADAR release format: the reader and per-level statistics.

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

The write-verify model is fitted to these data in :mod:`xbar.devices.fit`
(:func:`~xbar.devices.fit.fit_radar`, :class:`~xbar.devices.fit.RadarFit`), which imports
this module (never the other way round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xbar.errors import FileFormatError, MissingFileError

N_COLUMNS = 11
COLUMNS = ("addr", "nreads", "nsets", "nresets", "r_final_ohm", "i_final", "r_lo_ohm",
           "r_hi_ohm", "success", "attempts1", "attempts2")
OPEN_HIGH_OHM = 1e10


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


def conductance_us(r_ohm: np.ndarray) -> np.ndarray:
    """Conductance in uS of resistances in ohm; inf where the resistance is 0 (no reading)."""
    r = np.asarray(r_ohm, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, 1e6 / np.where(r > 0, r, 1.0), np.inf)


def measured_levels(data: RadarData) -> list[RadarLevel]:
    """Per-level measured statistics, in the data's order (L0 = lowest resistance)."""
    rows_level = data.level_of_rows()
    windows = data.windows_ohm
    n = len(windows)
    g_final = conductance_us(data.r_final_ohm)
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

