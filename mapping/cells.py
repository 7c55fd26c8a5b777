"""A chip's physical cells: the random draws its seed gives every cell, whatever is
programmed onto it.

:meth:`xbar.mapping.chip.Chip.program` draws, for mapped layer ``k``, the device-to-device
standard normals and the fault uniforms of its ``n_in x n_phys`` cell matrix from stream
``k`` of ``SeedSequence([seed, 0])`` (:meth:`xbar.devices.Device.draw`), then the key of
that first write's cycle-to-cycle draws (:meth:`xbar.devices.Device.first_write`).
:func:`chip_cells` draws the same numbers, so physical row ``r`` of layer ``k`` has the same
stuck state and device-to-device draw whatever is programmed onto it; the first write's
cycle-to-cycle draws depend on what it writes (:func:`xbar.devices.cell.write_rng`). Spare rows (the unused
word lines of a layer's last row tile, offered to fault-aware mapping) draw from their own
stream, ``SeedSequence([seed, 5])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbar.config import XbarConfig
from xbar.devices import Device
from xbar.devices.programming import write_rng
from xbar.errors import ConfigError
from xbar.layout import weight_layout

__all__ = ["LayerCellsDraw", "chip_cells", "spare_capacity"]


@dataclass(frozen=True)
class LayerCellsDraw:
    """The random draws that make one layer's physical cells.

    Attributes:
        name: The layer's name.
        n_in: Weight rows (the word lines the unpermuted mapping uses).
        n_out: Outputs.
        rows: Physical rows offered: ``n_in`` plus the spare rows.
        eps: Device-to-device standard normals, float32 (rows, n_phys), or None (no spread
            and no faults).
        u: Uniforms in [0, 1) for the faults, float32 (rows, n_phys), or None (no faults).
        c2c_key: The key of the chip's first write's cycle-to-cycle draws (its one-shot
            programming; :func:`xbar.devices.cell.write_rng` with the levels written), or
            None (``Device.has_c2c`` False).
    """

    name: str
    n_in: int
    n_out: int
    rows: int
    eps: np.ndarray | None
    u: np.ndarray | None
    c2c_key: int | None = None

    def program(self, device: Device, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """These cells' first write (the chip's one-shot programming) to ``levels`` (rows,
        n_phys): (g_us float32, stuck int8), by the device's one formula
        (:meth:`Device.conductances`)."""
        if levels.shape[0] != self.rows:
            raise ConfigError(f"layer {self.name!r}: levels for {levels.shape[0]} rows given, "
                              f"the layer has {self.rows} physical rows")
        c2c = None if self.c2c_key is None else device.draw_c2c(
            levels.shape, write_rng(self.c2c_key, levels))
        g, sa0, sa1 = device.conductances(levels, self.eps, self.u, c2c)
        return g.astype(np.float32), (sa0.astype(np.int8) + 2 * sa1.astype(np.int8))

    def write(self, device: Device, levels: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
        """A later write of these cells to ``levels`` (a test pattern): conductances (uS,
        float32) with a fresh cycle-to-cycle draw from ``rng`` (:meth:`Device.write`)."""
        return device.write(levels, self.eps, device.stuck_of(self.u, levels.shape), rng)


def spare_capacity(n_in: int, xbar: XbarConfig) -> int:
    """Unused word lines in a layer's last row tile (the spare rows it can offer)."""
    rows = xbar.array.rows
    return -n_in % rows


def chip_cells(seed: int, shapes: list[tuple[str, int, int]], device: Device,
               xbar: XbarConfig, spare_rows: int = 0) -> list[LayerCellsDraw]:
    """The draws of a chip's physical cells, per mapped layer: ``shapes`` lists (name, n_in,
    n_out) in mapping order; ``spare_rows`` extra rows per layer, at most the unused word
    lines of its last row tile (fewer where there are fewer)."""
    if isinstance(spare_rows, bool) or not isinstance(spare_rows, int) or spare_rows < 0:
        raise ConfigError(f"spare_rows = {spare_rows!r} is invalid; allowed: an integer >= 0")
    layout = weight_layout(xbar.array)
    main = np.random.default_rng(np.random.SeedSequence([seed, 0])).spawn(len(shapes))
    spare = np.random.default_rng(np.random.SeedSequence([seed, 5])).spawn(len(shapes))
    out = []
    for (name, n_in, n_out), rng, rng_s in zip(shapes, main, spare):
        n_phys = layout.physical_columns(n_out)
        eps, u = device.draw((n_in, n_phys), rng)
        # the first write's key, drawn as Chip.program draws it (Device.first_write)
        key = int(rng.integers(0, 2**63)) if device.has_c2c() else None
        extra = min(spare_rows, spare_capacity(n_in, xbar))
        if extra:
            eps_s, u_s = device.draw((extra, n_phys), rng_s)
            eps = None if eps is None else np.concatenate([eps, eps_s])
            u = None if u is None else np.concatenate([u, u_s])
        out.append(LayerCellsDraw(name, n_in, n_out, n_in + extra, eps, u, key))
    return out
