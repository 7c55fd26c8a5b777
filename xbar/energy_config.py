"""The energy and area sections of the hardware configuration: ``[energy]`` and ``[area]``.

Every default names its source: DNN+NeuroSim V1.3 ``Param.cpp`` (22 nm node, 40 nm feature
size of its sub-arrays, a 4 F x 12 F 1T1R cell, a 10 F x 28 F SRAM cell, 2 V write voltage),
MNSIM 2.0 ``ADC.py`` (ADC power and area against resolution; energy of a conversion = power x
(bits + 2) / sample rate), ISAAC (Shafiee et al., ISCA 2016, 32 nm; per-action figures as
the CiMLoop / hwcomponents ISAAC library derives them from the paper's table), Horowitz
(ISSCC 2014, 45 nm: SRAM access, 8-bit multiply and add) and the RRAM programming literature.
Where no source gives a figure the docstring says "project choice". Nothing is scaled between
technology nodes: each figure is used as its source states it, and a user who wants one node
sets the fields (docs/energy.md).

:mod:`xbar.timing.energy` turns the event counts of a mapped network into joules and the units
of the chip into square millimetres with these figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xbar.params import Params, fail, param

__all__ = ["ADC_ENERGY_MODELS", "AreaConfig", "EnergyConfig", "interpolate_table"]

ADC_ENERGY_MODELS = ("mnsim", "per-sample")
"""How a conversion's energy follows from the ADC power table (:class:`EnergyConfig`)."""


def interpolate_table(bits: float, table_bits: tuple[float, ...],
                      table_values: tuple[float, ...]) -> float:
    """A figure at ``bits`` from a resolution table: piecewise linear in log(value) between
    the table's points (exact at them), extended beyond the ends with the end segments' slopes
    (a single point: the same value at every resolution).

    Log-linear because ADC power and area grow roughly geometrically with resolution (the
    MNSIM 2.0 table rises 1.8x from 4 to 6 bits and 1.6x from 6 to 8 bits).
    """
    xs, ys = table_bits, [math.log(v) for v in table_values]
    if len(xs) == 1:
        return float(table_values[0])
    if bits <= xs[0]:
        i = 0
    elif bits >= xs[-1]:
        i = len(xs) - 2
    else:
        i = max(j for j in range(len(xs) - 1) if xs[j] <= bits)
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return float(math.exp(ys[i] + slope * (bits - xs[i])))


def _check_table(owner: str, bits_name: str, bits: tuple[float, ...], values_name: str,
                 values: tuple[float, ...]) -> None:
    if not bits or len(bits) != len(values):
        fail(owner, values_name, list(values),
             f"one value per entry of {bits_name} ({len(bits)} entries), at least one")
    if any(b2 <= b1 for b1, b2 in zip(bits, bits[1:])) or min(bits) < 1:
        fail(owner, bits_name, list(bits), "resolutions >= 1 in strictly increasing order")
    if min(values) <= 0 or any(v2 < v1 for v1, v2 in zip(values, values[1:])):
        fail(owner, values_name, list(values),
             "positive numbers that do not fall as the resolution rises")


@dataclass(frozen=True)
class EnergyConfig(Params):
    """Energy of each event the chip performs (``[energy]`` in a hardware TOML file).

    Attributes:
        input_activity: Mean of (v / read_voltage_v)^2 over the word lines of one array read:
            the fraction of word lines driven in a bit-serial read (an input bit of 1).
            Default 0.5 (project choice: random input bits; ReLU outputs are often sparser,
            which lowers it).
        g_nominal_us: Conductance of a cell, in uS, when the programmed conductances are not
            known (``xbar latency`` maps shapes, not weights). Default 50.5 uS, the middle of
            the default device's range [1, 100] uS (``xbar.devices.Device``); NeuroSim V1.3's
            6 kOhm / 900 kOhm cell gives 83.9 uS. When a chip is programmed, the read energy
            uses its actual conductances instead (:func:`xbar.timing.energy.conductance_sums`).
        dac_1bit_pj: One word-line drive of a 1-bit DAC in one array read, in pJ. Default 0.417
            pJ: ISAAC's 8 x 128 1-bit DACs, 4 mW in total at 1.2 GHz x 128/100 use (32 nm).
            A k-bit DAC (``bits_per_read = k``) costs 2^(k-1) times this (capacitive DAC
            energy doubles with each bit, the scaling of the CiMLoop ISAAC library).
        adc_table_bits: Resolutions of the ADC power table. Default (4, 6, 8): MNSIM 2.0
            ``ADC.py`` choices 7, 4 and 2 (ISAAC).
        adc_table_power_mw: ADC power at those resolutions, in mW, at
            ``adc_reference_gsps``. Default (0.7, 1.26, 2.0): MNSIM 2.0 ``ADC.py``. Other
            resolutions are interpolated log-linearly (:func:`interpolate_table`).
        adc_reference_gsps: Sample rate of the power table, in GS/s. Default 1.0 (MNSIM 2.0).
            A conversion takes (bits + 2) / rate and costs power x that time (MNSIM 2.0's
            ``ADC_energy = ADC_latency x ADC_power``): 20 pJ at 8 bits, 10.1 pJ at 6, 4.2 pJ
            at 4. ISAAC's 8-bit ADC at 1.2 GS/s is 1.67 pJ per sample (one sample per
            conversion): ``adc_energy_model = "per-sample"`` with ``adc_reference_gsps =
            1.2`` reproduces it (benchmarks/hardware/isaac.toml).
        adc_energy_model: How a conversion's energy follows from the table's power:
            ``"mnsim"`` (default): power x (bits + 2) / rate, MNSIM 2.0's ``ADC_energy =
            ADC_latency x ADC_power`` with its latency of bits + 2 clock periods;
            ``"per-sample"``: power / rate, one conversion per sample of an ADC running at
            the table's rate (ISAAC, and the CiMLoop ISAAC library: 16 mW / 8 ADCs / 1.2 GS/s
            = 1.67 pJ).
        shift_add_pj: One shift-and-add of one digitised column value into its running sum,
            in pJ (the differential subtraction included). Default 0.021 pJ: ISAAC's 16-bit
            shift-and-add unit (0.2 mW at 1.2 GS/s x 8 ADCs, 32 nm).
        accumulate_pj: One addition of a partial sum in a layer's row-tile reduction, in pJ.
            Default 0.021 pJ (ISAAC's shift-and-add unit used as the adder).
        post_op_pj: One activation or pooling operation on one output value, in pJ. Default
            0.021 pJ (project choice: one 16-bit compare/add, as ISAAC's shift-and-add).
        buffer_pj_per_byte: One byte written into or read from a layer's input buffer, in pJ.
            Default 0.64 pJ: ISAAC's 64 KB eDRAM, 20.45 pJ per 256-bit access (32 nm).
        interconnect_pj_per_byte: One byte carried by the interconnect, in pJ. Default 0.65
            pJ: ISAAC's router, 20.74 pJ per 256-bit flit (32 nm).
        sram_read_pj_per_bit: Reading one bit of an adaptation SRAM word, in pJ. Default 0.156
            pJ: an 8 KB SRAM, 10 pJ per 64-bit access (Horowitz, ISSCC 2014, 45 nm).
        sram_write_pj_per_bit: Writing one bit of an adaptation SRAM word, in pJ. Default
            0.156 pJ (the same source; a write taken as costly as a read).
        digital_mac_pj: One 8-bit multiply-accumulate on a digital unit (SRAM weights' MVM,
            weight gradients, a digital backward pass), in pJ. Default 0.23 pJ: 8-bit multiply
            0.2 pJ + 8-bit add 0.03 pJ (Horowitz, ISSCC 2014, 45 nm).
        program_pulse_pj: One SET/RESET programming pulse on one cell, in pJ. Default 4.0 pJ
            = V^2 G t with 2 V (NeuroSim V1.3 ``writeVoltage``), 100 uS (the default device's
            g_max: the cell at its most conductive) and a 10 ns pulse (MNSIM 2.0
            ``SimConfig.ini``); the RRAM literature gives 0.1 to 10 pJ per switching event
            (Wong et al., "Metal-oxide RRAM", Proc. IEEE 2012). The 6.5 us write time of work
            1 (``[programming] t_pulse_ns``) is read as time (settling, control, the verify
            loop's overhead), not as power dissipated in the cell for 6.5 us.
        sense_amp_pj: One sensing of one bit line by a write driver's own sense circuit in a
            direct verify read, in pJ. Default 0.0016 pJ: MNSIM 2.0 ``ADC.py`` choice 8 (a
            sense amplifier, 0.1086 x 15 uW at 1 GS/s). A verify read through the column's
            ADC (``verify_read = "adc"``) costs one conversion instead.
    """

    SECTION = "energy"

    input_activity: float = param(0.5, unit="fraction", range=(0, 1, False, False),
                                  doc="Mean (v / V_read)^2 of a word line in one array read.")
    g_nominal_us: float = param(50.5, unit="uS", range=(0, 1e6, False, False),
                                doc="Cell conductance when the programmed ones are unknown.")
    dac_1bit_pj: float = param(0.417, unit="pJ", range=(0, 1e6),
                               doc="One word-line drive of a 1-bit DAC in one array read.")
    adc_table_bits: tuple[float, ...] = param((4.0, 6.0, 8.0), kind=tuple, item=float,
                                              unit="bits",
                                              doc="Resolutions of the ADC power table.")
    adc_table_power_mw: tuple[float, ...] = param(
        (0.7, 1.26, 2.0), kind=tuple, item=float, unit="mW",
        doc="ADC power at those resolutions (at adc_reference_gsps).")
    adc_reference_gsps: float = param(1.0, unit="GS/s", range=(0, 100, True, False),
                                      doc="Sample rate of the ADC power table.")
    adc_energy_model: str = param("mnsim", choices=ADC_ENERGY_MODELS,
                                  doc="Conversion energy: power x (bits + 2) / rate (mnsim) "
                                      "or power / rate (per-sample).")
    shift_add_pj: float = param(0.021, unit="pJ", range=(0, 1e6),
                                doc="One shift-and-add of one digitised column value.")
    accumulate_pj: float = param(0.021, unit="pJ", range=(0, 1e6),
                                 doc="One partial-sum addition of a row-tile reduction.")
    post_op_pj: float = param(0.021, unit="pJ", range=(0, 1e6),
                              doc="One activation/pooling operation on one output value.")
    buffer_pj_per_byte: float = param(0.64, unit="pJ/byte", range=(0, 1e6),
                                      doc="One byte into or out of a layer's input buffer.")
    interconnect_pj_per_byte: float = param(0.65, unit="pJ/byte", range=(0, 1e6),
                                            doc="One byte carried by the interconnect.")
    sram_read_pj_per_bit: float = param(0.156, unit="pJ/bit", range=(0, 1e6),
                                        doc="Reading one bit of an adaptation SRAM word.")
    sram_write_pj_per_bit: float = param(0.156, unit="pJ/bit", range=(0, 1e6),
                                         doc="Writing one bit of an adaptation SRAM word.")
    digital_mac_pj: float = param(0.23, unit="pJ", range=(0, 1e6),
                                  doc="One 8-bit multiply-accumulate on a digital unit.")
    program_pulse_pj: float = param(4.0, unit="pJ", range=(0, 1e9),
                                    doc="One SET/RESET programming pulse on one cell.")
    sense_amp_pj: float = param(0.0016, unit="pJ", range=(0, 1e6),
                                doc="One bit-line sensing of a direct verify read.")

    def check(self) -> None:
        _check_table("EnergyConfig", "adc_table_bits", self.adc_table_bits,
                     "adc_table_power_mw", self.adc_table_power_mw)

    def adc_power_mw(self, bits: float) -> float:
        """ADC power at ``bits`` of resolution, at ``adc_reference_gsps``, in mW."""
        return interpolate_table(bits, self.adc_table_bits, self.adc_table_power_mw)

    def adc_conversion_pj(self, bits: int) -> float:
        """Energy of one conversion, in pJ: power x (bits + 2) / rate (``"mnsim"``, MNSIM
        2.0) or power / rate (``"per-sample"``, ISAAC)."""
        periods = bits + 2 if self.adc_energy_model == "mnsim" else 1
        return self.adc_power_mw(bits) * periods / self.adc_reference_gsps

    def dac_drive_pj(self, bits_per_read: int) -> float:
        """Energy of one word-line drive of a ``bits_per_read``-bit DAC, in pJ."""
        return self.dac_1bit_pj * 2.0 ** (bits_per_read - 1)


@dataclass(frozen=True)
class AreaConfig(Params):
    """Area of each unit of the chip (``[area]`` in a hardware TOML file).

    Attributes:
        feature_size_nm: The feature size F of the arrays, in nm. Default 40 nm: NeuroSim V1.3
            ``featuresize`` (the wire width of its sub-arrays at its 22 nm node).
        cell_f2: Area of one 1T1R cell in F^2. Default 48 = 4 F x 12 F (NeuroSim V1.3
            ``heightInFeatureSize1T1R``, ``widthInFeatureSize1T1R``): 0.077 um^2 at 40 nm.
        array_periphery_um2: Per-array periphery besides the DACs and ADCs (sample-and-hold,
            column multiplexers, decoders), in um^2. Default 5 um^2: ISAAC's sample-and-hold,
            40 um^2 for 8 arrays of 128 x 128 (32 nm); ISAAC lists no decoders (its arrays are
            addressed whole), so a 1T1R array's row decoder is not in this default.
        dac_um2: One word-line DAC (driver), in um^2. Default 0.166 um^2: ISAAC's 8 x 128
            1-bit DACs in 170 um^2 (32 nm).
        adc_table_bits: Resolutions of the ADC area table. Default (4, 6, 8): MNSIM 2.0
            ``ADC.py`` choices 7, 4 and 2 (ISAAC).
        adc_table_area_um2: ADC area at those resolutions, in um^2. Default (500, 580, 1200):
            MNSIM 2.0 ``ADC.py``; interpolated log-linearly in between.
        shift_add_um2: One shift-and-add unit (one per ADC), in um^2. Default 60 um^2: ISAAC's
            16-bit shift-and-add (32 nm).
        adder_um2: One adder lane of an accumulator or activation/pooling unit (a unit
            handling v values per cycle has v lanes), in um^2. Default 60 um^2 (ISAAC's
            16-bit shift-and-add as the adder).
        buffer_um2_per_byte: Input-buffer storage per byte, in um^2. Default 1.27 um^2: ISAAC's
            64 KB eDRAM in 83,000 um^2 (32 nm).
        interconnect_um2_per_byte: Interconnect area per byte of width (per byte per cycle),
            in um^2. Default 234 um^2: ISAAC's bus, 7,500 um^2 for 256 bits (32 nm).
        sram_cell_f2: One SRAM bit cell in F^2. Default 280 = 10 F x 28 F (NeuroSim V1.3
            ``heightInFeatureSizeSRAM``, ``widthInFeatureSizeSRAM``): 0.45 um^2 at 40 nm.
        sram_periphery_fraction: SRAM periphery (decoders, sense amplifiers, write drivers) as
            a fraction of its bit cells' area. Default 0.5 (project choice: small banks spend
            about a third of their area outside the cells).
        mac_um2: One 8-bit multiply-accumulate lane of a digital unit (the SRAM weights'
            gradient unit, a digital backward unit), in um^2. Default 318 um^2: 8-bit
            multiplier 282 um^2 + 8-bit adder 36 um^2 (Horowitz, ISSCC 2014, 45 nm).
    """

    SECTION = "area"

    feature_size_nm: float = param(40.0, unit="nm", range=(0, 1e4, True, False),
                                   doc="Feature size F of the arrays.")
    cell_f2: float = param(48.0, unit="F^2", range=(0, 1e6, True, False),
                           doc="One 1T1R cell.")
    array_periphery_um2: float = param(5.0, unit="um^2", range=(0, 1e9),
                                       doc="Per-array periphery besides DACs and ADCs.")
    dac_um2: float = param(0.166, unit="um^2", range=(0, 1e9),
                           doc="One word-line DAC (driver).")
    adc_table_bits: tuple[float, ...] = param((4.0, 6.0, 8.0), kind=tuple, item=float,
                                              unit="bits",
                                              doc="Resolutions of the ADC area table.")
    adc_table_area_um2: tuple[float, ...] = param((500.0, 580.0, 1200.0), kind=tuple,
                                                  item=float, unit="um^2",
                                                  doc="ADC area at those resolutions.")
    shift_add_um2: float = param(60.0, unit="um^2", range=(0, 1e9),
                                 doc="One shift-and-add unit (one per ADC).")
    adder_um2: float = param(60.0, unit="um^2", range=(0, 1e9),
                             doc="One adder lane of an accumulator or activation unit.")
    buffer_um2_per_byte: float = param(1.27, unit="um^2/byte", range=(0, 1e9),
                                       doc="Input-buffer storage per byte.")
    interconnect_um2_per_byte: float = param(234.0, unit="um^2/byte", range=(0, 1e9),
                                             doc="Interconnect area per byte of width.")
    sram_cell_f2: float = param(280.0, unit="F^2", range=(0, 1e6, True, False),
                                doc="One SRAM bit cell.")
    sram_periphery_fraction: float = param(0.5, unit="fraction", range=(0, 100),
                                           doc="SRAM periphery / its bit cells' area.")
    mac_um2: float = param(318.0, unit="um^2", range=(0, 1e9),
                           doc="One 8-bit MAC lane of a digital unit.")

    def check(self) -> None:
        _check_table("AreaConfig", "adc_table_bits", self.adc_table_bits,
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
