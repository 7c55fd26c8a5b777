"""Writing a programmed matrix's cells again: the one rewrite, disturb rule of the array model.

:class:`CellWrites` is the part of :class:`xbar.analog.AnalogMatrix` that changes cells after
programming; recovery code (on-device retraining, re-programming, R-V-W, read disturb)
calls these methods rather than assigning ``g_us`` or ``target_levels`` itself:

* :meth:`CellWrites.write`: one pulse per cell (:meth:`xbar.devices.Device.write`: the cell's
  device-to-device draw plus a fresh cycle-to-cycle one);
* :meth:`CellWrites.write_verify`: the write-verify loop
  (:func:`xbar.devices.write_verify.program_write_verify`);
* :meth:`CellWrites.disturb`: read pulses' disturb (:func:`xbar.devices.read_disturb.disturbed`).

Stuck cells, one rule for both writes: the cells written are the ones asked for (default:
those whose level changes) less ``skip`` (cells the controller will not pulse, e.g. those its
fault map calls stuck); a written stuck cell takes its pulse(s) and stays where it is stuck
(through the write-verify loop at its stuck conductance); a skipped cell keeps its
conductance and level. ``g_us`` is always replaced, never edited in place (the kernels' kept
tiles and the relaxation clock follow the object). After any of these, the layer's
straight-through weights follow with
:meth:`xbar.mapping.analog_layers.AnalogLayer.refresh_weights`.

Left out: write disturb of neighbouring cells (half-selected cells are not modelled) and
endurance wear (counted by the callers, not applied to the cells).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xbar.errors import ConfigError

if TYPE_CHECKING:
    from xbar.devices import Device
    from xbar.devices.relaxation import CellClock
    from xbar.devices.write_verify import StoppingRule, WriteVerifyParams

__all__ = ["CellWrites"]


class CellWrites:
    """Rewrites and disturb of a programmed matrix's cells (module docstring). Mixed into
    :class:`xbar.analog.AnalogMatrix`, whose fields it uses: ``device``, ``g_us``,
    ``target_levels``, ``stuck``, ``d2d`` and ``clock``."""

    device: Device
    g_us: np.ndarray
    target_levels: np.ndarray
    stuck: np.ndarray
    d2d: np.ndarray | None
    clock: CellClock | None

    def write(self, levels: np.ndarray, rng: np.random.Generator,
              cells: np.ndarray | None = None, skip: np.ndarray | None = None) -> int:
        """Rewrite cells one-shot (one pulse each) to new target ``levels`` (n_in, n_phys).

        The cells written are ``cells`` (a boolean mask; default: those whose level changes)
        less ``skip`` (a boolean mask of cells the controller will not pulse, e.g. those its
        fault map calls stuck; default none). Each written cell lands by
        :meth:`xbar.devices.Device.write` (its own device-to-device draw plus a fresh
        cycle-to-cycle one from ``rng``). Stuck cells, one rule for every rewrite: a stuck
        cell that is written takes its pulse and stays where it is stuck; a skipped one is
        not pulsed. The written cells' target levels become ``levels`` (skipped cells keep
        theirs); ``g_us`` is replaced, never edited in place (the kernels' kept tiles follow
        it). Returns the number of cells written (pulses)."""
        levels = np.asarray(levels)
        mask = self._rewrite_mask(levels, cells, skip)
        g = self.g_us.copy()
        if mask.any():
            d2d = None if self.d2d is None else self.d2d[mask]
            g[mask] = self.device.write(levels[mask], d2d, self.stuck[mask], rng)
        self._rewritten(mask, g, levels)
        return int(mask.sum())

    def write_verify(self, levels: np.ndarray, loop: "WriteVerifyParams", seed: int,
                     cells: np.ndarray | None = None, skip: np.ndarray | None = None,
                     offset: int = 0, stopping: "StoppingRule | None" = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Rewrite cells by the write-verify ``loop`` to ``levels`` (n_in, n_phys): the cells
        and stuck cells as :meth:`write` chooses and treats them (a written stuck cell goes
        through the loop at its stuck conductance, read as the loop's nearest reachable
        value, under the ``stopping`` rule, and stays stuck). The loop's draws come from
        ``seed`` and each written cell's index ``offset + k`` (k counts the written cells in
        row-major order: :func:`xbar.devices.write_verify.program_write_verify`); landed
        conductances are clipped to the device's range. Returns the pulses and verify reads
        per cell (int64 arrays of ``levels``' shape; 0 where not written)."""
        from xbar.devices.write_verify import program_write_verify

        levels = np.asarray(levels)
        mask = self._rewrite_mask(levels, cells, skip)
        pulses = np.zeros(levels.shape, np.int64)
        reads = np.zeros(levels.shape, np.int64)
        g = self.g_us.copy()
        if mask.any():
            dev = self.device
            stuck = self.stuck[mask]
            stuck_us = np.clip(np.where(stuck == 1, dev.g_min_us,
                                        np.where(stuck == 2, dev.g_max_us, np.nan)),
                               loop.g_min_us, loop.g_max_us)
            r = program_write_verify(loop, levels[mask], seed=seed, cell_offset=offset,
                                     stuck_us=stuck_us, stopping=stopping)
            g[mask] = np.clip(r.g_us, dev.g_min_us, dev.g_max_us)
            g[self.stuck == 1] = dev.g_min_us
            g[self.stuck == 2] = dev.g_max_us
            pulses[mask] = r.pulses
            reads[mask] = r.reads
        self._rewritten(mask, g, levels)
        return pulses, reads

    def disturb(self, n_reads: "int | float | np.ndarray") -> None:
        """``n_reads`` read pulses' disturb on every cell
        (:func:`xbar.devices.read_disturb.disturbed`: healthy cells drift toward the device's
        ``read_disturb_toward``, stuck cells stay). ``g_us`` is replaced, never edited in
        place; a device without read disturb leaves it bit-identical (a new array)."""
        from xbar.devices.read_disturb import disturbed

        self.g_us = disturbed(self.device, self.g_us, n_reads, self.stuck)

    def _rewrite_mask(self, levels: np.ndarray, cells: np.ndarray | None,
                      skip: np.ndarray | None) -> np.ndarray:
        if levels.shape != self.target_levels.shape:
            raise ConfigError(f"levels have shape {levels.shape}; allowed: the matrix's cells, "
                              f"{self.target_levels.shape}")
        mask = levels != self.target_levels if cells is None else np.asarray(cells, bool)
        if mask.shape != levels.shape:
            raise ConfigError(f"cells have shape {mask.shape}; allowed: the matrix's cells, "
                              f"{levels.shape}")
        if skip is not None:
            mask = mask & ~np.asarray(skip, bool)
        return mask

    def _rewritten(self, mask: np.ndarray, g: np.ndarray, levels: np.ndarray) -> None:
        """Install a rewrite: the written cells' clocks restart now (with relaxation), the
        new conductances replace ``g_us``, the written cells take their new levels."""
        if self.clock is not None:
            self.clock.sync(self.g_us)
            self.clock.rewrite(mask, g[mask])
            g = self.clock.at(self.device, self.clock.now_s, self.stuck)
        self.g_us = g
        self.target_levels = np.where(mask, levels, self.target_levels).astype(np.int32)
