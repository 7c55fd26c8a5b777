"""Where a weight matrix's cells are: one class per weight-mapping scheme, one interface.

Every model that needs to know where a weight lives asks a :class:`WeightLayout` (as
CrossSim's ``balanced_core`` and ``offset_core`` sit behind ``icore``): the analog model
(:class:`xbar.analog.AnalogMatrix`), the programming-time model and the latency closed forms
(:mod:`xbar.timing`), and KD's training-time model of programming
(:mod:`xbar.mapping.recovery.techniques.kd`). ``weight_layout(array_config)`` picks the class named by
``ArrayConfig.weight_mapping``.

A weight matrix of ``n_out`` outputs and ``n_in`` inputs becomes a cell matrix of ``n_in``
rows and ``n_phys`` physical columns; row ``i`` lies in row tile ``i // rows``. Column tile
``ct`` holds outputs ``ct * weight_cols ...``; a tile (one row tile by one column tile) is
``arrays_per_tile`` arrays, array ``k`` of column tile ``ct`` having the index
``k * n_ct + ct`` (the indices of :attr:`ColumnMap.array`).

* :class:`DifferentialLayout`: w ~ (G+ - G-) / g_scale. A weight targets
  ``g_min' + |w| * g_scale`` on its G+ cell (w > 0) or its G- cell (w < 0), the other cell
  at the lowest level g_min'; ``g_scale = (g_top - g_min') / w_max`` with g_min', g_top the
  lowest and highest levels. ``n_phys = 2 n_out``: column ``j`` is output j's G+ cell
  (array ``ct``), column ``n_out + j`` its G- cell (array ``n_ct + ct``); a tile is the
  array pair.
* :class:`OffsetLayout`: one cell per weight at ``g_ref + w * g_scale``, g_ref the level
  ``(n_levels - 1) // 2``, ``g_scale = span / w_max`` with span the smaller distance from
  g_ref to either end level; w ~ (G - G_ref) / g_scale, where G_ref is the cell, in the same
  row, of the array's reference column (all at g_ref). Every weight column of an array
  subtracts the same reference cells, so a reference cell's error is shared by the row's
  weights in that array. ``n_phys = n_out + n_ct``: the weight columns, then one reference
  column per column tile, on the bit line right after that array's weight columns
  (``cols - 1`` weight columns per array).

The target is rounded to the nearest level. The scale policy: ``"column"`` (w_max_j =
max_i |W_ji|: every output column uses the full conductance range; the factor is applied
digitally after the ADC) or ``"layer"`` (one w_max for the matrix); all-zero columns get
w_max = 1.

The arithmetic (:meth:`WeightLayout.scales`, :meth:`~WeightLayout.target_levels`,
:meth:`~WeightLayout.program`, :meth:`~WeightLayout.effective_weights`) works on NumPy arrays
and on torch tensors alike (with a ``np.random.Generator`` or a ``torch.Generator``), so the
chip and KD's training noise run the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from xbar.config import ArrayConfig
from xbar.devices import Device
from xbar.devices.programming import array_namespace
from xbar.errors import ConfigError

SCALES = ("column", "layer")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ColumnMap:
    """Where the physical columns of one weight matrix sit (all int64 arrays).

    Attributes:
        pos_cols: Physical column holding each output's weight cell (G+, or the one cell).
        neg_cols: Physical column subtracted from it (G-, or the array's reference column).
        array: Array index of each physical column within a row tile (the ADC-range group of
            :attr:`xbar.analog.AnalogMatrix.tile_of_col`).
        line: Bit line of each physical column in its array.
        n_arrays: Arrays per row tile.
        ref_cols: Physical columns that are reference columns (empty when there are none).
    """

    pos_cols: np.ndarray = field(repr=False)
    neg_cols: np.ndarray = field(repr=False)
    array: np.ndarray = field(repr=False)
    line: np.ndarray = field(repr=False)
    n_arrays: int
    ref_cols: np.ndarray = field(repr=False)


@dataclass
class ProgrammedCells:
    """One weight matrix programmed one-shot (NumPy arrays or torch tensors).

    Attributes:
        g_us: Conductances, float32 (n_in, n_phys).
        target_levels: Intended level of each cell (n_in, n_phys); int32 for NumPy.
        stuck: 0 healthy, 1 stuck at g_min, 2 stuck at g_max; int8 (n_in, n_phys).
        g_scale: uS per weight unit of each output column, float64 (n_out,).
        d2d: The cells' device-to-device standard normals, float32 (n_in, n_phys), or None
            (a device without a spread or faults): what every later write of these cells
            repeats (:meth:`xbar.devices.Device.write`).
    """

    g_us: Any
    target_levels: Any
    stuck: Any
    g_scale: Any
    d2d: Any = None


class WeightLayout(ABC):
    """How one weight-mapping scheme places a weight matrix on ``array``-shaped arrays."""

    name: ClassVar[str]
    arrays_per_tile: ClassVar[int]
    references_per_array: ClassVar[int]

    def __init__(self, array: ArrayConfig) -> None:
        if array.weight_mapping != self.name:
            raise ConfigError(f"{type(self).__name__} lays out the {self.name!r} mapping; "
                              f"the array config says {array.weight_mapping!r}")
        self.array = array

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rows={self.rows}, cols={self.cols})"

    # ------------------------------------------------------------------ geometry
    @property
    def rows(self) -> int:
        return self.array.rows

    @property
    def cols(self) -> int:
        return self.array.cols

    @property
    def weight_cols(self) -> int:
        """Bit lines per array that hold weights (the rest hold references)."""
        return self.cols - self.references_per_array

    def row_tiles(self, n_in: int) -> int:
        return _ceil_div(n_in, self.rows)

    def col_tiles(self, n_out: int) -> int:
        return _ceil_div(n_out, self.weight_cols)

    def used_columns(self, n_out: int, col_tile: int) -> int:
        """Bit lines in use in each array of column tile ``col_tile`` (weights packed from
        bit line 0, then the references)."""
        return min(self.weight_cols, n_out - col_tile * self.weight_cols) + \
            self.references_per_array

    @abstractmethod
    def physical_columns(self, n_out: int) -> int:
        """Columns of the cell matrix of an ``n_out``-output weight matrix."""

    def cell_shape(self, n_in: int, n_out: int) -> tuple[int, int]:
        """Shape of the cell matrix (every cell is programmed: weights, idle cells of a
        differential pair, references)."""
        return n_in, self.physical_columns(n_out)

    @abstractmethod
    def columns(self, n_out: int) -> ColumnMap:
        """Where each physical column of an ``n_out``-output weight matrix sits."""

    def tile_order(self, n_row_tiles: int, n_out: int) -> np.ndarray:
        """Flat (row tile, array) indices into a (row tiles, arrays) grid in mapping order:
        row tile, column tile, then the tile's arrays (G+ before G-)."""
        n_ct = self.col_tiles(n_out)
        ct = np.arange(n_ct)
        acol = (ct[:, None] + n_ct * np.arange(self.arrays_per_tile)[None, :]).reshape(-1)
        n_arrays = n_ct * self.arrays_per_tile
        return (np.arange(n_row_tiles)[:, None] * n_arrays + acol[None, :]).reshape(-1)

    # ------------------------------------------------------------------ values
    @abstractmethod
    def span_us(self, device: Device) -> tuple[float, float]:
        """(conductance of a zero weight's cell, conductance step of a full-scale weight)."""

    def scales(self, weights: Any, device: Device, scale: str = "column") -> Any:
        """g_scale (uS per weight unit, float64, one per output) for ``weights``
        (n_out x n_in, NumPy or torch)."""
        if scale not in SCALES:
            raise ConfigError(f"scale = {scale!r} is invalid; allowed: one of {SCALES}")
        xp = array_namespace(weights)
        w_max = xp.amax(abs(_float64(weights)), axis=1)
        if scale == "layer":
            w_max[:] = w_max.max()
        w_max = xp.where(w_max > 0, w_max, 1.0)
        span = self.span_us(device)[1]
        # torch turns ``float / tensor`` into a reciprocal and a product (one ulp off NumPy)
        return (span if xp is np else w_max.new_tensor(span)) / w_max

    def w_max(self, device: Device, g_scale: Any) -> Any:
        """Largest weight magnitude each output column can hold."""
        return self.span_us(device)[1] / g_scale

    @abstractmethod
    def target_levels(self, weights: Any, device: Device, g_scale: Any) -> Any:
        """Level index of every cell (n_in, n_phys) for ``weights`` (n_out x n_in)."""

    def program(self, weights: Any, device: Device, rng: Any, scale: str = "column"
                ) -> ProgrammedCells:
        """Quantise ``weights`` (n_out x n_in) to the device's levels and program every cell
        once (:meth:`xbar.devices.Device.first_write`): the chip's one-shot programming,
        for NumPy (``np.random.Generator``) or torch (``torch.Generator``). A device whose
        source fixes another weight mapping is refused (:func:`check_device_mapping`)."""
        check_device_mapping(device, self.array)
        g_scale = self.scales(weights, device, scale)
        levels = self.target_levels(weights, device, g_scale)
        g, stuck, d2d = device.first_write(levels, rng)
        return ProgrammedCells(g_us=g, target_levels=levels, stuck=stuck, g_scale=g_scale,
                               d2d=d2d)

    def effective_weights(self, g_us: Any, g_scale: Any) -> Any:
        """Weights (n_out x n_in, float64) that cells ``g_us`` (n_in, n_phys) represent: each
        weight cell minus the cell it is paired with, over the column's g_scale."""
        cm = self.columns(len(g_scale))
        g = _float64(g_us)
        return ((g[:, cm.pos_cols] - g[:, cm.neg_cols]) / g_scale).T


class DifferentialLayout(WeightLayout):
    """w ~ G+ - G-: a weight is a pair of cells in two arrays (a tile is the array pair)."""

    name = "differential"
    arrays_per_tile = 2
    references_per_array = 0

    def physical_columns(self, n_out: int) -> int:
        return 2 * n_out

    def columns(self, n_out: int) -> ColumnMap:
        wc, n_ct = self.weight_cols, self.col_tiles(n_out)
        cols = np.arange(n_out, dtype=np.int64)
        return ColumnMap(pos_cols=cols, neg_cols=cols + n_out,
                         array=np.concatenate([cols // wc, n_ct + cols // wc]),
                         line=np.concatenate([cols % wc, cols % wc]), n_arrays=2 * n_ct,
                         ref_cols=np.zeros(0, dtype=np.int64))

    def span_us(self, device: Device) -> tuple[float, float]:
        levels = device.levels
        return float(levels[0]), float(levels[-1] - levels[0])

    def target_levels(self, weights: Any, device: Device, g_scale: Any) -> Any:
        xp = array_namespace(weights)
        wt = _float64(weights).T                                  # (n_in, n_out)
        mag = device.nearest_level(self.span_us(device)[0] + abs(wt) * g_scale)
        pos = xp.where(wt > 0, mag, 0)
        neg = xp.where(wt < 0, mag, 0)
        return _int32(xp.concatenate([pos, neg], axis=1))


class OffsetLayout(WeightLayout):
    """w ~ G - G_ref: one cell per weight and a reference column of middle-level cells per
    array, shared by the array's ``cols - 1`` weight columns."""

    name = "offset"
    arrays_per_tile = 1
    references_per_array = 1

    def physical_columns(self, n_out: int) -> int:
        return n_out + self.col_tiles(n_out)

    def columns(self, n_out: int) -> ColumnMap:
        wc, n_ct = self.weight_cols, self.col_tiles(n_out)
        cols = np.arange(n_out, dtype=np.int64)
        ct = np.arange(n_ct, dtype=np.int64)
        used = np.minimum(wc, n_out - ct * wc)            # the reference sits right after them
        return ColumnMap(pos_cols=cols, neg_cols=n_out + cols // wc,
                         array=np.concatenate([cols // wc, ct]),
                         line=np.concatenate([cols % wc, used]), n_arrays=n_ct,
                         ref_cols=n_out + ct)

    @staticmethod
    def reference_level(device: Device) -> int:
        """Index of the level the reference cells (and zero weights) are programmed to."""
        return (device.n_levels - 1) // 2

    def span_us(self, device: Device) -> tuple[float, float]:
        if device.n_levels < 3:
            raise ConfigError(f"offset weight mapping needs a device with >= 3 levels (a "
                              f"reference level and one each side); {device.name!r} has "
                              f"{device.n_levels}")
        levels = device.levels
        g_ref = levels[self.reference_level(device)]
        return float(g_ref), float(min(g_ref - levels[0], levels[-1] - g_ref))

    def target_levels(self, weights: Any, device: Device, g_scale: Any) -> Any:
        xp = array_namespace(weights)
        wt = _float64(weights).T                                  # (n_in, n_out)
        lv_w = device.nearest_level(self.span_us(device)[0] + wt * g_scale)
        ref = lv_w[:, :1] * 0 + self.reference_level(device)      # (n_in, 1), lv_w's kind
        refs = xp.concatenate([ref] * self.col_tiles(wt.shape[1]), axis=1)
        return _int32(xp.concatenate([lv_w, refs], axis=1))


LAYOUTS: dict[str, type[WeightLayout]] = {
    DifferentialLayout.name: DifferentialLayout,
    OffsetLayout.name: OffsetLayout,
}


MAPPING_WORDS = {"differential": "a cell pair per weight",
                 "offset": "one cell per weight against a reference column"}


def check_device_mapping(device: Device, config: Any, hardware: str = "the hardware") -> None:
    """Refuse to map weights onto ``device``'s cells in a way its source rules out.

    ``config``: an :class:`ArrayConfig`, anything holding one as ``.array`` (an
    :class:`xbar.config.XbarConfig`), or a mapping name. A device whose ``weight_mapping`` is
    empty fixes nothing; otherwise the array's mapping must equal it. ``hardware`` names the
    hardware in the message (``"--hw default"``).

    Raises:
        ConfigError: Naming both mappings and the two ways out: hardware with the device's
            mapping, or a copy of the device that fixes none.
    """
    fixed = device.weight_mapping
    if isinstance(config, str):
        mapping = config
    else:
        array = config if isinstance(config, ArrayConfig) else getattr(config, "array", None)
        mapping = getattr(array, "weight_mapping", None)
    if not fixed or mapping == fixed:
        return
    from xbar.devices.presets import implied_hardware

    hw = implied_hardware(device)
    raise ConfigError(
        f"device {device.name!r} fixes weight_mapping = {fixed!r} "
        f"({MAPPING_WORDS.get(fixed, fixed)}: the setting of its source), but {hardware} has "
        f"array.weight_mapping = {mapping!r} ({MAPPING_WORDS.get(mapping, mapping)}); "
        f"use hardware with array.weight_mapping = {fixed!r} (the hardware preset {hw!r}: "
        f"load_hardware({hw!r}) in Python, --hw {hw} or no --hw on the command line), or, to "
        f"run this cell on {mapping!r}, a copy that fixes no mapping: "
        "device.replace(weight_mapping=\"\") (in a device file: weight_mapping = \"\")")


def weight_layout(config: Any) -> WeightLayout:
    """The layout of ``config``'s weight mapping: an :class:`ArrayConfig`, or anything with
    one as ``.array`` (an :class:`xbar.config.XbarConfig`)."""
    array = config if isinstance(config, ArrayConfig) else getattr(config, "array", None)
    if not isinstance(array, ArrayConfig):
        raise ConfigError(f"weight_layout needs an ArrayConfig (or a config holding one as "
                          f".array); got {type(config).__name__}")
    try:
        return LAYOUTS[array.weight_mapping](array)
    except KeyError:
        raise ConfigError(f"ArrayConfig.weight_mapping = {array.weight_mapping!r} has no "
                          f"layout; allowed: one of {tuple(LAYOUTS)}") from None


def _float64(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    if array_namespace(x) is np:
        return np.asarray(x, dtype=np.float64)
    return x.double()


def _int32(x: Any) -> Any:
    """Level indices: int32 for NumPy (the chip's arrays), left int64 for torch (indexing)."""
    return x.astype(np.int32) if array_namespace(x) is np else x
