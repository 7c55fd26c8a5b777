"""The results file of ``xbar sweep``: one HDF5 file, rewritten atomically after every point.

Layout (``format = "xbar-sim sweep"``, ``format_version = 1``)::

    /                   attrs: format, format_version, config_hash, config_json, param,
                        param_unit, param_target, model, dataset, device, seed, chips,
                        methods_json, values_json, chip_seeds_json, versions_json,
                        version_<package> (xbar-sim, numpy, torch, numba, h5py, dask,
                        distributed), created_utc, updated_utc, points_total, points_done,
                        runs_json (one entry per run: start time, host, where it ran)
    /config             attrs: device_json, hardware_json, timing_json, programming_json,
                        adaptation_json, settings_json (the base configuration; the swept
                        field takes each of /values in turn)
    /values             (n_values,) float64, int64 or UTF-8 strings: the swept values
    /methods            (n_methods,) UTF-8 strings
    /chip_seeds         (n_chips,) int64: chip c is seed + c for every value and method
    /results/<metric>   (n_values, n_methods, n_chips) float64, NaN where not done: accuracy,
                        program_s, adapt_s, time_s, pulses, sram_words, sram_bits, wall_s
    /results/done       (n_values, n_methods, n_chips) bool
    /results/run        (n_values, n_methods, n_chips) int32: the run (index into runs_json)
                        that computed the point, -1 where not done
    /kd                 attrs kd_json: per value index, the KD student's info (train time,
                        FP32 and noisy-weight accuracy), once distilled

Every write goes to a temporary file beside the target, then ``os.replace`` moves it onto
the target: a reader (or a crash) sees the file before or after a point, never half of one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbar.files import write_atomically
from xbar.errors import FileFormatError

FORMAT = "xbar-sim sweep"
FORMAT_VERSION = 1
METRICS = ("accuracy", "program_s", "adapt_s", "time_s", "pulses", "sram_words", "sram_bits",
           "wall_s")
# wall_s is how long the point took on its worker: it never enters comparisons of results.
RESULT_METRICS = METRICS[:-1]
_VERSION_PACKAGES = ("xbar-sim", "numpy", "torch", "numba", "h5py", "dask", "distributed")


def package_versions(with_dask: bool) -> dict[str, str]:
    """Versions of the packages a result depends on (dask and distributed when used)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in _VERSION_PACKAGES:
        if name in ("dask", "distributed") and not with_dask:
            continue
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits over the canonical JSON of the configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepResults:
    """A sweep's results in memory, as the file holds them.

    Attributes:
        config: The configuration (what the hash covers): model, data, base device and
            hardware, param, values, methods, chips, seed and the budgets.
        param: The swept parameter's name; ``unit`` its unit.
        values: The swept values, in order.
        methods: The recovery methods, in order.
        chips: Chip instances per (value, method); chip c has seed ``seed + c``.
        metrics: ``metric -> (n_values, n_methods, n_chips)`` float64, NaN where not done.
        done: Which points are finished.
        run: Which run computed each point (-1: none yet).
        kd: Per value index (as a string), the KD student's info.
        versions: Package versions of the run that created the file.
        runs: One dict per run that worked on the file.
    """

    config: dict[str, Any]
    param: str
    unit: str
    target: str
    values: list[Any]
    methods: list[str]
    chips: int
    seed: int
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    done: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    run: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    kd: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    created_utc: str = ""

    @classmethod
    def empty(cls, config: dict[str, Any], unit: str, target: str,
              versions: dict[str, str]) -> "SweepResults":
        shape = (len(config["values"]), len(config["methods"]), config["chips"])
        return cls(config, config["param"], unit, target, list(config["values"]),
                   list(config["methods"]), config["chips"], config["seed"],
                   {m: np.full(shape, np.nan) for m in METRICS}, np.zeros(shape, bool),
                   np.full(shape, -1, np.int32), {}, versions, [], _utc())

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.values), len(self.methods), self.chips)

    def record(self, i: int, method: str, chip: int, result: dict[str, float]) -> None:
        """Store one finished point (``result`` holds every metric) for the current run."""
        j = self.methods.index(method)
        for m in METRICS:
            self.metrics[m][i, j, chip] = float(result[m])
        self.done[i, j, chip] = True
        self.run[i, j, chip] = len(self.runs) - 1

    def summary(self) -> dict[str, Any]:
        """Per method, per value: mean, std, min and max accuracy over the finished chips."""
        out: dict[str, Any] = {}
        acc = self.metrics["accuracy"]
        for j, name in enumerate(self.methods):
            rows: dict[str, list[float | None]] = {k: [] for k in
                                                   ("mean", "std", "min", "max", "chips")}
            for i in range(len(self.values)):
                a = acc[i, j][self.done[i, j]]
                stats = (a.mean(), a.std(), a.min(), a.max()) if a.size else (None,) * 4
                for k, v in zip(("mean", "std", "min", "max"), stats):
                    rows[k].append(None if v is None else float(v))
                rows["chips"].append(int(a.size))
            out[name] = rows
        return out

    # ------------------------------------------------------------------ file
    def save(self, path: str | Path) -> None:
        """Write the whole file to a temporary copy, then move it onto ``path``."""
        write_atomically(path, self._write)

    def _write(self, tmp: str) -> None:
        cfg = self.config
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = FORMAT
            a["format_version"] = FORMAT_VERSION
            a["config_hash"] = self.hash
            a["config_json"] = json.dumps(cfg, sort_keys=True)
            a["param"] = self.param
            a["param_unit"] = self.unit
            a["param_target"] = self.target
            for key in ("model", "dataset", "seed", "chips"):
                a[key] = cfg[key]
            a["device"] = cfg["device"]["name"]
            a["methods_json"] = json.dumps(self.methods)
            a["values_json"] = json.dumps(self.values)
            a["chip_seeds_json"] = json.dumps([self.seed + c for c in range(self.chips)])
            a["versions_json"] = json.dumps(self.versions, sort_keys=True)
            for name, v in self.versions.items():
                a[f"version_{name}"] = v
            a["created_utc"] = self.created_utc
            a["updated_utc"] = _utc()
            a["points_total"] = int(self.done.size)
            a["points_done"] = int(self.done.sum())
            a["runs_json"] = json.dumps(self.runs)
            g = f.create_group("config")
            for key in ("device", "hardware", "timing", "programming", "adaptation",
                        "settings"):
                g.attrs[f"{key}_json"] = json.dumps(cfg[key], sort_keys=True)
            if self.values and isinstance(self.values[0], str):
                f.create_dataset("values", data=np.array(self.values, dtype=object),
                                 dtype=h5py.string_dtype())
            else:
                f.create_dataset("values", data=np.asarray(self.values))
            f.create_dataset("methods", data=np.array(self.methods, dtype=object),
                             dtype=h5py.string_dtype())
            f.create_dataset("chip_seeds", data=self.seed + np.arange(self.chips,
                                                                      dtype=np.int64))
            r = f.create_group("results")
            for m in METRICS:
                r.create_dataset(m, data=self.metrics[m])
            r.create_dataset("done", data=self.done)
            r.create_dataset("run", data=self.run)
            f.create_group("kd").attrs["kd_json"] = json.dumps(self.kd, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> "SweepResults":
        """Read a sweep results file.

        Raises:
            ValueError: Not a sweep results file, or a newer format.
        """
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise FileFormatError(f"{path}: not a readable HDF5 file ({exc}); delete it or "
                                  "write the sweep elsewhere (run_sweep(out=...))") from None
        with f:
            if f.attrs.get("format") != FORMAT:
                raise FileFormatError(f"{path} is not an xbar-sim sweep results file (format "
                                      f"{f.attrs.get('format')!r}); write the sweep elsewhere "
                                      "(run_sweep(out=...))")
            if int(f.attrs["format_version"]) > FORMAT_VERSION:
                raise FileFormatError(f"{path} has sweep format version "
                                 f"{f.attrs['format_version']}, newer than this xbar-sim "
                                 f"reads ({FORMAT_VERSION}); upgrade xbar-sim")
            config = json.loads(f.attrs["config_json"])
            res = cls(config, str(f.attrs["param"]), str(f.attrs["param_unit"]),
                      str(f.attrs["param_target"]), json.loads(f.attrs["values_json"]),
                      json.loads(f.attrs["methods_json"]), int(f.attrs["chips"]),
                      int(f.attrs["seed"]),
                      {m: f["results"][m][()] for m in METRICS},
                      f["results/done"][()].astype(bool), f["results/run"][()],
                      json.loads(f["kd"].attrs["kd_json"]),
                      json.loads(f.attrs["versions_json"]), json.loads(f.attrs["runs_json"]),
                      str(f.attrs["created_utc"]))
        return res

    def begin_run(self, where: str, versions: dict[str, str]) -> None:
        """Note a new run (the first, or a resumed one) that computes points into the file."""
        self.runs.append({"started_utc": _utc(), "host": socket.gethostname(),
                          "pid": os.getpid(), "where": where, "versions": versions})


def open_results(path: str | Path, config: dict[str, Any], unit: str, target: str,
                 versions: dict[str, str]) -> tuple[SweepResults, list[str]]:
    """The results to continue: the file's when it holds this configuration, else new ones.

    Returns the results and warnings (package versions that differ from the file's).

    Raises:
        ValueError: The file holds a sweep of another configuration (names the keys that
            differ and what to do).
    """
    path = Path(path)
    if not path.exists():
        return SweepResults.empty(config, unit, target, versions), []
    old = SweepResults.load(path)
    if old.hash != config_hash(config):
        differ = sorted(k for k in set(old.config) | set(config)
                        if old.config.get(k) != config.get(k))
        raise FileFormatError(f"{path} holds a different sweep (configuration hash {old.hash}, "
                         f"this sweep's is {config_hash(config)}; they differ in: "
                         f"{', '.join(differ)}). Its points cannot be mixed with this one's: "
                         "write elsewhere (run_sweep(out=...)), or delete the file to start "
                         "over")
    warnings = [f"{name} is {versions.get(name)} here but the file was started with "
                f"{v}; finished points are kept" for name, v in old.versions.items()
                if name in versions and versions[name] != v]
    return old, warnings

