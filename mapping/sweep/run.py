"""``xbar sweep``: accuracy of every recovery method across the values of one parameter.

A sweep is a grid of independent points (value, method, chip). Each point is one
:func:`xbar.mapping.recovery.compare.compare` call with ``chips=1`` and chip seed ``seed + chip`` (the same
for every value and method), on the device/hardware/settings that value gives. So a point's
result never depends on which worker ran it, in which order, or how the grid was split.

KD students: one per distinct (device, hardware) configuration among the values, distilled
with the sweep's seed as a task of its own (:func:`~xbar.mapping.sweep.workers.distill_task`);
its weights (a state dict) are then handed to that value's KD points. A student is the same
whichever worker trains it
(seeded, deterministic kernels, one thread), as :func:`xbar.mapping.recovery.techniques.kd.distill` guarantees. A
resumed run distils again the students its unfinished KD points need (never a finished
point).

Where it runs (the same tasks, the same results):

* ``workers=1``: in this process, one task after another.
* ``workers=N``: N local worker processes (``spawn``), each limited to cores / N Numba
  threads (torch: one) so they do not fight over the cores.
* ``scheduler=ADDRESS``: a Dask distributed cluster. Every worker needs xbar-sim installed
  and the data set's files (``--data-dir`` on the worker, or ``$XBAR_DATA``); the teacher
  is sent from here, so its training cache need not exist there. Each worker process runs
  one sweep task at a time (torch's seed and deterministic settings are process-wide) with
  its host's cores / worker processes threads.

The results file is rewritten atomically after each point (:mod:`xbar.mapping.sweep.store`);
re-running the same sweep skips the finished points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbar.devices import Device, DeviceFile, resolve_device_file
from xbar.devices.presets import DEFAULT_DEVICE
from xbar.mapping.data.zoo import DEFAULT_MODEL
from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.mapping.recovery.budget import check_budget
from xbar.mapping.recovery.compare import CompareSettings
from xbar.mapping.recovery.registry import method_names
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.registry import options_json
from xbar.mapping.sweep.params import SweepParam, SweepPoint, resolve_points
from xbar.mapping.sweep.lock import exclusive
from xbar.mapping.sweep.store import SweepResults, open_results, package_versions
from xbar.mapping.sweep.backends import make_backend
from xbar.mapping.sweep.schedule import execute_points
from xbar.mapping.sweep.workers import SweepContext, TeacherPayload
from xbar.errors import ConfigError

DEFAULT_METHODS = ("one-shot", "kd", "kd+rsa", "rvw")
# Memory per (value, method, chip) point while a sweep runs: its eight metrics and flags in
# the results arrays (and their copy in the file being written), its entry in the task list
# and its submitted task (future and arguments), rounded up.
_BYTES_PER_POINT = 1200


SWEEP_KD_EPOCHS = 10
"""KD epochs of a sweep point by default: a third of ``xbar compare``'s 30, since a sweep
distils a student at every point of the grid."""


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep, as the command line gives it.

    Attributes:
        param: The parameter (``xbar sweep --list-params``).
        values: Comma-separated values, or a sequence.
        model: Zoo model name or a model file (a whole ``nn.Module``).
        dataset: Data set name (None: the zoo model's own).
        data_dir: Where the data set's files are (None: ``$XBAR_DATA`` or ../shared/data).
        device: Device preset, device file, a :class:`xbar.devices.Device`, or a
            :class:`xbar.devices.DeviceFile` (whose write-verify loop R-V-W uses).
        hw: Hardware preset or TOML file (None: the hardware the device's
            ``weight_mapping`` implies, :func:`xbar.devices.presets.implied_hardware`; the
            defaults for a device that fixes none). A hardware, or a swept array field,
            contradicting the mapping the device fixes is refused.
        methods: Recovery methods (:func:`xbar.mapping.recovery.registry.method_names`).
        chips: Chip instances per (value, method), >= 1.
        seed: Chip c has seed ``seed + c``; KD students are distilled with ``seed``.
        teacher_seed: Seed of the zoo teacher's training.
        sram_ratio: SRAM fraction of RSA/OSA (when not the swept parameter).
        steps: Adaptation steps of RSA/OSA/bias-only.
        batch: Adaptation batch size.
        kd_epochs: Distillation epochs (default :data:`SWEEP_KD_EPOCHS`, fewer than
            ``xbar compare``'s :attr:`KDConfig.epochs
            <xbar.mapping.recovery.techniques.kd.KDConfig>`: a sweep distils at every point).
        test_limit: Evaluate on the first N test images only (None: all).
        options: Plug-in methods' settings by method name, as
            :attr:`CompareSettings.options <xbar.mapping.recovery.compare.CompareSettings>`
            (``xbar sweep --option``); they go to every point of their method and into the
            configuration hash.
        backend: Where each point's chips run and its KD and adaptation train
            (:attr:`CompareSettings.backend <xbar.mapping.recovery.compare.CompareSettings>`),
            resolved on each worker (``"auto"``: that worker's GPU, if any). A backend other
            than ``"cpu"`` enters the configuration hash, so a sweep never mixes backends.
    """

    param: str
    values: str | tuple[Any, ...]
    model: str = DEFAULT_MODEL
    dataset: str | None = None
    data_dir: str | None = None
    device: str | Device | DeviceFile = DEFAULT_DEVICE
    hw: str | None = None
    methods: tuple[str, ...] = DEFAULT_METHODS
    chips: int = CompareSettings.chips
    seed: int = 0
    teacher_seed: int = 0
    sram_ratio: float = CompareSettings.sram_ratio
    steps: int = AdaptConfig.steps
    batch: int = AdaptConfig.batch_size
    kd_epochs: int = SWEEP_KD_EPOCHS
    test_limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    backend: str = "cpu"


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: every value's configuration built, nothing run yet."""

    spec: SweepSpec
    param: SweepParam
    points: tuple[SweepPoint, ...]
    device: Device
    hardware: dict[str, Any]
    timing: Any
    programming: Any
    adaptation: Any
    settings: CompareSettings
    write_verify: Any = None  # the device's own R-V-W loop (WriteVerifyParams), if it has one

    @property
    def n_points(self) -> int:
        return len(self.points) * len(self.settings.methods) * self.settings.chips


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Resolve and validate everything a sweep needs, before any work.

    Raises:
        ValueError: Unknown parameter (with the valid names), a value out of range, an
            unknown method, device or hardware, or a bad budget; each names what to change.
    """
    from xbar.config import load_hardware
    from xbar.devices.presets import implied_hardware

    methods = tuple(m.strip() for m in spec.methods)
    if not methods or "" in methods:
        raise ConfigError(f"SweepSpec.methods = {','.join(spec.methods)!r} is empty or has an "
                          f"empty entry; choose distinct methods from "
                          f"{', '.join(method_names())}")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"SweepSpec.methods = {','.join(methods)!r} repeats a method; "
                          "give each once")
    if spec.test_limit is not None and (not isinstance(spec.test_limit, int)
                                        or spec.test_limit < 1):
        raise ConfigError(f"SweepSpec.test_limit = {spec.test_limit!r} is invalid; allowed: "
                          "an integer >= 1 (or None for the whole test set)")
    settings = CompareSettings(sram_ratio=spec.sram_ratio, chips=spec.chips, seed=spec.seed,
                               methods=methods,
                               adapt=AdaptConfig(steps=spec.steps, batch_size=spec.batch),
                               kd=KDConfig(epochs=spec.kd_epochs), options=dict(spec.options),
                               backend=spec.backend)
    device_file = resolve_device_file(spec.device)  # the device with its write-verify loop
    device = device_file.device
    hw = load_hardware(spec.hw if spec.hw is not None else implied_hardware(device))
    xbar = hw.xbar
    param, points = resolve_points(spec.param, spec.values, device, xbar, spec.sram_ratio)
    n_points = len(points) * len(methods) * spec.chips
    check_budget(settings, _BYTES_PER_POINT, f"SweepSpec.chips = {spec.chips} ({len(points)} "
                 f"values x {len(methods)} methods x {spec.chips} chips = {n_points} points)",
                 values=len(points))
    return SweepPlan(spec, param, points, device, xbar.to_dict(), hw.timing, hw.programming,
                     hw.adaptation, settings, device_file.write_verify)


# ---------------------------------------------------------------------- the run

@dataclass
class SweepRun:
    """What :func:`run_sweep` did.

    Attributes:
        results: Everything the results file holds.
        out: The results file.
        plot: The plot written, if any.
        skipped: Points already in the file when the run started.
        computed: Points computed by this run.
        wall_s: Wall time of this run, seconds.
        where: Where the points ran.
        warnings: Things to know (package versions differing from the file's).
    """

    results: SweepResults
    out: Path
    plot: Path | None
    skipped: int
    computed: int
    wall_s: float
    where: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (accuracies as fractions)."""
        from xbar.mapping.sweep.plot import published_points

        r = self.results
        return {"param": r.param, "unit": r.unit, "values": r.values, "methods": r.methods,
                "chips": r.chips, "seed": r.seed, "model": r.config["model"],
                "dataset": r.config["dataset"], "device": r.config["device"]["name"],
                "out": str(self.out), "plot": str(self.plot) if self.plot else None,
                "config_hash": r.hash, "points_total": int(r.done.size),
                "points_done": int(r.done.sum()), "points_skipped": self.skipped,
                "points_computed": self.computed, "wall_s": self.wall_s, "where": self.where,
                "accuracy": r.summary(), "kd": r.kd, "versions": r.versions,
                "options": r.config.get("options", {}),
                "published": [{"source": p.source, "method": p.method, "value": r.values[i],
                               "accuracy": p.accuracy, "note": p.note}
                              for p, i in published_points(r)],
                "warnings": self.warnings}


def _config(plan: SweepPlan, label: str, dataset: Any, weights_hash: str) -> dict[str, Any]:
    s = plan.settings
    return {"model": label, "model_weights": weights_hash, "dataset": dataset.name,
            "dataset_fingerprint": dataset.fingerprint, "test_limit": plan.spec.test_limit,
            "device": plan.device.to_dict(), "hardware": plan.hardware,
            **({"write_verify": plan.write_verify.to_dict()} if plan.write_verify else {}),
            "timing": plan.timing.to_dict(), "programming": plan.programming.to_dict(),
            "adaptation": plan.adaptation.to_dict(),
            "settings": {"sram_ratio": plan.spec.sram_ratio, "adapt_steps": s.adapt.steps,
                         "adapt_batch": s.adapt.batch_size,
                         "adapt_learning_rate": s.adapt.learning_rate,
                         "sram_word_bits": plan.adaptation.sram_word_bits,
                         "kd_epochs": s.kd.epochs,
                         "kd_batch": s.kd.batch_size, "kd_learning_rate": s.kd.learning_rate,
                         "kd_temperature": s.kd.temperature, "kd_alpha": s.kd.alpha,
                         "teacher_seed": plan.spec.teacher_seed},
            "param": plan.param.name, "values": list(v.value for v in plan.points),
            "methods": list(s.methods), "chips": s.chips, "seed": s.seed,
            # Only when given, so that a sweep without options keeps its earlier hash.
            **({"options": options_json(s.options)} if s.options else {}),
            **({"backend": s.backend} if s.backend != "cpu" else {})}


def run_sweep(spec: SweepSpec | SweepPlan, out: str | Path, *, workers: int | None = None,
              threads: int | None = None, scheduler: str | None = None,
              plot: str | Path | None = None, progress: bool = False) -> SweepRun:
    """Run (or continue) a sweep, writing each point to ``out`` as it finishes.

    Args:
        spec: What to sweep (validated first, before any work).
        out: The HDF5 results file; if it holds this sweep, its finished points are kept.
        workers: Local worker processes (default: one per core; 1 runs in this process).
            Ignored with ``scheduler``.
        threads: Numba kernel threads per worker (default: cores / workers; on a Dask
            cluster, each host's cores / its worker processes). Torch gets one thread.
        scheduler: A Dask scheduler address (``tcp://host:8786``): run on that cluster.
        plot: Write the plot (PNG) here at the end.
        progress: Show progress on stderr.

    Raises:
        ValueError: Invalid sweep, a results file of another sweep, or a failed point
            (:class:`~xbar.mapping.sweep.schedule.SweepError`; the finished points stay in ``out``).
    """
    from xbar.mapping.sweep.plot import save_plot
    from xbar.mapping.data.workflow import load_teacher

    plan = spec if isinstance(spec, SweepPlan) else plan_sweep(spec)
    spec = plan.spec
    for name, v in (("workers", workers), ("threads", threads)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ConfigError(f"run_sweep({name}={v!r}) is invalid; allowed: an integer >= 1")
    if scheduler is None:  # local workers: cuda without a GPU fails here, before any work
        from xbar.kernel_torch import resolve_backend
        resolve_backend(spec.backend)
    out = Path(out)
    start = time.perf_counter()
    teacher = load_teacher(spec.model, spec.dataset, spec.data_dir, spec.teacher_seed)
    payload = TeacherPayload.from_model(teacher.model)
    config = _config(plan, teacher.label, teacher.dataset, payload.weights_hash)
    ctx = SweepContext(teacher.dataset.name, spec.data_dir, teacher.dataset.fingerprint,
                       spec.test_limit, plan.points, plan.timing, plan.programming,
                       plan.adaptation, plan.settings.seed, plan.settings.adapt,
                       plan.settings.kd, DeviceFile(plan.device,
                                                    write_verify=plan.write_verify),
                       plan.settings.options, plan.settings.backend)
    methods = plan.settings.methods
    with exclusive(out) as lock_notes:
        results, warnings = open_results(out, config, plan.param.unit, plan.param.target,
                                         package_versions(scheduler is not None))
        warnings = lock_notes + warnings
        todo = [(i, m, c) for i in range(len(plan.points)) for j, m in enumerate(methods)
                for c in range(plan.settings.chips) if not results.done[i, j, c]]
        skipped = results.done.size - len(todo)
        # One student per distinct (device, hardware) among the values that still need one.
        student_of: dict[int, int] = {}
        firsts: dict[str, int] = {}
        for i in sorted({i for i, m, _ in todo if m.startswith("kd")}):
            p = plan.points[i]
            key = repr((sorted(p.device.to_dict().items()), p.xbar.to_dict()))
            student_of[i] = firsts.setdefault(key, i)
        where, computed = "nothing left to run", 0
        if todo:
            backend = make_backend(payload, scheduler, workers, threads,
                                   len(todo) + len(firsts))
            where = backend.where
            results.begin_run(where, package_versions(scheduler is not None))
            results.save(out)
            ok = False
            try:
                computed = execute_points(plan, ctx, results, todo, student_of, backend,
                                          out, progress)
                ok = True
            finally:
                backend.close(cancel=not ok)
    plot_path = save_plot(results, plot) if plot else None
    return SweepRun(results, out, plot_path, skipped, computed,
                    time.perf_counter() - start, where, warnings)


def format_summary(run: SweepRun) -> str:
    """A table: one row per value, one column per method (mean, and min-max over chips)."""
    r = run.results
    s = r.summary()
    head = f"{r.param:>16}" + "".join(f"{m:>26}" for m in r.methods)
    rows = [head]
    for i, v in enumerate(r.values):
        cells = []
        for m in r.methods:
            mean, lo, hi = s[m]["mean"][i], s[m]["min"][i], s[m]["max"][i]
            cells.append(f"{'-':>26}" if mean is None else
                         f"{100 * mean:>9.2f} % ({100 * lo:.1f}-{100 * hi:.1f})".rjust(26))
        rows.append(f"{str(v):>16}" + "".join(cells))
    return "\n".join(rows)


__all__ = ["DEFAULT_METHODS", "SWEEP_KD_EPOCHS", "SweepPlan", "SweepRun", "SweepSpec", "format_summary",
           "plan_sweep", "run_sweep"]
