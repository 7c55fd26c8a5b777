"""``xbar reproduce``: the published figures of works 1 and 2 beside the simulated ones."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_backend_arg, add_deprecated, check_output, count_arg,
                                     dumps_json, name_options, seed_arg)

COMMANDS = {"reproduce": "each published figure of the works beside the simulated one"}
QUICK_STEPS = 150
"""Adaptation steps of ``--quick`` without ``--steps`` (digits learn in fewer; the full
run's are ``ReproduceSettings.steps``)."""
FLAGS = {"ReproduceSettings.chips": "--chips", "ReproduceSettings.steps": "--steps",
         "ReproduceSettings.batch": "--adapt-batch", "ReproduceSettings.kd_epochs": "--kd-epochs",
         "ReproduceSettings.fractions": "--sram-ratio",
         "ReproduceSettings.cifar_test_limit": "--cifar-test-limit",
         "ReproduceSettings.backend": "--backend", "ReproduceSettings.cifar": "--cifar"}
"""The option that sets each settings field, for errors that name the field."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help=COMMANDS["reproduce"],
        description="For every published figure of the works (docs/references.md): "
                    "the paper's number and setting, the simulated number (mean +- std over "
                    "chips) and setting, and the difference. The full run is MNIST LeNet-5; "
                    "--quick runs on digits in a few minutes.")
    from xbar.mapping.recovery.reproduce import WORKS, ReproduceSettings

    p.add_argument("works", nargs="?", default="all", choices=WORKS + ("all",),
                   help="one work (docs/references.md's numbering) or all (default)")
    p.add_argument("--quick", action="store_true",
                   help="digits CNN on scikit-learn's digits, smaller budgets")
    d = ReproduceSettings
    p.add_argument("--chips", type=count_arg, default=d.chips, metavar="N",
                   help="chip instances (default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=d.seed,
                   help="first chip seed (default %(default)s)")
    p.add_argument("--sram-ratio", default=None, metavar="F1,F2,...", dest="sram_ratio",
                   help="fractions of each layer's weights in SRAM tried by RSA, KD+RSA and "
                        f"KD+OSA (default {','.join(f'{f:g}' for f in d.fractions)})")
    add_deprecated(p, "--fractions", "--sram-ratio", "sram_ratio", metavar="F1,F2,...")
    p.add_argument("--steps", type=count_arg, default=None, metavar="N",
                   help=f"adaptation steps (default {d.steps}, with --quick {QUICK_STEPS})")
    p.add_argument("--adapt-batch", type=count_arg, default=d.batch, metavar="N",
                   help="adaptation batch: training images per step (default %(default)s)")
    add_deprecated(p, "--batch", "--adapt-batch", "adapt_batch", type=count_arg)
    p.add_argument("--kd-epochs", type=count_arg, default=d.kd_epochs, metavar="N",
                   help="KD epochs (default %(default)s)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--cifar", action="store_true",
                   help="also the CIFAR-10 rows: VGG-16 with --backend cuda, else the "
                        "width-reduced vgg16-narrow (named in every row); trains the teacher "
                        "once (cached)")
    p.add_argument("--cifar-test-limit", type=count_arg, default=d.cifar_test_limit,
                   metavar="N",
                   help="CIFAR-10 test images evaluated (default %(default)s; 10000 for all)")
    add_backend_arg(p, "where chips run and KD and adaptation train (with cuda, or auto on a "
                       "GPU machine, --cifar runs the full VGG-16): ")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE.h5", help="write the rows and plots to HDF5")
    p.set_defaults(func=run, flags=FLAGS)


def parse_fractions(text: str) -> tuple[float, ...]:
    """``--sram-ratio 0.01,0.05``: distinct fractions in (0, 1], or a clear error."""
    out = []
    for i, part in enumerate(text.split(","), 1):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--sram-ratio {text!r}: entry {i} ({part!r}) is not a number; "
                              "allowed: comma-separated fractions in (0, 1]") from None
        if not 0 < value <= 1 or value in out:
            raise ConfigError(f"--sram-ratio {text!r}: entry {i} = {part!r} is invalid; "
                              "allowed: distinct fractions in (0, 1] (0.05 = 5 %)")
        out.append(value)
    return tuple(out)


def check_run_time(settings: Any) -> None:
    """Refuse ``--chips`` and ``--steps`` whose run could not finish: at the least, every work
    programs and evaluates one-shot on every chip, and works 1 and 2 adapt every chip at
    every SRAM fraction (:func:`xbar.mapping.recovery.budget.min_seconds`)."""
    from xbar.mapping.recovery.budget import min_seconds
    from xbar.mapping.recovery.compare import CompareSettings
    from xbar.mapping.recovery.techniques.sram import AdaptConfig
    from xbar.resources import check_time

    s = settings
    runs, what = min_seconds(CompareSettings(chips=s.chips, methods=("one-shot",)),
                             len(s.works))
    adapting = sum(w in ("work1", "work2") for w in s.works) * len(s.fractions)
    if adapting:
        adapt = CompareSettings(chips=s.chips, methods=("rsa",),
                                adapt=AdaptConfig(steps=s.steps, batch_size=s.batch))
        steps, more = min_seconds(adapt, adapting)
        runs, what = runs + steps, f"{what}, then {more}"
    check_time(runs, f"--chips {s.chips} --steps {s.steps} over {len(s.works)} work(s)",
               f"{what}, on one core")


def run(args: argparse.Namespace) -> int:
    from xbar.mapping.recovery.reproduce import WORKS, ReproduceSettings, reproduce
    from xbar.mapping.recovery.reproduce_report import FORMAT, format_rows, save_reproduce

    if args.out:
        check_output(args.out, "--out", FORMAT)
    works = WORKS if args.works == "all" else (args.works,)
    budget: dict = {"batch": args.adapt_batch, "kd_epochs": args.kd_epochs}
    if args.steps is not None or args.quick:
        budget["steps"] = QUICK_STEPS if args.steps is None else args.steps
    if args.sram_ratio is not None:
        budget["fractions"] = parse_fractions(args.sram_ratio)
    settings = ReproduceSettings(works=works, quick=args.quick, chips=args.chips,
                                 seed=args.seed, data_dir=args.data_dir, cifar=args.cifar,
                                 cifar_test_limit=args.cifar_test_limit,
                                 backend=args.backend, **budget)
    check_run_time(settings)
    quiet = args.json or not sys.stderr.isatty()
    start = time.perf_counter()
    result = reproduce(settings, progress=None if quiet else
                       (lambda msg: print(f"  {msg}", file=sys.stderr)))
    result["wall_s"] = time.perf_counter() - start
    if args.out:
        save_reproduce(args.out, result)
    if args.json:
        print(dumps_json(result))
        return 0
    print(f"xbar reproduce {args.works}{' --quick' if args.quick else ''}: "
          f"{result['model']} on {result['dataset']}, FP32 {result['fp32_accuracy']:.2%}, "
          f"{result['chips']} chips, backend {result['backend']}, {result['wall_s']:.0f} s")
    notes = [dict(r, note=name_options(r.get("note") or "", FLAGS)) for r in result["rows"]]
    print(format_rows({**result, "rows": notes}))
    if args.out:
        print(f"wrote {args.out}")
    return 0
