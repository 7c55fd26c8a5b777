"""Latency results in HDF5, written atomically, with the full hardware configuration.

Layout (``format = "xbar-sim latency"``, ``format_version = 1``)::

    /            attrs: format, format_version, written_by, created_utc, model, input_shape,
                 schedule, batch, total_cycles, latency_ns, makespan_cycles,
                 throughput_inferences_per_s, tile_utilisation, adc_utilisation,
                 interconnect_utilisation, n_tiles, n_adcs, events_processed, wall_s
    /completion_cycles     int64, when each inference of the batch run was done
    /hardware/<section>    attrs: every field of [array], [dac], [adc], [timing]
    /layers/<column>       one dataset per LayerTiming field, one entry per layer (names as
                           UTF-8 strings)
    /timeline/<column>     layer, tile, start, cycles: every tile burst of the batch run
    /energy                attrs: energy_pj, area_mm2, tops_per_w, power_w, ... and json (the
                           whole energy/area record of xbar latency), when written
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbar.files import stamp_hdf5, write_with_pngs
from xbar.timing.engine import LatencyResult, LayerTiming
from xbar.errors import OutputError

FORMAT = "xbar-sim latency"
FORMAT_VERSION = 1
_SCALARS = ("schedule", "batch", "clock_ghz", "total_cycles", "latency_ns", "makespan_cycles",
            "throughput_inferences_per_s", "tile_utilisation", "adc_utilisation",
            "interconnect_utilisation", "n_tiles", "n_adcs", "events_processed", "wall_s")


def save_latency(result: LatencyResult, path: str | Path, model: str = "",
                 input_shape: tuple[int, ...] = (), extra: dict[str, Any] | None = None,
                 images: dict[str, bytes] | None = None) -> list[Path]:
    """Write ``result`` to an HDF5 file; a crash mid-write leaves any old file intact.

    ``extra``: the energy and area figures (``xbar latency``), written to ``/energy``: its
    numbers as attributes and the whole dict as JSON in the attribute ``json``. ``images``:
    PNGs (name: bytes) written beside it as ``<stem>-<name>.png`` together with it
    (:func:`xbar.files.write_with_pngs`); returns their paths."""

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            stamp_hdf5(f, FORMAT, FORMAT_VERSION)
            f.attrs["model"] = model
            f.attrs["input_shape"] = np.asarray(input_shape, dtype=np.int64)
            for key in _SCALARS:
                f.attrs[key] = getattr(result, key)
            f.create_dataset("completion_cycles",
                             data=np.asarray(result.completion_cycles, dtype=np.int64))
            hw = f.create_group("hardware")
            sections = {**result.xbar.to_dict(), "timing": result.timing.to_dict()}
            for section, values in sections.items():
                g = hw.create_group(section)
                for k, v in values.items():
                    g.attrs[k] = np.asarray(v, dtype=h5py.string_dtype()) \
                        if isinstance(v, list) else v
            lay = f.create_group("layers")
            for fld in fields(LayerTiming):
                column = [getattr(lt, fld.name) for lt in result.layers]
                if fld.type in ("str", str):
                    lay.create_dataset(fld.name, data=np.asarray(column, dtype=object),
                                       dtype=h5py.string_dtype())
                else:
                    lay.create_dataset(fld.name, data=np.asarray(column, dtype=np.int64))
            tl = f.create_group("timeline")
            for key in ("layer", "tile", "start", "cycles"):
                tl.create_dataset(key, data=np.asarray(getattr(result.timeline, key),
                                                       dtype=np.int64), compression="gzip")
            tl.attrs["layer_names"] = np.asarray(result.timeline.layer_names,
                                                 dtype=h5py.string_dtype())
            if extra:
                en = f.create_group("energy")
                en.attrs["json"] = json.dumps(extra)
                for k, v in extra.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        en.attrs[k] = v

    return write_with_pngs(path, write, images or {})


def load_latency_summary(path: str | Path) -> dict[str, object]:
    """Read back the scalar figures and the per-layer table (for checks and plots)."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise OutputError(f"{path}: not an xbar-sim latency file (format = "
                             f"{f.attrs.get('format')!r})")
        out: dict[str, object] = {}
        for k, v in f.attrs.items():
            out[k] = v.item() if isinstance(v, np.generic) else v
        out["layers"] = {k: [x.decode() if isinstance(x, bytes) else x.item()
                             for x in f["layers"][k][()]] for k in f["layers"]}
        out["hardware"] = {s: dict(f["hardware"][s].attrs) for s in f["hardware"]}
    return out
