"""How the chip runs sparse adaptation: the ``[adaptation]`` section.

The SRAM that holds the adapted weights and the backward pass that trains them on chip; the
engine that times a step is :mod:`xbar.timing.adaptation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbar.config.timing import SCHEDULES, TimingConfig, ns_to_cycles
from xbar.params import Params, documented, param

__all__ = ["AdaptationConfig", "BACKWARD_MODES", "SRAM_BANKS"]

BACKWARD_MODES = ("transposed-read", "digital")
"""How the output gradient reaches a layer's input (:attr:`AdaptationConfig.backward`)."""
SRAM_BANKS = ("per-layer", "shared")
"""Where the SRAM words sit (:attr:`AdaptationConfig.sram_banks`)."""


@documented
@dataclass(frozen=True)
class AdaptationConfig(Params):
    """How the chip runs sparse adaptation (``[adaptation]`` in a hardware TOML file)."""

    SECTION = "adaptation"

    t_sram_write_ns: float = param(
        1.0, unit="ns", range=(0, 1e6, True, False), doc="One SRAM word write.",
        details="Rounded up to whole cycles. Default: \"about 1 ns per SRAM write\", Charan "
                "et al., JxCDC 2020 (work 1 in REFERENCE.md).")
    sram_word_bits: int = param(
        8, unit="bits", range=(2, 16), note="signed words",
        doc="Bits per SRAM word; one word holds one adapted weight.",
        details="Default: the n-bit words of RSA (issue 5; work 1). The functional model "
                "quantises the trained SRAM weights to it (step = the layer's largest weight "
                "/ (2**(bits-1) - 1)); it sizes the SRAM (reported in bits); timing does not "
                "depend on it.")
    sram_ports: int = param(1, unit="ports", range=(1, 1 << 20),
                            doc="Write ports per SRAM bank: words written per write time.")
    sram_banks: str = param(
        "per-layer", choices=SRAM_BANKS,
        doc="One SRAM bank per layer (parallel writes) or one shared.",
        details="``per-layer``: each layer's SRAM weights sit in their own bank beside its "
                "arrays, so layers write in parallel (project choice: RSA adds the SRAM "
                "result to each array's output). ``shared``: one bank for the chip.")
    overlap_updates: bool = param(
        True, doc="Start a layer's SRAM writes as soon as its gradients are done.",
        details="True: during the rest of the backward pass. False: after it.")
    backward: str = param(
        "transposed-read", choices=BACKWARD_MODES,
        doc="How the output gradient reaches a layer's input.",
        details="``transposed-read``: the RRAM arrays read transposed, timed as a forward "
                "pass of the layer with signed inputs. ``digital``: MACs on a digital unit.")
    backward_read_factor: float = param(
        1.0, range=(0, 1000, True, False),
        doc="Transposed-read pass time / forward pass time.",
        details="Default: project choice (the same reads and conversions, rows and columns "
                "swapped on square arrays).")
    digital_macs_per_cycle: int = param(
        128, unit="MACs/cycle", range=(1, 1 << 30),
        doc="MACs per cycle of the digital unit (backward = digital).",
        details="Default: project choice.")
    grad_macs_per_cycle: int = param(
        128, unit="MACs/cycle", range=(1, 1 << 30),
        doc="MACs per cycle of each layer's SRAM weight-gradient unit.",
        details="Default: project choice (REFERENCE.md gives no figure).")
    forward_schedule: str = param(
        "layer", choices=SCHEDULES,
        doc="Schedule of the forward passes (see xbar latency).",
        details="As :func:`xbar.timing.engine.simulate` schedules them.")

    def write_cycles(self, timing: TimingConfig) -> int:
        """Cycles of one SRAM word write."""
        return ns_to_cycles(self.t_sram_write_ns, timing.clock_ghz)
