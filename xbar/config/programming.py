"""How the chip programs its RRAM cells: the ``[programming]`` section.

Durations are rounded up to whole cycles of :attr:`xbar.config.timing.TimingConfig.clock_ghz`;
the engine that schedules the writes is :mod:`xbar.timing.programming`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xbar.config.timing import TimingConfig, ns_to_cycles
from xbar.devices.write_verify import StoppingRule
from xbar.errors import ConfigError
from xbar.params import Params, documented, fail, param

if TYPE_CHECKING:
    from xbar.config.hardware import XbarConfig

__all__ = ["ARRAY_ORDERS", "DRIVER_SYNCS", "ProgrammingConfig", "VERIFY_READS"]

VERIFY_READS = ("direct", "adc")
"""How a verify read is sensed (:attr:`ProgrammingConfig.verify_read`)."""
DRIVER_SYNCS = ("row", "independent")
"""How an array's write drivers keep step (:attr:`ProgrammingConfig.driver_sync`)."""
ARRAY_ORDERS = ("mapping", "longest-first")
"""How arrays queue for the programming slots (:attr:`ProgrammingConfig.array_order`)."""


@documented
@dataclass(frozen=True)
class ProgrammingConfig(Params):
    """How the chip programs its RRAM cells (``[programming]`` in a hardware TOML file)."""

    SECTION = "programming"

    t_pulse_ns: float = param(
        6500.0, unit="ns", range=(0, 1e9, True, False),
        doc="One SET/RESET programming pulse on one cell.",
        details="Driver settling included. Default: the low end of the \"RRAM write time per "
                "cell, 6.5 us to 4.5 ms\" of Charan et al., JxCDC 2020 (work 1 in "
                "REFERENCE.md), read as the time of one write (one pulse) of one cell; the "
                "benchmark sweeps the whole range. MNSIM 2.0's ``SimConfig.ini`` has a 10 ns "
                "write pulse at 3 V, a far faster device.")
    t_verify_ns: float = param(
        10.0, unit="ns", range=(0, 1e9, True, False),
        doc="One verify read of one cell.",
        details="With ``verify_read = direct``. Default: the read pulse of DNN+NeuroSim V1.3 "
                "``Param.cpp`` (as ``[timing] t_read_ns``).")
    verify_read: str = param(
        "direct", choices=VERIFY_READS,
        doc="direct: own sense circuit (t_verify_ns); adc: array read plus a conversion on "
            "the column's shared ADC.",
        details="``direct``: each write driver has its own sense circuit and a verify takes "
                "``t_verify_ns``. ``adc``: the verify is an array read of the cell (``[timing] "
                "t_read_ns``) digitised by the column's shared ADC (one conversion, "
                "``(adc.bits + 2) / adc_gsps``); the ``D`` drivers of an array verify together "
                "and share its ``ceil(cols / cols_per_adc)`` ADCs, so a verify takes ``t_read "
                "+ ceil(D / adcs) * t_conversion`` (in whole cycles). This is how the papers' "
                "\"cell-by-cell\" R-V-W reads back through the inference periphery (work 1); "
                "the ``cell-by-cell`` hardware preset uses it.")
    drivers_per_array: int = param(
        0, unit="drivers", range=(0, 65536), note="0: one per bit line",
        doc="Write drivers per array; driver d serves bit lines d, d + D, ...",
        details="Each array of a differential pair has its own. 0 means one per bit line "
                "(``[array] cols``), the most parallel choice; at most ``cols``.")
    arrays_at_once: int = param(
        1, unit="arrays", range=(0, 1 << 30), note="0: no limit",
        doc="Arrays the chip may program at the same time.",
        details="A chip-level budget of write power and programming-voltage supplies. "
                "Default: project choice (programming current of a whole array's drivers at "
                "3 V is in the tens of mA, so the conservative default is one array at a "
                "time; REFERENCE.md gives no figure).")
    driver_sync: str = param(
        "row", choices=DRIVER_SYNCS,
        doc="row: drivers share the selected row; independent: own pace.",
        details="``row``: the drivers of an array work on one selected row at a time and the "
                "next row starts when the slowest is done (a 1T1R array selects one word line "
                "at a time; project choice). ``independent``: each driver walks its own cells "
                "at its own pace (optimistic bound).")
    array_order: str = param(
        "mapping", choices=ARRAY_ORDERS,
        doc="Order in which arrays queue for the programming slots.",
        details="``mapping``: layer, row tile, column tile, G+ then G-. ``longest-first``: "
                "the longest-processing-time rule, a shorter makespan when slots are few.")
    max_pulses: int = param(
        0, unit="pulses", range=(0, 10_000_000),
        note="0: the write-verify loop's own per-level caps",
        doc="R-V-W pulse cap per cell (the controller's stopping rule).",
        details="0: the write-verify loop's own per-level caps (for the RADAR fits, and the "
                "transfer rule that carries them to other devices, those of the chip RADAR "
                "measured: a median of 1,933 pulses for 3 bits per cell). A cell not verified "
                "by the cap fails.")
    abort_after: int = param(
        0, unit="pulses", range=(0, 10_000_000), note="0: off",
        doc="Stop a cell after this many non-moving pulses in a row.",
        details="Early abort: pulses that each moved the cell's conductance by at most "
                "``abort_tolerance`` of its value (a stuck cell never moves). The stopping "
                "rule decides what a stuck cell outside its verify window costs, and with it "
                "most of T_rvw on a chip with stuck-at faults (docs/programming_time.md).")
    abort_tolerance: float = param(
        0.01, unit="fraction", range=(0, 1, False, True),
        doc="A pulse moving a cell by at most this fraction of its conductance does not "
            "move it.")

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
