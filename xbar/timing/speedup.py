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

__all__ = ["SPEEDUP_DEFINITION", "Speedup", "rsa_speedup"]


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
