"""Operations on a programmed chip that chip-in-the-loop fine-tuning needs (work 5), with
their cost from the timing engine.

* :func:`serve_reads`: the chip has served ``n`` inferences: every cell of layer ``l`` saw
  ``n * positions_l * slices_l`` read pulses, and read disturb
  (:mod:`xbar.devices.read_disturb`) moves it; each layer's conductances are ASSIGNED a new
  array (never changed in place) and its straight-through weights refreshed.
* :func:`measure_layer`: run images through the chip and record what arrives at one layer
  (the outputs of the programmed layers before it, after their activations and pooling,
  read noise included) and, if asked, what the layer itself returns. The chip stops there
  (later layers are not read).
* :func:`reprogram_layer`: one-shot re-programming of one layer with new weights, in the
  column scale (``g_scale``) it was programmed with: the new weights are quantised to level
  indices; only cells whose target level changed get a pulse, and land by the device's one
  write (:meth:`xbar.analog.AnalogMatrix.write`: the cell's own device-to-device deviation
  plus a fresh cycle-to-cycle draw, in the device's split; a cell not rewritten keeps its
  conductance; a stuck cell stays stuck: faults are not redrawn). The cycle-to-cycle draws
  come from ``SeedSequence([chip seed, 5, round, layer])``, so the same seed gives the same
  re-programmed chip.
* Costs: :func:`forward_seconds` (inferences through the first layers, the engine's batch
  makespan) and :func:`rewrite_cost` (the engine's programming time and energy of the
  rewritten cells, one pulse each, no verify).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from xbar.devices.read_disturb import read_pulses_per_inference
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.timing.closed_form import slices_per_mvm
from xbar.timing.energy import programming_energy
from xbar.timing.engine import simulate
from xbar.timing.network import LayerSpec
from xbar.timing.programming import LayerCells, programming_time

__all__ = ["Rewrite", "forward_seconds", "measure_layer", "reprogram_layer",
           "rewrite_cost", "serve_reads"]

REPROGRAM_STREAM = 5
"""Second entry of the SeedSequence of re-programming draws (chip programming uses 0)."""


@dataclass(frozen=True)
class Rewrite:
    """One layer's re-programming: the cells rewritten (one pulse each) as a
    :class:`~xbar.timing.programming.LayerCells` and how many."""

    cells: LayerCells
    pulses: int


def _check_specs(chip: Chip, specs: Sequence[LayerSpec]) -> None:
    names = [layer.layer_name for layer in chip.layers]
    if [s.name for s in specs] != names:
        raise ConfigError(f"layer specs {[s.name for s in specs]} do not match the chip's "
                          f"layers {names}; pass layer_specs of the model the chip holds")


def serve_reads(chip: Chip, specs: Sequence[LayerSpec], inferences: int,
                read_counts: dict[str, float] | None = None,
                layers: int | None = None) -> dict[str, float]:
    """Apply the read disturb of ``inferences`` inferences (a count >= 0) to every layer, or
    to the first ``layers`` layers (a measurement that stops at a layer reads no later one).

    ``read_counts`` (by layer name) accumulates the read pulses each layer's cells have
    seen; it is returned (a new dict when None). A device with ``read_disturb_rate = 0``
    leaves every conductance bit-identical (nothing is reassigned).
    """
    if isinstance(inferences, bool) or not isinstance(inferences, (int, np.integer)) or \
            inferences < 0:
        raise ConfigError(f"inferences = {inferences!r} is invalid; allowed: an integer >= 0")
    _check_specs(chip, specs)
    counts = {} if read_counts is None else read_counts
    xbar = chip.config
    for layer, spec in list(zip(chip.layers, specs))[:layers]:
        pulses = inferences * read_pulses_per_inference(
            spec.positions, slices_per_mvm(xbar, bool(layer.signed)))
        counts[spec.name] = counts.get(spec.name, 0.0) + float(pulses)
        if chip.device.read_disturb_rate == 0 or pulses == 0:
            continue
        layer.matrix.disturb(pulses)
        layer.refresh_weights()
    return counts


class _Stop(Exception):
    """Raised by the capture hook: the layer's input is recorded, the rest is not run."""


def measure_layer(chip: Chip, index: int, x: np.ndarray, outputs: bool = False,
                  batch_size: int = 256, stream: int = 40
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What layer ``index`` of the chip receives for images ``x`` and, with ``outputs``, what
    it returns (its crossbar MVM plus digital bias, before any activation): the programmed
    layers before it run on the arrays (read noise from read stream ``stream``); the
    digital layers between run as written; later layers are not run. Returns float32
    tensors, images first (outputs None unless asked)."""
    layers = chip.layers
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(layers):
        raise ConfigError(f"layer index = {index!r} is invalid; allowed: 0 to "
                          f"{len(layers) - 1}")
    seen_in: list[torch.Tensor] = []
    seen_out: list[torch.Tensor] = []

    def pre(_mod: Any, args: tuple) -> None:
        seen_in.append(args[0].detach().clone())
        if not outputs:
            raise _Stop

    def post(_mod: Any, _args: tuple, out: torch.Tensor) -> None:
        seen_out.append(out.detach().clone())
        raise _Stop

    handles = [layers[index].register_forward_pre_hook(pre)]
    if outputs:
        handles.append(layers[index].register_forward_hook(post))
    chip.reset_reads(stream=stream)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    try:
        with torch.no_grad():
            for lo in range(0, len(xt), batch_size):
                try:
                    chip.module(xt[lo:lo + batch_size])
                except _Stop:
                    pass
    finally:
        for h in handles:
            h.remove()
    return torch.cat(seen_in), (torch.cat(seen_out) if outputs else None)


def reprogram_layer(chip: Chip, index: int, weights: np.ndarray, round_: int) -> Rewrite:
    """Re-program layer ``index`` one-shot to ``weights`` (n_out x n_in) in its programmed
    column scale; returns the rewritten cells. See the module docstring."""
    layer = chip.layers[index]
    m = layer.matrix
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m.n_out, m.n_in):
        raise ConfigError(f"weights for layer {layer.layer_name!r} have shape {w.shape}; "
                          f"allowed: ({m.n_out}, {m.n_in})")
    if not np.all(np.isfinite(w)):
        raise ConfigError(f"weights for layer {layer.layer_name!r} contain NaN or infinity")
    levels = m.layout.target_levels(w, chip.device, m.g_scale)
    changed = levels != m.target_levels
    rng = np.random.default_rng(np.random.SeedSequence(
        [chip.seed, REPROGRAM_STREAM, int(round_), int(index)]))
    m.write(levels, rng, cells=changed)
    layer.refresh_weights()
    cells = LayerCells(layer.layer_name, m.n_in, m.n_out, changed.astype(np.int8),
                       np.zeros(changed.shape, np.int8))
    return Rewrite(cells, int(changed.sum()))


def rewrite_cost(rewrites: Sequence[Rewrite], hw: Any) -> tuple[float, float, int]:
    """(seconds, pJ, pulses) of the rewrites, one after another (each its own programming
    run of the engine: rewritten cells one pulse, others none)."""
    seconds = pj = 0.0
    pulses = 0
    for r in rewrites:
        if r.pulses == 0:
            continue
        prog = programming_time([r.cells], hw, "one-shot")
        seconds += prog.total_s
        pj += programming_energy(prog, hw).total_pj
        pulses += prog.total_pulses
    return seconds, pj, pulses


def forward_seconds(specs: Sequence[LayerSpec], hw: Any, images: int, batch: int,
                    layers: int | None = None) -> float:
    """Seconds to run ``images`` inferences, ``batch`` at a time, through the first
    ``layers`` layers (all when None): the engine's makespan of a batch (schedule
    ``[adaptation] forward_schedule``) times the number of batches."""
    if images <= 0:
        return 0.0
    chain = list(specs)[:layers] if layers is not None else list(specs)
    if not chain:
        return 0.0
    full, rest = divmod(int(images), int(batch))
    seconds = 0.0
    for n, count in ((batch, full), (rest, 1 if rest else 0)):
        if count:
            res = simulate(chain, hw, hw.adaptation.forward_schedule, n, timeline=False)
            seconds += count * res.makespan_cycles * 1e-9 / hw.timing.clock_ghz
    return seconds
