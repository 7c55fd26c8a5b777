"""The array and its converters: the ``[array]``, ``[dac]`` and ``[adc]`` sections.

What the functional model computes with (grouped as :class:`xbar.config.XbarConfig`), and
what the timing and cost models reuse (rows, columns, input bits, ADC bits, columns per ADC):
each is declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbar.errors import ConfigError
from xbar.params import INF, Params, documented, param

__all__ = ["ADCConfig", "ADC_RANGES", "ArrayConfig", "DACConfig", "WEIGHT_MAPPINGS"]

WEIGHT_MAPPINGS = ("differential", "offset")
"""How a signed weight sits in cells (:attr:`ArrayConfig.weight_mapping`)."""
ADC_RANGES = ("full-scale", "calibrated")
"""How an ADC's current range is set (:attr:`ADCConfig.range_mode`)."""


@documented
@dataclass(frozen=True)
class ArrayConfig(Params):
    """One crossbar array (a 1T1R tile)."""

    SECTION = "array"

    rows: int = param(128, unit="word lines", range=(1, 65536),
                      doc="Word lines (inputs) per array.",
                      details="A weight matrix's input dimension is split over ceil(n_in / "
                              "rows) row tiles whose partial sums are added digitally.")
    cols: int = param(128, unit="bit lines", range=(1, 65536),
                      doc="Bit lines (outputs) per array; offset mapping needs >= 2.")
    weight_mapping: str = param(
        "differential", choices=WEIGHT_MAPPINGS,
        doc="A weight as a cell pair (G+ - G-) or one cell against a reference column.",
        details="``differential``: each weight is a pair of cells in two arrays, w ~ G+ - G-, "
                "each bit line digitised and the pair subtracted digitally (the NeuroSim "
                "scheme); a tile is that array pair. ``offset``: one cell per weight, w ~ G - "
                "G_ref, where G_ref is the current of a reference bit line of cells at the "
                "middle level, beside the weights in the same array (so ``cols - 1`` weight "
                "columns per array), digitised like any column and subtracted digitally.")
    read_voltage_v: float = param(0.5, unit="V", range=(0, 5, True, False),
                                  doc="Word-line read voltage of a full-scale input slice.",
                                  details="Default: NeuroSim V1.3.")
    wire_resistance_ohm: float = param(
        0.0, unit="ohm", range=(0, 1e6), note="0: ideal wires",
        doc="Resistance of one cell pitch of word line and of bit line (IR drop).",
        details="Above 0 every read is the exact solve of the array's resistive network "
                "(:mod:`xbar.ir_drop`, docs/ir_drop.md).")
    access_resistance_ohm: float = param(
        0.0, unit="ohm", range=(0, 1e9), note="0: included in the cell's conductance",
        doc="Access transistor on-resistance in series with each cell.",
        details="0 when the cell's conductances already include it (a 1T1R cell measured as "
                "a whole, as the presets' are).")

    def check(self) -> None:
        if self.weight_mapping == "offset" and self.cols < 2:
            raise ConfigError(f"ArrayConfig.cols = {self.cols!r} is invalid; allowed: an "
                              "integer in [2, 65536] (offset mapping needs a reference column)")

    @property
    def weight_cols(self) -> int:
        """Weight columns per array (one fewer in the offset scheme: the reference)."""
        return self.cols - 1 if self.weight_mapping == "offset" else self.cols


@documented
@dataclass(frozen=True)
class DACConfig(Params):
    """Input digital-to-analog conversion.

    Signed inputs run as two passes, the positive part then the negative part, each with
    ``input_bits`` bits, subtracted digitally; a layer whose inputs are never negative (after
    a ReLU) runs one pass.
    """

    SECTION = "dac"

    input_bits: int = param(8, unit="bits", range=(1, 16),
                            doc="Magnitude bits of each input.",
                            details="Inputs are quantised to round(|x| / x_max * "
                                    "(2**input_bits - 1)).")
    bits_per_read: int = param(
        1, unit="bits", range=(1, 16), note="at most input_bits",
        doc="Input bits per array read (1: bit-serial).",
        details="1 drives each word line at 0 or read_voltage_v. k > 1 is a multi-bit DAC "
                "driving (slice / (2**k - 1)) * read_voltage_v, with ceil(input_bits / k) "
                "reads.")

    def check(self) -> None:
        if self.bits_per_read > self.input_bits:
            raise ConfigError(f"DACConfig.bits_per_read = {self.bits_per_read!r} is invalid; "
                              f"allowed: an integer in [1, {self.input_bits}] (at most "
                              "input_bits)")

    @property
    def n_slices(self) -> int:
        """Array reads per input pass."""
        return -(-self.input_bits // self.bits_per_read)


@documented
@dataclass(frozen=True)
class ADCConfig(Params):
    """Column analog-to-digital conversion."""

    SECTION = "adc"

    bits: int = param(8, unit="bits", range=(1, 16), doc="ADC resolution.",
                      details="A column current I becomes clip(round(I / I_range * (2**bits - "
                              "1)), 0, 2**bits - 1).")
    range_mode: str = param(
        "calibrated", choices=ADC_RANGES,
        doc="ADC range: the array's full scale or calibrated per tile.",
        details="``full-scale``: I_range is the largest current the array can carry, "
                "rows_used * read_voltage_v * g_max (every input at full scale, every cell at "
                "g_max). ``calibrated``: I_range is set per tile from data (the largest "
                "noise-free column current seen on calibration inputs), so the ADC codes span "
                "what the tile actually produces; currents above it clip.")
    cols_per_adc: int = param(8, unit="bit lines", range=(1, 65536),
                              doc="Bit lines sharing one ADC (timing only).",
                              details="They share it through a multiplexer; the functional "
                                      "model digitises every column.")
    calibration_headroom: float = param(
        1.0, unit="-", range=(0, INF, True, True), note="1: the calibrated peak itself",
        doc="Calibrated range = this x the largest noise-free current on the calibration "
            "inputs.",
        details="``range_mode = calibrated`` only. 1 leaves no margin: a read-noise "
                "excursion, or an input stronger than any calibration input, clips at the "
                "top code. Above 1 such currents stay in range at the cost of a coarser step "
                "(I_range / (2**bits - 1)); below 1 the largest currents clip on purpose for "
                "a finer step.")
