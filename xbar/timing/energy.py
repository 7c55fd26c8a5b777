"""Energy of a mapped network, from event counts in closed form (area: :mod:`xbar.timing.area`).

Every event the timing engine times gets an energy (:class:`xbar.config.EnergyConfig`)
and every unit of the chip an area (:class:`xbar.config.AreaConfig`). Counts come
from the same layer plan the engine runs (:func:`xbar.timing.closed_form.plan_layer`), per
burst and per layer, never one event per cell or cycle. Notation per layer, per inference:
``P`` output positions, ``S`` slices per MVM (passes x ceil(input_bits / bits_per_read)),
``A`` arrays per tile (2 differential, 1 offset), and for each tile ``t`` of the plan
``m_t`` MVMs per output row (its copy's share), ``K`` output rows, ``u_t`` bit lines in use,
``r_t`` word lines in use (the rows of its row tile). Summing ``m_t * K`` over the copies of a
tile gives ``P``, so duplication changes time, never energy.

==============  =================================================  ========================
component       count                                              energy each
==============  =================================================  ========================
array_read      cell reads, sum_t m_t K S A r_t u_t                V^2 G t_read x activity
dac             word-line drives, sum_t m_t K S A r_t              dac_1bit_pj 2^(k-1)
adc             conversions, sum_t m_t K S A u_t (= the engine's)  P_adc(b) (b + 2) / f_ref
shift_add       one per conversion                                 shift_add_pj
accumulate      P (R - 1) n_out additions (R row tiles)            accumulate_pj
post_op         P n_out values                                     post_op_pj
buffer          input bytes written + P n_in groups bytes read     buffer_pj_per_byte
interconnect    the layer's input bytes (as the engine moves them)  interconnect_pj_per_byte
sram            P w word reads of the layer's w SRAM words         bits x sram_read_pj_per_bit
digital_mac     P w MACs of the SRAM words' digital MVM            digital_mac_pj
==============  =================================================  ========================

The array read is physics: a cell of conductance G on a word line driven at v for the read
pulse t dissipates v^2 G t, so a layer's read energy per inference is
``P S activity V_read^2 t_read sum(G)``, where ``sum(G)`` is the sum of the conductances of
the layer's cells (one copy of its tile set) as programmed (:func:`conductance_sums` reads
them from a programmed chip), or ``cells x g_nominal_us`` when the weights are not known
(``xbar latency`` maps shapes only). Energy is per inference: a batch of B costs B times as
much, whatever the schedule (no leakage is modelled, so the schedule changes power, not
energy). ``TOPS/W = 2 MACs / energy in pJ`` (one MAC = two operations).

Programming: one pulse costs ``program_pulse_pj``; one verify read ``V_read^2 g_nominal
t_verify + sense_amp_pj`` (``verify_read = "direct"``) or ``V_read^2 g_nominal t_read + one
conversion`` (``"adc"``). Adaptation (per step of a batch B): forward = B inferences with the
SRAM words; backward = the weight gradients (B P w MACs per layer) and, for every layer but
the first, the gradient carried to its input (a transposed read timed and costed as a forward
pass of the layer with signed inputs, times ``backward_read_factor``; or B P n_in n_out
digital MACs); the SRAM update = a read and a write of each word.

Area lives in :mod:`xbar.timing.area`; the event counts in :mod:`xbar.timing.events`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xbar.config import HardwareConfig
from xbar.errors import ConfigError
from xbar.timing.events import LayerEvents, layer_events, per_layer_values
from xbar.timing.network import LayerSpec

__all__ = ["AdaptationEnergy", "COMPONENTS", "InferenceEnergy", "ProgrammingEnergy",
           "adaptation_energy", "conductance_sums", "inference_energy", "one_shot_energy",
           "programming_energy", "verify_read_pj"]

COMPONENTS = ("array_read", "dac", "adc", "shift_add", "accumulate", "post_op", "buffer",
              "interconnect", "sram", "digital_mac")


# --------------------------------------------------------------------------- inference
@dataclass
class InferenceEnergy:
    """Energy of one inference, per layer and per component, in pJ.

    Attributes:
        per_layer: Layer name -> component -> pJ (components of :data:`COMPONENTS`).
        events: The counts behind it, per layer.
        conductance: ``"programmed"`` (sums of the chip's conductances) or ``"nominal"``
            (cells x g_nominal_us).
    """

    per_layer: dict[str, dict[str, float]]
    events: list[LayerEvents] = field(repr=False)
    conductance: str

    @property
    def total_pj(self) -> float:
        return float(sum(sum(c.values()) for c in self.per_layer.values()))

    @property
    def by_component(self) -> dict[str, float]:
        return {c: float(sum(layer[c] for layer in self.per_layer.values()))
                for c in COMPONENTS}

    @property
    def layer_totals(self) -> dict[str, float]:
        return {name: float(sum(c.values())) for name, c in self.per_layer.items()}

    @property
    def macs(self) -> int:
        return sum(e.macs for e in self.events)

    @property
    def tops_per_w(self) -> float:
        """Operations (2 per MAC) per pJ = tera-operations per joule = TOPS/W."""
        return 2 * self.macs / self.total_pj if self.total_pj > 0 else float("inf")

    @property
    def inferences_per_j(self) -> float:
        return 1e12 / self.total_pj if self.total_pj > 0 else float("inf")

    def power_w(self, inferences_per_s: float) -> float:
        """Average power at a rate of ``inferences_per_s``."""
        return self.total_pj * 1e-12 * inferences_per_s

    def to_dict(self) -> dict[str, Any]:
        return {"energy_pj": self.total_pj, "energy_by_component_pj": self.by_component,
                "energy_per_layer": [{"name": n, "energy_pj": sum(c.values()), **c}
                                     for n, c in self.per_layer.items()],
                "macs": self.macs, "tops_per_w": self.tops_per_w,
                "inferences_per_j": self.inferences_per_j, "conductance": self.conductance}


def conductance_sums(chip: Any) -> dict[str, float]:
    """Sum of the programmed conductances of each layer of a programmed chip, in uS, by layer
    name (any object whose ``layers`` have ``layer_name`` and ``matrix.g_us``, such as
    :class:`xbar.mapping.chip.Chip`)."""
    return {layer.layer_name: float(layer.matrix.g_us.sum(dtype="float64"))
            for layer in chip.layers}


def _read_pj(hw: HardwareConfig, g_us: float, t_ns: float) -> float:
    """v^2 G t of a read at the full read voltage, in pJ (V^2 uS ns = 1e-3 pJ)."""
    return hw.array.read_voltage_v ** 2 * g_us * t_ns * 1e-3


def inference_energy(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None,
                     g_sum_us: Sequence[float] | Mapping[str, float] | None = None,
                     sram_words: Sequence[int] | Mapping[str, int] | None = None
                     ) -> InferenceEnergy:
    """Energy of one inference of a mapped network.

    Args:
        specs: The network's weight layers.
        hw: The hardware (default :class:`HardwareConfig`).
        g_sum_us: Sum of each layer's programmed conductances in uS (a sequence aligned with
            ``specs`` or a mapping by name, e.g. :func:`conductance_sums`); None: every cell
            at ``[energy] g_nominal_us``.
        sram_words: Adaptation SRAM words per layer (their reads and digital MACs); default 0.
    """
    hw = hw or HardwareConfig()
    specs = list(specs)
    events = layer_events(specs, hw, sram_words)
    g_sums = per_layer_values(specs, g_sum_us, "g_sum_us", None)
    en, x = hw.energy, hw.xbar
    e_adc = en.adc_conversion_pj(x.adc.bits)
    e_dac = en.dac_drive_pj(x.dac.bits_per_read)
    bits = hw.adaptation.sram_word_bits
    per_layer: dict[str, dict[str, float]] = {}
    for ev, g in zip(events, g_sums):
        g_total = ev.cells * en.g_nominal_us if g is None else float(g)
        if g_total < 0:
            raise ConfigError(f"g_sum_us of layer {ev.name!r} = {g_total!r} is invalid; "
                              "allowed: a sum of conductances >= 0 uS")
        per_layer[ev.name] = {
            "array_read": ev.positions * ev.slices * en.input_activity
            * _read_pj(hw, g_total, hw.timing.t_read_ns),
            "dac": ev.word_line_drives * e_dac,
            "adc": ev.conversions * e_adc,
            "shift_add": ev.conversions * en.shift_add_pj,
            "accumulate": ev.accumulations * en.accumulate_pj,
            "post_op": ev.post_ops * en.post_op_pj,
            "buffer": ev.buffer_bytes * en.buffer_pj_per_byte,
            "interconnect": ev.interconnect_bytes * en.interconnect_pj_per_byte,
            "sram": ev.sram_word_reads * bits * en.sram_read_pj_per_bit,
            "digital_mac": ev.sram_word_reads * en.digital_mac_pj,
        }
    return InferenceEnergy(per_layer, events,
                           "nominal" if g_sum_us is None else "programmed")


# --------------------------------------------------------------------------- programming
def verify_read_pj(hw: HardwareConfig | None = None) -> float:
    """One verify read of one cell at the nominal conductance, in pJ."""
    hw = hw or HardwareConfig()
    en, prog = hw.energy, hw.programming
    if prog.verify_read == "direct":
        return _read_pj(hw, en.g_nominal_us, prog.t_verify_ns) + en.sense_amp_pj
    return _read_pj(hw, en.g_nominal_us, hw.timing.t_read_ns) + en.adc_conversion_pj(
        hw.adc.bits)


@dataclass(frozen=True)
class ProgrammingEnergy:
    """Energy of programming a network: pulses and verify reads, in pJ."""

    pulses: int
    reads: int
    pulse_pj: float
    verify_pj: float

    @property
    def total_pj(self) -> float:
        return self.pulse_pj + self.verify_pj

    def to_dict(self) -> dict[str, Any]:
        return {"pulses": self.pulses, "reads": self.reads, "pulse_pj": self.pulse_pj,
                "verify_pj": self.verify_pj, "total_pj": self.total_pj}


def programming_energy(cells: Any, hw: HardwareConfig | None = None) -> ProgrammingEnergy:
    """Energy of programming from per-cell counts: ``cells`` is a sequence of
    :class:`xbar.timing.programming.LayerCells` (pulses and verify reads per cell) or a
    :class:`xbar.timing.programming.ProgrammingResult` (their totals)."""
    hw = hw or HardwareConfig()
    if hasattr(cells, "total_pulses"):
        pulses, reads = int(cells.total_pulses), int(cells.total_reads)
    else:
        pulses = sum(int(c.pulses.sum(dtype="int64")) for c in cells)
        reads = sum(int(c.reads.sum(dtype="int64")) for c in cells)
    return ProgrammingEnergy(pulses, reads, pulses * hw.energy.program_pulse_pj,
                             reads * verify_read_pj(hw))


def one_shot_energy(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None
                    ) -> ProgrammingEnergy:
    """One pulse per cell, no verify: cells x program_pulse_pj (copies included: a duplicated
    tile set is programmed too)."""
    hw = hw or HardwareConfig()
    from xbar.layout import weight_layout

    layout = weight_layout(hw.array)
    cells = 0
    for s in specs:
        copies = min(hw.timing.duplicates(s.name, s.kind), s.out_hw[1])
        cells += copies * s.groups * s.n_in * layout.physical_columns(s.n_out // s.groups)
    return ProgrammingEnergy(cells, 0, cells * hw.energy.program_pulse_pj, 0.0)


# --------------------------------------------------------------------------- adaptation
@dataclass(frozen=True)
class AdaptationEnergy:
    """Energy of ``steps`` adaptation steps of ``batch`` samples, in pJ.

    Attributes:
        forward_pj: The forward passes (inferences with the SRAM words).
        gradient_pj: The SRAM weights' gradients (digital MACs).
        propagate_pj: Carrying gradients back through the arrays (or digital units).
        sram_update_pj: Reading and writing each SRAM word once per step.
    """

    steps: int
    batch: int
    forward_pj: float
    gradient_pj: float
    propagate_pj: float
    sram_update_pj: float

    @property
    def backward_pj(self) -> float:
        return self.gradient_pj + self.propagate_pj

    @property
    def total_pj(self) -> float:
        return self.forward_pj + self.backward_pj + self.sram_update_pj

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "batch": self.batch, "forward_pj": self.forward_pj,
                "gradient_pj": self.gradient_pj, "propagate_pj": self.propagate_pj,
                "backward_pj": self.backward_pj, "sram_update_pj": self.sram_update_pj,
                "total_pj": self.total_pj}


def adaptation_energy(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None,
                      steps: int = 100, batch: int = 16,
                      sram_words: Sequence[int] | Mapping[str, int] | None = None,
                      g_sum_us: Sequence[float] | Mapping[str, float] | None = None,
                      write: bool = True) -> AdaptationEnergy:
    """Energy of on-chip sparse adaptation, with the counts of
    :func:`xbar.timing.adaptation.adaptation_time` (module docstring). ``write=False``: passes
    without SRAM updates (OSA's Fisher measurement)."""
    hw = hw or HardwareConfig()
    for name, v in (("steps", steps), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} = {v!r} is invalid; allowed: an integer >= 1")
    specs = list(specs)
    fwd = inference_energy(specs, hw, g_sum_us, sram_words)
    ad, en = hw.adaptation, hw.energy
    gradient = sum(ev.positions * ev.sram_words for ev in fwd.events) * en.digital_mac_pj
    if ad.backward == "transposed-read":
        signed = [replace(s, signed_inputs=True) for s in specs]
        back = inference_energy(signed, hw, g_sum_us).layer_totals
        propagate = ad.backward_read_factor * sum(back[s.name] for s in specs[1:])
    else:
        propagate = sum(ev.macs for ev in fwd.events[1:]) * en.digital_mac_pj
    words = sum(ev.sram_words for ev in fwd.events)
    update = words * ad.sram_word_bits * (en.sram_read_pj_per_bit + en.sram_write_pj_per_bit)
    return AdaptationEnergy(steps, batch, steps * batch * fwd.total_pj,
                            steps * batch * gradient, steps * batch * propagate,
                            steps * update if write else 0.0)
