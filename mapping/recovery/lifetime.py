"""Accuracy over a chip's lifetime, and what keeping it costs (issue 24).

Every method programs (and adapts) its chip at time 0; the cells then relax by the device's
relaxation (:mod:`xbar.devices.relaxation`, :meth:`xbar.mapping.chip.Chip.age_to`); SRAM
words, biases, gains and the DAC/ADC ranges calibrated at programming do not change. A
refresh at time T, by method family:

* ``one-shot``, ``kd`` (``reprogram``): every cell rewritten one-shot to its target level
  (:meth:`xbar.analog.AnalogMatrix.write`: the cell's own device-to-device draw, a fresh
  cycle-to-cycle draw, a fresh relaxation draw and its clock restarted); costs one one-shot
  programming (:func:`xbar.timing.programming.one_shot_time`,
  :func:`xbar.timing.energy.one_shot_energy`).
* ``rsa``, ``kd+rsa``, ``osa``, ``kd+osa`` (``readapt``): the SRAM words re-trained on the
  aged chip from where they were (same positions, the same budget as at programming); costs
  one adaptation (:func:`xbar.timing.adaptation.adaptation_time`,
  :func:`xbar.timing.energy.adaptation_energy`). No cell is written: the cells keep aging
  from time 0.
* ``rvw`` (``reverify``): every cell read once against its target's verify window; the
  healthy cells outside it are re-programmed by the write-verify loop
  (:func:`xbar.devices.write_verify.program_write_verify`, their clocks restart), costed by
  the programming engine and energy model from the per-cell pulses and reads
  (:func:`xbar.timing.programming.programming_time`,
  :func:`xbar.timing.energy.programming_energy`). Assumed: the controller keeps the list of
  cells it gave up on at programming (stuck cells) and does not retry them.

The refresh schedule (:func:`refresh_schedule`): the chip is checked at times T + s after
its last refresh T (T = 0 at programming), s on a log grid from the first age of ``ages_s``
upward (``checks_per_decade`` points per decade) and at the horizon; the first check whose
accuracy falls below (accuracy at programming - tolerance) means a refresh at the last check
before it that was still within tolerance, and the checks restart from that refresh. So a
refresh happens at most one grid step too early (conservative), never late; between grid
points accuracy is assumed to fall monotonically with age. One evaluation per check, on the
test images (``test_limit`` of them): the schedule is the one an oracle that measured the
test accuracy would choose, an upper bound on what a deployed monitor could do.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from torch import nn

from xbar.config import HardwareConfig
from xbar.devices import DeviceFile
from xbar.devices.write_verify import WriteVerifyParams
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.techniques.kd import KDConfig, distill
from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params
from xbar.mapping.recovery.techniques.sram import AdaptConfig, adapt, attach_sram
from xbar.params import Params, fail, param, validate
from xbar.timing.adaptation import adaptation_time
from xbar.timing.energy import (adaptation_energy, conductance_sums, one_shot_energy,
                                programming_energy)
from xbar.timing.programming import LayerCells, one_shot_time, programming_time

__all__ = ["LIFETIME_METHODS", "LifetimeSettings", "REFRESH_KIND", "check_times",
           "lifetime", "refresh_schedule"]

REFRESH_KIND = {"one-shot": "reprogram", "kd": "reprogram", "rsa": "readapt",
                "kd+rsa": "readapt", "osa": "readapt", "kd+osa": "readapt",
                "rvw": "reverify"}
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


def check_times(first_s: float, horizon_s: float, per_decade: int) -> list[float]:
    """The schedule's check offsets after a refresh: ``first_s * 10**(k / per_decade)`` for
    k = 0, 1, ... below ``horizon_s``, then ``horizon_s``."""
    if not (first_s > 0 and horizon_s > 0):
        raise ConfigError(f"check times need first_s > 0 and horizon_s > 0; got {first_s}, "
                          f"{horizon_s}")
    out, k = [], 0
    while (s := first_s * 10 ** (k / per_decade)) < horizon_s * (1 - 1e-12):
        out.append(s)
        k += 1
    return out + [horizon_s]


def refresh_schedule(accuracy_at: Callable[[float], float], refresh: Callable[[float], None],
                     threshold: float, horizon_s: float, offsets: list[float],
                     max_refreshes: int) -> dict[str, Any]:
    """Refresh times that keep ``accuracy_at(t)`` >= ``threshold`` up to ``horizon_s``.

    ``accuracy_at(t)``: the accuracy of the chip, as its refreshes so far left it, at time t
    (s after programming; t never before the last refresh). ``refresh(T)``: refresh the chip
    at time T. Checks at T + s for s in ``offsets`` (ascending, capped at the horizon); the
    first failing check puts a refresh at the last passing one (module docstring).

    Returns ``refreshes`` (count), ``times_s`` (when), ``checks`` [(t, accuracy)],
    ``held`` (False when a freshly refreshed chip fails its very first check: no schedule on
    this grid holds the tolerance), ``complete`` (the horizon was reached within
    ``max_refreshes``) and ``refreshes_extrapolated`` (when not complete: the count plus the
    time left over the mean interval so far).
    """
    last, times, checks = 0.0, [], []
    held, complete = True, False
    while True:
        ok = None
        reached = False
        for s in offsets:
            t = min(last + s, horizon_s)
            acc = float(accuracy_at(t))
            checks.append((t, acc))
            if acc < threshold:
                break
            ok = t
            if t >= horizon_s:
                reached = True
                break
        if reached:
            complete = True
            break
        if ok is None:   # fails at the first check after a refresh (or at programming)
            held = False
            break
        if len(times) >= max_refreshes:
            break
        refresh(ok)
        times.append(ok)
        last = ok
    out = {"refreshes": len(times), "times_s": times, "checks": checks, "held": held,
           "complete": complete}
    if not complete and held and times:
        interval = times[-1] / len(times)   # refreshes strictly before the horizon
        out["refreshes_extrapolated"] = len(times) + math.ceil((horizon_s - times[-1])
                                                               / interval) - 1
    return out


# --------------------------------------------------------------------------- refreshes
def _reprogram(chip: Chip, rng: np.random.Generator) -> None:
    for layer in chip.layers:
        m = layer.matrix
        m.write(m.target_levels, rng, cells=np.ones(m.target_levels.shape, bool))
        layer.refresh_weights()


def _reverify(chip: Chip, loop: WriteVerifyParams, seed: int, stopping: Any,
              given_up: list[np.ndarray]) -> list[LayerCells]:
    """Read every cell once; re-program the healthy cells outside their verify window (not
    those the controller gave up on at programming) by write-verify. Per-layer counts."""
    lo, hi = np.asarray(loop.window_lo_us), np.asarray(loop.window_hi_us)
    counts, offset = [], 0
    for layer, skip in zip(chip.layers, given_up):
        m = layer.matrix
        lv = m.target_levels
        out = ((m.g_us < lo[lv]) | (m.g_us > hi[lv])) & (m.stuck == 0) & ~skip
        pulses = np.zeros(lv.shape, np.int64)
        reads = np.ones(lv.shape, np.int64)
        if out.any():   # the rewritten cells' clocks restart now
            pulses, more = m.write_verify(lv, loop, seed, cells=out, offset=offset,
                                          stopping=stopping)
            reads += more
            layer.refresh_weights()
        offset += lv.size
        counts.append(LayerCells(layer.layer_name, m.n_in, m.n_out, pulses, reads))
    return counts


# --------------------------------------------------------------------------- the run
def lifetime(teacher: nn.Module, dataset: Dataset, device: DeviceFile, hw: HardwareConfig,
             settings: LifetimeSettings = LifetimeSettings(),
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every method's accuracy over the chip's lifetime and its refresh schedule; a
    JSON-ready dict (keys: ``ages_s``, ``methods.<m>.accuracy`` and
    ``.accuracy_refreshed`` (means over chips, one per age), ``.refresh_s`` and
    ``.refresh_pj`` (what the refresh at each age cost), ``schedule.<m>.refreshes``,
    ``.time_s``, ``.energy_pj`` (means over chips), with per-chip detail)."""
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
        say("distilling the device-aware student")
        student, _ = distill(teacher, dataset, dev, xbar, s.kd, s.seed, backend="cpu")
    offsets = check_times(s.ages_s[0], s.horizon_s, s.checks_per_decade)
    per: dict[str, dict[str, list[Any]]] = {
        m: {k: [] for k in ("accuracy", "accuracy_refreshed", "at_programming", "refreshes",
                            "time_s", "energy_pj", "times_s", "checks", "held", "complete",
                            "extrapolated", "refresh_s", "refresh_pj", "age_refresh_s",
                            "age_refresh_pj")} for m in s.methods}

    def evaluate(chip: Chip) -> float:
        return chip.evaluate(x_test, y_test)

    for c in range(s.chips):
        seed = s.seed + c
        calib = calibration_inputs(dataset, seed=seed)

        def fresh(model: nn.Module) -> Chip:
            chip = Chip.program(model, dev, xbar, seed, "column", "", shape)
            chip.use_backend("cpu").calibrate(calib)
            return chip

        for name in s.methods:
            say(f"chip {c + 1}/{s.chips}: {name} at programming")
            kind = REFRESH_KIND[name]
            model = student if name.startswith("kd") else teacher
            words: list[int] = []
            given_up: list[np.ndarray] = []
            if name == "rvw":
                chip = Chip.program(teacher, dev, xbar, seed, "column", "", shape)
                program_rvw(chip, loop, seed, stopping)   # the cells as R-V-W leaves them
                chip.use_backend("cpu").calibrate(calib)
                lo, hi = np.asarray(loop.window_lo_us), np.asarray(loop.window_hi_us)
                given_up = [((lay.matrix.g_us < lo[lay.matrix.target_levels]) |
                             (lay.matrix.g_us > hi[lay.matrix.target_levels]))
                            for lay in chip.layers]
            else:
                chip = fresh(model)
                if kind == "readapt":
                    fisher = name.endswith("osa")
                    attach_sram(chip, s.sram_ratio, hw.adaptation.sram_word_bits,
                                "fisher" if fisher else "random", dataset, seed)
                    adapt(chip, dataset, "sram", s.adapt, seed)
                    by = {lay.layer_name: int(lay.sram_mask.sum()) for lay in chip.layers
                          if lay.sram_mask is not None}
                    words = [by.get(sp.name, 0) for sp in specs]
            programmed = chip
            n_refresh = [0]

            def do_refresh(ch: Chip, t: float) -> tuple[float, float]:
                """Refresh ``ch`` (aged to t) in place; its (time s, energy pJ)."""
                n_refresh[0] += 1
                k = n_refresh[0]
                if kind == "reprogram":
                    _reprogram(ch, np.random.default_rng(np.random.SeedSequence(
                        [seed, 24, 1000 + k])))
                    return t_one, e_one
                if kind == "readapt":
                    adapt(ch, dataset, "sram", s.adapt, seed + 7919 * k)
                    sums = conductance_sums(ch)
                    g = [sums.get(sp.name, 0.0) for sp in specs]
                    t_a = adaptation_time(specs, hw, s.adapt.steps, s.adapt.batch_size,
                                          words).total_s
                    e_a = adaptation_energy(specs, hw, s.adapt.steps, s.adapt.batch_size,
                                            words, g).total_pj
                    return t_a, e_a
                counts = _reverify(ch, loop, seed + 7919 * k, stopping, given_up)
                prog = programming_time(counts, hw)
                return prog.total_s, programming_energy(prog, hw).total_pj

            r = per[name]
            acc0 = evaluate(programmed)
            r["at_programming"].append(acc0)
            accs, refreshed, costs = [], [], []
            for age in s.ages_s:
                say(f"chip {c + 1}/{s.chips}: {name} at {age:g} s")
                aged = copy.deepcopy(programmed).age_to(age, s.reads_per_s)
                accs.append(evaluate(aged))
                cost_s, cost_pj = do_refresh(aged, age)
                refreshed.append(evaluate(aged))
                costs.append((cost_s, cost_pj))
            r["accuracy"].append(accs)
            r["accuracy_refreshed"].append(refreshed)
            r["age_refresh_s"].append([c[0] for c in costs])
            r["age_refresh_pj"].append([c[1] for c in costs])
            say(f"chip {c + 1}/{s.chips}: {name} refresh schedule to {s.horizon_s:g} s")
            live = copy.deepcopy(programmed)
            cost = [0.0, 0.0]
            n_refresh[0] = 100   # the schedule's refreshes draw their own streams

            def accuracy_at(t: float, ch: Chip = live) -> float:
                return evaluate(ch.age_to(t, s.reads_per_s))

            def refresh(t: float, ch: Chip = live) -> None:
                ch.age_to(t, s.reads_per_s)
                dt, de = do_refresh(ch, t)
                cost[0] += dt
                cost[1] += de
                r["refresh_s"].append(dt)
                r["refresh_pj"].append(de)

            sched = refresh_schedule(accuracy_at, refresh, acc0 - s.tolerance, s.horizon_s,
                                     offsets, s.max_refreshes)
            r["refreshes"].append(sched["refreshes"])
            r["times_s"].append(sched["times_s"])
            r["checks"].append(sched["checks"])
            r["held"].append(sched["held"])
            r["complete"].append(sched["complete"])
            r["extrapolated"].append(sched.get("refreshes_extrapolated"))
            r["time_s"].append(cost[0])
            r["energy_pj"].append(cost[1])

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


def plot_png(result: dict[str, Any]) -> bytes:
    """Accuracy against log time per method (chip 0's schedule checks as the chip lived
    them, the look-aheads that a refresh made moot hollow, refreshes as dotted lines, each
    method's threshold dashed; the ages' unrefreshed accuracy as crosses), as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, sch) in enumerate(result["schedule"].items()):
        color = f"C{i}"
        checks = sch["per_chip"]["checks"][0]
        # the chip as it lived: a check followed by an earlier one was a look-ahead the
        # refresh before it made moot (drawn hollow)
        moot = [i + 1 < len(checks) and checks[i + 1][0] < t
                for i, (t, _) in enumerate(checks)]
        lived = [c for c, m in zip(checks, moot) if not m]
        ax.plot([t for t, _ in lived], [100 * a for _, a in lived], ".-", color=color,
                lw=0.8, ms=3, label=f"{name} ({sch['refreshes']:g} refreshes"
                + ("" if sch["complete"] else ", stopped at the cap") + ")")
        ax.plot([t for (t, _), m in zip(checks, moot) if m],
                [100 * a for (_, a), m in zip(checks, moot) if m], "o", color=color, ms=4,
                mfc="none")
        for t in sch["per_chip"]["times_s"][0]:
            ax.axvline(t, color=color, lw=0.6, ls=":")
        ax.plot(result["ages_s"], [100 * a for a in result["methods"][name]["accuracy"]],
                "x", color=color, ms=7)
        ax.axhline(100 * (result["methods"][name]["accuracy_at_programming"]
                          - result["tolerance"]), color=color, lw=0.5, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['device']}: accuracy over the lifetime (x: at --ages without "
                 "refresh; dotted: refreshes; dashed: thresholds)", fontsize=8)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
