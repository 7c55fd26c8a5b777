"""When things happen on the chip: the ``[timing]`` section.

What the arrays and converters *are* (rows, columns, weight mapping, input bits, bits per
read, ADC bits, columns per ADC) lives in :mod:`xbar.config.array` and is reused here, never
duplicated. :class:`TimingConfig` adds the clock, the read pulse, the ADC sample rate, the
digital units and the interconnect; the engines in :mod:`xbar.timing` read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xbar.errors import ConfigError
from xbar.params import Params, documented, param

__all__ = ["SCHEDULES", "TimingConfig", "ns_to_cycles"]

SCHEDULES = ("layer", "pipelined")
"""How layers follow each other in time (:func:`xbar.timing.engine.simulate`)."""
_EPS = 1e-9


def ns_to_cycles(ns: float, clock_ghz: float) -> int:
    """Whole clock cycles covering ``ns`` nanoseconds (rounded up, at least 1)."""
    return max(1, math.ceil(ns * clock_ghz - _EPS))


@documented
@dataclass(frozen=True)
class TimingConfig(Params):
    """When things happen on the chip. Every duration is a whole number of clock cycles."""

    SECTION = "timing"

    clock_ghz: float = param(
        1.0, unit="GHz", range=(0, 100, True, False),
        doc="The chip clock; every duration is whole cycles of it.",
        details="cycles / clock_ghz = nanoseconds. Default: the rate of the 1 GS/s ADC (MNSIM "
                "2.0 ``ADC.py``), so one ADC sample is one cycle.")
    t_read_ns: float = param(
        10.0, unit="ns", range=(0, 1e6, True, False),
        doc="One array read (one input bit-slice), rounded up to cycles.",
        details="One input bit-slice on the word lines, every bit line sensed. Default: the "
                "read pulse of DNN+NeuroSim V1.3 ``Param.cpp``.")
    adc_gsps: float = param(
        1.0, unit="GS/s", range=(0, 100, True, False),
        doc="ADC sample rate; a conversion takes (adc.bits + 2) / rate.",
        details="One conversion takes (adc.bits + 2) / adc_gsps ns (MNSIM 2.0 ``ADC.py``), "
                "rounded up to whole cycles: 10 cycles for an 8-bit ADC at 1 GS/s and 1 "
                "GHz. The resolution itself is ``[adc] bits``.")
    shift_add_cycles: int = param(
        1, unit="cycles", range=(0, 1_000_000),
        doc="Shift-and-add of one bit-slice after its conversions.",
        details="Adds one bit-slice's digitised columns into the running sums, after that "
                "slice's last conversion. Default: project choice (one adder per ADC, a shift "
                "and an add per cycle; REFERENCE.md gives no figure).")
    overlap_read_convert: bool = param(
        True, doc="Sample-and-hold: read slice s+1 while the ADCs convert slice s.",
        details="True: each column's sample-and-hold lets the array read of slice s+1 run "
                "while the ADCs convert slice s, so read, conversion and shift-add form a "
                "three-stage pipeline over the slices. False: each slice is read, converted "
                "and added before the next read starts. Default: project choice (a "
                "sample-and-hold per bit line; REFERENCE.md gives no figure).")
    tiles_per_adc_group: int = param(
        1, unit="tiles", range=(1, 65536),
        doc="Tiles sharing one ADC group through a multiplexer.",
        details="Tiles are array pairs in the differential mapping. A tile holds its group "
                "for a whole burst of MVMs; tiles sharing a group take turns, first come "
                "first served. Default: each tile has its own ADCs (``[adc] cols_per_adc`` "
                "columns per ADC, as in NeuroSim's 128 x 128 array with 8 columns per ADC).")
    interconnect_bytes_per_cycle: int = param(
        32, unit="bytes/cycle", range=(1, 1 << 30),
        doc="Width of the interconnect that carries each layer's input feature map.",
        details="The one interconnect carries every layer's input feature map (activations "
                "of ceil(input_bits / 8) bytes) from the buffer to the layer's tiles; a "
                "transfer of B bytes takes ceil(B / width) cycles and holds the interconnect. "
                "Default: a 256-bit bus at the chip clock (project choice, REFERENCE.md gives "
                "no figure).")
    accumulator_values_per_cycle: int = param(
        128, unit="values/cycle", range=(1, 1 << 20),
        doc="Partial sums a layer's accumulator adds per cycle (row-tile reduction).",
        details="Reducing the partial sums of the row tiles that split the layer's inputs "
                "takes (row_tiles - 1) * ceil(n_out / this) cycles per output position. "
                "Default: one array width per cycle (project choice).")
    accumulator_units: int = param(
        0, unit="units", range=(0, 1 << 20), note="0: one per layer",
        doc="Accumulators shared by all layers; 0 gives each layer its own.",
        details="N > 0: all layers share a pool of N accumulators (contention under the "
                "pipelined schedule); 0: no contention.")
    post_op_values_per_cycle: int = param(
        128, unit="values/cycle", range=(1, 1 << 20),
        doc="Values the activation/pooling unit of a layer handles per cycle.",
        details="ceil(n_out / this) cycles per output position. Default: project choice.")
    duplication: int = param(
        1, unit="copies", range=(1, 4096),
        doc="Copies of each duplicated conv layer's tile set.",
        details="Copy c computes the positions c, c + d, ... of each output row, so a row "
                "takes ceil(W_out / d) MVMs instead of W_out. Capped at W_out (further copies "
                "would sit idle).")
    duplicate_layers: tuple[str, ...] = param(
        (), kind=tuple, item=str, note="conv layer names; empty: every conv layer",
        doc="Names of the conv layers to duplicate; empty means every conv layer.",
        details="A name that is not a conv layer of the simulated network is refused when "
                "the network is simulated (:meth:`check_layer_names`).")
    line_buffer_rows: int = param(
        0, unit="rows", range=(0, 1 << 20), note="0: unbounded",
        doc="Pipelined schedule: each layer's input line buffer, in input rows.",
        details="Capacity in rows of the layer's input feature map (a Linear layer's whole "
                "input counts as one row). A producer waits for free rows before sending; "
                "rows are freed when every tile of the consumer has finished the last output "
                "row that reads them. Too small a buffer to hold one output row's window is "
                "refused when the network is simulated.")

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
