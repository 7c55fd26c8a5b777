"""Timing-only hardware parameters (``[timing]`` in a hardware TOML file).

What the arrays and converters *are* (rows, columns, weight mapping, input bits, bits per
read, ADC bits, columns per ADC) lives in :class:`xbar.config.XbarConfig` and is reused here,
never duplicated. :class:`TimingConfig` adds only what decides *when* things happen: the
clock, the read pulse, the ADC sample rate, the digital units and the interconnect.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from xbar.config import XbarConfig, hardware_document
from xbar.errors import ConfigError

_EPS = 1e-9


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"TimingConfig.{name} = {value!r} is invalid; allowed: {allowed}")


def _int_in(name: str, value: Any, lo: int, hi: int, why: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(name, value, f"an integer in [{lo}, {hi}]{why}")


def _float_in(name: str, value: Any, lo: float, hi: float, unit: str) -> None:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or not lo < value <= hi):
        _fail(name, value, f"a number in ({lo:g}, {hi:g}] {unit}")


def ns_to_cycles(ns: float, clock_ghz: float) -> int:
    """Whole clock cycles covering ``ns`` nanoseconds (rounded up, at least 1)."""
    return max(1, math.ceil(ns * clock_ghz - _EPS))


@dataclass(frozen=True)
class TimingConfig:
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
            every conv layer.
        line_buffer_rows: Pipelined schedule only: capacity of each layer's input line
            buffer, in rows of its input feature map (a Linear layer's whole input counts as
            one row). A producer waits for free rows before sending; rows are freed when every
            tile of the consumer has finished the last output row that reads them. 0 (the
            default) means unbounded. Too small a buffer to hold one output row's window is
            refused when the network is simulated.
    """

    clock_ghz: float = 1.0
    t_read_ns: float = 10.0
    adc_gsps: float = 1.0
    shift_add_cycles: int = 1
    overlap_read_convert: bool = True
    tiles_per_adc_group: int = 1
    interconnect_bytes_per_cycle: int = 32
    accumulator_values_per_cycle: int = 128
    accumulator_units: int = 0
    post_op_values_per_cycle: int = 128
    duplication: int = 1
    duplicate_layers: tuple[str, ...] = ()
    line_buffer_rows: int = 0

    def __post_init__(self) -> None:
        _float_in("clock_ghz", self.clock_ghz, 0.0, 100.0, "GHz")
        _float_in("t_read_ns", self.t_read_ns, 0.0, 1e6, "ns")
        _float_in("adc_gsps", self.adc_gsps, 0.0, 100.0, "GS/s")
        _int_in("shift_add_cycles", self.shift_add_cycles, 0, 1_000_000)
        if not isinstance(self.overlap_read_convert, bool):
            _fail("overlap_read_convert", self.overlap_read_convert, "true or false")
        _int_in("tiles_per_adc_group", self.tiles_per_adc_group, 1, 65536)
        _int_in("interconnect_bytes_per_cycle", self.interconnect_bytes_per_cycle, 1,
                1 << 30)
        _int_in("accumulator_values_per_cycle", self.accumulator_values_per_cycle, 1,
                1 << 20)
        _int_in("accumulator_units", self.accumulator_units, 0, 1 << 20,
                " (0: one per layer)")
        _int_in("post_op_values_per_cycle", self.post_op_values_per_cycle, 1, 1 << 20)
        _int_in("duplication", self.duplication, 1, 4096)
        given = self.duplicate_layers
        if isinstance(given, str):
            given = (given,)
        if (not isinstance(given, (list, tuple))
                or not all(isinstance(n, str) and n for n in given)):
            _fail("duplicate_layers", self.duplicate_layers, "a list of layer names")
        object.__setattr__(self, "duplicate_layers", tuple(given))
        _int_in("line_buffer_rows", self.line_buffer_rows, 0, 1 << 20, " (0: unbounded)")

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

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["duplicate_layers"] = list(self.duplicate_layers)
        return doc

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "[timing]") -> "TimingConfig":
        """Build from the fields of a ``[timing]`` table; unknown fields are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown} in [timing]; valid fields: "
                             f"{sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> "TimingConfig":
        doc = self.to_dict()
        doc.update(changes)
        return TimingConfig.from_dict(doc, "TimingConfig.replace")


def load_hardware(path: str | Path) -> tuple[XbarConfig, TimingConfig]:
    """Read a hardware TOML file (or preset name): ``[array]``, ``[dac]``, ``[adc]``,
    ``[timing]``.

    Missing sections and fields take their defaults; unknown fields in these sections are
    an error naming the file. Other sections are left to their own readers.
    """
    doc, label = hardware_document(path)
    xbar = XbarConfig.from_dict(doc, label)
    timing = TimingConfig.from_dict(dict(doc.get("timing", {})), label)
    return xbar, timing


def hardware_to_toml(xbar: XbarConfig, timing: TimingConfig) -> str:
    """The TOML text of a hardware file that :func:`load_hardware` reads back unchanged."""
    lines: list[str] = []
    sections = dict(xbar.to_dict())
    sections["timing"] = timing.to_dict()
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")
