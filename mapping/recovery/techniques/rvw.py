"""Read-verify-write (R-V-W) programming of a mapped chip, and its per-cell counts.

Every cell of every layer is programmed by the write-verify loop of
:mod:`xbar.devices.write_verify` toward its target level. Stuck-at cells (the device's SA0/SA1
map, drawn at one-shot programming) cannot be moved, but the controller does not know which
they are: each verifies like any other cell. A cell stuck inside its target's verify window
(stuck at g_min with the lowest level as target, at g_max with the highest) passes its first
read: 0 pulses, 1 read. Any other stuck cell is pulsed until the controller's stopping rule
gives up on it (:class:`xbar.devices.write_verify.StoppingRule`, from the hardware's
``[programming]`` section: the pulse cap, by default the loop's own, and an optional early
abort after k pulses that do not move the cell), as the RADAR data shows for cells that never
verify. That rule decides most of T_rvw on a chip with stuck cells:
:func:`stuck_time_share` says how much.

Which loop programs the cells: the one that travels with the device
(:class:`xbar.devices.DeviceFile`'s ``write_verify``: a device file's ``/write_verify`` group,
or a fitted preset's loop when the preset is asked for by name, see
:func:`xbar.devices.resolve_device_file`). A device without one, whatever it is called, gets
the transfer rule of :func:`rvw_params`: the loop fitted to measured data (the RADAR
3-bits-per-cell preset by default) moved onto the device's levels: the verify window's
half-width is the same fraction of the level spacing as in the fit (median over the fit's
closed windows), pulses aim at the level itself, and the step and spread parameters are the
fit's medians over its inner levels. Stuck cells come from the device's own fault rates, not
from the fit.
"""

from __future__ import annotations

import math

import numpy as np

from xbar.config import HardwareConfig
from xbar.devices import Device, DeviceFile
from xbar.devices.presets import WRITE_VERIFY_PRESETS
from xbar.devices.write_verify import StoppingRule, WriteVerifyParams
from xbar.mapping.chip import Chip
from xbar.timing.programming import LayerCells, programming_time
from xbar.errors import ConfigError


def rvw_params(device: Device | DeviceFile, template: str | WriteVerifyParams = "radar-3bpc"
               ) -> WriteVerifyParams:
    """The write-verify loop for ``device``: the one it carries, else the transfer rule.

    Args:
        device: A :class:`DeviceFile` (its ``write_verify`` loop is used when it has one) or
            a bare :class:`Device` (no loop of its own: the transfer rule). The device's
            ``name`` plays no part.
        template: The fitted loop the transfer rule starts from: a preset name of
            :data:`xbar.devices.presets.WRITE_VERIFY_PRESETS` or the parameters themselves.

    Raises:
        ConfigError: An unknown template, or a carried loop whose number of levels is not
            the device's.
    """
    own = device.write_verify if isinstance(device, DeviceFile) else None
    device = device.device if isinstance(device, DeviceFile) else device
    if own is not None:
        if own.n_levels != device.n_levels:
            raise ConfigError(f"the write-verify loop carried by device {device.name!r} has "
                              f"{own.n_levels} levels but the device has n_levels = "
                              f"{device.n_levels}; give a loop with one entry per level")
        return own
    if isinstance(template, str):
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


_LOOP_FIELDS = ("n_levels", "levels_us", "g_min_us", "g_max_us")


def with_loop(device: Device, base: DeviceFile | None) -> Device | DeviceFile:
    """``device`` (a variant of ``base.device``, e.g. one value of a sweep) with ``base``'s
    write-verify loop when it keeps the levels and range the loop was fitted for
    (n_levels, levels_us, g_min_us, g_max_us unchanged); else ``device`` alone, which gets
    the transfer rule: a loop fitted for other levels would aim at the wrong conductances."""
    if base is None or base.write_verify is None:
        return device
    if any(getattr(device, f) != getattr(base.device, f) for f in _LOOP_FIELDS):
        return device
    return DeviceFile(device, write_verify=base.write_verify)


def program_rvw(chip: Chip, params: WriteVerifyParams, seed: int = 0,
                stopping: StoppingRule | None = None) -> list[LayerCells]:
    """Reprogram every cell of ``chip`` by write-verify; returns per-layer counts.

    ``stopping``: the controller's stopping rule (None: the loop's caps, no early abort;
    :meth:`xbar.config.ProgrammingConfig.stopping_rule` gives a hardware's). Cells the
    chip's fault map holds stuck go through the loop at their stuck conductance (module
    docstring) and stay stuck.
    """
    counts = []
    offset = 0
    for layer in chip.layers:
        m = layer.matrix
        # every cell, stuck ones included (at their stuck conductance, read as the loop's
        # nearest reachable value: the loop's range may be narrower than the device's)
        pulses, reads = m.write_verify(m.target_levels, params, seed,
                                       cells=np.ones(m.target_levels.shape, bool),
                                       offset=offset, stopping=stopping)
        offset += m.target_levels.size
        layer.refresh_weights()
        counts.append(LayerCells(layer.layer_name, m.n_in, m.n_out, pulses, reads))
    return counts


def without_stuck(chip: Chip, counts: list[LayerCells]) -> list[LayerCells]:
    """``counts`` with every cell the chip's fault map holds stuck charged 0 pulses and 1
    read: what R-V-W would cost if stuck cells cost nothing beyond their first verify."""
    out = []
    for layer, c in zip(chip.layers, counts):
        stuck = layer.matrix.stuck != 0
        out.append(LayerCells(c.name, c.n_in, c.n_out, np.where(stuck, 0, c.pulses),
                              np.where(stuck, 1, c.reads)))
    return out


def stuck_time_share(chip: Chip, counts: list[LayerCells], hw: HardwareConfig
                     ) -> dict[str, float]:
    """How much of R-V-W's cost the chip's stuck cells carry.

    Returns ``stuck_cells`` (fraction of cells stuck), ``stuck_pulse_share`` (their share of
    all pulses) and ``stuck_time_share`` = 1 - T(:func:`without_stuck`) / T_rvw, both times
    from the programming engine under ``hw.programming``'s accounting (under row-synchronous
    timing a row waits for its slowest cell, so the time share exceeds the pulse share when
    stuck cells set the rows' pace).
    """
    t_all = programming_time(counts, hw).total_s
    t_free = programming_time(without_stuck(chip, counts), hw).total_s
    n = sum(c.n_cells for c in counts)
    stuck = [layer.matrix.stuck != 0 for layer in chip.layers]
    pulses = sum(int(c.pulses.sum()) for c in counts)
    stuck_pulses = sum(int(c.pulses[s].sum()) for c, s in zip(counts, stuck))
    return {"stuck_cells": sum(int(s.sum()) for s in stuck) / n if n else 0.0,
            "stuck_pulse_share": stuck_pulses / pulses if pulses else 0.0,
            "stuck_time_share": 1.0 - t_free / t_all if t_all > 0 else 0.0,
            "t_rvw_s": t_all, "t_rvw_without_stuck_s": t_free}


def healthy_median_pulses(chip: Chip, counts: list[LayerCells]) -> int:
    """Median pulses of the healthy cells that needed at least one pulse (>= 1): the cap of
    the stopping rule "cap = a healthy cell's median"."""
    vals = [c.pulses[(layer.matrix.stuck == 0) & (c.pulses > 0)]
            for layer, c in zip(chip.layers, counts)]
    flat = np.concatenate(vals) if vals else np.zeros(0)
    return max(1, int(np.median(flat))) if flat.size else 1


def outside_windows(chip: Chip, params: WriteVerifyParams) -> float:
    """Fraction of the chip's healthy cells whose conductance lies outside their target
    level's verify window (cells the controller gave up on, or never verified)."""
    out = total = 0
    lo, hi = np.asarray(params.window_lo_us), np.asarray(params.window_hi_us)
    for layer in chip.layers:
        m = layer.matrix
        healthy = m.stuck == 0
        g, lv = m.g_us[healthy], m.target_levels[healthy]
        out += int(((g < lo[lv]) | (g > hi[lv])).sum())
        total += int(healthy.sum())
    return out / total if total else 0.0
