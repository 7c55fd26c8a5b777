"""Time of random sparse adaptation (RSA): forward passes, backward passes and SRAM writes.

After one-shot programming, RSA trains only the SRAM-held weights (a fraction of each layer,
one weight per SRAM word) on the programmed chip. One adaptation step on a batch of ``B``:

1. Forward: the batch runs through the chip as inference does: ``F`` = the makespan of a
   batch of ``B`` in :func:`xbar.timing.simulate` under ``forward_schedule``. The SRAM
   weights' digital MVM runs beside the analog arrays and is taken as hidden.
2. Backward, from the last layer to the first. When the output gradient of layer ``l`` is
   ready (at ``a_l``; ``a_{L-1} = F``, the loss gradient taken as free):

   * its SRAM weight gradients (input x output gradient, summed over the batch and the
     layer's output positions) on the layer's digital gradient unit:
     ``G_l = ceil(B * positions_l * words_l / grad_macs_per_cycle)``;
   * at the same time, unless ``l`` is the first layer, the gradient is propagated to the
     layer's input, ``a_{l-1} = a_l + D_l``:

     - ``backward = "transposed-read"`` (default): the layer's arrays read transposed (the
       output gradient driven on the bit lines, the word lines sensed), timed as a forward
       pass of the same layer with signed inputs (the gradient has both signs), layer by
       layer: ``D_l = ceil(backward_read_factor * B * C_l)``, ``C_l`` the layer's cycles in
       ``simulate(..., schedule="layer", batch=1)`` with every layer's inputs signed;
     - ``backward = "digital"``: on a digital MAC unit,
       ``D_l = ceil(B * n_in * n_out * positions_l / digital_macs_per_cycle)``.

3. SRAM update: each layer's ``words_l`` new weights are written on its bank's
   ``sram_ports`` ports, ``U_l = ceil(words_l / sram_ports) * t_w`` cycles holding the bank
   (``simpy.Resource``); banks are per layer (``sram_banks = "per-layer"``, default) or one
   for the chip (``"shared"``, layers queue first come first served). With
   ``overlap_updates`` (default) a layer's writes start as soon as its gradients are done,
   while the backward pass goes on; otherwise after the whole backward pass.

The next step's forward pass starts when every write is done. So, per step with per-layer
banks::

    overlapped:  step = max over l of (a_l + G_l + U_l)
    after:       step = max over l of (a_l + G_l) + max over l of U_l
                 (shared bank: + sum over l of U_l instead of the max)

and the total is ``steps * step``. Left out: the loss and optimiser arithmetic, SRAM reads
before writes, storing activations for the backward pass, and the transfer of training data
onto the chip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import simpy

from xbar.config import AdaptationConfig, HardwareConfig, TimingConfig, XbarConfig
from xbar.timing.engine import CountingEnvironment, hardware_arg, simulate
from xbar.timing.network import LayerSpec, ceil_div, check_chain
from xbar.errors import ConfigError
# The [adaptation] section is declared with the other timing sections (one root config).


def sram_words_per_layer(specs: Sequence[LayerSpec], fraction: float) -> list[int]:
    """SRAM words of each layer when a ``fraction`` of its weights (n_in x n_out) lives in
    SRAM, one weight per word: ``round(fraction * n_in * n_out)``.

    Raises:
        ValueError: ``fraction`` outside [0, 1].
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"fraction = {fraction!r} is invalid; allowed: a number in [0, 1] "
                         "(0.05 = 5 % of each layer's weights in SRAM)")
    return [int(np.rint(fraction * s.n_in * s.n_out)) for s in specs]


@dataclass(frozen=True)
class LayerAdaptation:
    """One layer's share of one adaptation step, in cycles.

    Attributes:
        name: Layer name.
        sram_words: SRAM words (adapted weights).
        grad_cycles: G_l, its SRAM weight gradients for the batch.
        propagate_cycles: D_l, carrying the gradient to its input (0 for the first layer).
        write_cycles: U_l, writing its SRAM words.
        grad_ready_cycle: When its output gradient was ready (a_l), from the step start.
        write_end_cycle: When its SRAM writes were done, from the step start.
    """

    name: str
    sram_words: int
    grad_cycles: int
    propagate_cycles: int
    write_cycles: int
    grad_ready_cycle: int
    write_end_cycle: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AdaptationResult:
    """What :func:`adaptation_time` measured.

    Attributes:
        steps, batch: The budget.
        total_cycles, total_s: All steps, from the engine.
        step_cycles: One step (every step takes the same).
        forward_cycles: F, the batch's forward pass.
        backward_cycles: From the end of the forward pass until every gradient is done.
        write_tail_cycles: SRAM writes not hidden behind the backward pass
            (step - forward - backward).
        sram_write_cycles: Sum over layers of U_l (the write work, hidden or not).
        sram_words, sram_bits: SRAM size over the network, in words and in bits (sram_bits =
            sram_words x ``sram_word_bits``, the bits of one word).
        sram_bank_utilisation: Busy bank-cycles / (banks x total cycles).
        layers: Per-layer figures of the first step.
    """

    steps: int
    batch: int
    clock_ghz: float
    total_cycles: int
    total_s: float
    step_cycles: int
    forward_cycles: int
    backward_cycles: int
    write_tail_cycles: int
    sram_write_cycles: int
    sram_words: int
    sram_bits: int
    sram_bank_utilisation: float
    layers: list[LayerAdaptation]
    events_processed: int
    wall_s: float
    adapt: AdaptationConfig
    xbar: XbarConfig
    timing: TimingConfig

    def seconds(self, cycles: int) -> float:
        return cycles * 1e-9 / self.clock_ghz

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values, with the full configuration."""
        return {
            "steps": self.steps, "batch": self.batch, "clock_ghz": self.clock_ghz,
            "total_cycles": self.total_cycles, "total_s": self.total_s,
            "step_cycles": self.step_cycles, "step_s": self.seconds(self.step_cycles),
            "forward_cycles": self.forward_cycles, "forward_s": self.seconds(self.forward_cycles),
            "backward_cycles": self.backward_cycles,
            "backward_s": self.seconds(self.backward_cycles),
            "write_tail_cycles": self.write_tail_cycles,
            "write_tail_s": self.seconds(self.write_tail_cycles),
            "sram_write_cycles": self.sram_write_cycles, "sram_words": self.sram_words,
            "sram_bits": self.sram_bits, "sram_bank_utilisation": self.sram_bank_utilisation,
            "events_processed": self.events_processed, "wall_s": self.wall_s,
            "layers": [la.to_dict() for la in self.layers],
            "hardware": {**self.xbar.to_dict(), "timing": self.timing.to_dict(),
                         "adaptation": self.adapt.to_dict()},
        }


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} = {value!r} is invalid; allowed: an integer >= 1")


def backward_cycles_per_layer(specs: Sequence[LayerSpec], hw: HardwareConfig, batch: int
                              ) -> list[int]:
    """D_l for every layer (0 for the first), per the module docstring."""
    adapt = hw.adaptation
    if adapt.backward == "digital":
        d = [ceil_div(batch * s.n_in * s.n_out * s.positions, adapt.digital_macs_per_cycle)
             for s in specs]
    else:
        signed = [replace(s, signed_inputs=True) for s in specs]
        per_layer = simulate(signed, hw, "layer", 1, timeline=False).layers
        d = [int(np.ceil(adapt.backward_read_factor * batch * lt.cycles - 1e-9))
             for lt in per_layer]
    return [0] + d[1:]


def adaptation_time(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None,
                    steps: int = 100, batch: int = 16,
                    sram_words: Sequence[int] | None = None) -> AdaptationResult:
    """Time of ``steps`` adaptation steps of ``batch`` samples, from the SimPy engine.

    Args:
        specs: The network's weight layers in execution order.
        hw: The hardware (default :class:`HardwareConfig`): arrays and converters
            (``hw.xbar``), inference timing (forward passes; the clock: ``hw.timing``) and the
            adaptation parameters (``hw.adaptation``).
        steps: Adaptation steps (>= 1).
        batch: Samples per step (>= 1).
        sram_words: SRAM words per layer, aligned with ``specs`` (see
            :func:`sram_words_per_layer`); default 5 % of each layer's weights.

    Raises:
        ValueError: A bad budget, a ``sram_words`` list of the wrong length or with a
            negative entry, or an invalid network.
    """
    t0 = time.perf_counter()
    specs = list(specs)
    check_chain(specs)
    hw = hardware_arg(hw, "adaptation_time")
    xbar, timing, adapt = hw.xbar, hw.timing, hw.adaptation
    _positive_int("steps", steps)
    _positive_int("batch", batch)
    words = sram_words_per_layer(specs, 0.05) if sram_words is None else list(sram_words)
    if len(words) != len(specs):
        raise ConfigError(f"sram_words has {len(words)} entries; allowed: one per layer "
                         f"({len(specs)}: {', '.join(s.name for s in specs)})")
    for s, w in zip(specs, words):
        if not isinstance(w, (int, np.integer)) or isinstance(w, bool) or w < 0:
            raise ConfigError(f"sram_words for layer {s.name!r} = {w!r} is invalid; allowed: "
                             "an integer >= 0")
    words = [int(w) for w in words]
    n = len(specs)
    fwd = simulate(specs, hw, adapt.forward_schedule, batch, timeline=False).makespan_cycles
    prop = backward_cycles_per_layer(specs, hw, batch)
    grad = [ceil_div(batch * s.positions * w, adapt.grad_macs_per_cycle)
            for s, w in zip(specs, words)]
    t_w = adapt.write_cycles(timing)
    upd = [ceil_div(w, adapt.sram_ports) * t_w for w in words]

    env = CountingEnvironment()
    shared = adapt.sram_banks == "shared"
    banks = ([simpy.Resource(env, capacity=1)] * n if shared
             else [simpy.Resource(env, capacity=1) for _ in range(n)])
    first_ready = [0] * n
    first_end = [0] * n
    step_len: list[int] = []

    def write(li: int, step: int, t_start: int) -> Any:
        with banks[li].request() as req:
            yield req
            yield env.timeout(upd[li])
        if step == 0:
            first_end[li] = int(env.now) - t_start

    def gradient(li: int, step: int, t_start: int) -> Any:
        yield env.timeout(grad[li])
        if adapt.overlap_updates and words[li]:
            yield env.process(write(li, step, t_start))
        elif step == 0:
            first_end[li] = int(env.now) - t_start

    def run() -> Any:
        for step in range(steps):
            t_start = int(env.now)
            yield env.timeout(fwd)
            jobs = []
            for li in range(n - 1, -1, -1):
                if step == 0:
                    first_ready[li] = int(env.now) - t_start
                jobs.append(env.process(gradient(li, step, t_start)))
                if li:
                    yield env.timeout(prop[li])
            yield env.all_of(jobs)
            if not adapt.overlap_updates:
                writes = [env.process(write(li, step, t_start))
                          for li in range(n - 1, -1, -1) if words[li]]
                yield env.all_of(writes)
            step_len.append(int(env.now) - t_start)

    env.process(run())
    env.run()
    total = int(env.now)
    step = step_len[0]
    bwd = max(first_ready[li] + grad[li] for li in range(n)) - fwd
    n_banks = 1 if shared else max(1, sum(1 for w in words if w))
    to_s = 1e-9 / timing.clock_ghz
    layers = [LayerAdaptation(name=s.name, sram_words=words[li], grad_cycles=grad[li],
                              propagate_cycles=prop[li], write_cycles=upd[li] if words[li] else 0,
                              grad_ready_cycle=first_ready[li], write_end_cycle=first_end[li])
              for li, s in enumerate(specs)]
    return AdaptationResult(
        steps=steps, batch=batch, clock_ghz=timing.clock_ghz, total_cycles=total,
        total_s=total * to_s, step_cycles=step, forward_cycles=fwd, backward_cycles=bwd,
        write_tail_cycles=step - fwd - bwd, sram_write_cycles=sum(upd),
        sram_words=sum(words), sram_bits=sum(words) * adapt.sram_word_bits,
        sram_bank_utilisation=steps * sum(upd) / (n_banks * total) if total else 0.0,
        layers=layers, events_processed=env.events_processed,
        wall_s=time.perf_counter() - t0, adapt=adapt, xbar=xbar, timing=timing)
