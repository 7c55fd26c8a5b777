"""Accuracy over a chip's lifetime, and what keeping it costs (issue 24).

Every method programs (and adapts) its chip at time 0; the cells then relax by the device's
relaxation (:mod:`xbar.devices.relaxation`, :meth:`xbar.mapping.chip.Chip.age_to`); SRAM
words, biases, gains and the DAC/ADC ranges calibrated at programming do not change. What a
refresh is for each method family, and how the refresh schedule is found, is
:mod:`xbar.mapping.recovery.lifetime_chip` (one method on one chip over its life); this
module holds the settings, runs every method on every chip (resumable:
:mod:`xbar.mapping.recovery.lifetime_resume`) and averages them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from torch import nn

from xbar.config import HardwareConfig
from xbar.devices import DeviceFile
from xbar.mapping.convert import fold_batchnorm
from xbar.mapping.data.base import Dataset
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.lifetime_chip import REFRESH_KIND, ChipLife, check_times, chip_life
from xbar.mapping.recovery.lifetime_resume import LifetimeProgress
from xbar.mapping.recovery.techniques.kd import KDConfig, distill
from xbar.mapping.recovery.techniques.rvw import rvw_params
from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.params import Params, fail, param, validate
from xbar.timing.energy import one_shot_energy
from xbar.timing.programming import one_shot_time

__all__ = ["LIFETIME_METHODS", "LifetimeSettings", "lifetime"]

LIFETIME_METHODS = tuple(REFRESH_KIND)


@dataclass(frozen=True)
class LifetimeSettings(Params):
    """What ``xbar lifetime`` runs.

    Attributes:
        ages_s: Ages (s after programming) at which every method's accuracy is reported,
            without and right after a refresh.
        methods: Methods, from :data:`LIFETIME_METHODS`.
        horizon_s: The lifetime the refresh schedule covers (s).
        tolerance: Accuracy a method may lose against its accuracy at programming before a
            refresh (a fraction: 0.01 = 1 point).
        chips: Chip instances; chip ``c`` has seed ``seed + c``.
        seed: The first chip's seed.
        checks_per_decade: Schedule checks per decade of time since the last refresh.
        max_refreshes: Refreshes the schedule simulates per method and chip; a schedule that
            needs more is reported incomplete, with the count extrapolated.
        test_limit: Test images each evaluation uses (0: all).
        sram_ratio: Fraction of each layer's weights given an SRAM word (RSA, OSA).
        adapt: The adaptation budget (at programming and at every re-adaptation).
        kd: The distillation recipe.
        reads_per_s: Reads of every cell per second of inference: the device's read
            disturb on the same clock as its relaxation (each cell read ``reads_per_s x``
            its age since its last write; a rewrite restarts its count); 0: none.
    """

    ages_s: tuple[float, ...] = param((1.0, 1e4, 1e8), kind=tuple, item=float, unit="s",
                                      note="ascending, > 0", doc="Ages reported.")
    methods: tuple[str, ...] = param(("one-shot", "kd+rsa", "rvw"), item=str,
                                     doc="Methods to run.")
    horizon_s: float = param(1e8, unit="s", range=(0, 1e12, True, False),
                             doc="Lifetime the refresh schedule covers.")
    tolerance: float = param(0.01, unit="fraction", range=(0, 1, True, False),
                             doc="Accuracy loss allowed before a refresh.")
    chips: int = param(1, unit="chips", range=(1, 1000), doc="Chip instances.")
    seed: int = param(0, unit="-", range=(0, 2**32 - 1), doc="The first chip's seed.")
    checks_per_decade: int = param(1, unit="-", range=(1, 100),
                                   doc="Schedule checks per decade of time since a refresh.")
    max_refreshes: int = param(30, unit="-", range=(1, 10**6),
                               doc="Refreshes simulated per method and chip.")
    test_limit: int = param(0, unit="images", range=(0, 10**8), note="0: all",
                            doc="Test images per evaluation.")
    sram_ratio: float = param(0.05, unit="fraction", range=(0, 1, True, False),
                              doc="Fraction of each layer's weights in SRAM.")
    adapt: AdaptConfig = AdaptConfig()
    kd: KDConfig = KDConfig()
    reads_per_s: float = param(0.0, unit="reads/s", range=(0, 1e12),
                               note="0: no read disturb while aging",
                               doc="Reads of every cell per second of inference (read "
                                   "disturb on the aging clock).")

    def __post_init__(self) -> None:
        validate(self)
        bad = [m for m in self.methods if m not in REFRESH_KIND]
        if bad or not self.methods or len(set(self.methods)) != len(self.methods):
            fail("LifetimeSettings", "methods", self.methods,
                 f"distinct methods from {', '.join(LIFETIME_METHODS)}")
        a = self.ages_s
        if not a or any(x <= 0 for x in a) or any(y <= x for x, y in zip(a, a[1:])):
            fail("LifetimeSettings", "ages_s", a, "ascending ages > 0 s")


def lifetime(teacher: nn.Module, dataset: Dataset, device: DeviceFile, hw: HardwareConfig,
             settings: LifetimeSettings = LifetimeSettings(),
             progress: Callable[[str], None] | None = None,
             resume: LifetimeProgress | None = None) -> dict[str, Any]:
    """Every method's accuracy over the chip's lifetime and its refresh schedule; a
    JSON-ready dict (keys: ``ages_s``, ``methods.<m>.accuracy`` and
    ``.accuracy_refreshed`` (means over chips, one per age), ``.refresh_s`` and
    ``.refresh_pj`` (what the refresh at each age cost), ``schedule.<m>.refreshes``,
    ``.time_s``, ``.energy_pj`` (means over chips), with per-chip detail).

    ``resume``: where finished units (one method on one chip) and the KD student are kept
    as they finish and read back on a rerun (:mod:`~xbar.mapping.recovery.lifetime_resume`);
    None keeps nothing."""
    say = progress or (lambda _: None)
    dev = device.device
    if not dev.ages(settings.reads_per_s):
        say(f"device {dev.name!r} does not relax and is not read-disturbed at "
            f"{settings.reads_per_s:g} reads/s: every age shows the programmed chip")
    xbar, s = hw.xbar, settings
    shape = tuple(dataset.input_shape)
    specs = layer_specs(teacher, shape)
    n = s.test_limit or len(dataset.y_test)
    x_test, y_test = dataset.x_test[:n], dataset.y_test[:n]
    t_one = one_shot_time(specs, hw).total_s
    e_one = one_shot_energy(specs, hw).total_pj
    loop = rvw_params(device) if "rvw" in s.methods else None
    stopping = hw.programming.stopping_rule()
    student = None
    if any(m.startswith("kd") for m in s.methods):
        student = resume.student(fold_batchnorm(teacher)[0]) if resume else None
        if student is None:
            say("distilling the device-aware student")
            student, _ = distill(teacher, dataset, dev, xbar, s.kd, s.seed, backend="cpu")
            if resume:
                resume.save_student(student)
        else:
            say(f"the device-aware student distilled by an earlier run ({resume.folder})")
    offsets = check_times(s.ages_s[0], s.horizon_s, s.checks_per_decade)
    per: dict[str, dict[str, list[Any]]] = {m: {} for m in s.methods}   # keys: chip_life's

    run = ChipLife(teacher, student, dataset, dev, hw, s, specs, shape, loop, stopping,
               x_test, y_test, t_one, e_one, offsets, say)
    for c in range(s.chips):
        for name in s.methods:
            key = f"chip {c}/{name}"
            unit = resume.unit(key) if resume else None
            if unit is None:
                unit = chip_life(run, c, name)
                if resume:
                    unit = resume.save_unit(key, unit)
            else:
                say(f"chip {c + 1}/{s.chips}: {name} finished by an earlier run")
            for k, v in unit.items():
                rows = per[name].setdefault(k, [])
                if k in ("refresh_s", "refresh_pj"):   # one entry per refresh
                    rows.extend(v)
                else:
                    rows.append(v)

    def mean(rows: list[Any]) -> list[float]:
        return [float(v) for v in np.mean(np.asarray(rows, dtype=float), axis=0)]

    methods, schedule = {}, {}
    for name, r in per.items():
        methods[name] = {"accuracy": mean(r["accuracy"]),
                         "accuracy_refreshed": mean(r["accuracy_refreshed"]),
                         "accuracy_at_programming": float(np.mean(r["at_programming"])),
                         "refresh_s": mean(r["age_refresh_s"]),
                         "refresh_pj": mean(r["age_refresh_pj"]),
                         "per_chip": {"accuracy": r["accuracy"],
                                      "accuracy_refreshed": r["accuracy_refreshed"],
                                      "accuracy_at_programming": r["at_programming"]}}
        schedule[name] = {"refreshes": float(np.mean(r["refreshes"])),
                          "time_s": float(np.mean(r["time_s"])),
                          "energy_pj": float(np.mean(r["energy_pj"])),
                          "refresh": REFRESH_KIND[name],
                          "mean_refresh_s": float(np.mean(r["refresh_s"])) if r["refresh_s"]
                          else None,
                          "mean_refresh_pj": float(np.mean(r["refresh_pj"]))
                          if r["refresh_pj"] else None,
                          "held": all(r["held"]), "complete": all(r["complete"]),
                          "per_chip": {"refreshes": r["refreshes"], "times_s": r["times_s"],
                                       "time_s": r["time_s"], "energy_pj": r["energy_pj"],
                                       "held": r["held"], "complete": r["complete"],
                                       "refreshes_extrapolated": r["extrapolated"],
                                       "checks": r["checks"]}}
    return {"ages_s": list(s.ages_s), "methods": methods, "schedule": schedule,
            "horizon_s": s.horizon_s, "tolerance": s.tolerance,
            "check_offsets_s": offsets, "device": dev.name,
            "device_summary": dev.summary(), "n_test": int(n),
            "one_shot_program_s": t_one, "one_shot_program_pj": e_one,
            "rvw_loop": loop.source if loop is not None else None,
            "settings": {"ages_s": list(s.ages_s), "methods": list(s.methods),
                         "horizon_s": s.horizon_s, "tolerance": s.tolerance,
                         "chips": s.chips, "seed": s.seed,
                         "checks_per_decade": s.checks_per_decade,
                         "max_refreshes": s.max_refreshes, "test_limit": s.test_limit,
                         "sram_ratio": s.sram_ratio, "adapt_steps": s.adapt.steps,
                         "adapt_batch": s.adapt.batch_size, "kd_epochs": s.kd.epochs}}
