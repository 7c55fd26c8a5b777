"""The IR-drop solver against ngspice: the comparison table of docs/ir_drop.md.

For each square array size, ``--trials`` random arrays: conductances drawn from the 16 levels
of the JxCDC cell (``charan2020-jxcdc``, 1.1-166.7 uS), word-line voltages uniform in
[0, 0.5] V with 30 % of the word lines off, r = ``--wire`` ohm per cell pitch (default 1.8,
the ``ir-drop-65nm`` preset) and ``--access`` ohm of access transistor (default 1500). Each
read is solved by ngspice (``.op``, 12 printed digits; :mod:`xbar.spice`), by the exact
sparse solve of :func:`xbar.ir_drop.solve_read`, and as the kernels read it, ``v @ T`` with
the float32 transfer matrix T of :func:`xbar.ir_drop.transfer_matrix`. Relative error per
bit line against ngspice, max and mean over all bit lines and trials; times per solve (the
ngspice time includes starting the process and parsing the netlist). Single-threaded.

    python benchmarks/ir_drop_spice.py [--sizes 4 8 16 32 64] [--trials 3] [--wire 1.8]
        [--access 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.devices import resolve_device  # noqa: E402
from xbar.ir_drop import solve_read, transfer_matrix  # noqa: E402
from xbar.spice import ngspice, ngspice_currents  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--wire", type=float, default=1.8)
    ap.add_argument("--access", type=float, default=1500.0)
    args = ap.parse_args()
    if ngspice() is None:
        sys.exit("ngspice is not installed (apt-get install ngspice)")
    levels = resolve_device("charan2020-jxcdc").levels
    rng = np.random.default_rng(0)
    print(f"r = {args.wire:g} ohm per pitch, access {args.access:g} ohm, {args.trials} random "
          "arrays per size (JxCDC levels, 30 % of word lines off)")
    print("| array | lost to wires (mean) | exact solve: max / mean rel. error | kernels' "
          "float32 T: max / mean | ngspice s/solve | exact sparse s/solve | T once s | "
          "v @ T s/read |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        e_exact, e_t32, lost = [], [], []
        t_spice = t_solve = t_t = t_read = 0.0
        for _ in range(args.trials):
            g = levels[rng.integers(0, len(levels), (n, n))]
            v = rng.uniform(0, 0.5, n) * (rng.random(n) >= 0.3)
            v[0] = max(v[0], 0.1)                           # every bit line conducts
            t0 = time.perf_counter()
            ref = ngspice_currents(g, v, args.wire, args.access)
            t1 = time.perf_counter()
            exact = solve_read(g, v, args.wire, args.access)[0]
            t2 = time.perf_counter()
            t = transfer_matrix(g, args.wire, args.access)
            t3 = time.perf_counter()
            t32 = t.astype(np.float32)
            got = v.astype(np.float32) @ t32
            t4 = time.perf_counter()
            e_exact.append(np.abs(exact / ref - 1))
            e_t32.append(np.abs(got.astype(np.float64) / ref - 1))
            lost.append(np.mean(1 - ref / (v @ (g / (1 + g * args.access * 1e-6)))))
            t_spice += t1 - t0
            t_solve += t2 - t1
            t_t += t3 - t2
            t_read += t4 - t3
        e_exact, e_t32, k = np.concatenate(e_exact), np.concatenate(e_t32), args.trials
        print(f"| {n} x {n} | {100 * np.mean(lost):.1f} % | {e_exact.max():.1e} / "
              f"{e_exact.mean():.1e} | {e_t32.max():.1e} / {e_t32.mean():.1e} | "
              f"{t_spice / k:.3f} | {t_solve / k:.4f} | {t_t / k:.4f} | {t_read / k:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
