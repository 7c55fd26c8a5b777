"""Time to program LeNet-5 and VGG-16 by write-verify (R-V-W) against one-shot programming
plus random sparse adaptation (RSA), across the published range of RRAM write times.

Per-cell pulse and verify-read counts come from the write-verify loop of
:mod:`xbar.devices.write_verify` with a device preset's fitted parameters (default ``radar-3bpc``,
fitted to RADAR's measured 3-bits-per-cell data), run on every cell of the mapped network:
target levels are those :class:`xbar.analog.AnalogMatrix` gives the zoo model's weights
(freshly initialised, seeded; a trained network has a different level histogram). If that
loop cannot run, a stand-in distribution is used and the output says so.

The R-V-W and one-shot times come from :func:`xbar.timing.programming.programming_time`,
the adaptation time from :func:`xbar.timing.adaptation.adaptation_time` (5 % of each layer's
weights in SRAM by default), and::

    speedup = T_rvw / (T_one_shot + T_adapt)

    python benchmarks/programming_time.py [--device radar-3bpc] [--sram 0.05]
        [--models lenet5,vgg16] [--out results/programming_time.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.mapping.geometry import layer_specs  # noqa: E402
from xbar.mapping.data.zoo import INPUT_SHAPES, build_model  # noqa: E402
from xbar.config import (AdaptationConfig, HardwareConfig, ProgrammingConfig,  # noqa: E402
                         TimingConfig, XbarConfig)
from xbar.timing.adaptation import adaptation_time, sram_words_per_layer  # noqa: E402
from xbar.timing.speedup import SPEEDUP_DEFINITION  # noqa: E402
from xbar.timing.programming import LayerCells, one_shot_time, programming_time  # noqa: E402

# RRAM write time per cell, read as the time of one pulse: work 1's range (6.5 us .. 4.5 ms)
# on a log scale, and MNSIM 2.0's 10 ns write for contrast.
WRITE_TIMES_NS = (10.0, 6.5e3, 5e4, 5e5, 4.5e6)
BUDGETS = ((100, 16), (300, 64), (1000, 64))


def weight_matrices(model: Any) -> list[tuple[str, np.ndarray]]:
    """(name, out x in matrix) of every Linear/Conv2d, in module order (= execution order
    for the zoo's sequential models)."""
    from torch import nn
    return [(name, m.weight.detach().reshape(m.weight.shape[0], -1).numpy())
            for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def write_verify_counts(model: Any, device_name: str, xbar: XbarConfig, seed: int
                        ) -> tuple[list[LayerCells], str]:
    """Per-cell counts from the write-verify loop, or a stand-in if it cannot run."""
    from xbar.analog import AnalogMatrix
    mats = weight_matrices(model)
    rng = np.random.default_rng(seed)
    try:
        from xbar.devices.presets import preset, preset_write_verify
        from xbar.devices.write_verify import program_write_verify
        device, params = preset(device_name), preset_write_verify(device_name)
        out, offset, failed, failed_pulses = [], 0, 0, 0
        for name, w in mats:
            levels = AnalogMatrix.program(w, device, xbar, rng).target_levels
            res = program_write_verify(params, levels, seed=seed, cell_offset=offset)
            offset += levels.size
            failed += int((~res.verified).sum())
            failed_pulses += int(res.pulses[~res.verified].sum(dtype=np.int64))
            out.append(LayerCells(name, w.shape[1], w.shape[0], res.pulses, res.reads))
        total = sum(int(c.pulses.sum(dtype=np.int64)) for c in out)
        return out, (f"xbar.devices.write_verify with the {device_name!r} fit ({params.source}); "
                     f"{failed / offset:.2%} of cells end unverified at the pulse cap and "
                     f"take {failed_pulses / max(total, 1):.1%} of all pulses")
    except (ImportError, AttributeError, TypeError) as exc:   # loop not (yet) usable
        out = []
        from xbar.timing.programming import physical_columns
        for name, w in mats:
            shape = (w.shape[1], physical_columns(w.shape[0], xbar))
            p = np.minimum(rng.geometric(1 / 20, shape), 1000).astype(np.int32)
            out.append(LayerCells(name, shape[0], w.shape[0], p, p + 1))
        return out, (f"STAND-IN distribution: pulses ~ geometric(mean 20), capped at 1000 "
                     f"(write-verify loop unusable: {type(exc).__name__}: {exc})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="radar-3bpc",
                    help="device preset with a fitted write-verify loop (default radar-3bpc)")
    ap.add_argument("--sram", type=float, default=0.05,
                    help="fraction of each layer's weights in SRAM (default 0.05)")
    ap.add_argument("--models", default="lenet5,vgg16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/programming_time.json")
    args = ap.parse_args()
    xbar, timing = XbarConfig(), TimingConfig()
    base, adapt = ProgrammingConfig(), AdaptationConfig()
    print(f"hardware: {xbar.array.rows}x{xbar.array.cols} {xbar.array.weight_mapping} arrays, "
          f"clock {timing.clock_ghz:g} GHz; programming: {base.drivers_per_array or 'one'} "
          f"driver(s) per bit line, {base.arrays_at_once or 'unlimited'} array(s) at once, "
          f"verify read {base.t_verify_ns:g} ns, {base.driver_sync}-synchronous drivers")
    print(f"adaptation: {100 * args.sram:g}% of weights in {adapt.sram_word_bits}-bit SRAM "
          f"words, {adapt.t_sram_write_ns:g} ns/word, {adapt.sram_ports} port(s) per "
          f"{adapt.sram_banks} bank, backward by {adapt.backward}, forward schedule "
          f"{adapt.forward_schedule}")
    print(SPEEDUP_DEFINITION)
    doc: dict[str, Any] = {"cpus": os.cpu_count(), "device": args.device, "sram": args.sram,
                           "definition": SPEEDUP_DEFINITION, "models": {}}
    for model_name in args.models.split(","):
        torch_seed(args.seed)
        model = build_model(model_name)
        specs = layer_specs(model, INPUT_SHAPES[model_name])
        t0 = time.perf_counter()
        cells, source = write_verify_counts(model, args.device, xbar, args.seed)
        wv_s = time.perf_counter() - t0
        n_cells = sum(c.n_cells for c in cells)
        pulses = np.concatenate([c.pulses.reshape(-1) for c in cells])
        print(f"\n{model_name}: {n_cells:,} cells; counts from {source} in {wv_s:.1f} s; "
              f"pulses per cell mean {pulses.mean():.2f}, median {np.median(pulses):g}, "
              f"p99 {np.percentile(pulses, 99):g}, max {pulses.max()}")
        words = sram_words_per_layer(specs, args.sram)
        adapts = {}
        for steps, batch in BUDGETS:
            hw = HardwareConfig.from_parts(xbar, timing=timing, adaptation=adapt)
            r = adaptation_time(specs, hw, steps, batch, words)
            adapts[(steps, batch)] = r
            print(f"  adaptation {steps} x {batch}: {r.total_s:.4g} s (step "
                  f"{r.step_cycles / 1e6:.4g} ms: forward {r.forward_cycles / 1e6:.4g}, "
                  f"backward {r.backward_cycles / 1e6:.4g}, write tail "
                  f"{r.write_tail_cycles / 1e6:.3g}; SRAM {r.sram_words:,} words; engine "
                  f"{r.wall_s:.2f} s)")
        print(f"  {'':>9} {'R-V-W':>11} {'R-V-W':>11} {'one-shot':>11}   speedup at "
              "steps x batch")
        print(f"  {'t_pulse':>9} {'row s':>11} {'indep. s':>11} {'s':>11}"
              + "".join(f" {f'{s}x{b}':>11}" for s, b in BUDGETS))
        rows = []
        for t_ns in WRITE_TIMES_NS:
            prog = base.replace(t_pulse_ns=t_ns)
            hw = HardwareConfig.from_parts(xbar, programming=prog, timing=timing)
            rvw = programming_time(cells, hw)
            ind = programming_time(cells, hw.replace(
                programming=prog.replace(driver_sync="independent")))
            one = one_shot_time(specs, hw)
            speed = {f"{s}x{b}": rvw.total_s / (one.total_s + adapts[(s, b)].total_s)
                     for s, b in BUDGETS}
            rows.append({"t_pulse_ns": t_ns, "rvw_s": rvw.total_s,
                         "rvw_independent_s": ind.total_s, "one_shot_s": one.total_s,
                         "rvw_engine_s": rvw.wall_s, "speedup": speed,
                         "rvw": {k: v for k, v in rvw.to_dict().items() if k != "layers"}})
            print(f"  {fmt_ns(t_ns):>9} {rvw.total_s:>11.4g} {ind.total_s:>11.4g} "
                  f"{one.total_s:>11.4g}" + "".join(f" {v:>10.3g}x" for v in speed.values()))
        doc["models"][model_name] = {
            "cells": n_cells, "counts_source": source, "write_verify_s": wv_s,
            "mean_pulses": float(pulses.mean()), "median_pulses": float(np.median(pulses)),
            "adaptation": {f"{s}x{b}": {k: v for k, v in r.to_dict().items() if k != "layers"}
                           for (s, b), r in adapts.items()},
            "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)
    print(f"\nwritten to {out}")


def fmt_ns(t_ns: float) -> str:
    if t_ns >= 1e6:
        return f"{t_ns / 1e6:g} ms"
    if t_ns >= 1e3:
        return f"{t_ns / 1e3:g} us"
    return f"{t_ns:g} ns"


def torch_seed(seed: int) -> None:
    import torch
    torch.manual_seed(seed)


if __name__ == "__main__":
    main()
