"""On-chip recovery after one-shot programming: sparse SRAM adaptation and its control.

* RSA (random sparse adaptation, work 1; Mohanty et al., IEDM 2017): a fraction p of each
  mapped layer's weight positions, drawn at random (seeded), get an SRAM word of ``bits``
  bits (signed, step = the layer's largest weight scale / (2**(bits-1) - 1)) whose digital
  MVM is added to the RRAM result. The words start at 0; only they are trained, on training
  data, with forward passes through the programmed chip itself (its actual conductances,
  faults and read noise). RRAM is never rewritten.
* OSA (on-line sparse adaptation, DAC 2020, work 2): the same, with positions drawn by
  importance sampling: with probability proportional to the Fisher information (mean squared
  gradient of the loss w.r.t. each programmed weight) measured on the programmed chip.
* bias-only (control): no SRAM; only each layer's digital bias and a per-output-column
  digital gain are trained, with the same data and budget.

Gradients flow through the analog layers straight-through (their programmed weights, see
:meth:`xbar.mapping.analog_layers.AnalogLayer._mvm`). SRAM words are rounded straight-through.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.train import classification_loss, seeded_deterministic, step_batches
from xbar.errors import ConfigError
from xbar.params import Params, check_int, param

SELECTIONS = ("random", "fisher")
TRAINABLE = ("sram", "bias")


@dataclass(frozen=True)
class AdaptConfig(Params):
    """Budget and optimiser of on-chip adaptation.

    Attributes:
        steps: Optimiser steps (>= 1); each is one forward and backward pass of a batch.
        batch_size: Training images per step (>= 1).
        learning_rate: Adam's rate. For SRAM words it is in units of one word step (LSB);
            for biases and gains, in their own units.

    The bits of an SRAM word are hardware: ``[adaptation] sram_word_bits``
    (:class:`xbar.config.AdaptationConfig`), passed to :func:`attach_sram`.
    """

    SECTION = "adapt"

    steps: int = param(200, unit="steps", range=(1, 10**7),
                       doc="Optimiser steps, each a forward and backward pass of a batch.")
    batch_size: int = param(32, unit="images", range=(1, 10**6),
                            doc="Training images per step.")
    learning_rate: float = param(0.5, unit="-", range=(0, 1e6, True, False),
                                 doc="Adam's rate (SRAM words: in word steps).")


def fisher_importance(chip: Chip, dataset: Dataset, n_images: int = 256, batch_size: int = 64,
                      seed: int = 0) -> list[np.ndarray]:
    """Mean squared gradient of the loss w.r.t. each layer's programmed weights, on the chip."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    idx = rng.choice(len(dataset.x_train), min(n_images, len(dataset.x_train)), replace=False)
    layers = chip.layers
    total = [torch.zeros_like(layer.w_eff) for layer in layers]
    dev = chip.torch_device
    chip.reset_reads(stream=2)
    for layer in layers:
        layer.w_eff.requires_grad_(True)
    try:
        for lo in range(0, len(idx), batch_size):
            b = np.sort(idx[lo:lo + batch_size])
            x = torch.from_numpy(dataset.x_train[b]).to(dev)
            y = torch.from_numpy(dataset.y_train[b]).to(dev)
            for layer in layers:
                layer.w_eff.grad = None
            classification_loss(chip.module(x), y).backward()
            for t, layer in zip(total, layers):
                t += layer.w_eff.grad.detach() ** 2 * len(b)
    finally:
        for layer in layers:
            layer.w_eff.requires_grad_(False)
            layer.w_eff.grad = None
    return [(t / len(idx)).cpu().numpy() for t in total]


def attach_sram(chip: Chip, fraction: float, sram_word_bits: int = 8,
                selection: str = "random", dataset: Dataset | None = None, seed: int = 0) -> int:
    """Give every analog layer an SRAM array at ``fraction`` of its weight positions, one
    signed word of ``sram_word_bits`` bits each (the hardware's ``[adaptation]
    sram_word_bits``).

    Returns the number of SRAM words. ``selection="fisher"`` needs ``dataset``.
    """
    bits = check_int("attach_sram", "sram_word_bits", sram_word_bits, 2, 16, "signed words")
    if not 0 < fraction <= 1:
        raise ConfigError(f"sram fraction = {fraction!r} is invalid; allowed: (0, 1] (a "
                         "fraction: 0.05 = 5 %)")
    if selection not in SELECTIONS:
        raise ConfigError(f"selection = {selection!r} is invalid; allowed: one of {SELECTIONS}")
    importance = None
    if selection == "fisher":
        if dataset is None:
            raise ConfigError("selection='fisher' needs the training data set")
        importance = fisher_importance(chip, dataset, seed=seed)
    rngs = np.random.default_rng(np.random.SeedSequence([seed, 12])).spawn(len(chip.layers))
    words = 0
    for i, (layer, rng) in enumerate(zip(chip.layers, rngs)):
        n = layer.w_eff.numel()
        k = max(1, int(round(fraction * n)))
        if importance is None:
            chosen = rng.choice(n, k, replace=False)
        else:  # sampling without replacement, probability ~ importance (Gumbel top-k)
            f = importance[i].reshape(-1).astype(np.float64)
            keys = np.log(f + 1e-30 * (f.max() + 1e-300)) + rng.gumbel(size=n)
            chosen = np.argpartition(-keys, k - 1)[:k]
        mask = torch.zeros(n)
        mask[torch.as_tensor(chosen)] = 1.0
        w_max = float(layer.matrix.w_max.max())
        dev = layer.w_eff.device  # the chip's backend (Chip.use_backend)
        layer.sram_mask = mask.reshape(layer.w_eff.shape).to(dev)
        layer.sram_code = nn.Parameter(torch.zeros(layer.w_eff.shape, device=dev))
        layer.sram_step = w_max / (2 ** (bits - 1) - 1)
        layer.sram_word_bits = bits
        words += k
    return words


def enable_bias_training(chip: Chip) -> None:
    """Make each analog layer's bias and a per-column gain (init 1) trainable parameters."""
    for layer in chip.layers:
        dev = layer.w_eff.device  # the chip's backend (Chip.use_backend)
        bias = (layer.bias if layer.bias is not None
                else torch.zeros(layer.matrix.n_out, device=dev))
        if "bias" in layer._buffers:
            del layer._buffers["bias"]
        layer.bias = nn.Parameter(bias.clone())
        layer.col_gain = nn.Parameter(torch.ones(layer.matrix.n_out, device=dev))


def adapt(chip: Chip, dataset: Dataset, train: str, config: AdaptConfig = AdaptConfig(),
          seed: int = 0) -> dict[str, Any]:
    """Train ``train`` ("sram" or "bias") parameters on the chip; returns a summary."""
    if train not in TRAINABLE:
        raise ConfigError(f"train = {train!r} is invalid; allowed: one of {TRAINABLE}")
    layers = chip.layers
    if train == "sram":
        params = [layer.sram_code for layer in layers if layer.sram_code is not None]
        if not params:
            raise ConfigError("the chip has no SRAM: call attach_sram first")
    else:
        enable_bias_training(chip)
        params = [p for layer in layers for p in (layer.bias, layer.col_gain)]
    for p in chip.module.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    start = time.perf_counter()
    x_all = torch.from_numpy(dataset.x_train)
    y_all = torch.from_numpy(dataset.y_train)
    dev = chip.torch_device
    chip.reset_reads(stream=1)
    losses = []
    with seeded_deterministic(seed, 1, dev):
        opt = torch.optim.Adam(params, lr=config.learning_rate if train == "sram"
                               else config.learning_rate * 0.02)
        order_gen = torch.Generator().manual_seed(seed + 5)
        for idx in step_batches(len(x_all), config.batch_size, config.steps, order_gen):
            loss = classification_loss(chip.module(x_all[idx].to(dev)), y_all[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    for p in params:
        p.requires_grad_(False)
    return {"train": train, "steps": config.steps, "batch_size": config.batch_size,
            "images_seen": config.steps * config.batch_size, "wall_s": time.perf_counter() -
            start, "final_loss": float(np.mean(losses[-10:])) if losses else math.nan}


def sram_words(chip: Chip) -> int:
    return int(sum(int(layer.sram_mask.sum()) for layer in chip.layers
                   if layer.sram_mask is not None))
