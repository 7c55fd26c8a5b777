"""Speed of the write-verify kernel: cells per second on a whole VGG-16's worth of cells.

For the ``radar-2bpc`` and ``radar-3bpc`` presets (write-verify loops fitted to the RADAR
data), programs ``--cells`` cells (default 30 million, VGG-16 for CIFAR-10 on differential
pairs: 14.7 M weights, two cells each) with two level mixes:

- ``uniform``: every level equally likely (the costly case: middle levels need tens to
  hundreds of pulses);
- ``vgg16-like``: differential pairs of N(0, 1) weights quantised to the device's levels with
  a 3-sigma clip (one cell of each pair at the lowest level, the other at round(|w| / 3 *
  (n - 1))), the level mix of a trained network's bell-shaped weights.

Prints, per preset and mix, the time, cells/s, pulses/s and mean pulses per cell, with the
Numba thread count, and writes the figures to a JSON results file.

    python benchmarks/write_verify_speed.py [--cells N] [--seed N] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads
from xbar.devices.presets import preset_write_verify  # noqa: E402
from xbar.devices.write_verify import program_write_verify  # noqa: E402

PRESET_NAMES = ("radar-2bpc", "radar-3bpc")


def level_mix(kind: str, n_cells: int, n_levels: int, rng: np.random.Generator) -> np.ndarray:
    """Target levels of ``n_cells`` cells (int64) for a named mix."""
    if kind == "uniform":
        return rng.integers(0, n_levels, n_cells)
    w = rng.standard_normal(n_cells // 2 + n_cells % 2, dtype=np.float32)
    q = np.rint(np.minimum(np.abs(w) / 3.0, 1.0) * (n_levels - 1)).astype(np.int64)
    pos = np.where(w > 0, q, 0)
    neg = np.where(w > 0, 0, q)
    return np.stack([pos, neg], axis=1).reshape(-1)[:n_cells]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=30_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/write_verify_speed.json")
    args = ap.parse_args()
    configure_threads()  # before Numba starts its pool (see xbar.threads)
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"numba threads {numba.get_num_threads()}, cpus {os.cpu_count()}, "
          f"{args.cells:,} cells per run")
    print(f"{'preset':>11} {'mix':>11} {'time s':>8} {'Mcells/s':>9} {'Mpulses/s':>10} "
          f"{'pulses/cell':>12} {'verified':>9}")
    for name in PRESET_NAMES:
        params = preset_write_verify(name)
        program_write_verify(params, np.arange(params.n_levels), parallel=True)  # compile
        for kind in ("uniform", "vgg16-like"):
            levels = level_mix(kind, args.cells, params.n_levels, rng)
            t0 = time.perf_counter()
            res = program_write_verify(params, levels, seed=args.seed)
            dt = time.perf_counter() - t0
            pulses = float(res.pulses.sum(dtype=np.int64))
            rows.append(dict(preset=name, mix=kind, cells=args.cells, seconds=dt,
                             cells_per_s=args.cells / dt, pulses_per_s=pulses / dt,
                             mean_pulses=pulses / args.cells,
                             verified=float(res.verified.mean())))
            r = rows[-1]
            print(f"{name:>11} {kind:>11} {dt:>8.2f} {r['cells_per_s'] / 1e6:>9.2f} "
                  f"{r['pulses_per_s'] / 1e6:>10.1f} {r['mean_pulses']:>12.1f} "
                  f"{r['verified']:>9.4f}")
            del levels, res
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"threads": numba.get_num_threads(), "cpus": os.cpu_count(),
                               "seed": args.seed, "rows": rows}, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
