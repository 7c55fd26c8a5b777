"""Read-verify-write (R-V-W) programming of a mapped chip, and its per-cell counts.

Every cell of every layer is programmed by the write-verify loop of
:mod:`xbar.devices.write_verify` toward its target level; stuck-at cells (the device's SA0/SA1
map, drawn at one-shot programming) cannot be moved: they stay stuck and the loop spends its
whole pulse cap on them, as the RADAR data shows for cells that never verify.

For a device without a fitted loop of its own, :func:`rvw_params` transfers the loop fitted
to measured data (the RADAR 3-bits-per-cell preset by default) onto the device's levels:
the verify window's half-width is the same fraction of the level spacing as in the fit
(median over the fit's closed windows), pulses aim at the level itself, and the step and
spread parameters are the fit's medians over its inner levels. Stuck cells come from the
device's own fault rates, not from the fit.
"""

from __future__ import annotations

import math
import numpy as np
import torch

from xbar.devices import Device
from xbar.devices.presets import WRITE_VERIFY_PRESETS
from xbar.devices.write_verify import WriteVerifyParams, program_write_verify
from xbar.mapping.chip import Chip
from xbar.timing.programming import LayerCells
from xbar.errors import ConfigError


def rvw_params(device: Device, template: str | WriteVerifyParams = "radar-3bpc"
               ) -> WriteVerifyParams:
    """Write-verify parameters for ``device``: its own fit if it has one, else transferred."""
    if isinstance(template, str):
        if device.name in WRITE_VERIFY_PRESETS:
            return WRITE_VERIFY_PRESETS[device.name]()
        if template not in WRITE_VERIFY_PRESETS:
            raise ConfigError(f"unknown write-verify template {template!r}; presets: "
                             f"{', '.join(WRITE_VERIFY_PRESETS)}")
        template = WRITE_VERIFY_PRESETS[template]()
    t = template
    n_t = t.n_levels
    inner = list(range(1, n_t - 1)) or list(range(n_t))
    spacing_t = np.diff(np.asarray(t.target_us))
    closed = [i for i in inner if math.isfinite(t.window_hi_us[i]) and t.window_lo_us[i] > 0]
    half = [(t.window_hi_us[i] - t.window_lo_us[i]) / 2 /
            min(spacing_t[i - 1] if i > 0 else np.inf, spacing_t[i] if i < n_t - 1 else np.inf)
            for i in closed]
    rel_half = float(np.median(half)) if half else 0.05
    lv = device.levels
    gaps = np.diff(lv)
    near = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    hw = rel_half * near
    lo = np.maximum(lv - hw, 0.0)
    hi = lv + hw

    def med(values: tuple[float, ...]) -> float:
        return float(np.median([values[i] for i in inner]))

    n = device.n_levels
    return WriteVerifyParams(
        window_lo_us=tuple(lo), window_hi_us=tuple(hi), target_us=tuple(lv),
        step_fraction=(med(t.step_fraction),) * n, step_sigma=(med(t.step_sigma),) * n,
        cell_sigma=(med(t.cell_sigma),) * n, stuck_fraction=(0.0,) * n,
        stuck_g_us=tuple(lv), max_pulses=(int(np.median([t.max_pulses[i] for i in inner])),) * n,
        g_start_us=float(lv[0]), g_min_us=device.g_min_us, g_max_us=device.g_max_us,
        read_noise=max(t.read_noise, device.read_noise),
        source=f"transferred from {t.source} onto {device.name}'s levels "
               f"(window half-width {rel_half:.3g} of the level spacing)")


def program_rvw(chip: Chip, params: WriteVerifyParams, seed: int = 0) -> list[LayerCells]:
    """Reprogram every cell of ``chip`` by write-verify; returns per-layer counts."""
    counts = []
    offset = 0
    cap = int(max(params.max_pulses))
    for layer in chip.layers:
        m = layer.matrix
        res = program_write_verify(params, m.target_levels, seed=seed, cell_offset=offset)
        offset += m.target_levels.size
        g = res.g_us.astype(np.float32)
        pulses = res.pulses.astype(np.int64)
        reads = res.reads.astype(np.int64)
        stuck0, stuck1 = m.stuck == 1, m.stuck == 2
        g[stuck0] = m.device.g_min_us
        g[stuck1] = m.device.g_max_us
        stuck = stuck0 | stuck1
        pulses[stuck] = cap
        reads[stuck] = cap + 1
        m.g_us = g
        layer.w_eff = torch.as_tensor(m.effective_weights(), dtype=torch.float32)
        counts.append(LayerCells(layer.layer_name, m.n_in, m.n_out, pulses, reads))
    return counts
