"""How a cell is written: programming variation (a device-to-device and a cycle-to-cycle
part), clipping to the device's range, and stuck-at faults, for NumPy arrays and torch tensors
alike.

:class:`CellProgramming` holds the methods of :class:`xbar.devices.Device` that write cells
(the device's fields are declared in :mod:`xbar.devices.cell`): :meth:`~CellProgramming.landed`
is the one formula every write goes through; :meth:`~CellProgramming.first_write` makes new
cells (the chip's one-shot programming, and KD's training-time model of it);
:meth:`~CellProgramming.write` rewrites existing ones (work 3's test pass and on-chip
retraining, work 5's re-programming), with the cells' own device-to-device draws and a fresh
cycle-to-cycle draw.
"""

from __future__ import annotations

import hashlib
import math
import sys
from typing import Any

import numpy as np

from xbar.errors import ConfigError

__all__ = ["CellProgramming", "array_namespace", "write_rng"]


class CellProgramming:
    """The writing half of :class:`xbar.devices.Device` (a mixin: no fields of its own)."""

    def nearest_level(self, g_us: Any) -> Any:
        """Index of the nominal level nearest to each conductance (uS); a tie goes down.

        NumPy in, int32 NumPy out; a torch tensor in, an int64 tensor on its device out (the
        same arithmetic, in float64, so both give the same indices).
        """
        if _is_numpy(g_us):
            lv = self._levels
            g = np.asarray(g_us, dtype=np.float64)
        else:
            g = g_us.double().contiguous()
            lv = _like(self._levels, g)
        xp = array_namespace(g)
        idx = xp.searchsorted(lv, g).clip(1, len(self._levels) - 1)
        left = lv[idx - 1]
        right = lv[idx]
        out = xp.where(g - left <= right - g, idx - 1, idx)
        return out.astype(np.int32) if xp is np else out

    def program(self, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Program cells one-shot: target level indices in, conductances (uS, float32) out.

        Applies, in order: the programming variation (the new cells' device-to-device
        draws plus this write's cycle-to-cycle draws, :meth:`landed`), clipping to
        [g_min_us, g_max_us], and stuck-at faults (a stuck cell ignores its target). Works
        on any shape; vectorised over cells (tens of millions per second).

        Args:
            levels: Integer level indices in [0, n_levels).
            rng: The random generator; the same generator state gives the same cells.
        """
        return self.program_cells(levels, rng)[0]

    def program_cells(self, levels: Any, rng: Any) -> tuple[Any, Any]:
        """As :meth:`program`, also returning the stuck map (0 healthy, 1 SA0, 2 SA1; int8).

        ``levels`` and ``rng`` are NumPy (an integer array and a ``np.random.Generator``) or
        torch (an integer tensor and a ``torch.Generator``, for a training-time model of
        programming such as KD's): the draws come from that generator and the cells are
        made by the same formula, :meth:`conductances`.
        """
        return self.first_write(levels, rng)[:2]

    def first_write(self, levels: Any, rng: Any) -> tuple[Any, Any, Any]:
        """New cells and their first write: (g, stuck map, the cells' device-to-device draws
        ``z_d2d``, None without a spread or faults). Draws from ``rng``: the cells
        (:meth:`draw`), then, for a NumPy generator, one key of the write's cycle-to-cycle
        part (:func:`write_rng`: a different write, a different draw; a torch generator
        draws it directly)."""
        lv = self._check_levels(levels)
        where = getattr(lv, "device", None)
        eps, u = self.draw(lv.shape, rng, where)
        c2c_rng = rng
        if self.has_c2c() and isinstance(rng, np.random.Generator):
            c2c_rng = write_rng(int(rng.integers(0, 2**63)), lv)
        g, sa0, sa1 = self.conductances(lv, eps, u, self.draw_c2c(lv.shape, c2c_rng, where))
        if _is_numpy(g):
            return g, sa0.astype(np.int8) + 2 * sa1.astype(np.int8), eps
        return g, sa0.char() + 2 * sa1.char(), eps   # torch: int8 as well

    def write(self, levels: np.ndarray, d2d: np.ndarray | None, stuck: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        """A later write of existing cells (a rewrite, a test pattern): conductances (uS,
        float32) of cells with device-to-device draws ``d2d`` and stuck map ``stuck`` written
        to ``levels``, with a fresh cycle-to-cycle draw from ``rng`` (:meth:`landed`); a stuck
        cell stays where it is stuck. All arrays of one shape."""
        lv = self._check_levels(levels)
        g = self.landed(lv, d2d, self.draw_c2c(lv.shape, rng)).astype(np.float32)
        stuck = np.asarray(stuck)
        g[stuck == 1] = self.g_min_us
        g[stuck == 2] = self.g_max_us
        return g

    def _check_levels(self, levels: Any) -> Any:
        if _is_numpy(levels):
            lv = np.asarray(levels)
            integer = lv.dtype.kind in "iu"
        else:
            lv = levels
            integer = not (lv.dtype.is_floating_point or lv.dtype.is_complex
                           or lv.dtype == _torch().bool)
        if not integer:
            raise ConfigError(f"levels must be integer level indices, got dtype {lv.dtype}")
        if lv.shape.numel() if not _is_numpy(lv) else lv.size:
            lo, hi = int(lv.min()), int(lv.max())
            if lo < 0 or hi >= self.n_levels:
                raise ConfigError(f"levels must lie in [0, {self.n_levels - 1}] for device "
                                  f"{self.name!r}; got range [{lo}, {hi}]")
        return lv

    def draw(self, shape: tuple[int, ...], rng: Any, device: Any = None
             ) -> tuple[Any, Any]:
        """The random numbers programming ``shape`` cells consumes, in the order it draws
        them: standard normals (float32; None when there is neither a spread nor a fault to
        draw) and uniforms in [0, 1) for the stuck-at faults (float32; None without faults).

        The normals are drawn whenever faults are, even without a spread, so that the
        stuck-at map that follows is the same with and without variation (a sweep over sigma
        keeps its faults). ``rng``: a ``np.random.Generator`` or a ``torch.Generator`` (its
        draws are moved to ``device``).
        """
        faults = bool(self.sa0_rate or self.sa1_rate)
        normals = faults or not (self.variation == "none" or self._zero_spread())
        if isinstance(rng, np.random.Generator):
            eps = rng.standard_normal(shape, dtype=np.float32) if normals else None
            u = rng.random(shape, dtype=np.float32) if faults else None
            return eps, u
        torch = sys.modules.get("torch")   # a torch.Generator means torch is imported
        if torch is None or not isinstance(rng, torch.Generator):
            raise ConfigError(f"rng must be a numpy.random.Generator or a torch.Generator; "
                              f"got {type(rng).__name__}")
        kw = {"generator": rng, "dtype": torch.float32, "device": rng.device}
        to = rng.device if device is None else device
        eps = torch.randn(shape, **kw).to(to) if normals else None
        u = torch.rand(shape, **kw).to(to) if faults else None
        return eps, u

    def has_c2c(self) -> bool:
        """True when a write draws a cycle-to-cycle part (a spread and c2c_fraction > 0)."""
        return self.c2c_fraction > 0 and not (self.variation == "none" or self._zero_spread())

    def draw_c2c(self, shape: tuple[int, ...], rng: Any, device: Any = None) -> Any:
        """One write's cycle-to-cycle standard normals (float32; None when
        :meth:`has_c2c` is False), from a ``np.random.Generator`` or ``torch.Generator``."""
        if not self.has_c2c():
            return None
        if isinstance(rng, np.random.Generator):
            return rng.standard_normal(shape, dtype=np.float32)
        torch = _torch()
        return torch.randn(shape, generator=rng, dtype=torch.float32, device=rng.device).to(
            rng.device if device is None else device)

    def level_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Per level, float32: the conductance programming aims at (the nominal level, or the
        measured mean of a ``table`` device) and the spread around it. For the additive
        models a cell is ``centre + spread * N(0, 1)`` (spread in uS); for ``lognormal`` it is
        ``centre * exp(sigma * N(0, 1))`` and the spread column holds sigma."""
        nominal = self._levels.astype(np.float32)
        v = self.variation
        if v == "none" or self._zero_spread():
            return nominal, np.zeros_like(nominal)
        if v == "gaussian":
            if self.sigma_reference == "level":
                return nominal, np.float32(self.sigma) * nominal
            return nominal, np.full_like(nominal, np.float32(self.sigma * self._sigma_scale_us()))
        if v == "lognormal":
            return nominal, np.full_like(nominal, np.float32(self.sigma))
        if v == "table":
            return (np.asarray(self.level_mean_us, dtype=np.float32),
                    np.asarray(self.level_std_us, dtype=np.float32))
        return nominal, self.sigma_at(self._levels).astype(np.float32)   # polynomial

    def conductances(self, levels: Any, eps: Any, u: Any, c2c: Any = None
                     ) -> tuple[Any, Any, Any]:
        """The programmed cells from their target levels and the draws of :meth:`draw`
        (``eps``: the cells' device-to-device normals) and :meth:`draw_c2c` (``c2c``: the
        write's cycle-to-cycle normals; required when :meth:`has_c2c`).

        The one formula of programming, for NumPy arrays and torch tensors alike:
        :meth:`landed` (variation around the level's centre, clipped to [g_min_us,
        g_max_us]), then stuck-at faults (``u < sa0_rate``: g_min; ``sa0_rate <= u <
        sa0_rate + sa1_rate``: g_max). Returns (g, sa0 mask, sa1 mask).
        """
        g = self.landed(levels, eps, c2c)
        if u is None:
            sa0 = _zeros_bool(g)
            sa1 = _zeros_bool(g)
        else:
            sa0 = u < self.sa0_rate
            sa1 = (u >= self.sa0_rate) & (u < self.sa0_rate + self.sa1_rate)
            g[sa0] = self.g_min_us
            g[sa1] = self.g_max_us
        return g, sa0, sa1

    def stuck_of(self, u: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        """The stuck map (int8: 0 healthy, 1 SA0, 2 SA1) that fault uniforms ``u`` give
        (None: no faults, all healthy), as :meth:`conductances` draws it."""
        if u is None:
            return np.zeros(shape, np.int8)
        return ((u < self.sa0_rate).astype(np.int8)
                + 2 * ((u >= self.sa0_rate) & (u < self.sa0_rate + self.sa1_rate)))

    def landed(self, levels: Any, d2d: Any, c2c: Any) -> Any:
        """Where a write to ``levels`` lands (uS): the level's centre plus the spread
        (:meth:`level_statistics`) times z = sqrt(1 - f) d2d + sqrt(f) c2c, f =
        ``c2c_fraction`` (for ``lognormal`` in log space), clipped to [g_min_us, g_max_us].
        Every write of a cell goes through here: one-shot programming, the test pass of
        work 3, the rewrites of works 3 and 5. The clip is physics (a cell conducts no less
        than g_min and no more than g_max), and it biases cells programmed near either end:
        a lognormal or Gaussian spread around the lowest level (the idle cell of a
        differential pair) loses its lower half to g_min, so that cell's mean rises and its
        spread shrinks (docs/variation.md)."""
        centre_np, spread_np = self.level_statistics()
        centre = _like(centre_np, levels)
        if self.variation == "none" or self._zero_spread():
            return centre[levels].clip(self.g_min_us, self.g_max_us)
        if self.c2c_fraction > 0:
            if c2c is None:
                raise ConfigError(f"device {self.name!r} has c2c_fraction = "
                                  f"{self.c2c_fraction}: a write needs its cycle-to-cycle "
                                  "draws (draw_c2c)")
            f = self.c2c_fraction
            z = c2c if d2d is None or f == 1 else \
                _scalar(np.float32(math.sqrt(1 - f)), c2c) * d2d + \
                _scalar(np.float32(math.sqrt(f)), c2c) * c2c
        elif d2d is None:
            raise ConfigError(f"device {self.name!r} has a spread: a write needs the cells' "
                              "device-to-device draws")
        else:
            z = d2d
        if self.variation == "lognormal":
            g = centre[levels] * array_namespace(z).exp(_scalar(spread_np[0], z) * z)
        else:
            g = centre[levels] + _like(spread_np, levels)[levels] * z
        return g.clip(self.g_min_us, self.g_max_us)


def write_rng(key: int, levels: np.ndarray) -> np.random.Generator:
    """The generator of one write's cycle-to-cycle draws: keyed by ``key`` (drawn from the
    chip's stream) and by the levels written, so that the same chip programmed with another
    network, or a rewrite, draws afresh, while one seed and one network give one chip."""
    digest = hashlib.blake2b(np.ascontiguousarray(levels, dtype=np.int32).tobytes(),
                             digest_size=16).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(key), *words]))


# --------------------------------------------------------------------------- array modules
def _is_numpy(x: Any) -> bool:
    """True unless ``x`` is a torch tensor (lists and scalars count as NumPy)."""
    torch = sys.modules.get("torch")
    return torch is None or not isinstance(x, torch.Tensor)


def _torch() -> Any:
    import torch  # only reached with a torch tensor or generator in hand: already imported
    return torch


def array_namespace(x: Any) -> Any:
    """The module whose functions apply to ``x``: ``torch`` for a tensor, else ``numpy``."""
    return np if _is_numpy(x) else sys.modules["torch"]


def _like(table: np.ndarray, ref: Any) -> Any:
    """``table`` as an array of ``ref``'s kind (a tensor on ``ref``'s device for torch)."""
    return table if _is_numpy(ref) else _torch().as_tensor(table, device=ref.device)


def _scalar(value: np.floating, ref: Any) -> Any:
    """A float32 scalar for NumPy; the same value as a Python float for torch."""
    return value if _is_numpy(ref) else float(value)


def _zeros_bool(ref: Any) -> Any:
    if _is_numpy(ref):
        return np.zeros(ref.shape, dtype=bool)
    return _torch().zeros(ref.shape, dtype=_torch().bool, device=ref.device)
