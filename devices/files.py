"""Device files: HDF5 (lossless, with provenance and measured tables) and TOML (by hand).

HDF5 layout (``format = "xbar-sim device"``, ``format_version = 1``)::

    /                     attrs: format, format_version, written_by, created_utc
    /device               attrs: every scalar Device field (name, g_min_us, g_max_us,
                          n_levels, variation, sigma, sigma_reference, poly_g_ref_us,
                          read_noise, sa0_rate, sa1_rate, source)
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

import datetime as _dt
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbar.devices.cell import Device
from xbar.files import package_version, write_atomically
from xbar.devices.presets import PRESETS, preset
from xbar.devices.write_verify import WriteVerifyParams
from xbar.errors import FileFormatError, MissingFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT = "xbar-sim device"
FORMAT_VERSION = 1
_TUPLE_FIELDS = ("levels_us", "level_mean_us", "level_std_us", "sigma_poly_us")


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
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["written_by"] = f"xbar-sim {package_version()}"
            f.attrs["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
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
    values: dict[str, Any] = {}
    for k, v in group.attrs.items():
        values[k] = v.item() if isinstance(v, np.generic) else v
    for k in group:
        values[k] = tuple(group[k][()].tolist())
    return WriteVerifyParams.from_dict(values, where)


def _from_mapping(values: dict[str, Any], where: str) -> Device:
    known = {f.name for f in fields(Device) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FileFormatError(f"{where}: unknown device field(s) {unknown}; valid fields: "
                         f"{sorted(known)}")
    return Device(**values)


def load_device_file(path: str | Path) -> DeviceFile:
    """Read an HDF5 (.h5/.hdf5) or TOML (.toml) device file."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"device file {str(path)!r} does not exist")
    if path.suffix.lower() == ".toml":
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        if "device" not in doc:
            raise FileFormatError(f"{path}: a TOML device file needs a [device] table")
        dev = _from_mapping(dict(doc["device"]), str(path))
        wv = WriteVerifyParams.from_dict(dict(doc["write_verify"]), f"{path} [write_verify]") \
            if "write_verify" in doc else None
        _check_wv_levels(dev, wv, path)
        return DeviceFile(dev, {k: str(v) for k, v in doc.get("provenance", {}).items()},
                          write_verify=wv)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise FileFormatError(f"{path}: not an xbar-sim device file (attribute format = "
                             f"{f.attrs.get('format')!r}, expected {FORMAT!r})")
        if int(f.attrs.get("format_version", -1)) > FORMAT_VERSION:
            raise FileFormatError(f"{path}: device file format_version "
                             f"{f.attrs['format_version']} is newer than this xbar-sim "
                             f"({FORMAT_VERSION}); upgrade xbar-sim")
        g = f["device"]
        values: dict[str, Any] = {}
        for k, v in g.attrs.items():
            values[k] = v.item() if isinstance(v, np.generic) else v
        for k in g:
            values[k] = tuple(float(x) for x in g[k][()])
        provenance = {k: str(v) for k, v in f["provenance"].attrs.items()} \
            if "provenance" in f else {}
        measured = {k: f["measured"][k][()] for k in f["measured"]} if "measured" in f else {}
        wv = _read_wv_group(f["write_verify"], f"{path} /write_verify") \
            if "write_verify" in f else None
    dev = _from_mapping(values, str(path))
    _check_wv_levels(dev, wv, path)
    return DeviceFile(dev, provenance, measured, wv)


def _check_wv_levels(device: Device, wv: WriteVerifyParams | None, path: Path) -> None:
    if wv is not None and wv.n_levels != device.n_levels:
        raise FileFormatError(f"{path}: write_verify has {wv.n_levels} levels but the device has "
                         f"n_levels = {device.n_levels}")


def resolve_device(spec: str | Device) -> Device:
    """A preset name, a device file path, or a Device, as a Device."""
    if isinstance(spec, Device):
        return spec
    if spec in PRESETS:
        return preset(spec)
    if spec.endswith((".h5", ".hdf5", ".toml")) or os.path.sep in spec:
        return load_device_file(spec).device
    return preset(spec)  # raises the listing error
