"""MNIST LeNet-5 on the JxCDC 2020 cell: accuracy of one-shot, KD, KD+RSA and R-V-W as the
programming variation sigma grows from 0 to 0.6, and the wall time of a sweep on 1 versus 2
local workers.

    python benchmarks/sweep_variation.py [--values 0,0.1,0.2,0.4,0.6] [--chips 3]
        [--test-limit 300] [--steps 20] [--kd-epochs 3] [--timing-values 0,0.3,0.6]
        [--data-dir DIR]

Part 1 is ``xbar sweep --model lenet5 --dataset mnist --device charan2020-jxcdc --param sigma
...`` on 2 local workers, into results/sweep_variation.h5 and .png (it resumes if killed).
Part 2 times a smaller sweep (one-shot and R-V-W), each run a fresh ``xbar sweep`` process
from scratch (start-up, teacher load and worker spawn included): ``--workers 1`` (in-process,
with all cores' threads, the default), ``--workers 1 --threads 1``, and ``--workers 2`` (two
processes of one thread each, the default); it checks all three give the same points.
Budgets are cut (test images, adaptation steps, KD epochs) to keep the whole run near 10
minutes on 2 cores. Writes results/sweep_variation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xbar.mapping.sweep.run import SweepSpec, format_summary, run_sweep  # noqa: E402
from xbar.mapping.sweep.store import RESULT_METRICS, SweepResults  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", default="0,0.1,0.2,0.4,0.6")  # 0.1: JxCDC 2020's cell
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--test-limit", type=int, default=300)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--kd-epochs", type=int, default=3)
    ap.add_argument("--timing-values", default="0,0.3,0.6")
    ap.add_argument("--timing-chips", type=int, default=2)
    ap.add_argument("--data-dir")
    ap.add_argument("--out", default="results/sweep_variation.h5")
    args = ap.parse_args()
    out = Path(args.out)
    base = SweepSpec(param="sigma", values=args.values, model="lenet5", dataset="mnist",
                     data_dir=args.data_dir, device="charan2020-jxcdc",
                     methods=("one-shot", "kd", "kd+rsa", "rvw"), chips=args.chips,
                     steps=args.steps, kd_epochs=args.kd_epochs, test_limit=args.test_limit)
    command = (f"xbar sweep --model lenet5 --dataset mnist --device charan2020-jxcdc "
               f"--param sigma --values {args.values} --methods one-shot,kd,kd+rsa,rvw "
               f"--chips {args.chips} --steps {args.steps} --kd-epochs {args.kd_epochs} "
               f"--test-limit {args.test_limit} --workers 2 --out {out} "
               f"--plot {out.with_suffix('.png')}")
    print(f"part 1: {command}")
    run = run_sweep(base, out, workers=2, plot=out.with_suffix(".png"), progress=True)
    print(format_summary(run))
    print(f"{run.computed} points computed ({run.skipped} already done) in {run.wall_s:.0f} s "
          f"on {run.where}; plot {run.plot}\n")

    timing, files = [], []
    values = args.timing_values
    n_points = 2 * len(values.split(",")) * args.timing_chips
    print(f"part 2: one-shot and R-V-W, sigma {values}, {args.timing_chips} chips = "
          f"{n_points} points, each run a fresh `xbar sweep` process from scratch")
    with tempfile.TemporaryDirectory() as tmp:
        for workers, threads in ((1, None), (1, 1), (2, None)):
            path = Path(tmp) / f"w{workers}-t{threads}.h5"
            cmd = [sys.executable, "-m", "xbar", "sweep", "--model", "lenet5",
                   "--dataset", "mnist", "--device", "charan2020-jxcdc", "--param", "sigma",
                   "--values", values, "--methods", "one-shot,rvw", "--chips",
                   str(args.timing_chips), "--test-limit", str(args.test_limit),
                   "--workers", str(workers), "--out", str(path), "--json"]
            cmd += ["--threads", str(threads)] if threads else []
            cmd += ["--data-dir", args.data_dir] if args.data_dir else []
            load = os.getloadavg()[0]
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                  capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            r = json.loads(done.stdout)
            files.append(SweepResults.load(path))
            point_s = float(np.nansum(files[-1].metrics["wall_s"]))
            label = " ".join(cmd[cmd.index("--workers"):cmd.index("--out")] +
                             cmd[cmd.index("--json") + 1:])
            timing.append({"flags": label, "where": r["where"], "points": r["points_computed"],
                           "wall_s": wall, "points_per_min": 60 * r["points_computed"] / wall,
                           "sum_point_s": point_s, "load_average_before": load})
            print(f"  {label:<24} {r['where']}: {wall:6.1f} s wall "
                  f"({60 * r['points_computed'] / wall:.1f} points/min), points took "
                  f"{point_s:.1f} s summed; load average before {load:.1f}")
    same = all(np.array_equal(files[0].metrics[m], f.metrics[m])
               for f in files[1:] for m in RESULT_METRICS)
    speedup = timing[0]["wall_s"] / timing[2]["wall_s"]
    print(f"  2 workers over 1: {speedup:.2f}x (over 1 worker with 1 thread: "
          f"{timing[1]['wall_s'] / timing[2]['wall_s']:.2f}x); same points in all three: "
          f"{same}")
    r = run.results
    report = {"command": command, "values": r.values, "methods": r.methods, "chips": r.chips,
              "test_limit": args.test_limit, "steps": args.steps, "kd_epochs": args.kd_epochs,
              "accuracy": r.summary(), "sweep_wall_s": run.wall_s, "where": run.where,
              "points_computed": run.computed, "timing": timing, "speedup_2_over_1": speedup,
              "same_points_in_all_timing_runs": same}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(f"written {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
