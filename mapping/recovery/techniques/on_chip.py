"""A few on-device retraining iterations that rewrite RRAM cells (work 3: ITT-RNA's CNN step).

Each iteration runs one batch of training images forward through the chip (analog, with its
DAC, ADC and read noise) and back (straight-through, the gradient of ``x @ w_eff.T`` with
the cells' own weights), then rewrites cells:

1. per mapped layer, the ``rewrite_fraction`` of its weights with the largest |gradient|,
   among weights none of whose cells the map says are stuck, move one level step (the
   column's level spacing over its scale) against the gradient's sign (a Manhattan-rule
   update: the least a cell can move);
2. the layout gives their new target levels (with the chip's programmed column scales,
   which cannot change without rewriting the whole column); every healthy cell whose level
   changed is rewritten, by ``rewrite_mode``:
   ``"one-shot"``: one pulse; the cell lands at its level by the device's one write
   (:meth:`xbar.analog.AnalogMatrix.write`): its own device-to-device deviation plus a
   fresh cycle-to-cycle draw, in the device's split (``Device.c2c_fraction``);
   ``"write-verify"``: the write-verify loop of :mod:`xbar.devices.write_verify` (the loop
   R-V-W uses, :func:`xbar.mapping.recovery.techniques.rvw.rvw_params`, with the chip's stuck cells
   and the hardware's stopping rule), counting its pulses and reads.

Costs: every rewrite is one write of one cell and one endurance cycle (counted per cell:
max and mean over the chip's cells, with the test pass's and the first programming's writes
included); its pulses and verify reads time the writes of the iteration through the
programming engine (:func:`xbar.timing.programming.programming_time`, one pass per
iteration) and their energy (:func:`xbar.timing.energy.programming_energy`). The forward and
backward passes are timed as adaptation steps with no SRAM words
(:func:`xbar.timing.adaptation.adaptation_time`) plus the weight gradients of every weight on
the digital gradient unit (``batch x positions x n_in x n_out`` MACs per layer at
``grad_macs_per_cycle``), and costed by :func:`xbar.timing.energy.adaptation_energy` plus
those MACs at ``digital_mac_pj``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.layout import weight_layout
from xbar.mapping.chip import Chip
from xbar.params import Params, param
from xbar.timing.adaptation import adaptation_time
from xbar.timing.energy import adaptation_energy, conductance_sums, programming_energy
from xbar.timing.network import ceil_div
from xbar.timing.programming import LayerCells, programming_time

__all__ = ["OnChipConfig", "OnChipResult", "REWRITE_MODES", "retrain_on_chip"]

REWRITE_MODES = ("one-shot", "write-verify")


@dataclass(frozen=True)
class OnChipConfig(Params):
    """The on-device retraining budget (module docstring)."""

    SECTION = "on_chip"

    iterations: int = param(10, unit="iterations", range=(1, 10**6),
                            doc="Forward/backward passes, each followed by rewrites.")
    batch_size: int = param(256, unit="images", range=(1, 10**6), doc="Images per iteration.")
    rewrite_fraction: float = param(0.002, unit="fraction", range=(0, 1, True, True),
                                    doc="Weights per layer moved one level per iteration.")
    rewrite_mode: str = param("one-shot", choices=REWRITE_MODES,
                              doc="one-shot: one pulse per write; write-verify: the R-V-W loop.")


@dataclass
class OnChipResult:
    """What the iterations cost.

    Attributes:
        rewrites: Cell writes, all iterations.
        pulses, reads: Programming pulses and verify reads of those writes.
        rewrite_s, rewrite_pj: Their time (the engine, summed over iterations) and energy.
        pass_s, pass_pj: Forward/backward passes and weight gradients.
        writes_per_cell: Per layer, rewrites of each cell (int32, the chip's arrays' shape).
        accuracy_per_iteration: Training-batch accuracy seen on chip at each iteration.
    """

    rewrites: int = 0
    pulses: int = 0
    reads: int = 0
    rewrite_s: float = 0.0
    rewrite_pj: float = 0.0
    pass_s: float = 0.0
    pass_pj: float = 0.0
    writes_per_cell: list[np.ndarray] = field(default_factory=list)
    accuracy_per_iteration: list[float] = field(default_factory=list)


def _step_weights(layer: Any, device: Device, layout: Any) -> torch.Tensor:
    """One level step of each output column in weight units, (n_out, 1)."""
    lv = device.levels
    spacing = float(lv[-1] - lv[0]) / (device.n_levels - 1)
    return torch.as_tensor(spacing / layer.matrix.g_scale, dtype=torch.float32)[:, None]


def retrain_on_chip(chip: Chip, dataset: Any, weights: list[np.ndarray],
                    stuck_known: list[np.ndarray],
                    cfg: OnChipConfig, hw: Any, specs: list[Any], seed: int,
                    wv_params: Any = None) -> OnChipResult:
    """Retrain ``chip`` in place for ``cfg.iterations`` iterations (module docstring).

    Args:
        chip: A calibrated chip (arrays in input-row order; its ``row_perms`` say where).
        dataset: Training images and labels (``x_train``, ``y_train``).
        weights: The weights programmed (out x in) per layer: the starting targets.
        stuck_known: Per layer, the map's stuck codes in input-row order (n_in, n_phys).
        hw: The hardware configuration (timing, programming, adaptation, energy).
        specs: The network's layer shapes, aligned with the chip's layers.
        seed: Batches and fresh draws.
        wv_params: The write-verify loop (``rewrite_mode = "write-verify"``).
    """
    if not isinstance(cfg, OnChipConfig):
        raise ConfigError(f"on-chip retraining settings must be an OnChipConfig; got "
                          f"{type(cfg).__name__}")
    if cfg.rewrite_mode == "write-verify" and wv_params is None:
        raise ConfigError("rewrite_mode = 'write-verify' needs the write-verify loop "
                          "(wv_params)")
    layers = chip.layers
    device = chip.device
    layout = weight_layout(chip.config.array)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    targets = [torch.as_tensor(w, dtype=torch.float32).clone() for w in weights]
    res = OnChipResult(writes_per_cell=[np.zeros(lay.matrix.g_us.shape, np.int32)
                                        for lay in layers])
    x_all = torch.from_numpy(dataset.x_train)
    y_all = torch.from_numpy(dataset.y_train).long()
    prog = hw.programming
    wv_cells = 0
    for it in range(cfg.iterations):
        idx = torch.as_tensor(np.sort(rng.choice(len(x_all), min(cfg.batch_size, len(x_all)),
                                                 replace=False)))
        for layer in layers:
            layer.w_eff.requires_grad_(True)
            layer.w_eff.grad = None
        chip.reset_reads(stream=1000 + it)
        with torch.enable_grad():
            out = chip.module(x_all[idx])
            loss = F.cross_entropy(out, y_all[idx])
            loss.backward()
        res.accuracy_per_iteration.append(float((out.argmax(1) == y_all[idx]).float().mean()))
        counts = []
        for k, layer in enumerate(layers):
            m = layer.matrix
            grad = layer.w_eff.grad
            layer.w_eff.requires_grad_(False)
            cm = layout.columns(m.n_out)
            bad = stuck_known[k] != 0
            movable = ~torch.as_tensor((bad[:, cm.pos_cols] | bad[:, cm.neg_cols]).T)
            n_move = int(round(cfg.rewrite_fraction * m.n_out * m.n_in))
            score = torch.where(movable & (grad != 0), grad.abs(),
                                torch.full_like(grad, -1.0)).reshape(-1)
            n_move = min(n_move, int((score > 0).sum()))
            pulses = np.zeros(m.g_us.shape, np.int64)
            reads = np.zeros(m.g_us.shape, np.int64)
            if n_move:
                pick = torch.zeros(score.numel(), dtype=torch.bool)
                pick[torch.topk(score, n_move).indices] = True
                pick = pick.reshape(grad.shape)
                w_max = torch.as_tensor(m.w_max, dtype=torch.float32)[:, None]
                new = targets[k] - pick * torch.sign(grad) * _step_weights(layer, device, layout)
                targets[k] = torch.maximum(torch.minimum(new, w_max), -w_max)
                levels = layout.target_levels(targets[k].double().numpy(), device, m.g_scale)
                # every cell whose level changed is written, less those the map calls stuck
                # (skipped); a stuck cell the test missed takes the write and stays stuck
                changed = (levels != m.target_levels) & ~bad
                if cfg.rewrite_mode == "write-verify":
                    p, r = m.write_verify(levels, wv_params, seed + 17, skip=bad,
                                          offset=wv_cells, stopping=prog.stopping_rule())
                    pulses += p
                    reads += r
                    wv_cells += int(changed.sum())
                else:
                    m.write(levels, rng, skip=bad)
                    pulses[changed] = 1
                res.writes_per_cell[k] += changed
                res.rewrites += int(changed.sum())
            layer.refresh_weights()
            counts.append(LayerCells(layer.layer_name, m.n_in, m.n_out, pulses, reads))
        res.pulses += sum(int(c.pulses.sum()) for c in counts)
        res.reads += sum(int(c.reads.sum()) for c in counts)
        if any(c.pulses.any() for c in counts):
            res.rewrite_s += programming_time(counts, hw, method="rewrite").total_s
            res.rewrite_pj += programming_energy(counts, hw).total_pj
    res.pass_s, res.pass_pj = _pass_cost(chip, hw, specs, cfg)
    return res


def _pass_cost(chip: Chip, hw: Any, specs: list[Any], cfg: OnChipConfig
               ) -> tuple[float, float]:
    """Time (s) and energy (pJ) of the iterations' forward/backward passes and gradients."""
    n = len(specs)
    t = adaptation_time(specs, hw, cfg.iterations, cfg.batch_size, [0] * n).total_s
    macs = [cfg.batch_size * s.positions * s.n_in * s.n_out for s in specs]
    cycles = sum(ceil_div(m, hw.adaptation.grad_macs_per_cycle) for m in macs)
    t += cfg.iterations * cycles * 1e-9 / hw.timing.clock_ghz
    sums = conductance_sums(chip)
    e = adaptation_energy(specs, hw, cfg.iterations, cfg.batch_size, [0] * n,
                          [sums.get(s.name, 0.0) for s in specs], write=False).total_pj
    e += cfg.iterations * sum(macs) * hw.energy.digital_mac_pj
    return t, e
