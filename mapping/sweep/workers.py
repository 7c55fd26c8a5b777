"""The worker side of ``xbar sweep``: the tasks, and the state a worker process keeps.

Tasks (:func:`distill_task`, :func:`point_task`) are plain functions of picklable arguments,
so the same code runs in this process, in local worker processes, or on a Dask cluster
(:mod:`xbar.mapping.sweep.backends` says where).

"Threads" are the Numba kernel's threads (and BLAS's); torch gets one thread in a task, see
:func:`_limit_threads`.

A process runs one sweep task at a time (a lock), because torch's seed, deterministic-kernel
switch and thread count are process-wide.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.mapping.recovery.compare import CompareSettings
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.techniques.rvw import with_loop
from xbar.mapping.sweep.params import SweepPoint
from xbar.errors import ConfigError
from xbar.files import write_atomically
from xbar.threads import configure_threads

RESULT_KEYS = ("accuracy", "program_s", "adapt_s", "time_s", "pulses", "sram_words",
               "sram_bits")


@dataclass(frozen=True)
class TeacherPayload:
    """The FP32 teacher as bytes (``torch.save`` of the whole module), sent to the workers."""

    data: bytes
    weights_hash: str

    @classmethod
    def from_model(cls, model: Any) -> "TeacherPayload":
        import torch

        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        buf = io.BytesIO()
        torch.save(model, buf)
        return cls(buf.getvalue(), h.hexdigest()[:16])

    def to_file(self, directory: Path) -> Path:
        """The bytes in ``directory`` under a name from their digest (written once, kept
        as a cache entry: sweeps of the same teacher share it), for local workers to read."""
        path = directory / f"teacher-{hashlib.sha256(self.data).hexdigest()[:24]}.pt"
        if not path.is_file() or path.stat().st_size != len(self.data):
            write_atomically(path, lambda tmp: Path(tmp).write_bytes(self.data))
        return path


@dataclass(frozen=True)
class SweepContext:
    """What a task needs besides the teacher (small, sent with every task)."""

    dataset: str
    data_dir: str | None
    dataset_fingerprint: str
    test_limit: int | None
    points: tuple[SweepPoint, ...]
    timing: Any
    programming: Any
    adaptation: Any
    seed: int
    adapt: AdaptConfig
    kd: KDConfig
    device_file: Any = None  # the base DeviceFile: its write-verify loop goes to R-V-W points
    options: Any = None  # CompareSettings.options (plug-in methods' settings by name)
    backend: str = "cpu"  # CompareSettings.backend, resolved on the worker


_LOCK = threading.Lock()  # one sweep task at a time per process (torch state is global)
_STATE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_INSTALLED: dict[str, Any] = {}


def init_local_worker(parent: int, teacher_file: str, weights_hash: str, threads: int
                      ) -> None:
    """Process-pool initializer: die with the parent (process ``parent``), read the teacher
    from ``teacher_file`` (:meth:`TeacherPayload.to_file`), limit threads.

    The teacher comes through a file, not the arguments, so that what the parent pipes to a
    starting worker fits the pipe at once: a parent killed while a worker starts no longer
    leaves it a truncated pickle to fail on with a traceback. Whenever the parent is gone, the
    worker exits at once without a word: its points are lost with the run anyway.
    """
    def watch() -> None:  # a killed sweep must not leave its workers computing
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()
    try:
        _INSTALLED["teacher"] = TeacherPayload(Path(teacher_file).read_bytes(), weights_hash)
    except OSError:
        if os.getppid() != parent:
            os._exit(1)
        raise
    _limit_threads(threads)


def _limit_threads(threads: int | dict[str, int]) -> int:
    """Give this thread's Numba kernels ``threads`` threads and torch one; returns the first.

    Torch runs only the glue here (im2col, the digital layers; KD and adaptation already fix
    one thread): measured on the shared 2-core machine, a one-shot point of the digits CNN
    took 17 s with 2 torch (OpenMP) threads and 0.2-3 s with 1, whatever Numba had.
    """
    import numba
    import torch

    configure_threads()  # before Numba's pool starts: the threading layer is fixed then
    if isinstance(threads, dict):  # Dask: per worker address
        try:
            from distributed import get_worker
            n = threads.get(get_worker().address, 1)
        except (ImportError, ValueError):
            n = 1
    else:
        n = threads
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)  # per calling thread
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return n


@contextlib.contextmanager
def _task_env(threads: int | dict[str, int]) -> Iterator[None]:
    """One task at a time in this process, with its thread limits; restored afterwards."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    configure_threads()  # numba.get_num_threads below starts Numba's pool
    with _LOCK:
        before = (torch.get_num_threads(), numba.get_num_threads())
        try:
            n = _limit_threads(threads)
            with threadpool_limits(limits=n, user_api="blas"):
                yield
        finally:
            torch.set_num_threads(before[0])
            numba.set_num_threads(before[1])


def _worker_state(ctx: SweepContext, teacher: TeacherPayload | None) -> tuple[Any, Any]:
    """The teacher and data set in this process, loaded once per sweep configuration."""
    import torch

    from xbar.mapping.data.datasets import load_dataset

    teacher = teacher if teacher is not None else _INSTALLED.get("teacher")
    if teacher is None:
        raise RuntimeError("sweep task without a teacher: call it through run_sweep")
    key = (teacher.weights_hash, ctx.dataset, ctx.data_dir, ctx.dataset_fingerprint,
           ctx.test_limit)
    if key not in _STATE:
        model = torch.load(io.BytesIO(teacher.data), map_location="cpu", weights_only=False)
        ds = load_dataset(ctx.dataset, ctx.data_dir, download=False)
        if ds.fingerprint != ctx.dataset_fingerprint:
            raise ConfigError(f"the {ctx.dataset} data on this worker differ from the sweep's "
                             f"(fingerprint {ds.fingerprint}, expected "
                             f"{ctx.dataset_fingerprint}): give every worker the same files "
                             "(SweepSpec.data_dir, or XBAR_DATA on the worker)")
        ds = ds.first_test(ctx.test_limit)
        _STATE.clear()  # one sweep's state per process
        _STATE[key] = (model.eval(), ds)
    return _STATE[key]


def distill_task(ctx: SweepContext, teacher: TeacherPayload | None, index: int,
                 threads: int | dict[str, int]) -> tuple[bytes, dict[str, Any]]:
    """Distil the KD student of value ``index``: its state dict (bytes) and the info."""
    import torch

    from xbar.mapping.recovery.techniques.kd import distill

    with _task_env(threads):
        model, ds = _worker_state(ctx, teacher)
        point = ctx.points[index]
        student, info = distill(model, ds, point.device, point.xbar, ctx.kd, ctx.seed,
                                backend=ctx.backend)
        buf = io.BytesIO()
        torch.save(student.state_dict(), buf)
        return buf.getvalue(), info


def point_task(ctx: SweepContext, teacher: TeacherPayload | None, index: int, method: str,
               chip: int, student: bytes | tuple[bytes, dict[str, Any]] | None,
               threads: int | dict[str, int]) -> dict[str, float]:
    """One (value, method, chip) point: a one-chip :func:`xbar.mapping.recovery.compare.compare`.

    ``student``: the KD student's state dict (bytes), or :func:`distill_task`'s whole result
    (as Dask hands a future's value on); None for the other methods.
    """
    import torch

    from xbar.config import HardwareConfig
    from xbar.mapping.recovery.compare import compare
    from xbar.mapping.convert import fold_batchnorm

    with _task_env(threads):
        start = time.perf_counter()
        model, ds = _worker_state(ctx, teacher)
        point = ctx.points[index]
        kd_model = None
        if method.startswith("kd"):
            if student is None:
                raise RuntimeError(f"KD point {method} without its student")
            weights = student[0] if isinstance(student, tuple) else student
            kd_model, _ = fold_batchnorm(model)
            kd_model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
            kd_model.eval()
        settings = CompareSettings(sram_ratio=point.sram_ratio, chips=1, seed=ctx.seed + chip,
                                   methods=(method,), adapt=ctx.adapt, kd=ctx.kd,
                                   options={k: v for k, v in (ctx.options or {}).items()
                                            if k == method}, backend=ctx.backend)
        device = with_loop(point.device, ctx.device_file)  # the fitted loop, where it fits
        hw = HardwareConfig.from_parts(point.xbar, timing=ctx.timing,
                                       programming=ctx.programming, adaptation=ctx.adaptation)
        out = compare(model, ds, device, hw, settings, student=kd_model)["methods"][method]
        result = {k: float(out[k]) for k in RESULT_KEYS}
        result["wall_s"] = time.perf_counter() - start
        return result
