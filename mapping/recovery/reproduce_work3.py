"""``xbar reproduce work3``: ITT-RNA's two claims beside the simulated losses.

Both rows run :func:`xbar.mapping.recovery.compare.compare` on the reproduce teacher (MNIST
LeNet-5; the digits CNN with ``--quick``) on the default hardware (differential pairs,
128 x 128 arrays) with one-shot and the three work 3 methods, and report the loss of the
whole flow, ``fault-aware+on-chip`` (test, matched rows, fault-aware training, a few
on-device retraining iterations), against the FP32 teacher:

* ``loss-stuck-20``: 20 % of cells stuck, SA0:SA1 = 9.04:1.75 (the JxCDC chip's split; our
  SA0 = stuck at g_min, the high-resistance state), no programming variation
  (:func:`xbar.mapping.recovery.work3.stuck_device`); the paper: loss < 1 %;
* ``loss-variation``: lognormal variation ``G_level exp(theta)``, theta ~ N(0, sigma^2), at
  :data:`xbar.mapping.recovery.work3.VARIATION_SIGMA` (the paper's sigma is not public; see
  docs/work3.md for the choice), no stuck cells; the paper: loss < 1.1 %. Its variance is
  split as the JxCDC preset splits it (``c2c_fraction``): the test pass can know only the
  device-to-device part, and every later write draws a fresh cycle-to-cycle part (the row's
  note says how much of the variance the map can know).

Budgets from the reproduce settings: fault-aware training runs ``min(kd_epochs, 2)`` epochs
per round; on-device retraining ``min(steps, 10)`` iterations (5 with ``quick``).
``settings.extra`` may hold ``work3_sigma`` (the variation row's sigma) and
``work3_stuck_rate``.
"""

from __future__ import annotations

from typing import Any, Callable

from xbar.errors import ConfigError
from xbar.mapping.recovery.fault_train import FaultTrainConfig
from xbar.mapping.recovery.on_chip import OnChipConfig
from xbar.mapping.recovery.published import published
from xbar.mapping.recovery.work3 import (METHODS, VARIATION_SIGMA, Work3Options, stuck_device,
                                         variation_device)

__all__ = ["rows"]


def _extra(settings: Any, name: str, default: float, lo: float, hi: float) -> float:
    value = settings.extra.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"ReproduceSettings.extra[{name!r}] = {value!r} is invalid; allowed: "
                          f"a number in [{lo}, {hi}]")
    return float(value)


def rows(settings: Any, teacher: Any, say: Callable[[str], None], out: dict[str, Any]
         ) -> list[dict[str, Any]]:
    """The work 3 rows (module docstring)."""
    from xbar.config import load_hardware
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.reproduce import row

    s = settings
    sigma = _extra(s, "work3_sigma", VARIATION_SIGMA, 0.0, 10.0)
    rate = _extra(s, "work3_stuck_rate", 0.2, 0.0, 1.0)
    hw = load_hardware("default")
    fp32 = teacher.software_accuracy
    opts = Work3Options(train=FaultTrainConfig(epochs=min(s.kd_epochs, 2)),
                        on_chip=OnChipConfig(iterations=min(s.steps, 5 if s.quick else 10)))
    methods = ("one-shot",) + METHODS
    where = f"{s.model} on {s.dataset}"
    details: dict[str, Any] = {"sigma": sigma, "stuck_rate": rate, "fp32": fp32}
    result = []
    for fig, device, what in (
            ("loss-stuck-20", stuck_device(rate),
             f"{rate:.0%} stuck (SA0 {device_rate(rate, 0):.2%} at g_min/HRS, SA1 "
             f"{device_rate(rate, 1):.2%} at g_max/LRS), no variation"),
            ("loss-variation", variation_device(sigma),
             f"lognormal sigma {sigma:g} (sigma/mu {_ratio(sigma):.2f}), no stuck cells")):
        say(f"work3 {fig}: {', '.join(methods)}")
        cs = CompareSettings(chips=s.chips, seed=s.seed, methods=methods,
                             options={m: opts for m in METHODS}, backend=s.backend)
        res = compare(teacher.model, teacher.dataset, device, hw.xbar, cs, timing=hw.timing,
                      programming=hw.programming, adaptation=hw.adaptation)
        m = res["methods"]
        full = m["fault-aware+on-chip"]
        losses = {k: fp32 - v["accuracy"] for k, v in m.items()}
        details[fig] = {"device": device.to_dict(), "methods": m, "losses": losses}
        note = ("loss = FP32 - accuracy of the whole flow (fault-aware+on-chip); losses of "
                f"one-shot {losses['one-shot']:.2%}, fault-aware-map "
                f"{losses['fault-aware-map']:.2%}, fault-aware-train "
                f"{losses['fault-aware-train']:.2%}; test {full['test_s'] * 1e3:.3g} ms, "
                f"{full['rewrites']:.0f} rewrites ({full['rewrite_s'] * 1e3:.3g} ms), "
                f"endurance max {full['endurance_cycles_max']:.0f} writes per cell")
        if device.has_c2c():
            f = device.c2c_fraction
            note += (f"; what the test pass can know: the device-to-device part of the "
                     f"variation, {1 - f:.0%} of its variance (c2c_fraction {f:g}: every write, "
                     "the test's own included, adds a fresh cycle-to-cycle draw); the map keeps "
                     f"{1 - f:g} x the measured log deviation")
        result.append(row(published("work3", fig), losses["fault-aware+on-chip"],
                          full["accuracy_std"],
                          f"{device.name}: {what}; {where}, {s.chips} chip(s); FP32 "
                          f"{fp32:.2%}", note))
    out["works"]["work3"] = details
    return result


def device_rate(rate: float, which: int) -> float:
    """The SA0 (``which`` 0) or SA1 (1) rate of :func:`stuck_device` at ``rate``."""
    d = stuck_device(rate)
    return d.sa0_rate if which == 0 else d.sa1_rate


def _ratio(sigma: float) -> float:
    """sigma / mu of a lognormal exp(sigma N(0, 1)): sqrt(exp(sigma^2) - 1)."""
    import math
    return math.sqrt(math.expm1(sigma * sigma))
