"""The worker side of ``xbar sweep``: the tasks, and where they run.

Tasks (:func:`distill_task`, :func:`point_task`) are plain functions of picklable arguments,
so the same code runs in this process, in local worker processes, or on a Dask cluster:

* ``_InlineBackend``: in this process, one task after another (``--workers 1``).
* ``_PoolBackend``: N spawned local processes (``concurrent.futures``), each limited to
  cores / N threads; each dies when the driver dies.
* ``_DaskBackend``: a ``distributed.Client`` on a scheduler address; threads per worker =
  its host's cores / worker processes on that host; the teacher is scattered once.

"Threads" are the Numba kernel's threads (and BLAS's); torch gets one thread in a task, see
:func:`_limit_threads`.

A process runs one sweep task at a time (a lock), because torch's seed, deterministic-kernel
switch and thread count are process-wide.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import io
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from xbar.mapping.recovery.sram import AdaptConfig
from xbar.mapping.recovery.compare import CompareSettings
from xbar.mapping.recovery.kd import KDConfig
from xbar.mapping.sweep.params import SweepPoint
from xbar.errors import ConfigError

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


_LOCK = threading.Lock()  # one sweep task at a time per process (torch state is global)
_STATE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_INSTALLED: dict[str, Any] = {}


def _init_local_worker(teacher: TeacherPayload, threads: int) -> None:
    """Process-pool initializer: keep the teacher, limit threads, die with the parent."""
    _INSTALLED["teacher"] = teacher
    _limit_threads(threads)
    parent = os.getppid()

    def watch() -> None:  # a killed sweep must not leave its workers computing
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _limit_threads(threads: int | dict[str, int]) -> int:
    """Give this thread's Numba kernels ``threads`` threads and torch one; returns the first.

    Torch runs only the glue here (im2col, the digital layers; KD and adaptation already fix
    one thread): measured on the shared 2-core machine, a one-shot point of the digits CNN
    took 17 s with 2 torch (OpenMP) threads and 0.2-3 s with 1, whatever Numba had.
    """
    import xbar.kernel  # noqa: F401  (sets Numba's threading layer before its pool starts)
    import numba
    import torch

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
    import xbar.kernel  # noqa: F401  (before Numba's pool starts: sets its threading layer)
    import numba
    import torch
    from threadpoolctl import threadpool_limits

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

    from xbar.mapping.data.datasets import Dataset, load_dataset

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
                             f"{ctx.dataset_fingerprint}): point --data-dir or XBAR_DATA on "
                             "every worker at the same files")
        if ctx.test_limit is not None and ctx.test_limit < len(ds.y_test):
            n = ctx.test_limit
            ds = Dataset(ds.name, ds.x_train, ds.y_train, ds.x_test[:n], ds.y_test[:n],
                         ds.input_shape, ds.n_classes, f"{ds.note} First {n} test images.")
        _STATE.clear()  # one sweep's state per process
        _STATE[key] = (model.eval(), ds)
    return _STATE[key]


def distill_task(ctx: SweepContext, teacher: TeacherPayload | None, index: int,
                 threads: int | dict[str, int]) -> tuple[bytes, dict[str, Any]]:
    """Distil the KD student of value ``index``: its state dict (bytes) and the info."""
    import torch

    from xbar.mapping.recovery.kd import distill

    with _task_env(threads):
        model, ds = _worker_state(ctx, teacher)
        point = ctx.points[index]
        student, info = distill(model, ds, point.device, point.xbar, ctx.kd, ctx.seed)
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
                                   methods=(method,), adapt=ctx.adapt, kd=ctx.kd)
        out = compare(model, ds, point.device, point.xbar, settings, ctx.timing,
                      ctx.programming, ctx.adaptation, student=kd_model)["methods"][method]
        result = {k: float(out[k]) for k in RESULT_KEYS}
        result["wall_s"] = time.perf_counter() - start
        return result


# ---------------------------------------------------------------------- backends

class _InlineFuture:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], order: tuple[int, int]):
        self.fn, self.args, self.order = fn, args, order
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self.fn(*self.args)
        except Exception as exc:  # re-raised by result(), as a real future does
            self._error = exc
        self._done = True

    def result(self) -> Any:
        if not self._done:
            self.run()
        if self._error is not None:
            raise self._error
        return self._value


class _Backend:
    """Where tasks run: ``submit``, ``first_done``, ``close``; students handed on by value."""

    where = ""
    teacher: Any = None
    threads: Any = 1

    def student_ref(self, future: Any, value: Any) -> Any:
        """What a KD point gets for its student: the state dict bytes."""
        return value[0]


class _InlineBackend(_Backend):
    """Runs tasks in this process, highest priority first, then in submission order."""

    where = "this process"

    def __init__(self, teacher: TeacherPayload, threads: int) -> None:
        self.teacher, self.threads, self._n = teacher, threads, 0

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0) -> _InlineFuture:
        self._n += 1
        return _InlineFuture(fn, args, (-priority, self._n))

    def first_done(self, futures: set[Any]) -> set[Any]:
        nxt = min(futures, key=lambda f: f.order)
        nxt.run()
        return {nxt}

    def close(self, cancel: bool) -> None:
        pass


class _PoolBackend(_Backend):
    """Local worker processes (spawned: no inherited threads or locks)."""

    def __init__(self, teacher: TeacherPayload, workers: int, threads: int) -> None:
        self.where = f"{workers} local worker processes x {threads} thread(s)"
        self.teacher, self.threads = None, threads  # installed by the initializer
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_local_worker, initargs=(teacher, threads))

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0) -> cf.Future:
        return self.pool.submit(fn, *args)

    def first_done(self, futures: set[Any]) -> set[Any]:
        return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done

    def close(self, cancel: bool) -> None:
        if cancel:  # do not wait for points in flight: they are lost anyway
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=True)


class _DaskBackend(_Backend):
    """A Dask distributed cluster at ``address`` (``distributed.Client``)."""

    def __init__(self, teacher: TeacherPayload, address: str, threads: int | None = None
                 ) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs Dask's distributed package: pip install "
                             "'xbar-sim[dask]' (on this machine and every worker)") from None
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address!r} ({exc}); start "
                             "one with `dask scheduler` and pass the address it prints "
                             "(tcp://HOST:8786)") from None
        try:
            self.client.wait_for_workers(1, timeout=60)
            cores = self.client.run(os.cpu_count)
        except Exception as exc:
            self.client.close()
            raise ConfigError(f"the Dask cluster at {address!r} has no usable worker ({exc}); "
                             "start workers with `dask worker ADDRESS --nthreads 1`") from None
        info = self.client.scheduler_info()["workers"]
        per_host: dict[str, int] = {}
        for w in info.values():
            per_host[w["host"]] = per_host.get(w["host"], 0) + 1
        self.threads: int | dict[str, int] = threads or {
            a: max(1, (cores.get(a) or 1) // per_host[w["host"]]) for a, w in info.items()}
        self.where = f"Dask cluster {address} ({len(info)} workers)"
        self.teacher = self.client.scatter(teacher, broadcast=True, hash=False)

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0) -> Any:
        return self.client.submit(fn, *args, priority=priority, pure=False)

    def student_ref(self, future: Any, value: Any) -> Any:
        return future  # Dask resolves it on the worker: the student stays in the cluster

    def first_done(self, futures: set[Any]) -> set[Any]:
        from distributed import wait
        return set(wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self, cancel: bool) -> None:
        self.client.close()
