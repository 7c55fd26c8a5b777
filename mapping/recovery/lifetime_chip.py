"""One method on one chip over its life (:func:`chip_life`), for
:func:`xbar.mapping.recovery.lifetime.lifetime`: its accuracy at programming and at each age,
what a refresh costs, and its refresh schedule to the horizon.

A refresh at time T, by method family:

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
from xbar.devices.write_verify import WriteVerifyParams
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.recovery.techniques.rvw import program_rvw
from xbar.mapping.recovery.techniques.sram import adapt, attach_sram
from xbar.timing.adaptation import adaptation_time
from xbar.timing.energy import adaptation_energy, conductance_sums, programming_energy
from xbar.timing.programming import LayerCells, programming_time

__all__ = ["REFRESH_KIND", "ChipLife", "check_times", "chip_life", "refresh_schedule"]

REFRESH_KIND = {"one-shot": "reprogram", "kd": "reprogram", "rsa": "readapt",
                "kd+rsa": "readapt", "osa": "readapt", "kd+osa": "readapt",
                "rvw": "reverify"}
"""Each method's refresh family (module docstring)."""


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
@dataclass(frozen=True)
class ChipLife:
    """What every method on every chip of a lifetime run shares."""

    teacher: nn.Module
    student: nn.Module | None
    dataset: Dataset
    dev: Any
    hw: HardwareConfig
    s: Any   # LifetimeSettings
    specs: list[Any]
    shape: tuple[int, ...]
    loop: WriteVerifyParams | None
    stopping: Any
    x_test: np.ndarray
    y_test: np.ndarray
    t_one: float
    e_one: float
    offsets: list[float]
    say: Callable[[str], None]


def chip_life(run: ChipLife, c: int, name: str) -> dict[str, Any]:
    """One method on chip ``c`` over its life: accuracy at programming and at every age
    (without and right after a refresh), the refresh costs, and the refresh schedule; each
    key is one entry of :func:`lifetime`'s per-chip lists (``refresh_s``/``refresh_pj``:
    one entry per refresh)."""
    teacher, student, dataset, dev, hw, s = (run.teacher, run.student, run.dataset, run.dev,
                                             run.hw, run.s)
    specs, shape, loop, stopping, say = run.specs, run.shape, run.loop, run.stopping, run.say
    t_one, e_one, offsets, xbar = run.t_one, run.e_one, run.offsets, hw.xbar
    seed = s.seed + c
    calib = calibration_inputs(dataset, seed=seed)

    def evaluate(chip: Chip) -> float:
        return chip.evaluate(run.x_test, run.y_test)

    def fresh(model: nn.Module) -> Chip:
        chip = Chip.program(model, dev, xbar, seed, "column", "", shape)
        chip.use_backend("cpu").calibrate(calib)
        return chip

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

    acc0 = evaluate(programmed)
    r: dict[str, Any] = {"at_programming": acc0, "refresh_s": [], "refresh_pj": []}
    accs, refreshed, costs = [], [], []
    for age in s.ages_s:
        say(f"chip {c + 1}/{s.chips}: {name} at {age:g} s")
        aged = copy.deepcopy(programmed).age_to(age, s.reads_per_s)
        accs.append(evaluate(aged))
        cost_s, cost_pj = do_refresh(aged, age)
        refreshed.append(evaluate(aged))
        costs.append((cost_s, cost_pj))
    r["accuracy"] = accs
    r["accuracy_refreshed"] = refreshed
    r["age_refresh_s"] = [x[0] for x in costs]
    r["age_refresh_pj"] = [x[1] for x in costs]
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
    r["refreshes"] = sched["refreshes"]
    r["times_s"] = sched["times_s"]
    r["checks"] = sched["checks"]
    r["held"] = sched["held"]
    r["complete"] = sched["complete"]
    r["extrapolated"] = sched.get("refreshes_extrapolated")
    r["time_s"] = cost[0]
    r["energy_pj"] = cost[1]
    return r
