"""Fault-aware training off device with the chip's map in the loop (work 3: ITT-RNA, DATE 2017).

The network trains on the host while every mapped weight passes, on every forward, through
what the tested chip would hold (:class:`MapForward`): the layout's rounding to levels, then
each cell by the map (stuck cells at g_min / g_max, healthy cells at ``level * exp(theta)``,
:func:`xbar.mapping.recovery.techniques.fault_aware.predicted_cells`), with the rows where
fault-aware mapping put them; gradients pass straight through. On top of that (DATE 2017's steps):

* a weight with a stuck cell (either cell of its differential pair, or its one cell in the
  offset mapping) is *held*: set to the value its cells give and frozen;
* a weight on an abnormal cell (stuck, or ``|theta|`` above ``variation_threshold`` standard
  deviations of the map's theta over its healthy cells and above ``min_deviation``) is
  *reduced and
  frozen* in order of sensitivity ``|w * dL/dw|`` (the first-order change of the loss if the
  weight were removed, summed over ``sensitivity_batches`` batches): over ``rounds`` rounds,
  round ``r`` takes the most sensitive ``1 / rounds`` of the abnormal weights not yet frozen,
  multiplies them by ``reduce_factor`` and freezes them; the rest of the network then
  retrains for ``epochs`` epochs (Adam, cross-entropy);
* the dynamic adjustment for MLPs (``layerwise``): for each mapped layer ``l`` but the last,
  layers up to ``l`` are programmed onto the chip (the same cells, the map's permutation)
  and run in analog on ``adjust_images`` training images; the layers after ``l`` retrain on
  those analog outputs for ``adjust_epochs`` epochs, so later layers learn the errors the
  programmed earlier ones make. Only for an ``nn.Sequential`` whose mapped layers are all
  ``nn.Linear`` (``"auto"``: exactly then).

Every choice the papers leave open is a field of :class:`FaultTrainConfig`.
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
from torch.nn.utils import parametrize

from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.layout import weight_layout
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.train import seeded_deterministic
from xbar.mapping.recovery.techniques.fault_map import FaultMap
from xbar.params import Params, param

__all__ = ["FaultTrainConfig", "MapForward", "LAYERWISE", "fault_aware_train", "weight_masks"]

LAYERWISE = ("auto", "on", "off")


@dataclass(frozen=True)
class FaultTrainConfig(Params):
    """The recipe of fault-aware training (module docstring)."""

    SECTION = "fault_train"

    epochs: int = param(2, unit="epochs", range=(0, 10**4),
                        doc="Epochs of retraining after each round of freezing.")
    batch_size: int = param(64, unit="images", range=(1, 10**6), doc="Images per step.")
    learning_rate: float = param(2e-4, range=(0, 10, True, False), doc="Adam's rate.")
    rounds: int = param(2, unit="rounds", range=(1, 1000),
                        doc="Rounds of reduce-and-freeze, each followed by retraining.")
    variation_threshold: float = param(
        2.0, unit="std", range=(0, 100, True, False),
        doc="A healthy cell with |theta| above this many standard deviations of the map's "
            "theta is abnormal (DATE 2017 leaves it open).")
    min_deviation: float = param(
        0.05, unit="ln units", range=(0, 100),
        doc="And above this floor (the test's reads resolve about 1 % at the middle level).")
    reduce_factor: float = param(0.5, unit="fraction", range=(0, 1),
                                 doc="Reduced weights are multiplied by this (0: removed).")
    sensitivity_batches: int = param(4, unit="batches", range=(1, 10**5),
                                     doc="Batches whose |w * grad| is summed per round.")
    layerwise: str = param("auto", choices=LAYERWISE,
                           doc="Dynamic adjustment: auto (MLPs only), on, off.")
    adjust_epochs: int = param(2, unit="epochs", range=(0, 10**4),
                               doc="Epochs of each layer-by-layer adjustment.")
    adjust_images: int = param(2048, unit="images", range=(1, 10**7),
                               doc="Training images run in analog for each adjustment.")


def _predicted(levels: torch.Tensor, stuck: torch.Tensor, theta: torch.Tensor,
               device: Device) -> torch.Tensor:
    """:func:`~xbar.mapping.recovery.techniques.fault_aware.predicted_cells` in torch (float64)."""
    centre = torch.as_tensor(device.levels, dtype=torch.float64)
    g = (centre[levels] * torch.exp(theta)).clamp(device.g_min_us, device.g_max_us)
    g = torch.where(stuck == 1, torch.full_like(g, device.g_min_us), g)
    return torch.where(stuck == 2, torch.full_like(g, device.g_max_us), g)


class MapForward(nn.Module):
    """Weight parametrization: the weights the tested chip would hold (straight-through).

    Args:
        device: The cell technology.
        xbar: The crossbar configuration (its weight layout).
        stuck, theta: The map of the layer's cells in input-row order (n_in, n_phys): the
            rows of the physical map taken through the layer's permutation.
        scale: The scale policy of the mapping.
    """

    def __init__(self, device: Device, xbar: Any, stuck: np.ndarray, theta: np.ndarray,
                 scale: str = "column") -> None:
        super().__init__()
        self.device = device
        self.layout = weight_layout(xbar.array)
        self.stuck = torch.as_tensor(stuck.astype(np.int64))
        self.theta = torch.as_tensor(theta.astype(np.float64))
        self.scale = scale

    def chip_weights(self, w: torch.Tensor) -> torch.Tensor:
        """What the cells give for weights ``w`` (any shape with out first), float64 (out, in)."""
        flat = w.detach().double().reshape(w.shape[0], -1)
        g_scale = self.layout.scales(flat, self.device, self.scale)
        levels = self.layout.target_levels(flat, self.device, g_scale).long()
        g = _predicted(levels, self.stuck, self.theta, self.device)
        return self.layout.effective_weights(g, g_scale)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            err = self.chip_weights(w).to(w.dtype).reshape(w.shape) - w
        return w + err.detach()


def weight_masks(stuck: np.ndarray, theta: np.ndarray, xbar: Any, n_out: int,
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(held, abnormal) boolean (n_out, n_in): weights with a stuck cell, and weights with a
    stuck cell or a cell whose |theta| exceeds ``threshold``."""
    cm = weight_layout(xbar.array).columns(n_out)
    bad = (stuck != 0)
    wild = bad | (np.abs(theta) > threshold)
    held = (bad[:, cm.pos_cols] | bad[:, cm.neg_cols]).T
    abnormal = (wild[:, cm.pos_cols] | wild[:, cm.neg_cols]).T
    return held, abnormal


def _logical(fmap: FaultMap, perms: list[np.ndarray | None], k: int, n_in: int
             ) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(n_in) if perms[k] is None else perms[k]
    return fmap.layers[k].stuck[rows], fmap.layers[k].theta[rows]


def _is_mlp(model: nn.Module) -> bool:
    layers = mapped_layers(model)
    return isinstance(model, nn.Sequential) and bool(layers) and all(
        isinstance(m, nn.Linear) for _, m in layers) and all(
        "." not in name for name, _ in layers)


def _steps(model: nn.Module, params: list[nn.Parameter], frozen: list[tuple[torch.Tensor,
           torch.Tensor]], x: torch.Tensor, y: torch.Tensor, cfg: FaultTrainConfig,
           epochs: int, gen: torch.Generator) -> None:
    """``epochs`` epochs of Adam on cross-entropy; frozen entries restored after each step."""
    if not params or epochs == 0:
        return
    opt = torch.optim.Adam(params, lr=cfg.learning_rate)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for lo in range(0, len(x), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            with torch.no_grad():
                for w, (mask, value) in zip(params, frozen):
                    w.copy_(torch.where(mask, value, w))
    model.eval()


def _sensitivity(model: nn.Module, raws: list[nn.Parameter], x: torch.Tensor,
                 y: torch.Tensor, cfg: FaultTrainConfig, gen: torch.Generator
                 ) -> list[torch.Tensor]:
    sens = [torch.zeros_like(w) for w in raws]
    order = torch.randperm(len(x), generator=gen)
    for b in range(cfg.sensitivity_batches):
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        if len(idx) == 0:
            break
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        for s, w in zip(sens, raws):
            if w.grad is not None:
                s += (w.detach() * w.grad).abs()
    model.zero_grad(set_to_none=True)
    return sens


def fault_aware_train(teacher: nn.Module, dataset: Any, device: Device, xbar: Any,
                      fmap: FaultMap, perms: list[np.ndarray | None],
                      cfg: FaultTrainConfig = FaultTrainConfig(), seed: int = 0,
                      scale: str = "column", program: Any = None
                      ) -> tuple[nn.Module, dict[str, Any]]:
    """Train a copy of ``teacher`` (BatchNorm folded) against the chip's map; returns it (plain
    weights, to be programmed with the same permutations) and info (counts, host seconds).

    ``program(model)`` (needed for the layer-by-layer adjustment only): ``model`` programmed
    onto this chip with the permutations and calibrated, as a :class:`Chip`.
    """
    if not isinstance(cfg, FaultTrainConfig):
        raise ConfigError(f"fault-aware training settings must be a FaultTrainConfig; got "
                          f"{type(cfg).__name__}")
    start = time.perf_counter()
    model, _ = fold_batchnorm(teacher)
    template = copy.deepcopy(model)
    named = mapped_layers(model)
    if len(named) != len(fmap.layers) or len(perms) != len(named):
        raise ConfigError(f"the map has {len(fmap.layers)} layers and {len(perms)} "
                          f"permutations for a model of {len(named)} mapped layers")
    layerwise = cfg.layerwise == "on" or (cfg.layerwise == "auto" and _is_mlp(model))
    if cfg.layerwise == "on" and not _is_mlp(model):
        raise ConfigError("layerwise = 'on' needs an nn.Sequential MLP (every mapped layer an "
                          "nn.Linear at the top level); use 'auto' or 'off'")
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train).long()
    healthy = np.concatenate([lm.theta[lm.stuck == 0] for lm in fmap.layers])
    spread = float(healthy.std()) if healthy.size else 0.0
    threshold = max(cfg.variation_threshold * spread, cfg.min_deviation)
    info: dict[str, Any] = {"held": 0, "abnormal": 0, "reduced": 0, "layerwise": layerwise,
                            "theta_std": spread}
    with seeded_deterministic(seed, 1):
        gen = torch.Generator().manual_seed(seed + 11)
        raws, frozen, abnormal = [], [], []
        for k, (_, layer) in enumerate(named):
            n_out = layer.weight.shape[0]
            stuck, theta = _logical(fmap, perms, k, layer.weight[0].numel())
            mf = MapForward(device, xbar, stuck, theta, scale)
            held, ab = weight_masks(stuck, theta, xbar, n_out, threshold)
            with torch.no_grad():  # held weights take the value their cells give
                w = layer.weight
                given = mf.chip_weights(w).to(w.dtype).reshape(w.shape)
                hmask = torch.as_tensor(held).reshape(w.shape)
                w.copy_(torch.where(hmask, given, w))
            parametrize.register_parametrization(layer, "weight", mf)
            raw = layer.parametrizations.weight.original
            raws.append(raw)
            frozen.append((hmask.clone(), raw.detach().clone()))
            abnormal.append(torch.as_tensor(ab & ~held).reshape(w.shape))
            info["held"] += int(held.sum())
            info["abnormal"] += int(ab.sum())
        per_round = [int(math.ceil(int(a.sum()) / cfg.rounds)) for a in abnormal]
        for _ in range(cfg.rounds):
            sens = _sensitivity(model, raws, x, y, cfg, gen)
            with torch.no_grad():
                for k, (raw, s) in enumerate(zip(raws, sens)):
                    mask, _ = frozen[k]
                    cand = abnormal[k] & ~mask
                    n = min(per_round[k], int(cand.sum()))
                    if n == 0:
                        continue
                    score = torch.where(cand, s, torch.full_like(s, -1.0)).reshape(-1)
                    pick = torch.zeros(raw.numel(), dtype=torch.bool)
                    pick[torch.topk(score, n).indices] = True
                    pick = pick.reshape(raw.shape)
                    raw.copy_(torch.where(pick, raw * cfg.reduce_factor, raw))
                    new_mask = mask | pick
                    frozen[k] = (new_mask, raw.detach().clone())
                    info["reduced"] += n
            _steps(model, raws, frozen, x, y, cfg, cfg.epochs, gen)
        if layerwise:
            if program is None:
                raise ConfigError("the layer-by-layer adjustment needs program(model)")
            info["adjust_images"] = _adjust(model, template, named, raws, frozen, x, y, cfg,
                                            gen, program, seed)
        for _, layer in named:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    info["offline_train_host_s"] = time.perf_counter() - start
    return model, info


def _adjust(model: nn.Sequential, template: nn.Module, named: list[tuple[str, nn.Module]],
            raws: list[nn.Parameter],
            frozen: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, y: torch.Tensor,
            cfg: FaultTrainConfig, gen: torch.Generator, program: Any, seed: int) -> int:
    """Layer-by-layer: retrain the layers after each one on the programmed chip's analog
    outputs of the layers up to it. Returns the images run in analog per adjustment."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    idx = torch.as_tensor(np.sort(rng.choice(len(x), min(cfg.adjust_images, len(x)),
                                             replace=False)))
    xs, ys = x[idx], y[idx]
    for li in range(len(named) - 1):
        with torch.no_grad():
            plain = _plain_copy(model, template)
        chip = program(plain)
        nxt = named[li + 1][0]
        seen: list[torch.Tensor] = []
        target = next(lay for lay in chip.layers if lay.layer_name == nxt)
        hook = target.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
        try:
            chip.reset_reads(stream=100 + li)
            chip.predict(xs.numpy())
        finally:
            hook.remove()
        inputs = torch.cat(seen)
        tail = model[int(nxt):]
        params = raws[li + 1:]
        _steps(tail, params, frozen[li + 1:], inputs, ys, cfg, cfg.adjust_epochs, gen)
    return int(len(idx))


def _plain_copy(model: nn.Module, template: nn.Module) -> nn.Module:
    """``template`` (the unparametrized model) holding ``model``'s current raw weights and
    other parameters, for programming. (A deep copy of a parametrized module shares its
    generated class, so removing the copy's parametrization would break the original.)"""
    out = copy.deepcopy(template)
    state = {k.replace("parametrizations.weight.original", "weight"): v.detach().clone()
             for k, v in model.state_dict().items()}
    out.load_state_dict(state)
    return out
