"""Write-verify (read-verify-write, R-V-W) programming of RRAM cells, vectorised in Numba.

The model, per cell with target level ``l`` (conductances in uS):

1. Start. A cell starts at ``g_start_us`` (the state after the initial RESET every cell gets
   before programming). With probability ``stuck_fraction[l]`` it is *stuck*: it sits at
   ``stuck_g_us[l]`` and no pulse moves it (a filament that neither sets nor resets; in the
   RADAR data these cells run to the pulse cap). A healthy cell draws its responsiveness
   ``a = step_fraction[l] * exp(cell_sigma[l] * N(0, 1))`` once (device-to-device
   variability: some cells switch readily, some barely move).
2. Verify. Each read sees ``r = g * (1 + read_noise * N(0, 1))``, drawn afresh. If
   ``window_lo_us[l] <= r <= window_hi_us[l]`` the cell is done (verified).
3. Pulse. Otherwise, unless ``max_pulses[l]`` pulses have been applied, one pulse: a SET
   (raises g) when ``r`` is below the window, a RESET (lowers g) when above. It moves g in its
   direction by a random fraction of the remaining distance to the target ``target_us[l]``::

       g <- clip(g +/- x * |target_us[l] - g|, g_min_us, g_max_us),
       x = a * exp(step_sigma[l] * N(0, 1))       (cycle-to-cycle variability)

   ``x > 1`` overshoots the target (an abrupt SET); small ``x`` is a gradual RESET. Then back
   to 2. Every pulse is followed by a verify read: reads = pulses + 1.

Sources and assumptions. The loop is fixed-pulse program-and-verify (FPPV) as measured by Le,
Levy et al., "RADAR", IEEE TED 2021 (doi 10.1109/TED.2021.3097975); its windows, caps and
per-level parameters come from fitting that data (:mod:`xbar.devices.radar`). Step sizes that are a
random, lognormally spread fraction of the distance to the target follow the soft-bounds
update of IBM aihwkit's pulsed devices (step proportional to the distance to a bound) with
multiplicative cycle-to-cycle and device-to-device spreads. What it leaves out: pulse
amplitude or width changes (ISPP, RADAR's own scheme), conductance drift and relaxation after
the last verify, read disturb, coupling between neighbouring cells, and a SET/RESET asymmetry
beyond what the per-level parameters absorb.

Random numbers are counter-based: draw ``c`` of cell ``i`` is a function of (seed, i, c)
only (a splitmix64 hash turned into a normal by an inverse-CDF rational approximation), so
results are the same for any thread count and any chunking of the cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numba import njit, prange

from xbar.rng import GOLDEN, MIX1, MIX2, mix64
from xbar.threads import configure_threads
from xbar.errors import ConfigError

# --------------------------------------------------------------------------- random numbers
_CELL = np.uint64(0xD6E8FEB86659FD93)
_SEED_SALT = np.uint64(0x5772_6974_6556_6572)  # "WriteVer"
_INV_2_32 = 1.0 / 4294967296.0
#: Bound on |z| for the read shortcut: above the largest |z| the normal generator can
#: return (its uniforms stay 2**-33 away from 0 and 1, so |z| <= 6.36).
Z_MAX = 6.5

# Acklam's rational approximation of the standard normal quantile, |relative error| < 1.2e-9.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_P_LOW = 0.02425


@njit(inline="always")
def _cell_key(key: np.uint64, cell: np.uint64) -> np.uint64:
    """The stream of one cell: a hash of the run's key and the cell index."""
    return mix64(key ^ (cell * _CELL))


@njit(inline="always")
def uniform_draw(cell_key: np.uint64, counter: np.uint64) -> float:
    """Uniform (0, 1) draw number ``counter`` of a cell's stream (top 32 bits of a hash)."""
    h = mix64(cell_key + (counter + np.uint64(1)) * GOLDEN)
    return (np.float64(h >> np.uint64(32)) + 0.5) * _INV_2_32


@njit(inline="always")
def _normal_quantile(p: float) -> float:
    if p < _P_LOW or p > 1.0 - _P_LOW:
        q = math.sqrt(-2.0 * math.log(p if p < 0.5 else 1.0 - p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))


@njit(inline="always")
def normal_draw(cell_key: np.uint64, counter: np.uint64) -> float:
    """N(0, 1) draw number ``counter`` of a cell's stream; |value| < :data:`Z_MAX`."""
    return _normal_quantile(uniform_draw(cell_key, counter))


def seed_key(seed: int) -> np.uint64:
    """The 64-bit key of a run from a non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not \
            0 <= int(seed) < 2 ** 64:
        raise ConfigError(f"seed = {seed!r} is invalid; allowed: an integer in [0, 2**64)")
    s = (int(seed) ^ int(_SEED_SALT)) & 0xFFFFFFFFFFFFFFFF
    z = (s + int(GOLDEN)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * int(MIX1)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * int(MIX2)) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(z ^ (z >> 31))


@njit(cache=True)
def cell_draws(key: np.uint64, cell: int, n: int) -> np.ndarray:
    """Normal draws 0..n-1 of one cell's stream (for tests and references)."""
    ck = _cell_key(key, np.uint64(cell))
    out = np.empty(n, np.float64)
    for c in range(n):
        out[c] = normal_draw(ck, np.uint64(c))
    return out


# --------------------------------------------------------------------------- parameters
_PER_LEVEL = ("window_lo_us", "window_hi_us", "target_us", "step_fraction", "step_sigma",
              "cell_sigma", "stuck_fraction", "stuck_g_us", "max_pulses")


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"WriteVerifyParams.{name} = {value!r} is invalid; allowed: {allowed}")


@dataclass(frozen=True)
class WriteVerifyParams:
    """Parameters of the write-verify loop, per target level where they differ by level.

    Per-level fields are tuples with one value per level, levels in ascending conductance (the
    order of :attr:`xbar.devices.cell.Device.levels`).

    Attributes:
        window_lo_us: Verify window lower bound per level, uS (>= 0; 0 = open below).
        window_hi_us: Verify window upper bound per level, uS (> window_lo_us; ``inf`` = open
            above, the fully SET level).
        target_us: Conductance each pulse aims at, uS, inside its window (the window's
            centre, or the typical programmed value of an open window).
        step_fraction: Median fraction of the remaining distance to the target that one pulse
            covers, in (0, 10]; above 1 a typical pulse overshoots.
        step_sigma: Cycle-to-cycle spread of that fraction, log-space standard deviation
            (natural log) in [0, 5].
        cell_sigma: Device-to-device spread of each cell's responsiveness, log-space standard
            deviation in [0, 5], drawn once per cell.
        stuck_fraction: Fraction of cells that no pulse moves, in [0, 1].
        stuck_g_us: Conductance of a stuck cell, uS, in [g_min_us, g_max_us].
        max_pulses: Pulse cap per cell (integer >= 1); a cell not verified by then fails.
        g_start_us: Conductance every cell starts from (after the initial RESET), uS.
        g_min_us: Lowest reachable conductance, uS (> 0); steps are clipped to it.
        g_max_us: Highest reachable conductance, uS (> g_min_us).
        read_noise: Relative standard deviation of each verify read (a fraction, 0.002 =
            0.2 %), in [0, 0.1].
        source: Where the numbers come from (a fit to a data file, a paper, or "user").
    """

    window_lo_us: tuple[float, ...]
    window_hi_us: tuple[float, ...]
    target_us: tuple[float, ...]
    step_fraction: tuple[float, ...]
    step_sigma: tuple[float, ...]
    cell_sigma: tuple[float, ...]
    stuck_fraction: tuple[float, ...]
    stuck_g_us: tuple[float, ...]
    max_pulses: tuple[int, ...]
    g_start_us: float
    g_min_us: float
    g_max_us: float
    read_noise: float = 0.002
    source: str = "user"

    def __post_init__(self) -> None:
        for name in ("g_start_us", "g_min_us", "g_max_us", "read_noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                    value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
                _fail(name, value, "a finite number")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.source, str):
            _fail("source", self.source, "a string")
        n = None
        for name in _PER_LEVEL:
            raw = getattr(self, name)
            if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__"):
                _fail(name, raw, "a sequence with one value per level")
            vals = tuple(raw)
            if n is None:
                n = len(vals)
                if n < 1:
                    _fail(name, vals, "at least one level")
            elif len(vals) != n:
                _fail(name, vals, f"{n} values (one per level, as window_lo_us)")
            for i, v in enumerate(vals):
                if isinstance(v, bool) or not isinstance(
                        v, (int, float, np.integer, np.floating)) or math.isnan(v):
                    _fail(f"{name}[{i}]", v, "a number")
            if name == "max_pulses":
                for i, v in enumerate(vals):
                    if not float(v).is_integer() or not 1 <= v <= 10_000_000:
                        _fail(f"max_pulses[{i}]", v, "an integer in [1, 10000000]")
                vals = tuple(int(v) for v in vals)
            else:
                vals = tuple(float(v) for v in vals)
            object.__setattr__(self, name, vals)
        if not self.g_min_us > 0:
            _fail("g_min_us", self.g_min_us, "> 0 uS")
        if not self.g_max_us > self.g_min_us:
            _fail("g_max_us", self.g_max_us, f"> g_min_us = {self.g_min_us} uS")
        span = f"[g_min_us, g_max_us] = [{self.g_min_us}, {self.g_max_us}] uS"
        if not self.g_min_us <= self.g_start_us <= self.g_max_us:
            _fail("g_start_us", self.g_start_us, span)
        if not 0 <= self.read_noise <= 0.1:
            _fail("read_noise", self.read_noise, "[0, 0.1] (a fraction: 0.002 = 0.2 %)")
        checks = (
            ("window_lo_us", lambda i, v: 0 <= v < math.inf, "[0, inf) uS"),
            ("window_hi_us", lambda i, v: v > self.window_lo_us[i],
             "> window_lo_us of the same level (inf = open above)"),
            ("target_us", lambda i, v: self.window_lo_us[i] <= v <= self.window_hi_us[i]
             and self.g_min_us <= v <= self.g_max_us,
             "inside the level's window and inside [g_min_us, g_max_us]"),
            ("step_fraction", lambda i, v: 0 < v <= 10, "(0, 10]"),
            ("step_sigma", lambda i, v: 0 <= v <= 5, "[0, 5] (natural-log units)"),
            ("cell_sigma", lambda i, v: 0 <= v <= 5, "[0, 5] (natural-log units)"),
            ("stuck_fraction", lambda i, v: 0 <= v <= 1, "[0, 1] (a fraction)"),
            ("stuck_g_us", lambda i, v: self.g_min_us <= v <= self.g_max_us, span),
        )
        for name, ok, allowed in checks:
            for i, v in enumerate(getattr(self, name)):
                if not ok(i, v):
                    _fail(f"{name}[{i}]", v, allowed)

    @property
    def n_levels(self) -> int:
        """Number of target levels."""
        return len(self.window_lo_us)

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by field name (tuples as lists)."""
        return {f.name: list(getattr(self, f.name)) if f.name in _PER_LEVEL
                else getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "write-verify parameters"
                  ) -> "WriteVerifyParams":
        """Build from a mapping of field names (as :meth:`to_dict` writes); checks names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown write-verify field(s) {unknown}; valid fields:"
                             f" {sorted(known)}")
        missing = sorted(f.name for f in fields(cls) if f.name not in values and
                         f.name not in ("read_noise", "source"))
        if missing:
            raise ConfigError(f"{where}: missing write-verify field(s) {missing}")
        return cls(**values)

    def replace(self, **changes: Any) -> "WriteVerifyParams":
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return WriteVerifyParams.from_dict(values)

    def level_arrays(self) -> dict[str, np.ndarray]:
        """The per-level fields as contiguous arrays for the kernel."""
        out = {name: np.ascontiguousarray(getattr(self, name), dtype=np.float64)
               for name in _PER_LEVEL if name != "max_pulses"}
        out["max_pulses"] = np.ascontiguousarray(self.max_pulses, dtype=np.int64)
        return out


@dataclass(frozen=True)
class WriteVerifyResult:
    """What write-verify left in each cell.

    Attributes:
        g_us: Final (true) conductance per cell, uS, float32.
        pulses: SET plus RESET pulses applied per cell, int32.
        reads: Verify reads per cell (pulses + 1), int32.
        verified: True where the last verify read fell inside the window (the cell was not
            stopped by the cap); the hardware's "success".
    """

    g_us: np.ndarray
    pulses: np.ndarray
    reads: np.ndarray
    verified: np.ndarray


# --------------------------------------------------------------------------- kernel
@njit(inline="always")
def _program_cell(ck: np.uint64, lo: float, hi: float, target: float, step: float,
                  step_sigma: float, cell_sigma: float, stuck_fraction: float, stuck_g: float,
                  cap: int, g_start: float, g_min: float, g_max: float, read_noise: float
                  ) -> tuple[float, int, bool]:
    """One cell's loop: (final conductance, pulses, verified). ``ck``: the cell's stream."""
    margin = Z_MAX * read_noise
    stuck = uniform_draw(ck, np.uint64(0)) < stuck_fraction
    if stuck:
        g = stuck_g
        gain = 0.0
    else:
        g = g_start
        gain = step * math.exp(cell_sigma * normal_draw(ck, np.uint64(1)))
    p = 0
    while True:
        if g * (1.0 + margin) < lo or g * (1.0 - margin) > hi:
            # the read cannot land in the window: no draw needed, the side is certain
            up = g < target
            if stuck:
                return g, cap, False
        else:
            r = g * (1.0 + read_noise * normal_draw(ck, np.uint64(2 + 2 * p)))
            if lo <= r <= hi:
                return g, p, True
            up = r < lo
        if p >= cap:
            return g, p, False
        p += 1
        if stuck:
            continue
        d = gain * math.exp(step_sigma * normal_draw(ck, np.uint64(1 + 2 * p))) \
            * abs(target - g)
        g = min(max(g + d if up else g - d, g_min), g_max)


def _write_verify_loop(levels: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       target: np.ndarray, step: np.ndarray, step_sigma: np.ndarray,
                       cell_sigma: np.ndarray, stuck_fraction: np.ndarray,
                       stuck_g: np.ndarray, cap: np.ndarray, g_start: float, g_min: float,
                       g_max: float, read_noise: float, key: np.uint64, cell_offset: int,
                       g_out: np.ndarray, pulses_out: np.ndarray, reads_out: np.ndarray,
                       verified_out: np.ndarray) -> None:
    """The write-verify loop of every cell (see the module docstring).

    Written once and compiled twice: :data:`write_verify_kernel` runs the ``prange`` loop on
    all Numba threads, :data:`write_verify_kernel_serial` on one (Numba treats ``prange`` as
    ``range`` without ``parallel=True``), for small batches where starting threads costs more
    than the work (the fit runs thousands of them); the results are identical.

    Draw counters of cell ``i`` (index ``cell_offset + i``): 0 stuck (uniform), 1 the cell's
    responsiveness, ``2 + 2 k`` verify read k (k = 0, 1, ...), ``1 + 2 k`` pulse k (k = 1,
    2, ...). A read is not drawn when its outcome is certain (the window lies more than
    :data:`Z_MAX` read-noise sigmas away), which changes no result because no draw can
    exceed Z_MAX; a stuck cell whose reads cannot pass jumps straight to the cap. Each
    thread writes only its own cells' outputs.
    """
    for i in prange(levels.shape[0]):
        lv = levels[i]
        g, p, ok = _program_cell(_cell_key(key, np.uint64(cell_offset + i)), lo[lv], hi[lv],
                                 target[lv], step[lv], step_sigma[lv], cell_sigma[lv],
                                 stuck_fraction[lv], stuck_g[lv], cap[lv], g_start, g_min,
                                 g_max, read_noise)
        g_out[i] = g
        pulses_out[i] = p
        reads_out[i] = p + 1
        verified_out[i] = ok


write_verify_kernel = njit(parallel=True, cache=True)(_write_verify_loop)
write_verify_kernel_serial = njit(cache=True)(_write_verify_loop)


#: Below this many cells :func:`program_write_verify` runs the serial kernel by default.
PARALLEL_MIN_CELLS = 200_000


def program_write_verify(params: WriteVerifyParams, levels: np.ndarray, seed: int = 0,
                         cell_offset: int = 0, parallel: bool | None = None
                         ) -> WriteVerifyResult:
    """Program cells to target levels by write-verify.

    Args:
        params: The loop's parameters.
        levels: Integer target level per cell, in [0, params.n_levels); any shape (the
            results have the same shape; cells are numbered in C order).
        seed: Non-negative integer; the same seed gives the same cells on any thread count.
        cell_offset: Index of the first cell, so that programming an array in chunks gives
            the same cells as programming it at once.
        parallel: Run on all Numba threads (True), on one (False), or on all from
            :data:`PARALLEL_MIN_CELLS` cells on (None). The results are the same.

    Returns:
        Final conductances (uS) and per-cell pulse and read counts.
    """
    if not isinstance(params, WriteVerifyParams):
        raise ConfigError(f"params must be WriteVerifyParams, got {type(params).__name__}")
    lv = np.asarray(levels)
    if lv.dtype.kind not in "iu":
        raise ConfigError(f"levels must be integer level indices, got dtype {lv.dtype}")
    if lv.size and (lv.min() < 0 or lv.max() >= params.n_levels):
        raise ConfigError(f"levels must lie in [0, {params.n_levels - 1}]; got range "
                         f"[{lv.min()}, {lv.max()}]")
    if isinstance(cell_offset, bool) or not isinstance(cell_offset, (int, np.integer)) \
            or cell_offset < 0:
        raise ConfigError(f"cell_offset = {cell_offset!r} is invalid; allowed: an integer >= 0")
    flat = np.ascontiguousarray(lv.reshape(-1), dtype=np.int64)
    n = flat.size
    g = np.empty(n, np.float32)
    pulses = np.empty(n, np.int32)
    reads = np.empty(n, np.int32)
    verified = np.empty(n, np.bool_)
    a = params.level_arrays()
    run_parallel = n >= PARALLEL_MIN_CELLS if parallel is None else parallel
    if run_parallel:
        configure_threads()
    kernel = write_verify_kernel if run_parallel else write_verify_kernel_serial
    kernel(flat, a["window_lo_us"], a["window_hi_us"], a["target_us"], a["step_fraction"],
           a["step_sigma"], a["cell_sigma"], a["stuck_fraction"], a["stuck_g_us"],
           a["max_pulses"], params.g_start_us, params.g_min_us, params.g_max_us,
           params.read_noise, seed_key(seed), int(cell_offset), g, pulses, reads, verified)
    shape = lv.shape
    return WriteVerifyResult(g.reshape(shape), pulses.reshape(shape), reads.reshape(shape),
                             verified.reshape(shape))
