"""A parameter sweep on a local Dask cluster.

What it shows: ``run_sweep`` (the Python side of ``xbar sweep``) runs recovery methods across
the values of one parameter, here the programming spread ``sigma`` of the JxCDC 2020 cell,
with every (value, method, chip) point seeded on its own and written to an HDF5 file as it
finishes. The points run on a Dask cluster: a ``LocalCluster`` of worker processes on this
machine stands in for a real one (give ``scheduler=`` the address of yours, e.g.
``tcp://host:8786``, and nothing else changes: the results do not depend on where the points
ran). Rerun the script and the finished points are read back, not recomputed.

Run it (about 30-60 s on two cores; needs the dask extra: ``pip install -e '.[dask]'``)::

    python examples/dask_sweep.py
    python examples/dask_sweep.py --values 0,0.1,0.2,0.3 --chips 3 --out sigma.h5

It prints the accuracy table (mean and range over chips per value and method) and writes the
results file and a plot beside it (``sigma-sweep.h5``, ``sigma-sweep.png`` by default).
Every parameter that can be swept: ``xbar sweep --list-params``; docs/sweep.md has the rest.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from distributed import LocalCluster

from xbar.mapping.sweep.run import SweepSpec, format_summary, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", default="0,0.2,0.4",
                        help="sigma values, comma-separated (default 0,0.2,0.4)")
    parser.add_argument("--chips", type=int, default=2, help="chips per point (default 2)")
    parser.add_argument("--steps", type=int, default=20,
                        help="adaptation steps of KD+RSA (default 20)")
    parser.add_argument("--kd-epochs", type=int, default=3, help="KD epochs (default 3)")
    parser.add_argument("--workers", type=int, default=2,
                        help="Dask worker processes, one thread each (default 2)")
    parser.add_argument("--out", type=Path, default=Path("sigma-sweep.h5"),
                        help="results file (default %(default)s); a plot is written beside it")
    args = parser.parse_args()

    spec = SweepSpec(param="sigma", values=args.values, model="digits-cnn", dataset="digits",
                     device="charan2020-jxcdc", methods=("one-shot", "kd", "kd+rsa"),
                     chips=args.chips, seed=0, steps=args.steps, kd_epochs=args.kd_epochs)
    # One single-threaded worker process per core, as docs/sweep.md advises for real workers;
    # silence_logs hides the nannies' routine notes when the cluster shuts down.
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        print(f"Dask cluster at {cluster.scheduler_address} with {args.workers} workers")
        run = run_sweep(spec, args.out, scheduler=cluster.scheduler_address,
                        plot=args.out.with_suffix(".png"))
    print(f"{run.computed} points computed, {run.skipped} read back from {run.out} "
          f"({run.where}, {run.wall_s:.1f} s)")
    print(format_summary(run))
    print(f"plot: {run.plot}")


if __name__ == "__main__":
    main()
