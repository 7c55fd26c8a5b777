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
3. Stop. The controller gives up on a cell (it fails, unverified) when it has applied its
   pulse cap (``max_pulses[l]``, or the controller's own cap, :class:`StoppingRule`), or,
   with early abort on, after ``abort_after`` pulses in a row that each moved the cell's
   conductance by less than ``abort_tolerance`` of its value (the way controllers detect a
   stuck cell; judged on the conductance: the verify reads' noise, 0.1-0.2 % in the fits,
   is well below the default 1 % tolerance).
4. Pulse. Otherwise one pulse: a SET
   (raises g) when ``r`` is below the window, a RESET (lowers g) when above. It moves g in its
   direction by a random fraction of the remaining distance to the target ``target_us[l]``::

       g <- clip(g +/- x * |target_us[l] - g|, g_min_us, g_max_us),
       x = a * exp(step_sigma[l] * N(0, 1))       (cycle-to-cycle variability)

   ``x > 1`` overshoots the target (an abrupt SET); small ``x`` is a gradual RESET. Then back
   to 2. Every pulse is followed by a verify read: reads = pulses + 1.

Stuck cells. Besides the loop's own stuck cells (``stuck_fraction``, fitted to data where the
cells that never verify are part of what was measured), a chip's stuck-at faults (the
device's SA0/SA1 map, drawn at programming) are passed per cell (``stuck_us``): such a cell
sits at its stuck conductance and verifies like any other. Inside its target's window at the
first read it costs 0 pulses and 1 read (a cell stuck at g_min whose target is the lowest
level); outside, it is pulsed until the controller stops (cap or early abort).

Sources and assumptions. The loop is fixed-pulse program-and-verify (FPPV) as measured by Le,
Levy et al., "RADAR", IEEE TED 2021 (doi 10.1109/TED.2021.3097975); its windows, caps and
per-level parameters come from fitting that data (:mod:`xbar.devices.radar`). Step sizes that are a
random, lognormally spread fraction of the distance to the target follow the soft-bounds
update of IBM aihwkit's pulsed devices (step proportional to the distance to a bound) with
multiplicative cycle-to-cycle and device-to-device spreads. What it leaves out: pulse
amplitude or width changes (ISPP, RADAR's own scheme), conductance drift and relaxation after
the last verify, read disturb, coupling between neighbouring cells, and a SET/RESET asymmetry
beyond what the per-level parameters absorb.

Random numbers are counter-based (:mod:`xbar.rng`): draw ``c`` of cell ``i`` is a function
of (seed, i, c) only, the same on any thread count and any chunking of the cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numba import njit, prange

from xbar.rng import Z_MAX, cell_key as _cell_key, normal_draw, seed_key, uniform_draw
from xbar.threads import configure_threads
from xbar.errors import ConfigError
from xbar.params import check_float, check_int

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
class StoppingRule:
    """When the write-verify controller stops pulsing a cell that has not verified.

    A property of the controller, not of the cells (set in the hardware's ``[programming]``
    section: :class:`xbar.config.ProgrammingConfig`).

    Attributes:
        max_pulses: Pulse cap per cell; 0 (default): the loop's own per-level caps
            (:attr:`WriteVerifyParams.max_pulses`: for the RADAR fits, the caps of the chip
            that was measured, 1,000-1,971 pulses; the transfer rule of
            :func:`xbar.mapping.recovery.techniques.rvw.rvw_params` carries the fit's median).
        abort_after: Early abort: stop a cell after this many pulses in a row that each moved
            its conductance by less than ``abort_tolerance`` of its value; 0 (default): off.
        abort_tolerance: A pulse that moves the cell by at most this fraction of its
            conductance counts as not moving it (default 0.01 = 1 %).
    """

    max_pulses: int = 0
    abort_after: int = 0
    abort_tolerance: float = 0.01

    def __post_init__(self) -> None:
        for name in ("max_pulses", "abort_after"):
            check_int("StoppingRule", name, getattr(self, name), 0, 10_000_000)
        check_float("StoppingRule", "abort_tolerance", self.abort_tolerance, 0, 1,
                    lo_open=False, hi_open=True)

    def caps(self, params: "WriteVerifyParams") -> np.ndarray:
        """The pulse cap of each level under this rule (int64)."""
        if self.max_pulses:
            return np.full(params.n_levels, self.max_pulses, np.int64)
        return np.ascontiguousarray(params.max_pulses, dtype=np.int64)

    def label(self, params: "WriteVerifyParams | None" = None) -> str:
        """The rule in words, with the loop's caps and their source when given."""
        if self.max_pulses:
            cap = f"pulse cap {self.max_pulses} per cell (the controller's)"
        elif params is not None:
            caps = np.asarray(params.max_pulses)
            span = f"{caps.min()}" if caps.min() == caps.max() else \
                f"{caps.min()}-{caps.max()} (median {int(np.median(caps))})"
            cap = f"pulse cap {span} per cell (the write-verify loop's)"
        else:
            cap = "pulse cap of the loop"
        abort = (f"early abort after {self.abort_after} pulses in a row moving a cell by "
                 f"<= {self.abort_tolerance:g} of its conductance" if self.abort_after
                 else "no early abort")
        return f"{cap}; {abort}"


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
                  forced_g: float, cap: int, abort_after: int, abort_tol: float,
                  g_start: float, g_min: float, g_max: float, read_noise: float
                  ) -> tuple[float, int, bool]:
    """One cell's loop: (final conductance, pulses, verified). ``ck``: the cell's stream;
    ``forced_g``: the conductance of a cell the chip's fault map holds stuck (NaN: none);
    ``abort_after``: early abort after that many non-moving pulses in a row (0: off)."""
    margin = Z_MAX * read_noise
    stuck = uniform_draw(ck, np.uint64(0)) < stuck_fraction
    if forced_g == forced_g:  # not NaN: stuck by the chip's fault map
        stuck = True
        g = forced_g
        gain = 0.0
    elif stuck:
        g = stuck_g
        gain = 0.0
    else:
        g = g_start
        gain = step * math.exp(cell_sigma * normal_draw(ck, np.uint64(1)))
    # a stuck cell whose reads cannot pass stops at the first rule that fires
    stop = cap if abort_after <= 0 else min(cap, abort_after)
    p = 0
    still = 0  # pulses in a row that did not move the cell
    while True:
        if g * (1.0 + margin) < lo or g * (1.0 - margin) > hi:
            # the read cannot land in the window: no draw needed, the side is certain
            up = g < target
            if stuck:
                return g, stop, False
        else:
            r = g * (1.0 + read_noise * normal_draw(ck, np.uint64(2 + 2 * p)))
            if lo <= r <= hi:
                return g, p, True
            up = r < lo
        if p >= cap or (abort_after > 0 and still >= abort_after):
            return g, p, False
        p += 1
        if stuck:
            still += 1
            continue
        d = gain * math.exp(step_sigma * normal_draw(ck, np.uint64(1 + 2 * p))) \
            * abs(target - g)
        g_new = min(max(g + d if up else g - d, g_min), g_max)
        still = still + 1 if abs(g_new - g) <= abort_tol * g else 0
        g = g_new


def _write_verify_loop(levels: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       target: np.ndarray, step: np.ndarray, step_sigma: np.ndarray,
                       cell_sigma: np.ndarray, stuck_fraction: np.ndarray,
                       stuck_g: np.ndarray, forced: np.ndarray, cap: np.ndarray,
                       abort_after: int, abort_tol: float, g_start: float, g_min: float,
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
    exceed Z_MAX; a stuck cell whose reads cannot pass jumps straight to where the
    controller stops (cap or early abort). ``forced``: per cell, the conductance of a cell
    stuck by the chip's fault map (NaN: not stuck), or an empty array (none). Each thread
    writes only its own cells' outputs.
    """
    has_forced = forced.shape[0] > 0
    for i in prange(levels.shape[0]):
        lv = levels[i]
        fg = forced[i] if has_forced else np.nan
        g, p, ok = _program_cell(_cell_key(key, np.uint64(cell_offset + i)), lo[lv], hi[lv],
                                 target[lv], step[lv], step_sigma[lv], cell_sigma[lv],
                                 stuck_fraction[lv], stuck_g[lv], fg, cap[lv], abort_after,
                                 abort_tol, g_start, g_min, g_max, read_noise)
        g_out[i] = g
        pulses_out[i] = p
        reads_out[i] = p + 1
        verified_out[i] = ok


write_verify_kernel = njit(parallel=True, cache=True)(_write_verify_loop)
write_verify_kernel_serial = njit(cache=True)(_write_verify_loop)


#: Below this many cells :func:`program_write_verify` runs the serial kernel by default.
PARALLEL_MIN_CELLS = 200_000


def program_write_verify(params: WriteVerifyParams, levels: np.ndarray, seed: int = 0,
                         cell_offset: int = 0, parallel: bool | None = None,
                         stuck_us: np.ndarray | None = None,
                         stopping: StoppingRule | None = None) -> WriteVerifyResult:
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
        stuck_us: Per cell (``levels``' shape), the conductance of a cell stuck by the chip's
            fault map, NaN where the cell is not; None: no such cells. Such a cell verifies
            like any other (module docstring).
        stopping: When the controller gives up on a cell (None: the loop's caps, no early
            abort).

    Returns:
        Final conductances (uS) and per-cell pulse and read counts.
    """
    stopping = StoppingRule() if stopping is None else stopping
    if not isinstance(stopping, StoppingRule):
        raise ConfigError(f"stopping must be a StoppingRule, got {type(stopping).__name__}")
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
    if stuck_us is None:
        forced = np.empty(0, np.float64)
    else:
        forced = np.ascontiguousarray(np.asarray(stuck_us, dtype=np.float64).reshape(-1))
        if np.shape(stuck_us) != lv.shape:
            raise ConfigError(f"stuck_us has shape {np.shape(stuck_us)}; allowed: the shape "
                              f"of levels, {lv.shape}")
        bad = np.isfinite(forced) & ((forced < params.g_min_us) | (forced > params.g_max_us))
        if bad.any() or np.isinf(forced).any():
            raise ConfigError(f"stuck_us holds {forced[bad | np.isinf(forced)][0]!r}; allowed: "
                              f"NaN (not stuck) or a conductance in [g_min_us, g_max_us] = "
                              f"[{params.g_min_us}, {params.g_max_us}] uS")
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
           a["step_sigma"], a["cell_sigma"], a["stuck_fraction"], a["stuck_g_us"], forced,
           stopping.caps(params), int(stopping.abort_after), float(stopping.abort_tolerance),
           params.g_start_us, params.g_min_us, params.g_max_us,
           params.read_noise, seed_key(seed), int(cell_offset), g, pulses, reads, verified)
    shape = lv.shape
    return WriteVerifyResult(g.reshape(shape), pulses.reshape(shape), reads.reshape(shape),
                             verified.reshape(shape))
