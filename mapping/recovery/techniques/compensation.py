"""Error-compensation layers (CorrectNet, Eldebiky et al., DATE 2023): small digital layers
after chosen analog layers, trained on the programmed chip.

A compensation layer maps a layer's output feature map ``y`` (N, C, H, W), (N, C) or, a
Linear on a sequence, (N, T, C) to
``y + r(y)``, a residual computed digitally before the activation:

* ``rank = 0`` (default): ``r(y) = A y + b``, a full C x C map (a 1x1 convolution on feature
  maps, a Linear on vectors);
* ``rank = k``: ``r(y) = g * y + U (V y) + b``, a per-channel gain plus a rank-k map.

``A``, ``g``, ``U`` and ``b`` start at zero (``V`` seeded random), so a fresh layer is the
identity: the chip's outputs are unchanged until it is trained.

Training (:func:`train_compensation`), chip in the loop: batches of training images run
forward through the programmed chip (its conductances, faults, read noise, ADCs); only the
compensation parameters get gradients, which reach layers before the last compensation
through the analog layers' straight-through path (the programmed weights; see
:meth:`xbar.mapping.analog_layers.AnalogLayer._mvm`, the path
:mod:`xbar.mapping.recovery.techniques.sram` trains SRAM words through). Loss: ``alpha * T^2 *
KL(teacher || chip) + (1 - alpha) * CE``.

Placement (:func:`place_compensation`), a greedy sensitivity search: a layer's error
contribution is measured on the chip as the drop in loss (on ``images`` training images) when
that layer's output is replaced by the output the FP32 weights give on the same input (an
"oracle" fix); the layer with the largest drop is chosen, then the next is measured with the
chosen ones fixed (so a layer whose error the first fix already removes is not chosen twice
over), up to ``layers`` layers and while the drop exceeds ``min_gain``. CorrectNet places
compensation by reinforcement learning (reward: accuracy against cost); the greedy search
needs no policy training (layers x chosen forward passes of ``images`` images) and measures
each candidate directly, but it does not weigh one layer's cost against another's and it can
miss a pair that only helps together.

Costs (:func:`compensation_costs`), per inference unless said: SRAM words (one
``sram_word_bits`` word per parameter), digital MACs (positions x (C^2, or C (2k + 1))), their
latency ``ceil(MACs / digital_macs_per_cycle)`` cycles per layer (run after the layer, not
hidden: an upper bound), energy (MACs x ``digital_mac_pj`` + one read of each word per output
position, as :mod:`xbar.timing.energy` counts SRAM words). The training's on-chip time is that
of RSA's adaptation with the compensation words as SRAM words
(:func:`xbar.timing.adaptation.adaptation_time`), its energy the adaptation energy of the
chip's forward and backward passes plus the compensation's MACs and word updates.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbar.config import HardwareConfig
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.train import seeded_deterministic, step_batches
from xbar.params import Params, param
from xbar.timing.adaptation import adaptation_time
from xbar.timing.area import sram_area_fraction
from xbar.timing.energy import adaptation_energy, conductance_sums

__all__ = ["CompensationConfig", "CompensationLayer", "Compensated", "attach_compensation",
           "compensation_costs", "compensations", "place_compensation", "train_compensation"]


@dataclass(frozen=True)
class CompensationConfig(Params):
    """Placement, size and training of the compensation layers.

    Attributes:
        layers: Most layers to compensate (>= 1).
        rank: 0: a full C x C map; k >= 1: a per-channel gain plus a rank-k map.
        min_gain: Least drop in the loss (nats) an oracle fix must bring to place a layer.
        images: Training images the placement's losses are measured on.
        steps, batch_size, learning_rate: Adam on the chip (training images).
        alpha, temperature: Weight and temperature of the distillation term of the loss.
    """

    SECTION = "compensation"

    layers: int = param(2, unit="layers", range=(1, 1000), doc="Most layers to compensate.")
    rank: int = param(0, unit="-", range=(0, 1 << 20), doc="0: full C x C map; k: rank k.")
    min_gain: float = param(0.01, unit="nats", range=(0, 1e6),
                            doc="Least loss drop of an oracle fix that places a layer.")
    images: int = param(256, unit="images", range=(1, 10**7),
                        doc="Training images the placement is measured on.")
    steps: int = param(200, unit="steps", range=(1, 10**7), doc="Training steps on the chip.")
    batch_size: int = param(32, unit="images", range=(1, 10**6), doc="Images per step.")
    learning_rate: float = param(5e-3, unit="-", range=(0, 1e3, True, False),
                                 doc="Adam's rate.")
    alpha: float = param(0.5, unit="fraction", range=(0, 1), doc="Weight of the KD term.")
    temperature: float = param(2.0, unit="-", range=(0, 1e3, True, False),
                               doc="KD softening temperature.")


class CompensationLayer(nn.Module):
    """``y + r(y)`` on (N, C, ...) outputs (module docstring); the identity when created."""

    def __init__(self, channels: int, rank: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.channels, self.rank = int(channels), int(rank)
        self.bias = nn.Parameter(torch.zeros(channels))
        if rank == 0:
            self.full = nn.Parameter(torch.zeros(channels, channels))
        else:
            gen = torch.Generator().manual_seed(seed)
            self.gain = nn.Parameter(torch.zeros(channels))
            self.down = nn.Parameter(torch.randn(rank, channels, generator=gen) /
                                     math.sqrt(channels))
            self.up = nn.Parameter(torch.zeros(channels, rank))

    @property
    def words(self) -> int:
        """Parameters (one SRAM word each)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def macs_per_position(self) -> int:
        c, k = self.channels, self.rank
        return c * c if k == 0 else c * (2 * k + 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # A conv's (N, C, H, W) has its channels at dim 1; a Linear's (N, C) or, on a
        # sequence of tokens or time steps, (N, T, C) (issue 23) has them last.
        dim = 1 if y.dim() == 4 else -1
        if y.shape[dim] != self.channels:
            raise ConfigError(f"compensation layer for {self.channels} channels got an output "
                              f"of shape {tuple(y.shape)}")
        z = y.movedim(dim, -1)  # channels last
        if self.rank == 0:
            r = z @ self.full.T
        else:
            r = z * self.gain + (z @ self.down.T) @ self.up.T
        return y + (r + self.bias).movedim(-1, dim)


class Compensated(nn.Module):
    """An analog layer followed by its compensation layer."""

    def __init__(self, analog: nn.Module, comp: CompensationLayer) -> None:
        super().__init__()
        self.analog = analog
        self.comp = comp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.comp(self.analog(x))


def compensations(chip: Chip) -> dict[str, CompensationLayer]:
    """The chip's compensation layers by analog layer name."""
    return {m.analog.layer_name: m.comp for m in chip.module.modules()
            if isinstance(m, Compensated)}


def attach_compensation(chip: Chip, names: list[str], rank: int = 0, seed: int = 0) -> None:
    """Put a fresh (identity) compensation layer after each named analog layer of ``chip``."""
    by_name = {layer.layer_name: layer for layer in chip.layers}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"no analog layer named {unknown}; the chip's layers: "
                          f"{list(by_name)}")
    done = compensations(chip)
    for i, name in enumerate(names):
        if name in done:
            raise ConfigError(f"layer {name!r} already has a compensation layer")
        layer = by_name[name]
        parent, child_name = next((p, c) for p in chip.module.modules()
                                  for c, child in p.named_children() if child is layer)
        setattr(parent, child_name, Compensated(
            layer, CompensationLayer(layer.matrix.n_out, rank, seed + i)))


def _oracle_loss(chip: Chip, ideal: dict[str, nn.Module], fixed: list[str], x: torch.Tensor,
                 y: torch.Tensor) -> float:
    """Cross-entropy of the chip with the ``fixed`` layers' outputs replaced by the FP32
    weights' outputs on the same inputs."""
    hooks = []
    for layer in chip.layers:
        if layer.layer_name in fixed:
            exact = ideal[layer.layer_name]
            hooks.append(layer.register_forward_hook(
                lambda m, inp, out, exact=exact: exact(inp[0])))
    try:
        chip.reset_reads(stream=4)
        with torch.no_grad():
            return float(F.cross_entropy(chip.module(x), y))
    finally:
        for h in hooks:
            h.remove()


def place_compensation(chip: Chip, model: nn.Module, dataset: Dataset,
                       config: CompensationConfig = CompensationConfig(), seed: int = 0
                       ) -> tuple[list[str], list[dict[str, Any]]]:
    """The layers to compensate, by the greedy oracle-fix search (module docstring), and
    the losses it measured (one dict per round: layer -> loss with it fixed)."""
    folded, _ = fold_batchnorm(model)
    ideal = dict(mapped_layers(folded))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 43]))
    idx = np.sort(rng.choice(len(dataset.x_train), min(config.images, len(dataset.x_train)),
                             replace=False))
    x = torch.from_numpy(dataset.x_train[idx])
    y = torch.from_numpy(dataset.y_train[idx])
    names = [layer.layer_name for layer in chip.layers]
    chosen: list[str] = []
    rounds = []
    current = _oracle_loss(chip, ideal, chosen, x, y)
    while len(chosen) < min(config.layers, len(names)):
        losses = {n: _oracle_loss(chip, ideal, chosen + [n], x, y)
                  for n in names if n not in chosen}
        rounds.append({"base": current, **losses})
        best = min(losses, key=losses.get)
        if current - losses[best] <= config.min_gain:
            break
        chosen.append(best)
        current = losses[best]
    return chosen, rounds


def train_compensation(chip: Chip, teacher: nn.Module, dataset: Dataset,
                       config: CompensationConfig = CompensationConfig(), seed: int = 0
                       ) -> dict[str, Any]:
    """Train the chip's compensation layers on the chip (module docstring); a summary."""
    comps = list(compensations(chip).values())
    if not comps:
        raise ConfigError("the chip has no compensation layer: call attach_compensation first")
    params = [p for c in comps for p in c.parameters()]
    for p in chip.module.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    teacher = copy.deepcopy(teacher).eval()
    x_all = torch.from_numpy(dataset.x_train)
    y_all = torch.from_numpy(dataset.y_train)
    t = config.temperature
    chip.reset_reads(stream=5)
    start = time.perf_counter()
    losses = []
    with seeded_deterministic(seed, 1):
        opt = torch.optim.Adam(params, lr=config.learning_rate)
        gen = torch.Generator().manual_seed(seed + 7)
        for idx in step_batches(len(x_all), config.batch_size, config.steps, gen):
            with torch.no_grad():
                soft = F.softmax(teacher(x_all[idx]) / t, 1)
            out = chip.module(x_all[idx])
            kd = F.kl_div(F.log_softmax(out / t, 1), soft, reduction="batchmean") * t * t
            loss = config.alpha * kd + (1 - config.alpha) * F.cross_entropy(out, y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    for p in params:
        p.requires_grad_(False)
    return {"steps": config.steps, "batch_size": config.batch_size,
            "wall_s": time.perf_counter() - start,
            "final_loss": float(np.mean(losses[-10:])) if losses else math.nan}


def compensation_costs(chip: Chip, specs: list[Any], hw: HardwareConfig,
                       config: CompensationConfig) -> dict[str, Any]:
    """Hardware and training costs of the chip's compensation layers (module docstring)."""
    comps = compensations(chip)
    by_name = {s.name: s for s in specs}
    unknown = [n for n in comps if n not in by_name]
    if unknown:
        raise ConfigError(f"compensated layer(s) {unknown} are not in the network's layers")
    en, ad, tm = hw.energy, hw.adaptation, hw.timing
    words = {n: c.words for n, c in comps.items()}
    macs = {n: by_name[n].positions * c.macs_per_position for n, c in comps.items()}
    cycles = sum(-(-m // ad.digital_macs_per_cycle) for m in macs.values())
    reads = sum(by_name[n].positions * w for n, w in words.items())
    inference_pj = (sum(macs.values()) * en.digital_mac_pj
                    + reads * ad.sram_word_bits * en.sram_read_pj_per_bit)
    total_words = sum(words.values())
    per_layer = [words.get(s.name, 0) for s in specs]
    steps, batch = config.steps, config.batch_size
    adapt_s = adaptation_time(specs, hw, steps, batch, per_layer).total_s
    g = conductance_sums(chip)
    base = adaptation_energy(specs, hw, steps, batch, [0] * len(specs),
                             [g.get(s.name, 0.0) for s in specs]).total_pj
    # the compensation's own work per step: forward and gradient MACs of every image, and a
    # read and a write of every word
    own = steps * (2 * batch * (sum(macs.values()) * en.digital_mac_pj
                                + reads * ad.sram_word_bits * en.sram_read_pj_per_bit)
                   + total_words * ad.sram_word_bits
                   * (en.sram_read_pj_per_bit + en.sram_write_pj_per_bit))
    return {"layers": list(comps), "words_per_layer": per_layer, "sram_words": total_words,
            "digital_macs": int(sum(macs.values())), "latency_ns": cycles / tm.clock_ghz,
            "inference_pj": inference_pj,
            "sram_area_fraction": sram_area_fraction(specs, total_words, hw)
            if total_words else 0.0,
            "adapt_s": adapt_s, "adapt_pj": base + own}
