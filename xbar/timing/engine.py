"""The SimPy event engine: a mapped network's tiles, ADC groups, interconnect and digital
units as processes and resources, timed in whole clock cycles.

Each tile is a process that, for every output row of its layer, waits until the row's inputs
are in the layer's input buffer, takes its ADC group (a ``simpy.Resource``), and spends one
timeout on its whole burst of MVMs (the closed form of :mod:`xbar.timing.closed_form`): never
one event per cycle, slice or cell. The interconnect (one ``simpy.Resource``) carries each
layer's input; each layer's accumulator (a ``simpy.Resource``, or one of a shared pool) and
activation/pooling unit are processes that take the rows in order.

A recurrent layer's step (output row) k + 1 starts on its tiles only after step k's activation
(gates and state) is done, under either schedule.

Schedules:

* ``"layer"``: one layer and one inference at a time. A layer receives its whole input map,
  then its rows flow through MVM -> reduction -> activation; the next layer starts when the
  last row is done, the next inference when the last layer is done.
* ``"pipelined"``: every layer runs at once, on any inference. A layer's output row is sent
  to the next layer as soon as the activation unit has produced it, and the next layer
  starts an output row as soon as its line buffer holds the input rows it reads (rows
  ``r * stride - pad ... r * stride - pad + dilation * (kh - 1)``). Pooling and flattening
  between layers are handled by mapping producer rows to consumer rows in proportion:
  consumer input row ``i`` is complete when producer rows ``0 .. ceil((i + 1) * H_p / H_c) - 1``
  are (a Linear consumer needs the whole map).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from xbar.config import HardwareConfig, TimingConfig, XbarConfig
from xbar.config.timing import SCHEDULES
from xbar.errors import ConfigError
from xbar.timing.closed_form import LayerPlan, plan_network
from xbar.timing.network import LayerSpec, ceil_div, check_chain


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (``events_processed``)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


# The old private name, until xbar/timing/programming.py imports CountingEnvironment.


@dataclass(frozen=True)
class LayerTiming:
    """One layer's place on the chip and in time (first inference).

    ``cycles`` is ``end_cycle - start_cycle``: from the first input transfer into the layer to
    its last activation. Under the pipelined schedule layers overlap and the cycles of the
    layers add up to more than the total.
    """

    name: str
    kind: str
    tiles: int
    row_tiles: int
    col_tiles: int
    copies: int
    adcs: int
    positions: int
    start_cycle: int
    end_cycle: int
    cycles: int
    mvm_cycles_per_row: int
    acc_cycles_per_row: int
    post_cycles_per_row: int
    input_cycles: int
    tile_busy_cycles: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Timeline:
    """Tile activity of the run: one row per burst (the layer, the tile, when, how long)."""

    layer: np.ndarray
    tile: np.ndarray
    start: np.ndarray
    cycles: np.ndarray
    layer_names: list[str]
    tiles_per_layer: list[int]


@dataclass
class LatencyResult:
    """What :func:`simulate` measured.

    Attributes:
        schedule: ``"layer"`` or ``"pipelined"``.
        batch: Inferences in the throughput run.
        total_cycles: Latency of one inference run alone, in cycles.
        latency_ns: The same in ns.
        makespan_cycles: Cycles until the last of ``batch`` inferences (started together)
            is done.
        completion_cycles: When each inference of the batch was done.
        throughput_inferences_per_s: Steady-state rate: (batch - 1) inferences over the time
            between the first and the last completion; 1 / latency for a batch of 1.
        tile_utilisation: Busy tile-cycles / (tiles * makespan) in the batch run.
        adc_utilisation: Converting ADC-cycles / (ADCs * makespan) in the batch run.
        interconnect_utilisation: Busy interconnect cycles / makespan in the batch run.
        layers: Per-layer figures from the single-inference run.
        events_processed: SimPy events of both runs.
        wall_s: Wall time of the simulation (both runs), in seconds.
        timeline: Tile bursts of the batch run (for the Gantt chart).
    """

    schedule: str
    batch: int
    clock_ghz: float
    total_cycles: int
    latency_ns: float
    makespan_cycles: int
    completion_cycles: list[int]
    throughput_inferences_per_s: float
    tile_utilisation: float
    adc_utilisation: float
    interconnect_utilisation: float
    n_tiles: int
    n_adcs: int
    layers: list[LayerTiming]
    events_processed: int
    wall_s: float
    xbar: XbarConfig
    timing: TimingConfig
    timeline: Timeline = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values (no timeline)."""
        return {
            "schedule": self.schedule, "batch": self.batch, "clock_ghz": self.clock_ghz,
            "total_cycles": self.total_cycles, "latency_ns": self.latency_ns,
            "makespan_cycles": self.makespan_cycles,
            "completion_cycles": list(self.completion_cycles),
            "throughput_inferences_per_s": self.throughput_inferences_per_s,
            "tile_utilisation": self.tile_utilisation,
            "adc_utilisation": self.adc_utilisation,
            "interconnect_utilisation": self.interconnect_utilisation,
            "n_tiles": self.n_tiles, "n_adcs": self.n_adcs,
            "layers": [lt.to_dict() for lt in self.layers],
            "events_processed": self.events_processed, "wall_s": self.wall_s,
            "hardware": {**self.xbar.to_dict(), "timing": self.timing.to_dict()},
        }


class _Layer:
    """Per-layer state of one run: the row events and counters."""

    def __init__(self, env: simpy.Environment, plan: LayerPlan, batch: int) -> None:
        k = plan.rows
        self.plan = plan
        self.ready = [[env.event() for _ in range(k)] for _ in range(batch)]
        self.tiles_done = [[env.event() for _ in range(k)] for _ in range(batch)]
        self.acc_done = ([[env.event() for _ in range(k)] for _ in range(batch)]
                         if plan.acc_cycles else self.tiles_done)
        self.post_done = [[env.event() for _ in range(k)] for _ in range(batch)]
        self.count = [[0] * k for _ in range(batch)]
        self.released = [0] * batch
        self.start = [-1] * batch
        self.end = [-1] * batch
        self.buffer: simpy.Container | None = None


class _Run:
    """One simulation of ``batch`` inferences under one schedule."""

    def __init__(self, plans: list[LayerPlan], xbar: XbarConfig, timing: TimingConfig,
                 schedule: str, batch: int, record: bool) -> None:
        self.env = CountingEnvironment()
        self.plans, self.xbar, self.timing = plans, xbar, timing
        self.schedule, self.batch, self.record = schedule, batch, record
        self.bus = simpy.Resource(self.env, capacity=1)
        self.bus_busy = 0
        shared = (simpy.Resource(self.env, capacity=timing.accumulator_units)
                  if timing.accumulator_units else None)
        self.acc = [shared or simpy.Resource(self.env, capacity=1) for _ in plans]
        self.layers = [_Layer(self.env, p, batch) for p in plans]
        self.busy = [0] * len(plans)
        self.conv_cycles = 0
        self.t_adc = timing.adc_cycles(xbar.adc.bits)
        self.bursts: list[tuple[int, int, int, int]] = []
        self.completion = [-1] * batch
        if schedule == "pipelined" and timing.line_buffer_rows:
            for li, st in enumerate(self.layers):
                self._check_buffer(li)
                st.buffer = simpy.Container(self.env, capacity=timing.line_buffer_rows,
                                            init=timing.line_buffer_rows)
        for li, st in enumerate(self.layers):
            self.env.process(self._feeder(li))
            groups = [simpy.Resource(self.env, capacity=1) for _ in range(st.plan.adc_groups)]
            for tile in st.plan.tiles:
                self.env.process(self._tile(li, tile.index, groups[tile.adc_group]))
            if st.plan.acc_cycles:
                self.env.process(self._accumulate(li))
            self.env.process(self._post(li))

    # -- line buffer ---------------------------------------------------------------------
    def _rows_complete(self, li: int, producer_rows_done: int) -> int:
        """Input rows of layer ``li`` complete once its producer finished that many rows."""
        h_c = self.plans[li].spec.in_chw[1]
        h_p = self.plans[li - 1].rows
        return min(h_c, producer_rows_done * h_c // h_p)

    def _arrivals(self, li: int) -> list[int]:
        """Rows of layer ``li``'s input arriving with each producer row (pipelined)."""
        h_c = self.plans[li].spec.in_chw[1]
        if li == 0:
            return [1] * h_c
        out, have = [], 0
        for kp in range(self.plans[li - 1].rows):
            now = self._rows_complete(li, kp + 1)
            out.append(now - have)
            have = now
        return out

    def _check_buffer(self, li: int) -> None:
        spec, cap = self.plans[li].spec, self.timing.line_buffer_rows
        window = max(spec.input_rows_needed(k) - (spec.input_rows_released(k - 1) if k else 0)
                     for k in range(spec.out_hw[0]))
        need = window + max(self._arrivals(li)) - 1
        if cap < need:
            raise ConfigError(f"TimingConfig.line_buffer_rows = {cap} is too small for layer "
                             f"{spec.name!r}; allowed: 0 (unbounded) or >= {need} (its "
                             f"window of {window} input rows plus the rows that arrive "
                             "together)")

    # -- processes -----------------------------------------------------------------------
    def _transfer(self, li: int, b: int, n_bytes: int) -> Generator[Any, Any, None]:
        cycles = ceil_div(n_bytes, self.timing.interconnect_bytes_per_cycle)
        with self.bus.request() as req:
            yield req
            st = self.layers[li]
            if st.start[b] < 0:
                st.start[b] = int(self.env.now)
            self.bus_busy += cycles
            yield self.env.timeout(cycles)

    def _feeder(self, li: int) -> Generator[Any, Any, None]:
        st, plan = self.layers[li], self.plans[li]
        spec = plan.spec
        for b in range(self.batch):
            if self.schedule == "layer":
                if li == 0:
                    if b:
                        yield self.layers[-1].post_done[b - 1][-1]
                else:
                    yield self.layers[li - 1].post_done[b][-1]
                yield from self._transfer(li, b, plan.input_bytes)
                for ev in st.ready[b]:
                    ev.succeed()
                continue
            arrived, next_row = 0, 0
            for kp, new in enumerate(self._arrivals(li)):
                if li:
                    yield self.layers[li - 1].post_done[b][kp]
                if not new:
                    continue
                if st.buffer is not None:
                    yield st.buffer.get(new)
                yield from self._transfer(li, b, new * plan.input_row_bytes)
                arrived += new
                while next_row < plan.rows and spec.input_rows_needed(next_row) <= arrived:
                    st.ready[b][next_row].succeed()
                    next_row += 1

    def _tile(self, li: int, index: int, adc: simpy.Resource) -> Generator[Any, Any, None]:
        st, env = self.layers[li], self.env
        tile = st.plan.tiles[index]
        burst, n_tiles = tile.burst_cycles, st.plan.n_tiles
        conversions = (tile.mvms_per_row * st.plan.slices * tile.used_cols
                       * st.plan.arrays_per_tile * self.t_adc)
        recurrent = st.plan.spec.kind == "recurrent"
        for b in range(self.batch):
            for k in range(st.plan.rows):
                yield st.ready[b][k]
                if recurrent and k:  # step k reads the state step k - 1 computed
                    yield st.post_done[b][k - 1]
                with adc.request() as req:
                    yield req
                    t0 = int(env.now)
                    yield env.timeout(burst)
                self.busy[li] += burst
                self.conv_cycles += conversions
                if self.record:
                    self.bursts.append((li, index, t0, burst))
                st.count[b][k] += 1
                if st.count[b][k] == n_tiles:
                    st.tiles_done[b][k].succeed()
                    if st.buffer is not None:
                        released = st.plan.spec.input_rows_released(k)
                        if released > st.released[b]:
                            st.buffer.put(released - st.released[b])
                            st.released[b] = released

    def _accumulate(self, li: int) -> Generator[Any, Any, None]:
        st, env = self.layers[li], self.env
        for b in range(self.batch):
            for k in range(st.plan.rows):
                yield st.tiles_done[b][k]
                with self.acc[li].request() as req:
                    yield req
                    yield env.timeout(st.plan.acc_cycles)
                st.acc_done[b][k].succeed()

    def _post(self, li: int) -> Generator[Any, Any, None]:
        st, env = self.layers[li], self.env
        last = li == len(self.plans) - 1
        for b in range(self.batch):
            for k in range(st.plan.rows):
                yield st.acc_done[b][k]
                yield env.timeout(st.plan.post_cycles)
                st.post_done[b][k].succeed()
            st.end[b] = int(env.now)
            if last:
                self.completion[b] = int(env.now)

    def run(self) -> None:
        self.env.run()
        if min(self.completion) < 0:  # pragma: no cover - an engine bug, not a user error
            raise RuntimeError("timing engine deadlock: not every inference completed")


def hardware_arg(hw: HardwareConfig | None, where: str) -> HardwareConfig:
    """``hw``, or the default :class:`HardwareConfig` for None; anything else (e.g. an
    ``XbarConfig`` where the whole hardware is meant) is refused naming ``where``."""
    if hw is None:
        return HardwareConfig()
    if not isinstance(hw, HardwareConfig):
        raise ConfigError(f"{where}: hw is a {type(hw).__name__}; allowed: a HardwareConfig "
                          "(xbar.config.load_hardware(name), HardwareConfig.from_parts(xbar, "
                          "timing=...)) or None for the defaults")
    return hw


def simulate(layers: Sequence[LayerSpec], hw: HardwareConfig | None = None,
             schedule: str = "layer", batch: int = 1, timeline: bool = True) -> LatencyResult:
    """Simulate a mapped network at cycle level.

    One inference is run alone for the latency and the per-layer figures; when ``batch`` > 1
    a second run of ``batch`` inferences, started together, gives the throughput, the
    utilisation and the timeline.

    Args:
        layers: The network's weight layers in execution order.
        hw: The hardware (default :class:`HardwareConfig`): its arrays and converters
            (``hw.xbar``) and timing (``hw.timing``).
        schedule: ``"layer"`` or ``"pipelined"``.
        batch: Inferences in the throughput run (>= 1).
        timeline: Record every tile burst (for :func:`xbar.timing.gantt.plot_timeline`).

    Raises:
        ValueError: Unknown schedule, batch < 1, an empty network, or a line buffer too small.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule = {schedule!r} is invalid; allowed: one of {SCHEDULES}")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"batch = {batch!r} is invalid; allowed: an integer >= 1")
    layers = list(layers)
    check_chain(layers)
    hw = hardware_arg(hw, "simulate")
    xbar, timing = hw.xbar, hw.timing
    timing.check_layer_names(layers)
    plans = plan_network(layers, xbar, timing)
    t0 = time.perf_counter()
    single = _Run(plans, xbar, timing, schedule, 1, timeline and batch == 1)
    single.run()
    runs = [single]
    if batch > 1:
        runs.append(_Run(plans, xbar, timing, schedule, batch, timeline))
        runs[-1].run()
    wall = time.perf_counter() - t0
    full = runs[-1]
    latency = single.completion[0]
    makespan = max(full.completion)
    n_tiles = sum(p.n_tiles for p in plans)
    n_adcs = sum(p.adcs for p in plans)
    comp = full.completion
    per_inf = (comp[-1] - comp[0]) / (batch - 1) if batch > 1 else latency
    if per_inf <= 0:  # pragma: no cover - completions are strictly ordered
        per_inf = latency
    timings = [
        LayerTiming(
            name=p.spec.name, kind=p.spec.kind, tiles=p.n_tiles, row_tiles=p.row_tiles,
            col_tiles=p.col_tiles, copies=p.copies, adcs=p.adcs, positions=p.spec.positions,
            start_cycle=st.start[0], end_cycle=st.end[0], cycles=st.end[0] - st.start[0],
            mvm_cycles_per_row=p.mvm_cycles, acc_cycles_per_row=p.acc_cycles,
            post_cycles_per_row=p.post_cycles, input_cycles=p.input_cycles,
            tile_busy_cycles=single.busy[li])
        for li, (st, p) in enumerate(zip(single.layers, plans))]
    if full.bursts:
        arr = np.asarray(full.bursts, dtype=np.int64)
        tl = Timeline(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3],
                      [p.spec.name for p in plans], [p.n_tiles for p in plans])
    else:
        empty = np.zeros(0, dtype=np.int64)
        tl = Timeline(empty, empty, empty, empty, [p.spec.name for p in plans],
                      [p.n_tiles for p in plans])
    return LatencyResult(
        schedule=schedule, batch=batch, clock_ghz=timing.clock_ghz, total_cycles=latency,
        latency_ns=timing.cycles_to_ns(latency), makespan_cycles=makespan,
        completion_cycles=list(comp),
        throughput_inferences_per_s=timing.clock_ghz * 1e9 / per_inf,
        tile_utilisation=sum(full.busy) / (n_tiles * makespan),
        adc_utilisation=full.conv_cycles / (n_adcs * makespan),
        interconnect_utilisation=full.bus_busy / makespan,
        n_tiles=n_tiles, n_adcs=n_adcs, layers=timings,
        events_processed=sum(r.env.events_processed for r in runs), wall_s=wall,
        xbar=xbar, timing=timing, timeline=tl)
