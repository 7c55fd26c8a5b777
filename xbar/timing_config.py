"""The timing sections of the hardware configuration: ``[timing]``, ``[programming]`` and
``[adaptation]``.

What the arrays and converters *are* (rows, columns, weight mapping, input bits, bits per
read, ADC bits, columns per ADC) lives in :class:`xbar.config.XbarConfig` and is reused here,
never duplicated. These classes add only what decides *when* things happen: the clock, the
read pulse, the ADC sample rate, the digital units and the interconnect
(:class:`TimingConfig`); the programming pulses and write drivers
(:class:`ProgrammingConfig`); the SRAM and the backward pass of on-chip adaptation
(:class:`AdaptationConfig`). :class:`xbar.config.HardwareConfig` holds one of each; the
engines in :mod:`xbar.timing` read them. Every field is declared once with
:func:`xbar.params.param` (unit, range, one-line meaning).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xbar.devices.write_verify import StoppingRule
from xbar.errors import ConfigError
from xbar.params import Params, fail, param

if TYPE_CHECKING:
    from xbar.config import XbarConfig

__all__ = ["ARRAY_ORDERS", "AdaptationConfig", "BACKWARD_MODES", "DRIVER_SYNCS",
           "ProgrammingConfig", "SCHEDULES", "SRAM_BANKS", "TimingConfig", "ns_to_cycles"]

SCHEDULES = ("layer", "pipelined")
VERIFY_READS = ("direct", "adc")
DRIVER_SYNCS = ("row", "independent")
ARRAY_ORDERS = ("mapping", "longest-first")
BACKWARD_MODES = ("transposed-read", "digital")
SRAM_BANKS = ("per-layer", "shared")
_EPS = 1e-9


def ns_to_cycles(ns: float, clock_ghz: float) -> int:
    """Whole clock cycles covering ``ns`` nanoseconds (rounded up, at least 1)."""
    return max(1, math.ceil(ns * clock_ghz - _EPS))


@dataclass(frozen=True)
class TimingConfig(Params):
    """When things happen on the chip. Every duration is a whole number of clock cycles.

    Attributes:
        clock_ghz: The one clock of the chip, in GHz; cycles / clock_ghz = nanoseconds.
            Default 1.0 GHz, the rate of the 1 GS/s ADC (MNSIM 2.0 ``ADC.py``), so one ADC
            sample is one cycle.
        t_read_ns: One array read (one input bit-slice on the word lines, every bit line
            sensed), in ns; rounded up to whole cycles. Default 10 ns, the read pulse of
            DNN+NeuroSim V1.3 ``Param.cpp``.
        adc_gsps: ADC sample rate in GS/s. One conversion takes (adc.bits + 2) / adc_gsps
            ns (MNSIM 2.0 ``ADC.py``), rounded up to whole cycles: 10 cycles for the default
            8-bit ADC at 1 GS/s and 1 GHz. The resolution itself is ``XbarConfig.adc.bits``.
        shift_add_cycles: Shift-and-add of one bit-slice's digitised columns into the running
            sums, after that slice's last conversion. Default 1 (project choice: one adder
            per ADC, a shift and an add per cycle; REFERENCE.md gives no figure).
        overlap_read_convert: True: each column's sample-and-hold lets the array read of
            slice s+1 run while the ADCs convert slice s, so read, conversion and shift-add
            form a three-stage pipeline over the slices. False: each slice is read, converted
            and added before the next read starts. Default True (project choice: a
            sample-and-hold per bit line; REFERENCE.md gives no figure).
        tiles_per_adc_group: Tiles (array pairs in the differential mapping) that share one
            ADC group through a multiplexer. A tile holds its group for a whole burst of
            MVMs; tiles sharing a group take turns, first come first served. Default 1
            (each tile has its own ADCs, ``XbarConfig.adc.cols_per_adc`` columns per ADC, as
            in NeuroSim's 128 x 128 array with 8 columns per ADC).
        interconnect_bytes_per_cycle: Width of the one interconnect that carries every
            layer's input feature map (activations of ceil(input_bits / 8) bytes) from the
            buffer to the layer's tiles; a transfer of B bytes takes ceil(B / width) cycles
            and holds the interconnect. Default 32 bytes (a 256-bit bus at the chip clock;
            project choice, REFERENCE.md gives no figure).
        accumulator_values_per_cycle: Values the accumulator of a layer adds per cycle when it
            reduces the partial sums of the row tiles that split the layer's inputs:
            (row_tiles - 1) * ceil(n_out / this) cycles per output position. Default 128
            (one array width per cycle; project choice).
        accumulator_units: 0: each layer has its own accumulator (no contention). N > 0: all
            layers share a pool of N accumulators (contention under the pipelined schedule).
            Default 0.
        post_op_values_per_cycle: Values the activation/pooling unit of a layer handles per
            cycle: ceil(n_out / this) cycles per output position. Default 128 (project
            choice).
        duplication: Copies of each duplicated conv layer's tile set; copy c computes the
            positions c, c + d, ... of each output row, so a row takes ceil(W_out / d) MVMs
            instead of W_out. Capped at W_out (further copies would sit idle). Default 1.
        duplicate_layers: Names of the conv layers to duplicate; empty (the default) means
            every conv layer. A name that is not a conv layer of the simulated network is
            refused when the network is simulated (:meth:`check_layer_names`).
        line_buffer_rows: Pipelined schedule only: capacity of each layer's input line
            buffer, in rows of its input feature map (a Linear layer's whole input counts as
            one row). A producer waits for free rows before sending; rows are freed when every
            tile of the consumer has finished the last output row that reads them. 0 (the
            default) means unbounded. Too small a buffer to hold one output row's window is
            refused when the network is simulated.
    """

    SECTION = "timing"

    clock_ghz: float = param(1.0, unit="GHz", range=(0, 100, True, False),
                             doc="The chip clock; every duration is whole cycles of it.")
    t_read_ns: float = param(10.0, unit="ns", range=(0, 1e6, True, False),
                             doc="One array read (one input bit-slice), rounded up to cycles.")
    adc_gsps: float = param(1.0, unit="GS/s", range=(0, 100, True, False),
                            doc="ADC sample rate; a conversion takes (adc.bits + 2) / rate.")
    shift_add_cycles: int = param(1, unit="cycles", range=(0, 1_000_000),
                                  doc="Shift-and-add of one bit-slice after its conversions.")
    overlap_read_convert: bool = param(
        True, doc="Sample-and-hold: read slice s+1 while the ADCs convert slice s.")
    tiles_per_adc_group: int = param(1, unit="tiles", range=(1, 65536),
                                     doc="Tiles sharing one ADC group through a multiplexer.")
    interconnect_bytes_per_cycle: int = param(
        32, unit="bytes/cycle", range=(1, 1 << 30),
        doc="Width of the interconnect that carries each layer's input feature map.")
    accumulator_values_per_cycle: int = param(
        128, unit="values/cycle", range=(1, 1 << 20),
        doc="Partial sums a layer's accumulator adds per cycle (row-tile reduction).")
    accumulator_units: int = param(
        0, unit="units", range=(0, 1 << 20), note="0: one per layer",
        doc="Accumulators shared by all layers; 0 gives each layer its own.")
    post_op_values_per_cycle: int = param(
        128, unit="values/cycle", range=(1, 1 << 20),
        doc="Values the activation/pooling unit of a layer handles per cycle.")
    duplication: int = param(1, unit="copies", range=(1, 4096),
                             doc="Copies of each duplicated conv layer's tile set.")
    duplicate_layers: tuple[str, ...] = param(
        (), kind=tuple, item=str, note="conv layer names; empty: every conv layer",
        doc="Names of the conv layers to duplicate; empty means every conv layer.")
    line_buffer_rows: int = param(
        0, unit="rows", range=(0, 1 << 20), note="0: unbounded",
        doc="Pipelined schedule: each layer's input line buffer, in input rows.")

    def read_cycles(self) -> int:
        """Cycles of one array read (one input bit-slice)."""
        return ns_to_cycles(self.t_read_ns, self.clock_ghz)

    def adc_cycles(self, adc_bits: int) -> int:
        """Cycles of one ADC conversion: (bits + 2) / f_s, rounded up."""
        return ns_to_cycles((adc_bits + 2) / self.adc_gsps, self.clock_ghz)

    def cycles_to_ns(self, cycles: float) -> float:
        return cycles / self.clock_ghz

    def duplicates(self, layer_name: str, kind: str) -> int:
        """Requested copies of a layer's tile set (before capping at the row width)."""
        if kind != "conv" or self.duplication == 1:
            return 1
        if self.duplicate_layers and layer_name not in self.duplicate_layers:
            return 1
        return self.duplication

    def check_layer_names(self, layers: Iterable[Any]) -> None:
        """Refuse ``duplicate_layers`` names that are not conv layers of ``layers`` (objects
        with ``name`` and ``kind``, such as :class:`xbar.timing.network.LayerSpec`).

        Raises:
            ConfigError: Naming the unknown names and the conv layers that exist.
        """
        if not self.duplicate_layers:
            return
        layers = list(layers)
        convs = [s.name for s in layers if s.kind == "conv"]
        unknown = [n for n in self.duplicate_layers if n not in convs]
        if unknown:
            others = [n for n in unknown if n in {s.name for s in layers}]
            why = f" ({', '.join(map(repr, others))}: not conv)" if others else ""
            raise ConfigError(
                f"TimingConfig.duplicate_layers = {list(self.duplicate_layers)} is invalid for "
                f"this network: {', '.join(map(repr, unknown))} "
                f"{'is not a conv layer' if len(unknown) == 1 else 'are not conv layers'} of "
                f"it{why}; allowed: names of its conv layers, "
                f"{', '.join(map(repr, convs)) if convs else '(none: it has no conv layer)'}")


@dataclass(frozen=True)
class ProgrammingConfig(Params):
    """How the chip programs its RRAM cells (``[programming]`` in a hardware TOML file).

    Durations are rounded up to whole cycles of :attr:`TimingConfig.clock_ghz`.

    Attributes:
        t_pulse_ns: One SET or RESET programming pulse on one cell, driver settling included,
            in ns. Default 6500 ns: the low end of the "RRAM write time per cell, 6.5 us to
            4.5 ms" of Charan et al., JxCDC 2020 (work 1 in REFERENCE.md), read as the time of
            one write (one pulse) of one cell; the benchmark sweeps the whole range. MNSIM
            2.0's ``SimConfig.ini`` has a 10 ns write pulse at 3 V, a far faster device.
        t_verify_ns: One verify read of one cell, in ns, with ``verify_read = "direct"``.
            Default 10 ns, the read pulse of DNN+NeuroSim V1.3 ``Param.cpp`` (as
            ``TimingConfig.t_read_ns``).
        verify_read: How a verify read is sensed. ``"direct"`` (default): each write driver
            has its own sense circuit and a verify takes ``t_verify_ns``. ``"adc"``: the verify
            is an array read of the cell (``TimingConfig.t_read_ns``) digitised by the
            column's shared ADC (one conversion, ``(adc.bits + 2) / adc_gsps``); the ``D``
            drivers of an array verify together and share its ``ceil(cols / cols_per_adc)``
            ADCs, so a verify takes ``t_read + ceil(D / adcs) * t_conversion`` (in whole
            cycles). This is how the papers' "cell-by-cell" R-V-W reads back through the
            inference periphery (work 1); the ``cell-by-cell`` hardware preset uses it.
        drivers_per_array: Write drivers per array (each array of a differential pair has its
            own); driver ``d`` serves bit lines ``d, d + D, ...``. 0 (the default) means one
            per bit line (``XbarConfig.array.cols``), the most parallel choice; at most
            ``cols``.
        arrays_at_once: Arrays the chip may program at the same time (a chip-level budget of
            write power and programming-voltage supplies); 0 means no limit. Default 1
            (project choice: programming current of a whole array's drivers at 3 V is in the
            tens of mA, so the conservative default is one array at a time; REFERENCE.md
            gives no figure).
        driver_sync: ``"row"`` (default): the drivers of an array work on one selected row at
            a time and the next row starts when the slowest is done (a 1T1R array selects one
            word line at a time; project choice). ``"independent"``: each driver walks its
            own cells at its own pace (optimistic bound).
        array_order: Order in which arrays queue for the ``arrays_at_once`` slots:
            ``"mapping"`` (default: layer, row tile, column tile, G+ then G-) or
            ``"longest-first"`` (the longest-processing-time rule, a shorter makespan when
            slots are few).
        max_pulses: The write-verify controller's pulse cap per cell; 0 (default): the
            write-verify loop's own per-level caps (for the RADAR fits, and the transfer rule
            that carries them to other devices, those of the chip RADAR measured: a median of
            1,933 pulses for 3 bits per cell). A cell not verified by the cap fails.
        abort_after: Early abort: the controller stops a cell after this many pulses in a
            row that each moved its conductance by at most ``abort_tolerance`` of its value
            (a stuck cell never moves); 0 (default): off. The stopping rule decides what a
            stuck cell outside its verify window costs, and with it most of T_rvw on a chip
            with stuck-at faults (docs/programming_time.md).
        abort_tolerance: The largest relative change of a cell's conductance a pulse may
            make and still count as not moving it (default 0.01).
    """

    SECTION = "programming"

    t_pulse_ns: float = param(6500.0, unit="ns", range=(0, 1e9, True, False),
                              doc="One SET/RESET programming pulse on one cell.")
    t_verify_ns: float = param(10.0, unit="ns", range=(0, 1e9, True, False),
                               doc="One verify read of one cell.")
    verify_read: str = param("direct", choices=VERIFY_READS,
                             doc="direct: own sense circuit (t_verify_ns); adc: array read "
                                 "plus a conversion on the column's shared ADC.")
    drivers_per_array: int = param(
        0, unit="drivers", range=(0, 65536), note="0: one per bit line",
        doc="Write drivers per array; driver d serves bit lines d, d + D, ...")
    arrays_at_once: int = param(1, unit="arrays", range=(0, 1 << 30), note="0: no limit",
                                doc="Arrays the chip may program at the same time.")
    driver_sync: str = param("row", choices=DRIVER_SYNCS,
                             doc="row: drivers share the selected row; independent: own pace.")
    array_order: str = param("mapping", choices=ARRAY_ORDERS,
                             doc="Order in which arrays queue for the programming slots.")
    max_pulses: int = param(0, unit="pulses", range=(0, 10_000_000),
                            note="0: the write-verify loop's own per-level caps",
                            doc="R-V-W pulse cap per cell (the controller's stopping rule).")
    abort_after: int = param(0, unit="pulses", range=(0, 10_000_000), note="0: off",
                             doc="Stop a cell after this many non-moving pulses in a row.")
    abort_tolerance: float = param(0.01, unit="fraction", range=(0, 1, False, True),
                                   doc="A pulse moving a cell by at most this fraction of its "
                                       "conductance does not move it.")

    def stopping_rule(self) -> StoppingRule:
        """The write-verify controller's :class:`xbar.devices.write_verify.StoppingRule`."""
        return StoppingRule(self.max_pulses, self.abort_after, self.abort_tolerance)

    def pulse_cycles(self, timing: TimingConfig) -> int:
        """Cycles of one programming pulse."""
        return ns_to_cycles(self.t_pulse_ns, timing.clock_ghz)

    def verify_cycles(self, timing: TimingConfig, xbar: XbarConfig | None = None) -> int:
        """Cycles of one verify read (``xbar`` is needed for ``verify_read = "adc"``)."""
        if self.verify_read == "direct":
            return ns_to_cycles(self.t_verify_ns, timing.clock_ghz)
        if xbar is None:
            raise ConfigError("ProgrammingConfig.verify_cycles: verify_read = 'adc' needs the "
                              "array and ADC configuration (xbar)")
        adcs = -(-xbar.array.cols // xbar.adc.cols_per_adc)
        turns = -(-self.drivers(xbar) // adcs)
        return timing.read_cycles() + turns * timing.adc_cycles(xbar.adc.bits)

    def drivers(self, xbar: XbarConfig) -> int:
        """Write drivers per array on ``xbar``'s arrays (checks the field against them)."""
        cols = xbar.array.cols
        if self.drivers_per_array > cols:
            fail("ProgrammingConfig", "drivers_per_array", self.drivers_per_array,
                 f"an integer in [0, {cols}] (arrays have {cols} bit lines; 0: one per "
                 "bit line)")
        return self.drivers_per_array or cols


@dataclass(frozen=True)
class AdaptationConfig(Params):
    """How the chip runs sparse adaptation (``[adaptation]`` in a hardware TOML file).

    Attributes:
        t_sram_write_ns: One SRAM word write, in ns. Default 1 ns ("about 1 ns per SRAM
            write", Charan et al., JxCDC 2020, work 1 in REFERENCE.md); rounded up to whole
            cycles.
        sram_word_bits: Bits per SRAM word, signed; one word holds one adapted weight.
            Default 8 (the n-bit words of RSA, issue 5; work 1). The functional model
            quantises the trained SRAM weights to it (step = the layer's largest weight /
            (2**(bits-1) - 1)); it sizes the SRAM (reported in bits); timing does not depend
            on it.
        sram_ports: Write ports per SRAM bank: words written per write time. Default 1.
        sram_banks: ``"per-layer"`` (default): each layer's SRAM weights sit in their own
            bank beside its arrays, so layers write in parallel (project choice: RSA adds
            the SRAM result to each array's output). ``"shared"``: one bank for the chip.
        overlap_updates: True (default): a layer's SRAM writes start as soon as its weight
            gradients are done, during the rest of the backward pass. False: after it.
        backward: How the output gradient reaches a layer's input: ``"transposed-read"``
            (default: the RRAM arrays read transposed, timed as a forward pass of the layer
            with signed inputs) or ``"digital"`` (MACs on a digital unit).
        backward_read_factor: Transposed-read pass time / forward pass time, in (0, 1000].
            Default 1.0 (project choice: the same reads and conversions, rows and columns
            swapped on square arrays).
        digital_macs_per_cycle: MACs per cycle of the digital unit when ``backward =
            "digital"``. Default 128 (project choice).
        grad_macs_per_cycle: MACs per cycle of each layer's SRAM weight-gradient unit.
            Default 128 (project choice; REFERENCE.md gives no figure).
        forward_schedule: Schedule of the forward passes: ``"layer"`` (default) or
            ``"pipelined"`` (see :func:`xbar.timing.simulate`).
    """

    SECTION = "adaptation"

    t_sram_write_ns: float = param(1.0, unit="ns", range=(0, 1e6, True, False),
                                   doc="One SRAM word write.")
    sram_word_bits: int = param(8, unit="bits", range=(2, 16), note="signed words",
                                doc="Bits per SRAM word; one word holds one adapted weight.")
    sram_ports: int = param(1, unit="ports", range=(1, 1 << 20),
                            doc="Write ports per SRAM bank: words written per write time.")
    sram_banks: str = param("per-layer", choices=SRAM_BANKS,
                            doc="One SRAM bank per layer (parallel writes) or one shared.")
    overlap_updates: bool = param(
        True, doc="Start a layer's SRAM writes as soon as its gradients are done.")
    backward: str = param("transposed-read", choices=BACKWARD_MODES,
                          doc="How the output gradient reaches a layer's input.")
    backward_read_factor: float = param(1.0, range=(0, 1000, True, False),
                                        doc="Transposed-read pass time / forward pass time.")
    digital_macs_per_cycle: int = param(
        128, unit="MACs/cycle", range=(1, 1 << 30),
        doc="MACs per cycle of the digital unit (backward = digital).")
    grad_macs_per_cycle: int = param(
        128, unit="MACs/cycle", range=(1, 1 << 30),
        doc="MACs per cycle of each layer's SRAM weight-gradient unit.")
    forward_schedule: str = param("layer", choices=SCHEDULES,
                                  doc="Schedule of the forward passes (see xbar latency).")

    def write_cycles(self, timing: TimingConfig) -> int:
        """Cycles of one SRAM word write."""
        return ns_to_cycles(self.t_sram_write_ns, timing.clock_ghz)

