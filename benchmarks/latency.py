"""Latency, throughput and utilisation of LeNet-5 and VGG-16 (32x32) on the default chip,
under both schedules, and the speed of the SimPy engine itself.

Default hardware (``XbarConfig()``, ``TimingConfig()``): 128x128 differential arrays, 8-bit
bit-serial inputs, an 8-bit ADC per 8 columns, 1 GHz clock, 10-cycle reads and conversions.
Throughput is the steady state over a batch (``--batch``, default 8). Engine speed is the
best wall time of ``--repeats`` single-inference VGG-16 simulations (no timeline recorded).

    python benchmarks/latency.py [--batch N] [--repeats N] [--out results/latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.mapping.geometry import layer_specs  # noqa: E402
from xbar.mapping.data.zoo import INPUT_SHAPES, build_model  # noqa: E402
from xbar.config import HardwareConfig, TimingConfig, XbarConfig  # noqa: E402
from xbar.timing import simulate  # noqa: E402

MODELS = ("lenet5", "vgg16")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/latency.json")
    args = ap.parse_args()
    xbar = XbarConfig()
    specs = {m: layer_specs(build_model(m), INPUT_SHAPES[m]) for m in MODELS}
    # the first two VGG-16 convs (32 rows of 32 positions) bound the pipeline; duplicate them
    dup = TimingConfig(duplication=4, duplicate_layers=tuple(s.name for s in specs["vgg16"][:2]))
    cases = [(m, s, "default", TimingConfig()) for m in MODELS for s in ("layer", "pipelined")]
    cases.append(("vgg16", "pipelined", "dup x4 conv1-2", dup))
    rows = []
    print(f"hardware: {xbar.array.rows}x{xbar.array.cols} {xbar.array.weight_mapping}, "
          f"{xbar.dac.input_bits}-bit inputs, {xbar.adc.bits}-bit ADC per "
          f"{xbar.adc.cols_per_adc} columns, clock {TimingConfig().clock_ghz:g} GHz; "
          f"batch {args.batch}")
    print(f"{'model':<7} {'schedule':<10} {'timing':<15} {'tiles':>6} {'latency cycles':>15} "
          f"{'latency us':>11} {'inf/s':>9} {'tile util':>10} {'ADC util':>9}")
    for model, schedule, label, timing in cases:
        r = simulate(specs[model], HardwareConfig.from_parts(xbar, timing=timing),
                     schedule=schedule, batch=args.batch, timeline=False)
        rows.append({"model": model, "schedule": schedule, "timing": label,
                     "tiles": r.n_tiles, "latency_cycles": r.total_cycles,
                     "latency_us": r.latency_ns / 1e3,
                     "throughput_inferences_per_s": r.throughput_inferences_per_s,
                     "tile_utilisation": r.tile_utilisation,
                     "adc_utilisation": r.adc_utilisation})
        print(f"{model:<7} {schedule:<10} {label:<15} {r.n_tiles:>6} {r.total_cycles:>15,} "
              f"{r.latency_ns / 1e3:>11,.1f} {r.throughput_inferences_per_s:>9,.0f} "
              f"{100 * r.tile_utilisation:>9.2f}% {100 * r.adc_utilisation:>8.2f}%")
    speed = []
    print(f"\nengine speed, one VGG-16 inference (best of {args.repeats}):")
    for schedule in ("layer", "pipelined"):
        best = None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = simulate(specs["vgg16"], HardwareConfig.from_parts(xbar), schedule=schedule,
                         batch=1, timeline=False)
            wall = time.perf_counter() - t0
            if best is None or wall < best[0]:
                best = (wall, r.events_processed)
        assert best is not None
        wall, events = best
        speed.append({"schedule": schedule, "wall_s": wall, "events": events,
                      "events_per_s": events / wall})
        print(f"  {schedule:<10} {wall:.3f} s, {events:,} events, {events / wall:,.0f} events/s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"batch": args.batch, "cpus": os.cpu_count(), "rows": rows,
                               "engine_speed_vgg16": speed}, indent=1))
    os.replace(tmp, out)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
