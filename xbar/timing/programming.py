"""Time to program a mapped network into its RRAM arrays: write-verify (R-V-W) and one-shot.

The engine sees per-cell pulse and verify-read counts (from the write-verify loop of
:mod:`xbar.devices.write_verify`, or any other source), never conductances. Cells are laid out as
the weight layout lays them out (:mod:`xbar.layout`, as :class:`xbar.analog.AnalogMatrix`
holds them): a layer's weight matrix of
``n_in`` rows and ``n_out`` columns becomes a cell matrix of ``n_in`` rows and ``n_phys``
physical columns,

* differential: ``n_phys = 2 * n_out``; column ``j < n_out`` is the G+ cell of output ``j``,
  column ``n_out + j`` its G- cell; G+ cells of column tile ``ct`` sit in array ``ct``, G- cells
  in array ``n_ct + ct`` (a tile is the array pair);
* offset: ``n_phys = n_out + n_ct``; the weight columns, then one reference column per column
  tile, which sits in its array right after that array's weight columns,

and row ``i`` lies in row tile ``i // rows``. Each array has ``D`` write drivers; driver ``d``
serves the array's bit lines ``d, d + D, d + 2D, ...`` (interleaved, so a partly used array
still spreads its columns over every driver). A driver programs its cells one after another;
one cell costs ``pulses * t_p + reads * t_v`` cycles. An array's time, in closed form with
NumPy (never one event per cell or pulse):

* ``driver_sync = "row"`` (default): one word line is selected at a time, because every access
  transistor of a bit line is wired to it; all drivers work on the same row, and the next row
  starts when the slowest driver is done::

      T_array = sum over rows r of  max over drivers d of  sum over d's cells in row r of
                (pulses * t_p + reads * t_v)

* ``driver_sync = "independent"``: each driver walks its own cells at its own pace (an
  optimistic bound, e.g. separately selectable source lines)::

      T_array = max over drivers d of  sum over d's cells of (pulses * t_p + reads * t_v)

Each array is then one SimPy process holding one slot of a chip-wide ``simpy.Resource`` of
``arrays_at_once`` slots (the power/driver budget of the chip) for ``T_array`` cycles; arrays
queue first come first served in mapping order (layer, row tile, column tile, G+ then G-) or
longest first. With unlimited slots the network takes ``max T_array``; with one slot
``sum T_array``; in between the greedy list schedule that FIFO order gives.

One-shot programming is the same with one pulse and no verify read per cell: an array with
``r`` rows and ``u`` bit lines in use takes ``r * ceil(u / D) * t_p``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import simpy

from xbar.config import HardwareConfig, ProgrammingConfig, TimingConfig, XbarConfig
from xbar.timing.engine import CountingEnvironment, hardware_arg
from xbar.timing.network import LayerSpec
from xbar.errors import ConfigError
from xbar.layout import weight_layout
from xbar.params import check_int


# --------------------------------------------------------------------------- cell layout
def physical_columns(n_out: int, xbar: XbarConfig) -> int:
    """Physical columns of a layer's cell matrix: 2 n_out (differential) or n_out + n_ct
    (:meth:`xbar.layout.WeightLayout.physical_columns`)."""
    return weight_layout(xbar.array).physical_columns(n_out)


def column_layout(n_out: int, xbar: XbarConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each physical column of a layer lives: (array column index, bit line in that
    array, number of array columns). Array column ``a`` of row tile ``rt`` is one array; the
    indices are those of :attr:`xbar.analog.AnalogMatrix.tile_of_col`
    (:meth:`xbar.layout.WeightLayout.columns`)."""
    cm = weight_layout(xbar.array).columns(n_out)
    return cm.array, cm.line, cm.n_arrays


@dataclass(frozen=True)
class LayerCells:
    """Per-cell programming work of one weight matrix, in the mapping's cell layout.

    Attributes:
        name: Layer name (results are keyed by it).
        n_in: Rows of the weight matrix (in_features, or in_channels * kh * kw).
        n_out: Outputs of the weight matrix.
        pulses: Programming pulses per cell, a non-negative integer array of shape
            (n_in, n_phys) laid out as :class:`xbar.analog.AnalogMatrix` lays out its cells
            (see the module docstring; n_phys = 2 n_out or n_out + ceil(n_out / (cols - 1))).
        reads: Verify reads per cell, same shape (all zero for programming without verify).

    A grouped convolution is one LayerCells per group (the mapping maps groups = 1 only).
    """

    name: str
    n_in: int
    n_out: int
    pulses: np.ndarray = field(repr=False)
    reads: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"LayerCells.name = {self.name!r} is invalid; allowed: a "
                             "non-empty string")
        for fld in ("n_in", "n_out"):
            check_int(f"LayerCells {self.name!r}", fld, getattr(self, fld), 1, 1 << 40)
        for fld in ("pulses", "reads"):
            arr = np.asarray(getattr(self, fld))
            if arr.dtype.kind not in "iu":
                raise ConfigError(f"LayerCells {self.name!r}: {fld} has dtype {arr.dtype}; "
                                 "allowed: an integer array (counts per cell)")
            if arr.ndim != 2 or arr.shape[0] != self.n_in:
                raise ConfigError(f"LayerCells {self.name!r}: {fld} has shape {arr.shape}; "
                                 f"allowed: (n_in, n_phys) = ({self.n_in}, n_phys), the "
                                 "mapping's cell matrix")
            if arr.size and int(arr.min()) < 0:
                raise ConfigError(f"LayerCells {self.name!r}: {fld} has a negative count "
                                 f"({int(arr.min())}); allowed: counts >= 0")
            object.__setattr__(self, fld, arr)
        if self.pulses.shape != self.reads.shape:
            raise ConfigError(f"LayerCells {self.name!r}: pulses {self.pulses.shape} and reads "
                             f"{self.reads.shape} differ in shape; allowed: one count of each "
                             "per cell")

    @classmethod
    def one_shot(cls, name: str, n_in: int, n_out: int, xbar: XbarConfig) -> "LayerCells":
        """One pulse and no verify read per cell (no memory: broadcast arrays)."""
        shape = weight_layout(xbar.array).cell_shape(n_in, n_out)
        return cls(name, n_in, n_out, np.broadcast_to(np.int8(1), shape),
                   np.broadcast_to(np.int8(0), shape))

    def check_layout(self, xbar: XbarConfig) -> None:
        """Refuse counts whose column count does not match ``xbar``'s weight mapping."""
        n_phys = weight_layout(xbar.array).physical_columns(self.n_out)
        if self.pulses.shape[1] != n_phys:
            raise ConfigError(
                f"LayerCells {self.name!r}: {self.pulses.shape[1]} physical columns, but "
                f"{n_phys} expected for n_out = {self.n_out} under the "
                f"{xbar.array.weight_mapping!r} mapping with {xbar.array.cols}-column arrays;"
                " pass counts shaped like AnalogMatrix.target_levels on the same hardware")

    @property
    def n_cells(self) -> int:
        return int(self.pulses.size)


def cells_one_shot(specs: Sequence[LayerSpec], xbar: XbarConfig) -> list[LayerCells]:
    """One-shot :class:`LayerCells` for every layer (one per group of a grouped conv,
    named ``name/g0``, ``name/g1``, ...)."""
    out: list[LayerCells] = []
    for s in specs:
        per_group = s.n_out // s.groups
        if s.groups == 1:
            out.append(LayerCells.one_shot(s.name, s.n_in, s.n_out, xbar))
        else:
            out += [LayerCells.one_shot(f"{s.name}/g{g}", s.n_in, per_group, xbar)
                    for g in range(s.groups)]
    return out


@dataclass(frozen=True)
class ArrayLoads:
    """Closed-form work of every array of one layer, rows = row tiles, columns = the layer's
    array columns (int64 arrays of shape (row tiles, array columns))."""

    cycles: np.ndarray
    busy_cycles: np.ndarray
    pulses: np.ndarray
    reads: np.ndarray
    cells: np.ndarray


def _group_starts(keys_sorted: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])


def array_loads(cells: LayerCells, xbar: XbarConfig, drivers: int, t_pulse: int,
                t_verify: int, sync: str) -> ArrayLoads:
    """Each array's programming cycles by the closed form of the module docstring.

    Args:
        cells: The layer's per-cell counts (checked against ``xbar``).
        xbar: Array geometry and weight mapping.
        drivers: Write drivers per array, in [1, cols].
        t_pulse: Cycles per pulse.
        t_verify: Cycles per verify read.
        sync: ``"row"`` or ``"independent"``.
    """
    cells.check_layout(xbar)
    cm = weight_layout(xbar.array).columns(cells.n_out)
    array, line, n_acols = cm.array, cm.line, cm.n_arrays
    key = array * drivers + line % drivers
    order = np.argsort(key, kind="stable")
    key = key[order]
    g_start = _group_starts(key)                       # columns of one (array, driver)
    a_of_group = key[g_start] // drivers
    a_start = _group_starts(a_of_group)                # drivers of one array
    c_start = _group_starts(key // drivers)            # columns of one array
    r_start = np.arange(0, cells.n_in, xbar.array.rows)
    p = cells.pulses[:, order].astype(np.int64)
    r = cells.reads[:, order].astype(np.int64)
    t = p * t_pulse + r * t_verify
    if sync == "row":
        per_row = np.maximum.reduceat(np.add.reduceat(t, g_start, axis=1), a_start, axis=1)
        cyc = np.add.reduceat(per_row, r_start, axis=0)
    else:
        per_driver = np.add.reduceat(np.add.reduceat(t, r_start, axis=0), g_start, axis=1)
        cyc = np.maximum.reduceat(per_driver, a_start, axis=1)

    def per_array(x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(x, r_start, axis=0), c_start, axis=1)

    rows_in_tile = np.diff(np.r_[r_start, cells.n_in])
    cols_in_array = np.diff(np.r_[c_start, len(key)])
    assert cyc.shape == (len(r_start), n_acols)
    return ArrayLoads(cycles=cyc, busy_cycles=per_array(t), pulses=per_array(p),
                      reads=per_array(r), cells=np.outer(rows_in_tile, cols_in_array))


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class LayerProgramming:
    """One layer's programming in the schedule (times from the start of programming)."""

    name: str
    arrays: int
    cells: int
    pulses: int
    reads: int
    start_s: float
    end_s: float
    seconds: float
    longest_array_s: float
    array_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProgrammingResult:
    """What :func:`programming_time` measured.

    Attributes:
        method: ``"rvw"`` (counts given) or ``"one-shot"``.
        total_cycles: Makespan, from the first pulse to the last cell done.
        total_s: The same in seconds.
        layers: Per-layer figures; a layer's ``seconds`` run from its first array's start
            to its last array's end (layers may overlap when several arrays run at once).
        total_pulses, total_reads, total_cells: Over the network.
        n_arrays: Arrays programmed; ``drivers_per_array``: drivers of each.
        driver_utilisation: Busy driver-cycles / (all drivers x makespan).
        active_driver_utilisation: Busy driver-cycles / the driver-cycles of the arrays
            while they are being programmed (how well one array's drivers are balanced).
        slot_utilisation: Array-cycles / (slots x makespan), slots = arrays_at_once
            (or the number of arrays when unlimited).
        array_layer, array_start_cycles, array_cycles: Each array's layer, start and
            duration in the schedule (not in :meth:`to_dict`).
    """

    method: str
    clock_ghz: float
    total_cycles: int
    total_s: float
    layers: list[LayerProgramming]
    total_pulses: int
    total_reads: int
    total_cells: int
    n_arrays: int
    drivers_per_array: int
    pulse_cycles: int
    verify_cycles: int
    driver_utilisation: float
    active_driver_utilisation: float
    slot_utilisation: float
    events_processed: int
    wall_s: float
    prog: ProgrammingConfig
    xbar: XbarConfig
    timing: TimingConfig
    array_layer: np.ndarray = field(repr=False)
    array_start_cycles: np.ndarray = field(repr=False)
    array_cycles: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values, with the full configuration."""
        return {
            "method": self.method, "clock_ghz": self.clock_ghz,
            "total_cycles": self.total_cycles, "total_s": self.total_s,
            "total_pulses": self.total_pulses, "total_reads": self.total_reads,
            "total_cells": self.total_cells, "n_arrays": self.n_arrays,
            "drivers_per_array": self.drivers_per_array, "pulse_cycles": self.pulse_cycles,
            "verify_cycles": self.verify_cycles,
            "driver_utilisation": self.driver_utilisation,
            "active_driver_utilisation": self.active_driver_utilisation,
            "slot_utilisation": self.slot_utilisation,
            "events_processed": self.events_processed, "wall_s": self.wall_s,
            "layers": [lp.to_dict() for lp in self.layers],
            "hardware": {**self.xbar.to_dict(), "timing": self.timing.to_dict(),
                         "programming": self.prog.to_dict()},
        }


# --------------------------------------------------------------------------- engine
def _schedule(durations: np.ndarray, slots: int) -> tuple[np.ndarray, int, int]:
    """Run the arrays through the SimPy engine: one process and one timeout per array,
    holding one of ``slots`` slots (0: unlimited). Returns starts, makespan and events."""
    env = CountingEnvironment()
    pool = simpy.Resource(env, capacity=slots) if slots else None
    starts = np.zeros(len(durations), dtype=np.int64)

    def program(i: int, cycles: int) -> Any:
        if pool is None:
            starts[i] = int(env.now)
            yield env.timeout(cycles)
            return
        with pool.request() as req:
            yield req
            starts[i] = int(env.now)
            yield env.timeout(cycles)

    for i, d in enumerate(durations.tolist()):
        env.process(program(i, d))
    env.run()
    return starts, int(env.now), env.events_processed


def list_schedule_cycles(durations: Sequence[int], slots: int) -> int:
    """Closed form of the engine's schedule: greedy list scheduling in the given order on
    ``slots`` identical slots (0: unlimited), each array to the earliest free slot."""
    ds = [int(d) for d in durations]
    if not ds:
        return 0
    if slots == 0 or slots >= len(ds):
        return max(ds)
    free = [0] * slots
    end = 0
    for d in ds:
        t = heapq.heappop(free) + d
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def programming_time(layer_cells: Sequence[LayerCells], hw: HardwareConfig | None = None,
                     method: str = "rvw") -> ProgrammingResult:
    """Time to program every cell of a network, from per-cell pulse and read counts.

    Args:
        layer_cells: One :class:`LayerCells` per weight matrix, in programming order.
        hw: The hardware (default :class:`HardwareConfig`): its programming parameters
            (``hw.programming``), the array geometry and weight mapping the counts are laid
            out for (``hw.xbar``) and the clock durations are rounded to (``hw.timing``).
        method: Label stored in the result (``"rvw"``, ``"one-shot"``).

    Raises:
        ValueError: No layers, duplicate names, counts not laid out for ``xbar``, or more
            drivers than bit lines.
    """
    hw = hardware_arg(hw, "programming_time")
    prog, xbar, timing = hw.programming, hw.xbar, hw.timing
    cells_list = list(layer_cells)
    if not cells_list:
        raise ConfigError("layer_cells is empty: pass one LayerCells per weight matrix")
    names = [c.name for c in cells_list if isinstance(c, LayerCells)]
    if len(names) != len(cells_list):
        raise ConfigError("layer_cells must hold LayerCells items")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"duplicate layer name(s) {dup} in layer_cells")
    t0 = time.perf_counter()
    drivers = prog.drivers(xbar)
    layout = weight_layout(xbar.array)
    t_p, t_v = prog.pulse_cycles(timing), prog.verify_cycles(timing, xbar)
    parts: tuple[list[np.ndarray], ...] = ([], [], [], [], [], [])
    for li, c in enumerate(cells_list):
        loads = array_loads(c, xbar, drivers, t_p, t_v, prog.driver_sync)
        order = layout.tile_order(loads.cycles.shape[0], c.n_out)
        for acc, arr in zip(parts, (loads.cycles, loads.busy_cycles, loads.pulses,
                                    loads.reads, loads.cells)):
            acc.append(arr.reshape(-1)[order])
        parts[5].append(np.full(len(order), li, dtype=np.int64))
    d_all, b_all, p_all, r_all, n_all, lay = (np.concatenate(x) for x in parts)
    queue = (np.argsort(-d_all, kind="stable") if prog.array_order == "longest-first"
             else np.arange(len(d_all)))
    q_starts, makespan, events = _schedule(d_all[queue], prog.arrays_at_once)
    starts = np.empty_like(q_starts)
    starts[queue] = q_starts
    ends = starts + d_all
    to_s = 1e-9 / timing.clock_ghz
    layers = []
    for li, c in enumerate(cells_list):
        m = lay == li
        s, e = int(starts[m].min()), int(ends[m].max())
        layers.append(LayerProgramming(
            name=c.name, arrays=int(m.sum()), cells=int(n_all[m].sum()),
            pulses=int(p_all[m].sum()), reads=int(r_all[m].sum()), start_s=s * to_s,
            end_s=e * to_s, seconds=(e - s) * to_s, longest_array_s=int(d_all[m].max()) * to_s,
            array_seconds=int(d_all[m].sum()) * to_s))
    n_arrays = len(d_all)
    slots = min(prog.arrays_at_once or n_arrays, n_arrays)
    busy_total, array_total = int(b_all.sum()), int(d_all.sum())
    return ProgrammingResult(
        method=method, clock_ghz=timing.clock_ghz, total_cycles=makespan,
        total_s=makespan * to_s, layers=layers, total_pulses=int(p_all.sum()),
        total_reads=int(r_all.sum()), total_cells=int(n_all.sum()), n_arrays=n_arrays,
        drivers_per_array=drivers, pulse_cycles=t_p, verify_cycles=t_v,
        driver_utilisation=busy_total / (n_arrays * drivers * makespan) if makespan else 0.0,
        active_driver_utilisation=busy_total / (drivers * array_total) if array_total else 0.0,
        slot_utilisation=array_total / (slots * makespan) if makespan else 0.0,
        events_processed=events, wall_s=time.perf_counter() - t0, prog=prog, xbar=xbar,
        timing=timing, array_layer=lay, array_start_cycles=starts, array_cycles=d_all)


def one_shot_time(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None
                  ) -> ProgrammingResult:
    """Time to program every cell of the network with one pulse and no verify read, on the
    hardware ``hw`` (default :class:`HardwareConfig`)."""
    hw = hardware_arg(hw, "one_shot_time")
    return programming_time(cells_one_shot(specs, hw.xbar), hw, method="one-shot")
