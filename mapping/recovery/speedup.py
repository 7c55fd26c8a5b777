"""The speedup of one-shot programming plus adaptation over R-V-W, against what it hangs on:
the R-V-W controller's stopping rule, the RRAM write time, the accounting (the hardware
presets ``full-chip`` and ``cell-by-cell``), the adaptation budget and the write parallelism
(``xbar reproduce``'s sensitivity table and plot; docs/programming_time.md).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xbar.errors import ConfigError

__all__ = ["ACCOUNTINGS", "STOPPING_RULES", "WRITE_TIMES_NS", "speedup_sensitivity",
           "stopping_rule"]

WRITE_TIMES_NS = (6_500.0, 50_000.0, 500_000.0, 4_500_000.0)
"""Work 1's range of RRAM write times per cell (6.5 us to 4.5 ms), with two points between."""
ACCOUNTINGS = ("full-chip", "cell-by-cell")
"""Hardware presets whose ``[programming]`` section sets the R-V-W accounting."""
STOPPING_RULES = ("loop-cap", "healthy-median", "abort-8", "abort-32")
"""The stopping rules of the R-V-W controller the speedup table sweeps: ``loop-cap`` (the
write-verify loop's own caps: for the transfer rule, the median RADAR 3-bits-per-cell cap,
1,933 pulses; the default), ``healthy-median`` (a cap at the median pulse count of the chip's
healthy cells that needed a pulse, measured under the loop's caps), ``abort-k`` (the loop's
caps plus early abort after k pulses in a row that do not move a cell)."""


def stopping_rule(name: str, median: int = 1) -> Any:
    """The :class:`~xbar.devices.write_verify.StoppingRule` a :data:`STOPPING_RULES` name
    means (``median``: the healthy cells' median pulses, for ``healthy-median``)."""
    from xbar.devices.write_verify import StoppingRule
    if name == "loop-cap":
        return StoppingRule()
    if name == "healthy-median":
        return StoppingRule(max_pulses=int(median))
    if name.startswith("abort-") and name[6:].isdigit() and int(name[6:]) > 0:
        return StoppingRule(abort_after=int(name[6:]))
    raise ConfigError(f"unknown stopping rule {name!r}; allowed: loop-cap, healthy-median, "
                      "abort-K (K a positive integer)")


def speedup_sensitivity(teacher: Any, shape: tuple[int, ...], device: Any, xbar: Any,
                        hardware: Callable[[str], Any], chips: int, seed: int,
                        write_times_ns: tuple[float, ...] = WRITE_TIMES_NS,
                        budgets: tuple[tuple[int, int], ...] = ((100, 16), (300, 64)),
                        sram_fraction: float = 0.05,
                        drivers: tuple[int, ...] = (1, 4, 16, 64, 128),
                        rules: tuple[str, ...] = STOPPING_RULES,
                        evaluate: Callable[[Any], float] | None = None
                        ) -> list[dict[str, Any]]:
    """Speedup of one-shot + adaptation over R-V-W against the controller's stopping rule,
    write time and write parallelism.

    R-V-W pulse and verify counts come from the device's write-verify loop on each chip (the
    loop a device file stores, else the transfer rule) under each stopping rule of ``rules``
    (:data:`STOPPING_RULES`); every time from the timing engine. Rows: one per (rule,
    accounting, write time, budget) and, for the parallelism axis, one per (write drivers per
    array, write time) at the first rule and budget with the full-chip accounting's other
    settings (``accounting`` = ``"drivers"``, ``drivers`` set); means over chips. Each row
    carries the share of T_rvw and of the pulses that stuck cells take
    (:func:`xbar.mapping.recovery.techniques.rvw.stuck_time_share`), the share of healthy cells the
    rule leaves outside their verify window, and, with ``evaluate`` (a function of a programmed
    chip returning its accuracy; the chip is calibrated by the caller's function), R-V-W's
    accuracy under the rule.
    """
    from xbar.mapping.chip import Chip
    from xbar.mapping.geometry import layer_specs
    from xbar.mapping.recovery.techniques.rvw import (healthy_median_pulses, outside_windows,
                                                      program_rvw, rvw_params, stuck_time_share)
    from xbar.timing.adaptation import adaptation_time, sram_words_per_layer
    from xbar.timing.programming import one_shot_time

    specs = layer_specs(teacher, shape)
    loop = rvw_params(device)
    dev = getattr(device, "device", device)
    runs: dict[str, list[tuple[Any, Any]]] = {}   # rule -> [(chip, counts)] per chip
    info: dict[str, dict[str, Any]] = {}
    for rule in rules:
        runs[rule] = []
        accs, outside, labels = [], [], []
        for c in range(chips):
            chip = Chip.program(teacher, dev, xbar, seed + c, "column", "", shape)
            median = 1
            if rule == "healthy-median":
                probe = Chip.program(teacher, dev, xbar, seed + c, "column", "", shape)
                median = healthy_median_pulses(probe, program_rvw(probe, loop, seed + c))
            sr = stopping_rule(rule, median)
            counts = program_rvw(chip, loop, seed + c, sr)
            runs[rule].append((chip, counts))
            outside.append(outside_windows(chip, loop))
            labels.append(sr.label(loop))
            if evaluate is not None:
                accs.append(evaluate(chip))
        info[rule] = {"rule_label": labels[0], "healthy_outside_window": float(np.mean(outside)),
                      "rvw_accuracy": float(np.mean(accs)) if accs else float("nan")}
    words = sram_words_per_layer(specs, sram_fraction)
    rows: list[dict[str, Any]] = []
    base = hardware("full-chip")
    variants: list[tuple[str, int, Any, tuple[tuple[int, int], ...], tuple[str, ...]]] = []
    for name in ACCOUNTINGS:
        hw = hardware(name)
        variants.append((name, hw.programming.drivers_per_array, hw, budgets, rules))
    for d in drivers:
        variants.append(("drivers", d, base.replace(programming=base.programming.replace(
            drivers_per_array=d)), budgets[:1], rules[:1]))
    for label, d, hw, these, rule_set in variants:
        for t_ns in write_times_ns:
            at = hw.replace(programming=hw.programming.replace(t_pulse_ns=t_ns))
            t_one = one_shot_time(specs, at).total_s
            for rule in rule_set:
                shares = [stuck_time_share(chip, counts, at) for chip, counts in runs[rule]]
                t_rvw = float(np.mean([sh["t_rvw_s"] for sh in shares]))
                for steps, batch in these:
                    t_adapt = adaptation_time(specs, hw, steps, batch, words).total_s
                    rows.append({
                        "rule": rule, "accounting": label, "drivers": d or hw.xbar.array.cols,
                        "write_time_ns": t_ns, "steps": steps, "batch": batch,
                        "t_rvw_s": t_rvw, "t_one_shot_s": t_one, "t_adapt_s": t_adapt,
                        "speedup": t_rvw / (t_one + t_adapt),
                        "stuck_time_share": float(np.mean([sh["stuck_time_share"]
                                                           for sh in shares])),
                        "stuck_pulse_share": float(np.mean([sh["stuck_pulse_share"]
                                                            for sh in shares])),
                        "stuck_cells": float(np.mean([sh["stuck_cells"] for sh in shares])),
                        "pulses": float(np.mean([sum(int(c.pulses.sum()) for c in counts)
                                                 for _, counts in runs[rule]])),
                        **info[rule]})
    return rows
