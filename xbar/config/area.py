"""Area of each unit of the chip: the ``[area]`` section.

Sources as for ``[energy]`` (:mod:`xbar.config.energy`): DNN+NeuroSim V1.3 ``Param.cpp`` (40 nm
feature size of its sub-arrays at its 22 nm node, a 4 F x 12 F 1T1R cell, a 10 F x 28 F SRAM
cell), MNSIM 2.0 ``ADC.py`` (ADC area against resolution), ISAAC (32 nm) and Horowitz (ISSCC
2014, 45 nm); nothing is scaled between nodes. :mod:`xbar.timing.area` turns the units of a
mapped chip into square millimetres with these figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbar.config.adc_tables import check_table, interpolate_table
from xbar.params import Params, documented, param

__all__ = ["AreaConfig"]


@documented
@dataclass(frozen=True)
class AreaConfig(Params):
    """Area of each unit of the chip (``[area]`` in a hardware TOML file)."""

    SECTION = "area"

    feature_size_nm: float = param(
        40.0, unit="nm", range=(0, 1e4, True, False),
        doc="Feature size F of the arrays.",
        details="Default: NeuroSim V1.3 ``featuresize`` (the wire width of its sub-arrays at "
                "its 22 nm node).")
    cell_f2: float = param(
        48.0, unit="F^2", range=(0, 1e6, True, False), doc="One 1T1R cell.",
        details="Default: NeuroSim V1.3's cell, 4 F x 12 F (``heightInFeatureSize1T1R``, "
                "``widthInFeatureSize1T1R``): 0.077 um^2 at 40 nm.")
    array_periphery_um2: float = param(
        5.0, unit="um^2", range=(0, 1e9),
        doc="Per-array periphery besides DACs and ADCs.",
        details="Sample-and-hold, column multiplexers, decoders. Default: ISAAC's "
                "sample-and-hold, 40 um^2 for 8 arrays of 128 x 128 (32 nm); ISAAC lists no "
                "decoders (its arrays are addressed whole), so a 1T1R array's row decoder is "
                "not in this default.")
    dac_um2: float = param(
        0.166, unit="um^2", range=(0, 1e9), doc="One word-line DAC (driver).",
        details="Default: ISAAC's 8 x 128 1-bit DACs in 170 um^2 (32 nm).")
    adc_table_bits: tuple[float, ...] = param(
        (4.0, 6.0, 8.0), kind=tuple, item=float, unit="bits",
        doc="Resolutions of the ADC area table.",
        details="Default: MNSIM 2.0 ``ADC.py`` choices 7, 4 and 2 (ISAAC).")
    adc_table_area_um2: tuple[float, ...] = param(
        (500.0, 580.0, 1200.0), kind=tuple, item=float, unit="um^2",
        doc="ADC area at those resolutions.",
        details="Default: MNSIM 2.0 ``ADC.py``; interpolated log-linearly in between "
                "(:func:`xbar.config.adc_tables.interpolate_table`).")
    shift_add_um2: float = param(
        60.0, unit="um^2", range=(0, 1e9), doc="One shift-and-add unit (one per ADC).",
        details="Default: ISAAC's 16-bit shift-and-add (32 nm).")
    adder_um2: float = param(
        60.0, unit="um^2", range=(0, 1e9),
        doc="One adder lane of an accumulator or activation unit.",
        details="A unit handling v values per cycle has v lanes. Default: ISAAC's 16-bit "
                "shift-and-add as the adder.")
    buffer_um2_per_byte: float = param(
        1.27, unit="um^2/byte", range=(0, 1e9), doc="Input-buffer storage per byte.",
        details="Default: ISAAC's 64 KB eDRAM in 83,000 um^2 (32 nm).")
    interconnect_um2_per_byte: float = param(
        234.0, unit="um^2/byte", range=(0, 1e9),
        doc="Interconnect area per byte of width.",
        details="Per byte per cycle of width. Default: ISAAC's bus, 7,500 um^2 for 256 bits "
                "(32 nm).")
    sram_cell_f2: float = param(
        280.0, unit="F^2", range=(0, 1e6, True, False), doc="One SRAM bit cell.",
        details="Default: NeuroSim V1.3's SRAM cell, 10 F x 28 F (``heightInFeatureSizeSRAM``, "
                "``widthInFeatureSizeSRAM``): 0.45 um^2 at 40 nm.")
    sram_periphery_fraction: float = param(
        0.5, unit="fraction", range=(0, 100),
        doc="SRAM periphery / its bit cells' area.",
        details="Decoders, sense amplifiers, write drivers. Default: project choice (small "
                "banks spend about a third of their area outside the cells).")
    mac_um2: float = param(
        318.0, unit="um^2", range=(0, 1e9), doc="One 8-bit MAC lane of a digital unit.",
        details="The SRAM weights' gradient unit, a digital backward unit. Default: Horowitz "
                "(ISSCC 2014, 45 nm), an 8-bit multiplier 282 um^2 + an 8-bit adder 36 um^2.")

    def check(self) -> None:
        check_table("AreaConfig", "adc_table_bits", self.adc_table_bits,
                    "adc_table_area_um2", self.adc_table_area_um2)

    @property
    def f2_um2(self) -> float:
        """One F^2 in um^2."""
        return (self.feature_size_nm * 1e-3) ** 2

    @property
    def cell_um2(self) -> float:
        """One 1T1R cell in um^2."""
        return self.cell_f2 * self.f2_um2

    @property
    def sram_bit_um2(self) -> float:
        """One SRAM bit with its share of the periphery, in um^2."""
        return self.sram_cell_f2 * self.f2_um2 * (1.0 + self.sram_periphery_fraction)

    def adc_um2(self, bits: float) -> float:
        """One ADC at ``bits`` of resolution, in um^2."""
        return interpolate_table(bits, self.adc_table_bits, self.adc_table_area_um2)
