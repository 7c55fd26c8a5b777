"""Energy of each event the chip performs: the ``[energy]`` section.

Every default names its source: DNN+NeuroSim V1.3 ``Param.cpp`` (2 V write voltage), MNSIM
2.0 ``ADC.py`` (ADC power against resolution; energy of a conversion = power x (bits + 2) /
sample rate), ISAAC (Shafiee et al., ISCA 2016, 32 nm; per-action figures as the CiMLoop /
hwcomponents ISAAC library derives them from the paper's table), Horowitz (ISSCC 2014, 45 nm:
SRAM access, 8-bit multiply and add) and the RRAM programming literature. Where no source
gives a figure the field says "project choice". Nothing is scaled between technology nodes:
each figure is used as its source states it, and a user who wants one node sets the fields
(docs/energy.md). :mod:`xbar.timing.energy` turns the event counts of a mapped network into
joules with these figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbar.config.adc_tables import check_table, interpolate_table
from xbar.params import Params, documented, param

__all__ = ["ADC_ENERGY_MODELS", "EnergyConfig"]

ADC_ENERGY_MODELS = ("mnsim", "per-sample")
"""How a conversion's energy follows from the ADC power table (:class:`EnergyConfig`)."""


@documented
@dataclass(frozen=True)
class EnergyConfig(Params):
    """Energy of each event the chip performs (``[energy]`` in a hardware TOML file)."""

    SECTION = "energy"

    input_activity: float = param(
        0.5, unit="fraction", range=(0, 1, False, False),
        doc="Mean (v / V_read)^2 of a word line in one array read.",
        details="The mean over the word lines of one array read: the fraction of word lines "
                "driven in a bit-serial read (an input bit of 1). Default: project choice "
                "(random input bits; ReLU outputs are often sparser, which lowers it).")
    g_nominal_us: float = param(
        50.5, unit="uS", range=(0, 1e6, False, False),
        doc="Cell conductance when the programmed ones are unknown.",
        details="``xbar latency`` maps shapes, not weights. Default: the middle of the "
                "default device's range [1, 100] uS (``xbar.devices.Device``); NeuroSim V1.3's "
                "6 kOhm / 900 kOhm cell gives 83.9 uS. When a chip is programmed, the read "
                "energy uses its actual conductances instead "
                "(:func:`xbar.timing.energy.conductance_sums`).")
    dac_1bit_pj: float = param(
        0.417, unit="pJ", range=(0, 1e6),
        doc="One word-line drive of a 1-bit DAC in one array read.",
        details="Default: ISAAC's 8 x 128 1-bit DACs, 4 mW in total at 1.2 GHz x 128/100 use "
                "(32 nm). A k-bit DAC (``bits_per_read = k``) costs 2^(k-1) times this "
                "(capacitive DAC energy doubles with each bit, the scaling of the CiMLoop "
                "ISAAC library).")
    adc_table_bits: tuple[float, ...] = param(
        (4.0, 6.0, 8.0), kind=tuple, item=float, unit="bits",
        doc="Resolutions of the ADC power table.",
        details="Default: MNSIM 2.0 ``ADC.py`` choices 7, 4 and 2 (ISAAC).")
    adc_table_power_mw: tuple[float, ...] = param(
        (0.7, 1.26, 2.0), kind=tuple, item=float, unit="mW",
        doc="ADC power at those resolutions (at adc_reference_gsps).",
        details="Default: MNSIM 2.0 ``ADC.py``. Other resolutions are interpolated "
                "log-linearly (:func:`xbar.config.adc_tables.interpolate_table`).")
    adc_reference_gsps: float = param(
        1.0, unit="GS/s", range=(0, 100, True, False),
        doc="Sample rate of the ADC power table.",
        details="Default: MNSIM 2.0. A conversion takes (bits + 2) / rate and costs power x "
                "that time (MNSIM 2.0's ``ADC_energy = ADC_latency x ADC_power``): 20 pJ at 8 "
                "bits, 10.1 pJ at 6, 4.2 pJ at 4. ISAAC's 8-bit ADC at 1.2 GS/s is 1.67 pJ per "
                "sample (one sample per conversion): ``adc_energy_model = per-sample`` with "
                "``adc_reference_gsps = 1.2`` reproduces it (benchmarks/hardware/isaac.toml).")
    adc_energy_model: str = param(
        "mnsim", choices=ADC_ENERGY_MODELS,
        doc="Conversion energy: power x (bits + 2) / rate (mnsim) or power / rate "
            "(per-sample).",
        details="``mnsim``: MNSIM 2.0's ``ADC_energy = ADC_latency x ADC_power`` with its "
                "latency of bits + 2 clock periods. ``per-sample``: one conversion per sample "
                "of an ADC running at the table's rate (ISAAC, and the CiMLoop ISAAC library: "
                "16 mW / 8 ADCs / 1.2 GS/s = 1.67 pJ).")
    shift_add_pj: float = param(
        0.021, unit="pJ", range=(0, 1e6),
        doc="One shift-and-add of one digitised column value.",
        details="Into its running sum, the differential subtraction included. Default: "
                "ISAAC's 16-bit shift-and-add unit (0.2 mW at 1.2 GS/s x 8 ADCs, 32 nm).")
    accumulate_pj: float = param(
        0.021, unit="pJ", range=(0, 1e6),
        doc="One partial-sum addition of a row-tile reduction.",
        details="Default: ISAAC's shift-and-add unit used as the adder.")
    post_op_pj: float = param(
        0.021, unit="pJ", range=(0, 1e6),
        doc="One activation/pooling operation on one output value.",
        details="Default: project choice (one 16-bit compare/add, as ISAAC's shift-and-add).")
    buffer_pj_per_byte: float = param(
        0.64, unit="pJ/byte", range=(0, 1e6),
        doc="One byte into or out of a layer's input buffer.",
        details="Default: ISAAC's 64 KB eDRAM, 20.45 pJ per 256-bit access (32 nm).")
    interconnect_pj_per_byte: float = param(
        0.65, unit="pJ/byte", range=(0, 1e6),
        doc="One byte carried by the interconnect.",
        details="Default: ISAAC's router, 20.74 pJ per 256-bit flit (32 nm).")
    sram_read_pj_per_bit: float = param(
        0.156, unit="pJ/bit", range=(0, 1e6),
        doc="Reading one bit of an adaptation SRAM word.",
        details="Default: an 8 KB SRAM, 10 pJ per 64-bit access (Horowitz, ISSCC 2014, 45 nm).")
    sram_write_pj_per_bit: float = param(
        0.156, unit="pJ/bit", range=(0, 1e6),
        doc="Writing one bit of an adaptation SRAM word.",
        details="Default: the same source as the read; a write taken as costly as a read.")
    digital_mac_pj: float = param(
        0.23, unit="pJ", range=(0, 1e6),
        doc="One 8-bit multiply-accumulate on a digital unit.",
        details="The SRAM weights' MVM, weight gradients, a digital backward pass. Default: "
                "Horowitz (ISSCC 2014, 45 nm), an 8-bit multiply 0.2 pJ + an 8-bit add 0.03 "
                "pJ.")
    program_pulse_pj: float = param(
        4.0, unit="pJ", range=(0, 1e9),
        doc="One SET/RESET programming pulse on one cell.",
        details="Default: V^2 G t with 2 V (NeuroSim V1.3 ``writeVoltage``), 100 uS (the "
                "default device's g_max: the cell at its most conductive) and a 10 ns pulse "
                "(MNSIM 2.0 ``SimConfig.ini``); the RRAM literature gives 0.1 to 10 pJ per "
                "switching event (Wong et al., \"Metal-oxide RRAM\", Proc. IEEE 2012). The "
                "6.5 us write time of work 1 (``[programming] t_pulse_ns``) is read as time "
                "(settling, control, the verify loop's overhead), not as power dissipated in "
                "the cell for 6.5 us.")
    sense_amp_pj: float = param(
        0.0016, unit="pJ", range=(0, 1e6),
        doc="One bit-line sensing of a direct verify read.",
        details="By a write driver's own sense circuit. Default: MNSIM 2.0 ``ADC.py`` choice "
                "8 (a sense amplifier, 0.1086 x 15 uW at 1 GS/s). A verify read through the "
                "column's ADC (``verify_read = adc``) costs one conversion instead.")

    def check(self) -> None:
        check_table("EnergyConfig", "adc_table_bits", self.adc_table_bits,
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
