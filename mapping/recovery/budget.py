"""The least time and the memory a comparison needs, checked before any work.

:func:`~xbar.mapping.recovery.compare.compare`'s callers (``xbar compare``, a sweep) bound its
counts (chips, adaptation steps, KD epochs, the swept values) with :func:`check_budget`
(``xbar reproduce`` its chips and steps with :func:`min_seconds`): the results' memory
against this machine's (:func:`xbar.resources.check_memory`) and a lower bound of the run time
against :data:`xbar.resources.MAX_RUN_S` (:func:`xbar.resources.check_time`), each message
holding the estimate. The time per unit is a floor, about 10 to 60 times below what the
smallest zoo network (the digits CNN) took on the project's 2 shared cores, so a refused run
could not have finished in time on a much faster machine either.
"""

from __future__ import annotations

from typing import Any

from xbar.resources import check_memory, check_time

__all__ = ["ADAPTING", "MIN_CHIP_S", "MIN_KD_EPOCH_S", "MIN_STEP_S", "check_budget",
           "min_seconds"]

MIN_CHIP_S = 0.01
"""One method on one chip, at least: programming, calibration and the test set (digits CNN:
0.1-0.2 s)."""
MIN_STEP_S = 0.001
"""One adaptation step on one chip, at least (digits CNN, batch 32: about 0.03 s)."""
MIN_KD_EPOCH_S = 0.01
"""One epoch of knowledge distillation, at least (digits CNN on 1,437 images: about 0.6 s)."""
ADAPTING = ("bias-only", "rsa", "kd+rsa", "osa", "kd+osa")
"""The methods that train on every chip for ``adapt.steps`` steps."""


def min_seconds(settings: Any, values: int = 1) -> tuple[float, str]:
    """A lower bound of the run time of ``settings`` (a :class:`~xbar.mapping.recovery.compare.
    CompareSettings`) repeated for ``values`` swept values, on one core, and how it was
    counted ("1,000 chip runs x >= 0.01 s, ...")."""
    methods = settings.methods
    runs = values * settings.chips * sum(m != "software" for m in methods)
    steps = values * settings.chips * sum(m in ADAPTING for m in methods) * settings.adapt.steps
    epochs = values * settings.kd.epochs if any(m.startswith("kd") for m in methods) else 0
    parts = [(runs, "chip runs", MIN_CHIP_S), (steps, "adaptation steps", MIN_STEP_S),
             (epochs, "KD epochs", MIN_KD_EPOCH_S)]
    total = sum(n * each for n, _, each in parts)
    return total, ", ".join(f"{n:,} {name} x >= {each:g} s" for n, name, each in parts if n)


def check_budget(settings: Any, bytes_per_point: int, request: str, values: int = 1) -> None:
    """Refuse ``settings`` (times ``values``) when its results would not fit in memory or even
    its fastest run would take longer than :data:`xbar.resources.MAX_RUN_S`.

    Args:
        settings: The comparison (its chips, methods, adaptation steps and KD epochs).
        bytes_per_point: Memory held per (value, method, chip) point until the end.
        request: What set the size, for the memory message (``"CompareSettings.chips =
            100000000"``; a command gives its options).
        values: Swept values (a sweep runs ``settings`` at each).

    Raises:
        ResourceError: Naming the counts and the estimate; the time message names the
            settings fields (``CompareSettings.chips = 100000000, AdaptConfig.steps = 300``).
    """
    n_points = values * len(settings.methods) * settings.chips
    check_memory(n_points * bytes_per_point, request,
                 f"{n_points:,} {'(value, method, chip)' if values > 1 else '(method, chip)'} "
                 f"points x about {bytes_per_point} bytes of results and task state")
    counts = f"CompareSettings.chips = {settings.chips}"
    if any(m in ADAPTING for m in settings.methods):
        counts += f", AdaptConfig.steps = {settings.adapt.steps}"
    if any(m.startswith("kd") for m in settings.methods):
        counts += f", KDConfig.epochs = {settings.kd.epochs}"
    if values > 1:
        counts += f" over {values} values"
    at_least, what = min_seconds(settings, values)
    check_time(at_least, f"{counts} with CompareSettings.methods = "
               f"{','.join(settings.methods)!r}",
               f"{what}, on one core")
