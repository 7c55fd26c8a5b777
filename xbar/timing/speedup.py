"""RSA's speedup over R-V-W: programming plus adaptation time against write-verify time.

The terms come from :func:`xbar.timing.programming.programming_time` (one-shot and R-V-W) and
:func:`xbar.timing.adaptation.adaptation_time`; :func:`rsa_speedup` puts them side by side in
a :class:`Speedup` that exposes every term and the definition used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # both modules import this one
    from xbar.timing.adaptation import AdaptationResult
    from xbar.timing.programming import ProgrammingResult

__all__ = ["SPEEDUP_DEFINITION", "Speedup", "accounting_label", "rsa_speedup"]


@dataclass(frozen=True)
class Speedup:
    """RSA against R-V-W in time, every term exposed.

    ``speedup = rvw_s / (one_shot_s + adaptation_s)``: the time to program every cell with
    write-verify, over the time to program every cell once (one pulse, no verify) and then
    run the adaptation budget on the chip. Neither side counts training data transfer or
    the (equal) time to load the chip's configuration.
    """

    rvw_s: float
    one_shot_s: float
    adaptation_s: float
    rsa_s: float
    speedup: float
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SPEEDUP_DEFINITION = ("speedup = T_rvw / (T_one_shot + T_adapt); T_rvw: write-verify of every "
                      "cell; T_one_shot: one pulse per cell, no verify; T_adapt: steps x "
                      "(forward + backward + SRAM writes not hidden)")


def rsa_speedup(rvw: ProgrammingResult, one_shot: ProgrammingResult,
                adaptation: AdaptationResult) -> Speedup:
    """The speedup of one-shot programming plus adaptation over R-V-W (see :class:`Speedup`)."""
    rsa = one_shot.total_s + adaptation.total_s
    return Speedup(rvw_s=rvw.total_s, one_shot_s=one_shot.total_s,
                   adaptation_s=adaptation.total_s, rsa_s=rsa,
                   speedup=rvw.total_s / rsa if rsa > 0 else float("inf"),
                   definition=SPEEDUP_DEFINITION)


def accounting_label(hw: Any) -> str:
    """The R-V-W accounting a speedup was computed under on the hardware ``hw`` (its
    ``[programming]`` section), in words: write drivers per array, arrays programmed at once,
    how a verify read is sensed, and the write time per pulse.

    ``full-chip`` and ``cell-by-cell`` name the two hardware presets
    (:data:`xbar.config.HARDWARE_PRESETS`); any other setting is described as it is.
    """
    programming = hw.programming
    d = programming.drivers_per_array
    drivers = f"{d} write driver{'s' if d != 1 else ''} per array" if d else \
        "a write driver per bit line"
    at_once = ("every array at once" if programming.arrays_at_once == 0 else
               f"{programming.arrays_at_once} array{'s' if programming.arrays_at_once != 1 else ''}"
               " at a time")
    verify = ("verify through the column's shared ADC" if programming.verify_read == "adc"
              else f"{programming.t_verify_ns:g} ns verify")
    name = ""
    if d == 1 and programming.arrays_at_once == 0 and programming.verify_read == "adc":
        name = "cell-by-cell accounting: "
    elif d == 0 and programming.arrays_at_once == 1 and programming.verify_read == "direct":
        name = "full-chip accounting: "
    return (f"{name}{drivers}, {at_once}, {verify}, {programming.driver_sync}-synchronous; "
            f"write {programming.t_pulse_ns / 1000:g} us per pulse")
