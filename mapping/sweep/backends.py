"""Where ``xbar sweep``'s tasks run: this process, local worker processes, or a Dask cluster.

Every backend offers ``submit``, ``first_done`` and ``close``, and hands a KD student on to
its points (:meth:`Backend.student_ref`):

* :class:`InlineBackend`: in this process, one task after another (``--workers 1``).
* :class:`PoolBackend`: N spawned local processes (``concurrent.futures``), each limited to
  cores / N threads; each dies, quietly, when the driver dies; the teacher reaches them
  through a file in the cache (``$XBAR_CACHE/sweep``).
* :class:`DaskBackend`: a ``distributed.Client`` on a scheduler address; threads per worker =
  its host's cores / worker processes on that host; the teacher is scattered once.

:func:`make_backend` picks one from :func:`~xbar.mapping.sweep.run.run_sweep`'s ``scheduler``,
``workers`` and ``threads`` (``xbar sweep --scheduler``, ``--workers``, ``--threads``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any, Callable

from xbar.errors import ConfigError
from xbar.mapping.data.base import cache_dir
from xbar.mapping.sweep.workers import TeacherPayload, init_local_worker

__all__ = ["Backend", "DaskBackend", "InlineBackend", "PoolBackend", "default_workers",
           "make_backend"]


def default_workers() -> int:
    """As many workers as this process may use cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def make_backend(payload: TeacherPayload, scheduler: str | None, workers: int | None,
                 threads: int | None, n_tasks: int) -> Backend:
    """The backend for a run of ``n_tasks`` tasks (never more local workers than tasks)."""
    if scheduler is not None:
        return DaskBackend(payload, scheduler, threads)
    n = min(workers or default_workers(), max(1, n_tasks))
    threads = threads or max(1, default_workers() // n)
    return InlineBackend(payload, threads) if n == 1 else PoolBackend(payload, n, threads)


class InlineFuture:
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


class Backend:
    """Where tasks run: ``submit``, ``first_done``, ``close``; students handed on by value."""

    where = ""
    teacher: Any = None
    threads: Any = 1

    def student_ref(self, future: Any, value: Any) -> Any:
        """What a KD point gets for its student: the state dict bytes."""
        return value[0]


class InlineBackend(Backend):
    """Runs tasks in this process, highest priority first, then in submission order."""

    where = "this process"

    def __init__(self, teacher: TeacherPayload, threads: int) -> None:
        self.teacher, self.threads, self._n = teacher, threads, 0

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0) -> InlineFuture:
        self._n += 1
        return InlineFuture(fn, args, (-priority, self._n))

    def first_done(self, futures: set[Any]) -> set[Any]:
        nxt = min(futures, key=lambda f: f.order)
        nxt.run()
        return {nxt}

    def close(self, cancel: bool) -> None:
        pass


def _start_quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running) with its warnings off.

    The tracker outlives a SIGKILLed sweep to remove the pool's semaphores, and would then
    warn on stderr that it found them "leaked": it did its job, and the user did not ask for
    that line. Its warning filter comes from the environment it starts with.
    """
    from multiprocessing import resource_tracker

    before = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    os.environ["PYTHONWARNINGS"] = f"{before},{quiet}" if before else quiet
    try:
        resource_tracker.ensure_running()
    finally:
        if before is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = before


class PoolBackend(Backend):
    """Local worker processes (spawned: no inherited threads or locks); each exits quietly
    when this process dies (:func:`~xbar.mapping.sweep.workers.init_local_worker`)."""

    def __init__(self, teacher: TeacherPayload, workers: int, threads: int) -> None:
        self.where = f"{workers} local worker processes x {threads} thread(s)"
        self.teacher, self.threads = None, threads  # installed by the initializer
        teacher_file = teacher.to_file(cache_dir() / "sweep")
        _start_quiet_resource_tracker()
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=init_local_worker,
            initargs=(os.getpid(), str(teacher_file), teacher.weights_hash, threads))

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0) -> cf.Future:
        return self.pool.submit(fn, *args)

    def first_done(self, futures: set[Any]) -> set[Any]:
        return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done

    def close(self, cancel: bool) -> None:
        if cancel:  # do not wait for points in flight: they are lost anyway
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=True)


class DaskBackend(Backend):
    """A Dask distributed cluster at ``address`` (``distributed.Client``)."""

    def __init__(self, teacher: TeacherPayload, address: str, threads: int | None = None
                 ) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(f"run_sweep(scheduler={address!r}) needs Dask's distributed "
                              "package: pip install 'xbar-sim[dask]' (on this machine and "
                              "every worker)") from None
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"run_sweep(scheduler={address!r}): cannot reach the Dask "
                              f"scheduler ({exc}); start one with `dask scheduler` and give "
                              "the address it prints (tcp://HOST:8786)") from None
        try:
            self.client.wait_for_workers(1, timeout=60)
            cores = self.client.run(os.cpu_count)
        except Exception as exc:
            self.client.close()
            raise ConfigError(f"run_sweep(scheduler={address!r}): the Dask cluster has no "
                              f"usable worker ({exc}); start workers with `dask worker ADDRESS "
                              "--nthreads 1`") from None
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
