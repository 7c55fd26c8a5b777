"""``xbar sweep``: accuracy of the recovery methods across the values of one parameter."""

from __future__ import annotations

import argparse
import sys

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_backend_arg, add_deprecated, add_device_arg, add_hw_arg,
                                     add_model_arg, check_image_output, check_output, count_arg,
                                     dumps_json, hardware_spec, parse_methods, seed_arg)
from xbar.mapping.cli.options import add_option_arg, parse_options
from xbar.mapping.cli.compare import FLAGS as COMPARE_FLAGS

COMMANDS = {"sweep": "sweep one device/array parameter against the recovery methods"}


FLAGS = {**COMPARE_FLAGS, "SweepSpec.batch": "--adapt-batch",
         "SweepSpec.sram_ratio": "--sram-ratio", "SweepSpec.kd_epochs": "--kd-epochs",
         "SweepSpec.steps": "--steps", "SweepSpec.chips": "--chips",
         "SweepSpec.test_limit": "--test-limit", "SweepSpec.methods": "--methods",
         "SweepSpec.data_dir": "--data-dir", "resolve_points(name)": "--param",
         "resolve_points(values)": "--values", "resolve_points(device)": "--device",
         "resolve_points(xbar)": "--hw", "run_sweep(out)": "--out",
         "run_sweep(workers)": "--workers", "run_sweep(threads)": "--threads",
         "run_sweep(scheduler)": "--scheduler"}
"""The option that sets each settings field, for errors that name the field."""


def register(sub: argparse._SubParsersAction) -> None:
    from xbar.mapping.recovery.registry import method_names
    from xbar.mapping.sweep.run import SweepSpec

    p = sub.add_parser(
        "sweep", help=COMMANDS["sweep"],
        description="Evaluate the recovery methods on N chip instances at every value of one "
                    "device, array/converter or SRAM parameter. Every (value, method, chip) "
                    "point is independent and seeded from --seed; each is written to the "
                    "HDF5 file as it finishes, and rerunning the same command skips the "
                    "finished points. Runs on local worker processes, or on a Dask cluster "
                    "with --scheduler.")
    p.add_argument("--list-params", action="store_true",
                   help="print every sweepable parameter with its unit and allowed range")
    p.add_argument("--param", metavar="NAME", help="the parameter to sweep (--list-params)")
    p.add_argument("--values", metavar="V1,V2,...", help="comma-separated values")
    add_model_arg(p, SweepSpec.model)
    p.add_argument("--dataset", metavar="NAME",
                   help="digits, mnist or cifar10 (default: the zoo model's own)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="data set files (on every worker too); default $XBAR_DATA or "
                        "../shared/data")
    add_device_arg(p)
    add_hw_arg(p)
    p.add_argument("--methods", default=",".join(SweepSpec.methods),
                   help=f"comma-separated subset of {','.join(method_names())}, or all (alone; "
                        "default %(default)s)")
    add_option_arg(p)
    add_backend_arg(p, "where each point's chips run and its KD and adaptation train: ")
    p.add_argument("--chips", type=count_arg, default=SweepSpec.chips, metavar="N",
                   help="chip instances per point (default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=SweepSpec.seed,
                   help="chip c has seed SEED + c; KD students use SEED (0 to 2**32 - 1; "
                        "default %(default)s)")
    p.add_argument("--teacher-seed", type=seed_arg, default=SweepSpec.teacher_seed,
                   help="seed of the zoo teacher's training (0 to 2**32 - 1; default "
                        "%(default)s)")
    p.add_argument("--sram-ratio", type=float, default=SweepSpec.sram_ratio,
                   metavar="FRACTION",
                   help="fraction of each layer's weights in SRAM (default %(default)s)")
    p.add_argument("--steps", type=count_arg, default=SweepSpec.steps, metavar="N",
                   help="adaptation steps (default %(default)s)")
    p.add_argument("--adapt-batch", type=count_arg, default=SweepSpec.batch, metavar="N",
                   help="adaptation batch: training images per step (default %(default)s)")
    add_deprecated(p, "--batch", "--adapt-batch", "adapt_batch", type=count_arg)
    p.add_argument("--kd-epochs", type=count_arg, default=SweepSpec.kd_epochs, metavar="N",
                   help="distillation epochs (default %(default)s)")
    p.add_argument("--test-limit", type=count_arg, metavar="N",
                   help="evaluate on the first N test images only (quicker, noisier)")
    p.add_argument("--out", metavar="FILE.h5", help="results file (resumed when it exists)")
    p.add_argument("--plot", metavar="FILE.png", help="accuracy against the parameter")
    p.add_argument("--workers", type=count_arg, metavar="N",
                   help="local worker processes (default: one per core)")
    p.add_argument("--threads", type=count_arg, metavar="N",
                   help="Numba kernel threads per worker (default: cores / workers; "
                        "torch always gets one)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on the Dask cluster whose scheduler is at ADDRESS "
                        "(tcp://HOST:8786); needs pip install 'xbar-sim[dask]'")
    p.add_argument("--json", action="store_true", help="print one JSON object, no progress")
    p.set_defaults(func=run, flags=FLAGS)


def run(args: argparse.Namespace) -> int:
    from xbar.devices import resolve_device
    from xbar.mapping.sweep.run import SweepSpec, format_summary, plan_sweep, run_sweep
    from xbar.mapping.sweep.params import format_params, sweep_params
    from xbar.config import load_hardware

    args.hw, hw_label = hardware_spec(args.device, args.hw)
    if args.list_params:
        params = sweep_params(resolve_device(args.device), load_hardware(args.hw).xbar)
        if args.json:
            print(dumps_json([p.to_dict() for p in params.values()]))
        else:
            print(f"Sweepable parameters (a swept value is also checked against --device "
                  f"{args.device}{' --hw ' + args.hw if args.hw else ''}):")
            print(format_params(params))
        return 0
    missing = [flag for flag, v in (("--param", args.param), ("--values", args.values),
                                    ("--out", args.out)) if not v]
    if missing:
        raise ConfigError(f"{', '.join(missing)} required (see xbar sweep --help; "
                         "--list-params shows what can be swept)")
    from xbar.files import check_distinct
    from xbar.mapping.recovery.registry import method_names
    from xbar.mapping.sweep.store import FORMAT as SWEEP_FORMAT

    methods = parse_methods(args.methods, method_names())
    options = parse_options(args.option, methods)
    check_distinct(**{"--out": args.out, "--plot": args.plot})
    check_output(args.out, "--out", SWEEP_FORMAT)
    if args.plot:
        check_image_output(args.plot, "--plot")
    spec = SweepSpec(param=args.param, values=args.values, model=args.model,
                     dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                     hw=args.hw, methods=methods, chips=args.chips,
                     seed=args.seed, teacher_seed=args.teacher_seed,
                     sram_ratio=args.sram_ratio, steps=args.steps, batch=args.adapt_batch,
                     kd_epochs=args.kd_epochs, test_limit=args.test_limit,
                     options=options, backend=args.backend)
    plan = plan_sweep(spec)  # every value validated before any work
    if not args.json:
        print(f"sweep {plan.param.name} over {len(plan.points)} values x "
              f"{len(plan.settings.methods)} methods x {plan.settings.chips} chips = "
              f"{plan.n_points} points -> {args.out}", file=sys.stderr)
    result = run_sweep(plan, args.out, workers=args.workers, threads=args.threads,
                       scheduler=args.scheduler, plot=args.plot, progress=not args.json)
    if args.json:
        print(dumps_json(result.to_dict()))
        return 0
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    r = result.results
    print(f"{r.config['model']} on {r.config['dataset']}, device {r.config['device']['name']}"
          f"; accuracy mean (min-max) over {r.chips} chip(s) from seed {r.seed}:")
    print(format_summary(result))
    print(f"{result.computed} points computed, {result.skipped} already in the file; "
          f"{result.wall_s:.1f} s on {result.where}")
    print(f"results: {result.out}" + (f"; plot: {result.plot}" if result.plot else ""))
    return 0
