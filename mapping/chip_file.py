"""Reading a chip file defensively: every field checked against the model it is loaded onto.

:meth:`xbar.mapping.chip.Chip.load` programs the model given afresh (that fixes the shapes,
the column layout and the digital parameters' names) and then replaces its state with the
file's, layer by layer, through the checks here. A damaged or foreign file, a file of another
format version, or one whose layers do not fit the model is a
:class:`~xbar.errors.FileFormatError` naming the file, the layer and what is wrong; nothing
is ever filled in with a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from xbar.config import XbarConfig
from xbar.devices import Device
from xbar.devices.files import device_from_attrs
from xbar.errors import FileFormatError, XbarError
from xbar.files import hdf5_scalar, open_hdf5
from xbar.layout import SCALES, check_device_mapping
from xbar.mapping.analog_layers import AnalogConv2d, AnalogLayer

FORMAT = "xbar-sim chip"
FORMAT_VERSION = 4
"""Version 2 stores the device's read-disturb fields (a version 1 file predates them: off);
version 3 its ``weight_mapping`` (older files predate it: no mapping fixed); version 4 its
relaxation fields (older files predate them: no relaxation). A chip file holds the cells as
they are (``g_us``); a loaded chip's clock starts at 0 with them as written
(:mod:`xbar.devices.relaxation`)."""
MATRIX_ARRAYS = ("g_us", "target_levels", "stuck", "g_scale", "pos_cols", "neg_cols",
                 "tile_of_col")
LAYOUT_ARRAYS = ("pos_cols", "neg_cols", "tile_of_col")
ANALOG_STATE = (".w_eff", ".sram_code", ".col_gain", ".sram_mask")
_CONV_ATTRS = ("in_channels", "kernel_size", "stride", "padding", "dilation", "padding_mode")
_REL = 1e-6  # float32 rounding of a conductance bound


def open_chip_file(path: Path) -> Any:
    """The chip file, open for reading (a context manager), after its kind and format version
    are checked; HDF5 read failures inside the block become a FileFormatError naming the
    file (:func:`xbar.files.open_hdf5`)."""
    return open_hdf5(path, FORMAT, FORMAT_VERSION, "chip file",
                     "written by --save-chip or Chip.save")


def _attr(node: h5py.Group, name: str, where: str) -> Any:
    if name not in node.attrs:
        raise FileFormatError(f"{where}: missing attribute {name!r}")
    return hdf5_scalar(node.attrs[name])


def _int(value: Any, name: str, where: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise FileFormatError(f"{where}: {name} = {value!r} is invalid; allowed: an integer "
                              f">= {lo}")
    return value


@dataclass(frozen=True)
class ChipHeader:
    """What the file's root, /device and /hardware say."""

    seed: int
    scale: str
    model: str
    input_shape: tuple[int, ...]
    device: Device
    config: XbarConfig


def read_header(f: h5py.File, path: Path) -> ChipHeader:
    """The chip's seed, scale, model, input shape, device and hardware, each checked."""
    where = str(path)
    seed = _int(_attr(f, "seed", where), "seed", where)
    scale = _attr(f, "scale", where)
    if scale not in SCALES:
        raise FileFormatError(f"{where}: scale = {scale!r} is invalid; allowed: one of "
                              f"{SCALES}")
    model = _attr(f, "model", where)
    if not isinstance(model, str):
        raise FileFormatError(f"{where}: model = {model!r} is invalid; allowed: a string")
    shape = np.asarray(_attr(f, "model_input_shape", where))
    if shape.ndim != 1 or (shape.size and (shape.dtype.kind not in "iu" or shape.min() < 1)):
        raise FileFormatError(f"{where}: model_input_shape = {shape.tolist()!r} is invalid; "
                              "allowed: a list of positive integers")
    if not isinstance(f.get("device"), h5py.Group):
        raise FileFormatError(f"{where}: no /device group (the device the chip was programmed "
                              "with)")
    device = device_from_attrs(f["device"], f"{where} /device",
                               hdf5_scalar(f.attrs["format_version"]))
    config = read_hardware(f, path)
    try:  # Chip.program refuses it; a file saying so is damaged, not a user's choice
        check_device_mapping(device, config, "its /hardware")
    except XbarError as exc:
        raise FileFormatError(f"{where}: {exc}") from None
    return ChipHeader(seed, scale, model, tuple(int(v) for v in shape), device, config)


def read_hardware(f: h5py.File, path: Path) -> XbarConfig:
    """The /hardware attributes (``section.field``): every field of every section required."""
    where = f"{path} /hardware"
    if not isinstance(f.get("hardware"), h5py.Group):
        raise FileFormatError(f"{path}: no /hardware group (the array and converter settings)")
    expected = XbarConfig().to_dict()
    doc: dict[str, dict[str, Any]] = {}
    for key, value in f["hardware"].attrs.items():
        section, _, name = key.partition(".")
        if section not in expected or name not in expected[section]:
            valid = [f"{s}.{n}" for s, fields in expected.items() for n in fields]
            raise FileFormatError(f"{where}: unknown attribute {key!r}; valid: {valid}")
        doc.setdefault(section, {})[name] = hdf5_scalar(value)
    missing = [f"{s}.{n}" for s, fields in expected.items() for n in fields
               if n not in doc.get(s, {})]
    if missing:
        raise FileFormatError(f"{where}: missing attribute(s) {missing}; a chip file stores "
                              "every hardware field")
    try:
        return XbarConfig.from_dict(doc, where)
    except XbarError as exc:
        text = str(exc)
        raise FileFormatError(text if text.startswith(where) else f"{where}: {text}") from None


def check_layer_groups(f: h5py.File, path: Path, layers: list[AnalogLayer]) -> None:
    """One group /layers/0 .. /layers/n-1 per analog layer of the model, in order."""
    if not isinstance(f.get("layers"), h5py.Group):
        raise FileFormatError(f"{path}: no /layers group")
    names = sorted(f["layers"])
    want = sorted(str(i) for i in range(len(layers)))
    if names != want:
        raise FileFormatError(f"{path}: the chip has {len(names)} analog layers (groups "
                              f"{names[:8]} in /layers) but the model given maps to "
                              f"{len(layers)}; load the chip with the model it was "
                              "programmed from")


def load_digital(f: h5py.File, path: Path, module: nn.Module) -> None:
    """The digital parameters and buffers: the model's names, each with its shape, finite."""
    where = f"{path} /digital"
    if not isinstance(f.get("digital"), h5py.Group):
        raise FileFormatError(f"{path}: no /digital group (the digital parameters)")
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith(ANALOG_STATE)}
    stored = set(f["digital"])
    unknown, missing = sorted(stored - set(expected)), sorted(set(expected) - stored)
    if unknown or missing:
        raise FileFormatError(f"{where}: parameters {unknown} are not in the model given and "
                              f"{missing} are missing; load the chip with the model it was "
                              "programmed from")
    state = {}
    for k, ref in expected.items():
        node = f["digital"][k]
        if not isinstance(node, h5py.Dataset) or tuple(node.shape) != tuple(ref.shape):
            shape = node.shape if isinstance(node, h5py.Dataset) else "a group"
            raise FileFormatError(f"{where}/{k}: shape {shape} in the file but "
                                  f"{tuple(ref.shape)} in the model")
        value = node[()]
        if np.asarray(value).dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise FileFormatError(f"{where}/{k}: contains NaN or infinity")
        state[k] = torch.as_tensor(np.asarray(value)).to(ref.dtype)
    module.load_state_dict(state, strict=False)


def _array(g: h5py.Group, name: str, where: str, shape: tuple[int, ...], kinds: str
           ) -> np.ndarray:
    node = g.get(name)
    if not isinstance(node, h5py.Dataset):
        raise FileFormatError(f"{where}: missing dataset {name!r}")
    if tuple(node.shape) != tuple(shape) or node.dtype.kind not in kinds:
        raise FileFormatError(f"{where}: {name} has shape {node.shape} and dtype {node.dtype} "
                              f"but the model given needs shape {tuple(shape)} of "
                              f"{'integers' if kinds == 'iu' else 'floating-point numbers'}")
    value = node[()]
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = int((~np.isfinite(value)).sum())
        raise FileFormatError(f"{where}: {name} contains {bad} NaN or infinite value(s)")
    return value


def _bad(where: str, name: str, mask: np.ndarray, values: np.ndarray, allowed: str) -> None:
    if np.any(mask):
        first = tuple(int(i) for i in np.argwhere(mask)[0])
        raise FileFormatError(f"{where}: {int(mask.sum())} value(s) of {name} out of range, "
                              f"e.g. {name}{list(first)} = {values[first].item()!r}; allowed: "
                              f"{allowed}")


def restore_layer(g: h5py.Group, layer: AnalogLayer, device: Device, where: str) -> None:
    """Check layer group ``g`` against the freshly programmed ``layer`` and load it."""
    m = layer.matrix
    name = _attr(g, "name", where)
    if name != layer.layer_name:
        raise FileFormatError(f"{where}: the layer is {name!r} in the file but "
                              f"{layer.layer_name!r} in the model given")
    where = f"{where} ({name!r})"
    kind = _attr(g, "kind", where)
    want_kind = "conv2d" if isinstance(layer, AnalogConv2d) else "linear"
    n_out, n_in = _attr(g, "n_out", where), _attr(g, "n_in", where)
    if kind != want_kind or (n_out, n_in) != (m.n_out, m.n_in):
        raise FileFormatError(f"{where}: a {kind} layer of {n_out}x{n_in} weights in the file "
                              f"but a {want_kind} layer of {m.n_out}x{m.n_in} in the model given")
    if isinstance(layer, AnalogConv2d):
        for attr in _CONV_ATTRS:
            got, want = _attr(g, attr, where), getattr(layer, attr)
            got = tuple(np.asarray(got).tolist()) if isinstance(want, tuple) else got
            if got != want:
                raise FileFormatError(f"{where}: {attr} = {got!r} in the file but {want!r} in "
                                      "the model given")
    arrays = {}
    for a in MATRIX_ARRAYS:
        ref = getattr(m, a)
        arrays[a] = _array(g, a, where, ref.shape, "f" if a in ("g_us", "g_scale") else "iu")
    for a in LAYOUT_ARRAYS:
        if not np.array_equal(arrays[a], getattr(m, a)):
            raise FileFormatError(f"{where}: the column layout ({a}) differs from the one the "
                                  f"file's hardware settings give for a {m.n_out}x{m.n_in} "
                                  "layer")
    g_us, stuck, levels = arrays["g_us"], arrays["stuck"], arrays["target_levels"]
    lo, hi = np.float32(device.g_min_us), np.float32(device.g_max_us)
    _bad(where, "g_us", (g_us < lo * (1 - _REL)) | (g_us > hi * (1 + _REL)), g_us,
         f"[g_min_us, g_max_us] = [{device.g_min_us:g}, {device.g_max_us:g}] uS (no negative "
         "conductances)")
    _bad(where, "target_levels", (levels < 0) | (levels >= device.n_levels), levels,
         f"level indices 0..{device.n_levels - 1}")
    _bad(where, "stuck", ~np.isin(stuck, (0, 1, 2)), stuck, "0 (healthy), 1 (SA0), 2 (SA1)")
    _bad(where, "g_us of SA0 cells", (stuck == 1) & ~np.isclose(g_us, lo, rtol=_REL, atol=0),
         g_us, f"g_min_us = {device.g_min_us:g} uS (a stuck-at-0 cell sits at g_min)")
    _bad(where, "g_us of SA1 cells", (stuck == 2) & ~np.isclose(g_us, hi, rtol=_REL, atol=0),
         g_us, f"g_max_us = {device.g_max_us:g} uS (a stuck-at-1 cell sits at g_max)")
    _bad(where, "g_scale", arrays["g_scale"] <= 0, arrays["g_scale"], "> 0 uS per weight unit")
    for a in MATRIX_ARRAYS:
        setattr(m, a, arrays[a].astype(getattr(m, a).dtype, copy=False))
    m.adc_range_ua = None
    if "adc_range_ua" in g:
        adc = _array(g, "adc_range_ua", where, (m.n_row_tiles, m.n_arrays), "f")
        _bad(where, "adc_range_ua", adc <= 0, adc, "> 0 uA")
        m.adc_range_ua = adc.astype(np.float64)
    x_max, signed = _attr(g, "x_max", where), _attr(g, "signed", where)
    if not isinstance(x_max, float) or not (np.isnan(x_max) or 0 < x_max < np.inf):
        raise FileFormatError(f"{where}: x_max = {x_max!r} is invalid; allowed: > 0 (or NaN "
                              "before calibration)")
    if not isinstance(signed, bool):
        raise FileFormatError(f"{where}: signed = {signed!r} is invalid; allowed: true or false")
    if np.isfinite(x_max):
        layer.set_input_range(x_max, signed)
    if ("bias" in g) != (layer.bias is not None):
        raise FileFormatError(f"{where}: the file {'has' if 'bias' in g else 'has no'} bias but "
                              f"the model's layer {'has none' if 'bias' in g else 'has one'}")
    if layer.bias is not None:
        layer.bias = torch.as_tensor(_array(g, "bias", where, (m.n_out,), "f"),
                                     dtype=layer.bias.dtype)
    layer.refresh_weights()
    if "col_gain" in g:
        layer.col_gain = torch.nn.Parameter(torch.as_tensor(
            _array(g, "col_gain", where, (m.n_out,), "f"), dtype=torch.float32),
            requires_grad=False)
    if "sram_index" in g or "sram_code" in g:
        _restore_sram(g, layer, where)


def _restore_sram(g: h5py.Group, layer: AnalogLayer, where: str) -> None:
    shape = layer.w_eff.shape
    node = g.get("sram_index")
    if not isinstance(node, h5py.Dataset) or node.ndim != 1:
        raise FileFormatError(f"{where}: sram_index must be a 1-D dataset of flat positions")
    idx = _array(g, "sram_index", where, node.shape, "iu")
    code = _array(g, "sram_code", where, (len(idx),), "iu")
    step = _attr(g, "sram_step", where)
    # Files before the rename call it sram_bits (bits per word as well).
    bits = hdf5_scalar(g.attrs["sram_word_bits"]) if "sram_word_bits" in g.attrs else (
        hdf5_scalar(g.attrs["sram_bits"]) if "sram_bits" in g.attrs else None)
    if bits is None:
        raise FileFormatError(f"{where}: SRAM words but no sram_word_bits attribute")
    bits = _int(bits, "sram_word_bits", where, lo=2)
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < np.inf:
        raise FileFormatError(f"{where}: sram_step = {step!r} is invalid; allowed: > 0")
    _bad(where, "sram_index", (idx < 0) | (idx >= shape.numel()), idx,
         f"flat positions 0..{shape.numel() - 1} of the {shape[0]}x{shape[1]} weights")
    if len(np.unique(idx)) != len(idx):
        raise FileFormatError(f"{where}: sram_index repeats a position")
    q = 2 ** (bits - 1) - 1
    _bad(where, "sram_code", np.abs(code) > q, code, f"integers in [-{q}, {q}] ({bits}-bit words)")
    mask = torch.zeros(shape.numel())
    words = torch.zeros(shape.numel())
    mask[torch.as_tensor(idx, dtype=torch.int64)] = 1.0
    words[torch.as_tensor(idx, dtype=torch.int64)] = torch.as_tensor(code, dtype=torch.float32)
    layer.sram_mask = mask.reshape(shape)
    layer.sram_code = torch.nn.Parameter(words.reshape(shape), requires_grad=False)
    layer.sram_step = float(step)
    layer.sram_word_bits = bits


def read_row_perm(g: h5py.Group, layer: AnalogLayer, config: XbarConfig, where: str
                  ) -> np.ndarray | None:
    """The layer's fault-aware row permutation (``row_perm``: the physical row of each input
    row), or None when the file has none (the identity; files before fault-aware mapping).

    Each input row must have its own physical row inside its row tile, below the tile's end
    (a spare row of the last tile at most)."""
    if "row_perm" not in g:
        return None
    m = layer.matrix
    rows = config.array.rows
    where = f"{where} ({layer.layer_name!r})"
    perm = _array(g, "row_perm", where, (m.n_in,), "iu").astype(np.int64)
    limit = m.n_row_tiles * rows
    _bad(where, "row_perm", (perm < 0) | (perm >= limit), perm,
         f"physical rows 0..{limit - 1} ({m.n_row_tiles} row tile(s) of {rows} rows)")
    if len(np.unique(perm)) != len(perm):
        raise FileFormatError(f"{where}: row_perm puts two input rows on one physical row")
    _bad(where, "row_perm", perm // rows != np.arange(m.n_in) // rows, perm,
         "each input row in its own row tile")
    return perm
