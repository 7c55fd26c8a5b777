"""Fault-aware mapping (DATE 2017, work 3): weight rows onto crossbar rows by bipartite matching.

Given the chip's map (:mod:`xbar.mapping.recovery.techniques.fault_map`), each layer's input rows
(the weight matrix's rows in the cell matrix: one word line each) are assigned to physical rows,
row tile by row tile, so that the expected column-output error is smallest. Putting logical
row ``i`` on physical row ``j`` costs::

    C[i, j] = a_i * sum over outputs k of (w_ki - w^_ki(j))^2

where ``w^_ki(j)`` is the weight row ``j``'s cells would hold: each cell of the row at its
target level ``l`` (the layout's rounding, :mod:`xbar.layout`) becomes ``g_min`` if the map
says SA0, ``g_max`` if SA1, else ``clip(level_l * exp(theta_j), g_min, g_max)`` with the
cell's measured log deviation; the weight is the layout's difference of its two cells over
the column's scale. ``a_i = E[x_i^2]`` is the mean square of input ``i`` on calibration
inputs (its activity; 1 for every row when none is given): with independent inputs the
expected squared output error of column k is ``sum_i E[x_i^2] (w_ki - w^_ki)^2``, the cost's
sum over k. :func:`scipy.optimize.linear_sum_assignment` solves each tile exactly.

A row stays in its row tile (the tile's ADC sums its rows, so the kernel's tiling stays
true); the last row tile may also offer its unused word lines as spare rows
(``spare_rows``). The chip keeps the permutation (:attr:`xbar.mapping.chip.Chip.row_perms`:
the physical row of each input row) and its arrays in input order (row ``i`` holds the
conductances of physical row ``perm[i]``), so the kernel runs unchanged: a tile's currents are
sums over its rows, and neither the sums nor the output-referred read noise depend on the
rows' order. With an ideal device a permuted chip computes exactly what the unpermuted one
does (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.layout import weight_layout
from xbar.mapping.chip import Chip
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.cells import LayerCellsDraw, chip_cells
from xbar.mapping.recovery.techniques.fault_map import FaultMap, LayerMap

__all__ = ["check_perm", "expected_error", "fault_aware_perms", "folded_weights",
           "input_activity", "match_rows", "predicted_cells", "program_mapped", "row_costs"]


def folded_weights(model: nn.Module) -> list[np.ndarray]:
    """Each mapped layer's weight matrix (out x in, float64) after BatchNorm folding, as
    :meth:`Chip.program` maps it."""
    folded, _ = fold_batchnorm(model)
    return [layer.weight.detach().cpu().double().numpy().reshape(layer.weight.shape[0], -1)
            for _, layer in mapped_layers(folded)]


def input_activity(chip: Chip, x: np.ndarray) -> list[np.ndarray]:
    """``E[x_i^2]`` of every analog layer's input rows on images ``x`` (exact MVMs of the
    programmed weights), float64 (n_in,) per layer."""
    inputs = chip.capture_inputs(torch.as_tensor(np.asarray(x, np.float32)), exact=True)
    return [np.mean(layer.input_columns(inputs[layer.layer_name]).double().numpy() ** 2, axis=0)
            for layer in chip.layers]


def predicted_cells(levels: np.ndarray, stuck: np.ndarray, theta: np.ndarray,
                    device: Device) -> np.ndarray:
    """Conductances (uS) cells at ``levels`` would take by the map: stuck cells at g_min or
    g_max, healthy ones at ``clip(level * exp(theta))``. Broadcasts."""
    g = np.clip(device.levels[levels] * np.exp(theta), device.g_min_us, device.g_max_us)
    return np.where(stuck == 1, device.g_min_us, np.where(stuck == 2, device.g_max_us, g))


def row_costs(w: np.ndarray, fmap: LayerMap, device: Device, xbar: Any,
              activity: np.ndarray | None = None, scale: str = "column") -> np.ndarray:
    """``C[i, j]`` of the module docstring for weights ``w`` (out x in) over the map's physical
    rows: float64 (n_in, rows). Pairs that would leave a row tile are ``inf``."""
    layout = weight_layout(xbar.array)
    n_out, n_in = w.shape
    rows = fmap.stuck.shape[0]
    g_scale = layout.scales(w, device, scale)
    levels = layout.target_levels(w, device, g_scale)                 # (n_in, n_phys)
    cm = layout.columns(n_out)
    a = np.ones(n_in) if activity is None else np.asarray(activity, np.float64)
    if a.shape != (n_in,):
        raise ConfigError(f"activity has shape {a.shape}; allowed: ({n_in},), one per input")
    cost = np.full((n_in, rows), np.inf)
    tile = xbar.array.rows
    for lo in range(0, n_in, tile):
        logical = np.arange(lo, min(lo + tile, n_in))
        physical = np.arange(lo, min(lo + tile, rows))
        for i in logical:                                  # (physical, n_phys) per input row
            g = predicted_cells(levels[i][None, :], fmap.stuck[physical],
                                fmap.theta[physical], device)
            w_hat = (g[:, cm.pos_cols] - g[:, cm.neg_cols]) / g_scale
            cost[i, physical] = a[i] * np.sum((w_hat - w[:, i]) ** 2, axis=1)
    return cost


def match_rows(cost: np.ndarray, tile: int) -> np.ndarray:
    """The physical row of each logical row, int64 (n_in,), minimising the summed cost tile by
    tile (an exact assignment; logical rows of tile t only go to physical rows of tile t)."""
    n_in, rows = cost.shape
    perm = np.empty(n_in, np.int64)
    for lo in range(0, n_in, tile):
        logical = np.arange(lo, min(lo + tile, n_in))
        physical = np.arange(lo, min(lo + tile, rows))
        sub = cost[np.ix_(logical, physical)]
        r, c = linear_sum_assignment(sub)
        perm[logical[r]] = physical[c]
    return perm


def expected_error(cost: np.ndarray, perm: np.ndarray) -> float:
    """The summed cost of an assignment (the expected squared column-output error)."""
    return float(cost[np.arange(len(perm)), perm].sum())


def check_perm(perm: np.ndarray, n_in: int, rows: int, tile: int, what: str) -> np.ndarray:
    """``perm`` as int64 after checking it assigns every input row to its own physical row
    inside its row tile and below ``rows``."""
    p = np.asarray(perm)
    if p.shape != (n_in,) or p.dtype.kind not in "iu":
        raise ConfigError(f"{what}: row permutation of shape {p.shape} ({p.dtype}); allowed: "
                          f"{n_in} integers, the physical row of each input row")
    p = p.astype(np.int64)
    if n_in and (p.min() < 0 or p.max() >= rows):
        raise ConfigError(f"{what}: row permutation outside physical rows 0..{rows - 1}")
    if len(np.unique(p)) != n_in:
        raise ConfigError(f"{what}: row permutation puts two input rows on one physical row")
    if np.any(p // tile != np.arange(n_in) // tile):
        raise ConfigError(f"{what}: row permutation moves an input row out of its "
                          f"{tile}-row tile")
    return p


def program_mapped(model: nn.Module, device: Device, xbar: Any, seed: int,
                   perms: list[np.ndarray | None], spare_rows: int = 0, scale: str = "column",
                   shape: tuple[int, ...] = (), weights: list[np.ndarray] | None = None,
                   cells: list[LayerCellsDraw] | None = None) -> Chip:
    """``model`` programmed one-shot onto chip ``seed`` with input row ``i`` of layer ``k`` on
    physical row ``perms[k][i]`` (None: the identity); the chip keeps the permutations.

    With every permutation the identity (and no spare rows) this is :meth:`Chip.program`
    exactly: the same draws land on the same cells.
    """
    chip = Chip.program(model, device, xbar, seed, scale, "", shape)
    weights = folded_weights(model) if weights is None else weights
    layers = chip.layers
    if len(perms) != len(layers):
        raise ConfigError(f"{len(perms)} permutations given for {len(layers)} mapped layers")
    if cells is None:
        cells = chip_cells(seed, [(lay.layer_name, lay.matrix.n_in, lay.matrix.n_out)
                                  for lay in layers], device, xbar, spare_rows)
    layout = weight_layout(xbar.array)
    for layer, w, perm, c in zip(layers, weights, perms, cells):
        if perm is None:
            continue
        m = layer.matrix
        perm = check_perm(perm, m.n_in, c.rows, xbar.array.rows, f"layer {layer.layer_name!r}")
        wp = np.zeros((m.n_out, c.rows))
        wp[:, perm] = w
        g_scale = layout.scales(w, device, scale)
        levels = layout.target_levels(wp, device, g_scale)
        g, stuck = c.program(device, levels)
        m.g_us, m.target_levels, m.stuck = g[perm], levels[perm], stuck[perm]
        m.d2d = None if c.eps is None else c.eps[perm]
        layer.refresh_weights()
        chip.row_perms[layer.layer_name] = perm
    return chip


def fault_aware_perms(weights: list[np.ndarray], fmap: FaultMap, device: Device, xbar: Any,
                      activity: list[np.ndarray] | None = None, scale: str = "column"
                      ) -> tuple[list[np.ndarray], dict[str, float]]:
    """The matched permutation of every layer, and the summed expected error before
    (identity) and after (``error_identity``, ``error_matched``)."""
    perms, before, after = [], 0.0, 0.0
    for k, (w, lmap) in enumerate(zip(weights, fmap.layers)):
        cost = row_costs(w, lmap, device, xbar, None if activity is None else activity[k],
                         scale)
        perm = match_rows(cost, xbar.array.rows)
        before += expected_error(cost, np.arange(w.shape[1]))
        after += expected_error(cost, perm)
        perms.append(perm)
    return perms, {"error_identity": before, "error_matched": after}
