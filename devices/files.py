"""Device files: HDF5 (lossless, with provenance and measured tables) and TOML (by hand).

HDF5 layout (``format = "xbar-sim device"``, ``format_version = 4``; version 1 files, written
before read disturb was modelled, lack its two fields and load with it off; version 1 and 2
files predate ``weight_mapping`` and load with it empty: no mapping fixed, and
``c2c_fraction``, loading with 0: their variation was drawn once per cell; files before
version 4 predate conductance relaxation and load with its four fields 0: no relaxation)::

    /                     attrs: format, format_version, written_by, created_utc
    /device               attrs: every scalar Device field (name, g_min_us, g_max_us,
                          n_levels, variation, sigma, sigma_reference, poly_g_ref_us,
                          read_noise, sa0_rate, sa1_rate, read_disturb_rate,
                          read_disturb_toward, relax_mean_us_per_ln_t,
                          relax_std_us_per_ln_t, relax_std0_us, relax_t0_s,
                          weight_mapping, c2c_fraction, source)
    /device/<field>       float64 datasets for the non-empty tuple fields (levels_us,
                          level_mean_us, level_std_us, sigma_poly_us)
    /provenance           attrs: free-form strings (who measured, how it was fitted, ...)
    /measured/<name>      optional float64 datasets, one value per level or per cell, e.g.
                          a fit's measured per-level statistics
/write_verify         optional: the write-verify (R-V-W) loop's parameters
                          (:class:`xbar.devices.write_verify.WriteVerifyParams`); attrs: g_start_us,
                          g_min_us, g_max_us, read_noise, source; datasets: the per-level
                          fields (float64; max_pulses int64; inf = open window bound)

TOML layout: a ``[device]`` table with the same field names (lists for the tuple fields), an
optional ``[provenance]`` table of strings and an optional ``[write_verify]`` table with the
write-verify field names (``inf`` for an open window bound).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np

from xbar.devices.cell import Device
from xbar.files import hdf5_scalar, open_hdf5, stamp_hdf5, write_atomically
from xbar.devices.presets import PRESETS, preset, preset_loop
from xbar.devices.write_verify import WriteVerifyParams
from xbar.errors import ConfigError, FileFormatError, MissingFileError, XbarError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT = "xbar-sim device"
FORMAT_VERSION = 4
_TUPLE_FIELDS = ("levels_us", "level_mean_us", "level_std_us", "sigma_poly_us")
# The format version (of device files and chip files alike) that added each field; an older
# file predates it and meant its default (read disturb off: xbar.devices.read_disturb; no
# weight mapping fixed; no relaxation); a file of that version or newer must hold it.
ADDED_IN: dict[str, int] = {"read_disturb_rate": 2, "read_disturb_toward": 2,
                            "weight_mapping": 3, "c2c_fraction": 3,
                            "relax_mean_us_per_ln_t": 4, "relax_std_us_per_ln_t": 4,
                            "relax_std0_us": 4, "relax_t0_s": 4}
# What an older file meant by a field it predates, where that differs from today's default:
# before version 3 programming variation was drawn once per cell, all device-to-device.
BEFORE: dict[str, Any] = {"c2c_fraction": 0.0}
ADDED_IN_V2 = tuple(k for k, v in ADDED_IN.items() if v == 2)


@dataclass
class DeviceFile:
    """A device with what was stored beside it (write_verify: None when the file has none)."""

    device: Device
    provenance: dict[str, str] = field(default_factory=dict)
    measured: dict[str, np.ndarray] = field(default_factory=dict)
    write_verify: WriteVerifyParams | None = None


def save_device(device: Device, path: str | Path, provenance: dict[str, str] | None = None,
                measured: dict[str, np.ndarray] | None = None,
                write_verify: WriteVerifyParams | None = None) -> None:
    """Write ``device`` to an HDF5 device file, atomically.

    ``write_verify``, when given, is stored in a ``/write_verify`` group; it must have one
    entry per device level.
    """
    if write_verify is not None:
        if not isinstance(write_verify, WriteVerifyParams):
            raise FileFormatError(f"write_verify must be WriteVerifyParams, got "
                             f"{type(write_verify).__name__}")
        if write_verify.n_levels != device.n_levels:
            raise FileFormatError(f"write_verify has {write_verify.n_levels} levels but device "
                             f"{device.name!r} has n_levels = {device.n_levels}")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            stamp_hdf5(f, FORMAT, FORMAT_VERSION)
            g = f.create_group("device")
            for fld in fields(device):
                if not fld.init:
                    continue
                value = getattr(device, fld.name)
                if fld.name in _TUPLE_FIELDS:
                    if value:
                        g.create_dataset(fld.name, data=np.asarray(value, dtype=np.float64))
                else:
                    g.attrs[fld.name] = value
            p = f.create_group("provenance")
            for k, v in (provenance or {}).items():
                p.attrs[k] = str(v)
            m = f.create_group("measured")
            for k, v in (measured or {}).items():
                m.create_dataset(k, data=np.asarray(v))
            if write_verify is not None:
                _write_wv_group(f.create_group("write_verify"), write_verify)

    write_atomically(path, write)


def _write_wv_group(group: h5py.Group, params: WriteVerifyParams) -> None:
    for name, value in params.to_dict().items():
        if isinstance(value, list):
            dtype = np.int64 if name == "max_pulses" else np.float64
            group.create_dataset(name, data=np.asarray(value, dtype=dtype))
        else:
            group.attrs[name] = value


def _read_wv_group(group: h5py.Group, where: str) -> WriteVerifyParams:
    values: dict[str, Any] = {k: hdf5_scalar(v) for k, v in group.attrs.items()}
    for k in group:
        values[k] = _vector(group[k], f"{where}/{k}")
    known = [f.name for f in fields(WriteVerifyParams)]
    missing = [name for name in known if name not in values]
    if missing:  # save_device writes every field; a file lacking one is damaged
        raise FileFormatError(f"{where}: missing write-verify field(s) {missing}; a device "
                              f"file's /write_verify group holds all of {known}")
    return _build(lambda: WriteVerifyParams.from_dict(values, where), where)


def _vector(node: Any, where: str) -> tuple[Any, ...]:
    """A 1-D numeric HDF5 dataset as a tuple of Python numbers; a clear error otherwise."""
    if not isinstance(node, h5py.Dataset):
        raise FileFormatError(f"{where}: expected a 1-D numeric dataset, found a group")
    if node.ndim != 1 or node.dtype.kind not in "iuf":
        raise FileFormatError(f"{where}: expected a 1-D numeric dataset, found shape "
                              f"{node.shape} of dtype {node.dtype}")
    return tuple(node[()].tolist())


def _build(make: Callable[[], Any], where: str) -> Any:
    """``make()``, with an invalid value reported against the file (``where``)."""
    try:
        return make()
    except XbarError as exc:
        text = str(exc)
        raise FileFormatError(text if text.startswith(where) else f"{where}: {text}") from None
    except (TypeError, ValueError) as exc:  # a value of a type the field cannot take
        raise FileFormatError(f"{where}: {exc}") from None


def _from_mapping(values: Any, where: str, required: Sequence[str], why: str) -> Device:
    """A Device from its fields: unknown fields refused, every ``required`` one present."""
    if not isinstance(values, dict):
        raise FileFormatError(f"{where}: [device] = {values!r} is not a table; write it as a "
                              "section: [device] followed by 'field = value' lines")
    known = [f.name for f in fields(Device) if f.init]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise FileFormatError(f"{where}: unknown device field(s) {unknown}; valid fields: "
                              f"{sorted(known)}")
    missing = [name for name in required if name not in values]
    if missing:
        raise FileFormatError(f"{where}: missing device field(s) {missing}; required: "
                              f"{', '.join(required)} ({why})")
    return _build(lambda: Device(**values), where)


def device_from_attrs(group: h5py.Group, where: str, version: int) -> Device:
    """The Device stored in ``group`` (a device file's or a chip file's ``/device``).

    Every scalar field must be an attribute (a file lacking one is damaged: its default is
    never used in its place), except the fields ``version`` predates (:data:`ADDED_IN`:
    read disturb in version 1, off; the weight mapping in versions 1 and 2, none fixed; the
    variation's cycle-to-cycle share in versions 1 and 2, 0: :data:`BEFORE`; relaxation in
    versions 1-3, off: its fields' defaults, 0);
    tuple fields are attributes or 1-D datasets, absent when empty.
    """
    values: dict[str, Any] = {k: hdf5_scalar(v) for k, v in group.attrs.items()}
    for k, v in list(values.items()):
        if isinstance(v, np.ndarray):  # a tuple field stored as an attribute (chip files)
            if v.ndim != 1 or v.dtype.kind not in "iuf":
                raise FileFormatError(f"{where}: attribute {k} has shape {v.shape} and dtype "
                                      f"{v.dtype}; allowed: a 1-D list of numbers")
            values[k] = tuple(v.tolist())
    for k in group:
        values[k] = _vector(group[k], f"{where}/{k}")
    required = [f.name for f in fields(Device) if f.init and f.name not in _TUPLE_FIELDS
                and version >= ADDED_IN.get(f.name, 1)]
    for name, meant in BEFORE.items():
        if version < ADDED_IN[name] and name not in values:
            values[name] = meant
    return _from_mapping(values, where, required, "every scalar Device field is stored, so "
                         "no default stands in for a lost value")


_TOML_SECTIONS = ("device", "provenance", "write_verify")
_TOML_REQUIRED = ("name", "g_min_us", "g_max_us", "n_levels")


def _load_toml(path: Path) -> DeviceFile:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - set(_TOML_SECTIONS))
    if unknown:
        raise FileFormatError(f"{path}: unknown section(s) or key(s) {unknown}; a TOML device "
                              f"file has the tables [{'], ['.join(_TOML_SECTIONS)}] only")
    if "device" not in doc:
        raise FileFormatError(f"{path}: a TOML device file needs a [device] table")
    dev = _from_mapping(doc["device"], f"{path} [device]", _TOML_REQUIRED,
                        "the other fields default to an ideal cell: no variation, read "
                        "noise or faults")
    provenance = doc.get("provenance", {})
    if not isinstance(provenance, dict) or any(isinstance(v, (dict, list))
                                               for v in provenance.values()):
        raise FileFormatError(f"{path} [provenance]: {provenance!r} is invalid; allowed: a "
                              "table of key = \"text\" lines")
    wv = None
    if "write_verify" in doc:
        where = f"{path} [write_verify]"
        table = doc["write_verify"]
        if not isinstance(table, dict):
            raise FileFormatError(f"{where}: {table!r} is not a table")
        wv = _build(lambda: WriteVerifyParams.from_dict(dict(table), where), where)
    _check_wv_levels(dev, wv, path)
    return DeviceFile(dev, {k: str(v) for k, v in provenance.items()}, write_verify=wv)


def _load_hdf5(path: Path) -> DeviceFile:
    with open_hdf5(path, FORMAT, FORMAT_VERSION, "device file",
                   "written by save_device or `xbar device fit`; a device file is HDF5 "
                   "(.h5/.hdf5) or TOML (.toml)") as f:
        if not isinstance(f.get("device"), h5py.Group):
            raise FileFormatError(f"{path}: no /device group; an xbar-sim device file "
                                  "holds the device's fields as attributes of /device")
        dev = device_from_attrs(f["device"], f"{path} /device",
                                hdf5_scalar(f.attrs["format_version"]))
        provenance = {k: str(hdf5_scalar(v)) for k, v in f["provenance"].attrs.items()} \
            if "provenance" in f else {}
        measured = {}
        for k in f["measured"] if "measured" in f else ():
            node = f["measured"][k]
            if not isinstance(node, h5py.Dataset):
                raise FileFormatError(f"{path} /measured/{k}: expected a dataset, found "
                                      "a group")
            measured[k] = node[()]
        wv = _read_wv_group(f["write_verify"], f"{path} /write_verify") \
            if "write_verify" in f else None
    _check_wv_levels(dev, wv, path)
    return DeviceFile(dev, provenance, measured, wv)


def load_device_file(path: str | Path) -> DeviceFile:
    """Read an HDF5 (.h5/.hdf5) or TOML (.toml) device file, defensively.

    Raises:
        MissingFileError: No such file.
        FileFormatError: A directory; an empty, damaged or foreign file; a wrong format or
            format_version; a missing group or field; an unknown field or section; an invalid
            value (wrong type, NaN or infinity, out of range). Each names the file, the
            field, the value and what is allowed.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"device file {str(path)!r} does not exist")
    if path.is_dir():
        raise FileFormatError(f"device file {str(path)!r} is a directory; give a .h5/.hdf5 or "
                              ".toml file")
    if path.suffix.lower() == ".toml":
        return _load_toml(path)
    return _load_hdf5(path)


def _check_wv_levels(device: Device, wv: WriteVerifyParams | None, path: Path) -> None:
    if wv is not None and wv.n_levels != device.n_levels:
        raise FileFormatError(f"{path}: write_verify has {wv.n_levels} levels but the device has "
                              f"n_levels = {device.n_levels}")


def resolve_device_file(spec: str | Device | DeviceFile) -> DeviceFile:
    """A preset name, a device file path, a Device or a DeviceFile, as a DeviceFile.

    The write-verify (R-V-W) loop travels with the device: a file's own ``/write_verify``
    group (or ``[write_verify]`` table), a preset's fitted loop (its entry in
    :data:`xbar.devices.presets.WRITE_VERIFY_PRESETS`, found by the preset name asked for),
    none for a bare Device. Never by the device's ``name`` field: a file named like a preset
    does not get the preset's loop.
    """
    if isinstance(spec, DeviceFile):
        return spec
    if isinstance(spec, Device):
        return DeviceFile(spec)
    if not isinstance(spec, str):
        raise ConfigError(f"device = {spec!r} is invalid; allowed: a preset name, a .h5/.toml "
                          "device file, or a Device")
    if spec in PRESETS:
        return DeviceFile(preset(spec), {"preset": spec}, write_verify=preset_loop(spec))
    if spec.endswith((".h5", ".hdf5", ".toml")) or os.path.sep in spec:
        return load_device_file(spec)
    return DeviceFile(preset(spec))  # raises the listing error


def resolve_device(spec: str | Device | DeviceFile) -> Device:
    """A preset name, a device file path, a Device or a DeviceFile, as a Device (the cell
    alone; :func:`resolve_device_file` keeps the write-verify loop with it)."""
    return resolve_device_file(spec).device
