"""Running a sweep's tasks on a backend: students first, each point recorded as it finishes.

:func:`execute_points` submits every point that needs no student and every KD student's
distillation (with priority), hands each student on to its value's KD points when it is done,
and writes each finished point into the results file at once, so a killed run loses only the
points in flight. :class:`Progress` shows points done, rate and time left on stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xbar.errors import XbarError
from xbar.mapping.sweep.backends import Backend
from xbar.mapping.sweep.store import SweepResults
from xbar.mapping.sweep.workers import SweepContext, distill_task, point_task

if TYPE_CHECKING:  # run.py imports this module
    from xbar.mapping.sweep.run import SweepPlan

__all__ = ["Progress", "SweepError", "execute_points"]


class SweepError(XbarError, ValueError):
    """A sweep task failed; finished points are saved and a rerun continues."""


class Progress:
    """Points done, rate and time left on stderr: a bar on a terminal, else one line each."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled and total > 0
        self.tty = sys.stderr.isatty()
        self.done = 0
        self.start = time.perf_counter()
        self.show("")

    def step(self, label: str) -> None:
        self.done += 1
        self.show(label)

    def show(self, label: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed * 60 if elapsed > 0 and self.done else 0.0
        left = (self.total - self.done) / rate if rate else float("nan")
        left_s = "?" if left != left else f"{left:.1f} min"
        text = (f"{self.done}/{self.total} points, {rate:.2f} points/min, "
                f"~{left_s} left")
        if self.tty:
            bar = "#" * int(24 * self.done / self.total)
            sys.stderr.write(f"\rsweep [{bar:<24}] {text}  ")
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif label:
            sys.stderr.write(f"sweep: {label}; {text}\n")
        sys.stderr.flush()


def execute_points(plan: SweepPlan, ctx: SweepContext, results: SweepResults,
             todo: list[tuple[int, str, int]], student_of: dict[int, int], backend: Backend,
             out: Path, progress: bool) -> int:
    """Submit the tasks, record each point as it finishes; returns the points computed."""
    name = plan.param.name
    bar = Progress(len(todo), progress)
    pending: dict[Any, tuple[Any, ...]] = {}
    waiting: dict[int, list[tuple[int, str, int]]] = {}

    def submit_point(i: int, m: str, c: int, student: Any) -> None:
        fut = backend.submit(point_task, ctx, backend.teacher, i, m, c, student,
                             backend.threads)
        pending[fut] = ("point", i, m, c)

    for i, m, c in todo:
        if m.startswith("kd"):
            waiting.setdefault(student_of[i], []).append((i, m, c))
        else:
            submit_point(i, m, c, None)
    for i in waiting:  # distil first: KD points wait for their student
        fut = backend.submit(distill_task, ctx, backend.teacher, i, backend.threads,
                             priority=10)
        pending[fut] = ("distill", i)
    computed = 0
    while pending:
        for fut in backend.first_done(set(pending)):
            job = pending.pop(fut)
            try:
                value = fut.result()
            except Exception as exc:
                what = (f"distilling the KD student for {name} = "
                        f"{plan.points[job[1]].value!r}") if job[0] == "distill" \
                    else f"point {name} = {plan.points[job[1]].value!r}, {job[2]}, chip {job[3]}"
                raise SweepError(
                    f"{what} failed on {backend.where}: {type(exc).__name__}: {exc}. The "
                    f"{int(results.done.sum())} finished points are saved in {out}; fix the "
                    "cause and rerun the same command to continue") from exc
            if job[0] == "distill":
                for i in [i for i, s in student_of.items() if s == job[1]]:
                    results.kd[str(i)] = value[1]
                student = backend.student_ref(fut, value)
                for i, m, c in waiting.pop(job[1]):
                    submit_point(i, m, c, student)
                continue
            _, i, m, c = job
            results.record(i, m, c, value)
            results.save(out)
            computed += 1
            bar.step(f"{name} = {plan.points[i].value!r}, {m}, chip {c}: "
                     f"{100 * value['accuracy']:.2f} % ({value['wall_s']:.1f} s)")
    return computed
