"""``xbar lifetime``: every method's accuracy over the chip's lifetime as its cells relax, and
the refreshes (re-programming, re-adaptation, re-verification) that keep it within a tolerance,
with their time and energy. Also ``--age``, shared by ``xbar simulate`` and ``xbar compare``."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_device_arg, add_hw_arg, add_model_arg, check_image_output,
                                     check_output, count_arg, dumps_json, hardware_spec,
                                     parse_methods, seed_arg)

COMMANDS = {"lifetime": "accuracy over the chip's lifetime (conductance relaxation) and the "
                        "refresh cost of each recovery method"}
FORMAT = "xbar-sim lifetime"
FORMAT_VERSION = 1


def age_arg(text: str) -> float:
    """argparse type of an age: seconds after programming, a finite number >= 0 ("1e8")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: seconds >= 0, "
                                         "e.g. 3600 or 1e8") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid; allowed: seconds >= 0")
    return value


def ages_arg(text: str) -> tuple[float, ...]:
    """argparse type of ``--ages``: comma-separated ascending ages > 0 s."""
    parts = [p.strip() for p in text.split(",")]
    ages = tuple(age_arg(p) for p in parts)
    if any(a <= 0 for a in ages) or any(b <= a for a, b in zip(ages, ages[1:])):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid; allowed: comma-separated "
                                         "ascending ages > 0 s, e.g. 1,1e4,1e8")
    return ages


def add_age_arg(p: argparse.ArgumentParser) -> None:
    """``--age SECONDS``: evaluate the chip that long after programming (the device's
    relaxation, :mod:`xbar.devices.relaxation`; adaptation and calibration are done at
    programming; SRAM words do not relax)."""
    p.add_argument("--age", type=age_arg, default=0.0, metavar="SECONDS",
                   help="evaluate this long after programming: the cells relax by the device's "
                        "relaxation fields (default 0: right after programming)")
    add_reads_arg(p)


def add_reads_arg(p: argparse.ArgumentParser) -> None:
    """``--reads-per-s R``: reads of every cell per second of inference while the chip ages
    (the device's read disturb on the aging clock)."""
    p.add_argument("--reads-per-s", type=age_arg, default=0.0, metavar="R",
                   help="reads of every cell per second of inference while the chip ages: "
                        "the device's read disturb (read_disturb_rate) on the same clock as "
                        "its relaxation (default 0: no disturb)")


def register(sub: argparse._SubParsersAction) -> None:
    from xbar.mapping.recovery.lifetime import LIFETIME_METHODS, LifetimeSettings
    from xbar.mapping.recovery.techniques.kd import KDConfig
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    s, adapt, kd = LifetimeSettings(), AdaptConfig(), KDConfig()
    p = sub.add_parser(
        "lifetime", help=COMMANDS["lifetime"], allow_abbrev=False,  # --age is not --ages
        description="Program (and adapt) each method's chip at time 0, let its cells relax "
                    "(the device's relax_* fields), and report each method's accuracy at "
                    "--ages without and right after a refresh (one-shot: re-program every "
                    "cell; RSA/OSA: re-adapt the SRAM on the aged chip; R-V-W: re-verify and "
                    "re-program the drifted cells), then the refreshes each method needs to "
                    "stay within --tolerance of its accuracy at programming up to --horizon, "
                    "with their time and energy from the programming engine, the adaptation "
                    "model and the energy model.")
    add_model_arg(p)
    p.add_argument("--dataset", metavar="NAME", help="default: the zoo model's own")
    p.add_argument("--data-dir", metavar="DIR", help="where the data set files are")
    add_device_arg(p)
    add_hw_arg(p)
    p.add_argument("--ages", type=ages_arg, default=s.ages_s, metavar="S1,S2,...",
                   help="ages (s after programming) to report (default 1,1e4,1e8)")
    p.add_argument("--methods", default=",".join(s.methods),
                   help=f"comma-separated subset of {','.join(LIFETIME_METHODS)} "
                        f"(default %(default)s)")
    p.add_argument("--horizon", type=age_arg, default=s.horizon_s, metavar="SECONDS",
                   help="lifetime the refresh schedule covers (default %(default)g s)")
    p.add_argument("--tolerance", type=float, default=s.tolerance, metavar="FRACTION",
                   help="accuracy loss allowed before a refresh (default %(default)g = 1 "
                        "point)")
    p.add_argument("--checks-per-decade", type=count_arg, default=s.checks_per_decade,
                   metavar="N", help="schedule checks per decade of time since a refresh "
                                     "(default %(default)s)")
    p.add_argument("--max-refreshes", type=count_arg, default=s.max_refreshes, metavar="N",
                   help="refreshes simulated per method and chip (default %(default)s)")
    p.add_argument("--chips", type=count_arg, default=s.chips, help="chip instances "
                   "(default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=s.seed, help="the first chip's seed")
    p.add_argument("--test-limit", type=count_arg, default=0, metavar="N",
                   help="test images per evaluation (default: all)")
    p.add_argument("--sram-ratio", type=float, default=s.sram_ratio, metavar="FRACTION",
                   help="fraction of each layer's weights in SRAM (default %(default)g)")
    p.add_argument("--steps", type=count_arg, default=adapt.steps,
                   help="adaptation steps, at programming and at each re-adaptation "
                        "(default %(default)s)")
    p.add_argument("--adapt-batch", type=count_arg, default=adapt.batch_size, metavar="N",
                   help="adaptation batch (default %(default)s)")
    p.add_argument("--kd-epochs", type=count_arg, default=kd.epochs, metavar="N",
                   help="distillation epochs (default %(default)s)")
    add_reads_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE.h5",
                   help="write the results (and a -accuracy.png plot beside it) atomically; "
                        "progress is kept in FILE.h5.partial/ meanwhile, and a rerun with the "
                        "same inputs resumes from it")
    p.set_defaults(func=run, flags={"LifetimeSettings.tolerance": "--tolerance",
                                    "LifetimeSettings.chips": "--chips",
                                    "LifetimeSettings.horizon_s": "--horizon",
                                    "LifetimeSettings.sram_ratio": "--sram-ratio",
                                    "AdaptConfig.steps": "--steps",
                                    "KDConfig.epochs": "--kd-epochs"})


def save_lifetime(path: str | Path, result: dict[str, Any]) -> list[Path]:
    """The result as HDF5 (``/`` attrs: format, version; ``/result_json``: the whole result as
    a JSON string; per method ``/methods/<m>/accuracy`` and ``accuracy_refreshed`` (over ages),
    ``/schedule/<m>`` attrs refreshes, time_s, energy_pj) and its plot beside it, written
    together and atomically."""
    import h5py
    import numpy as np

    from xbar.files import stamp_hdf5, write_with_pngs
    from xbar.mapping.recovery.lifetime_plot import plot_png

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            stamp_hdf5(f, FORMAT, FORMAT_VERSION)
            f.create_dataset("ages_s", data=np.asarray(result["ages_s"], dtype=np.float64))
            f.create_dataset("result_json", data=dumps_json(result))
            for name, m in result["methods"].items():
                g = f.create_group(f"methods/{name}")
                for k in ("accuracy", "accuracy_refreshed"):
                    g.create_dataset(k, data=np.asarray(m[k], dtype=np.float64))
            for name, sch in result["schedule"].items():
                g = f.create_group(f"schedule/{name}")
                for k in ("refreshes", "time_s", "energy_pj"):
                    g.attrs[k] = sch[k]
                g.create_dataset("times_s", data=np.asarray(sch["per_chip"]["times_s"][0],
                                                            dtype=np.float64))

    return write_with_pngs(path, write, {"accuracy": plot_png(result)})


def run(args: argparse.Namespace) -> int:
    from xbar.config import load_hardware
    from xbar.devices import resolve_device_file
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.lifetime import LIFETIME_METHODS, LifetimeSettings, lifetime
    from xbar.mapping.recovery.lifetime_resume import LifetimeProgress, lifetime_fingerprint
    from xbar.mapping.recovery.techniques.kd import kd_config
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    methods = parse_methods(args.methods, LIFETIME_METHODS)
    if args.out:   # before any work
        out = Path(args.out)
        check_output(out, "--out", FORMAT)
        check_image_output(out.with_name(f"{out.stem}-accuracy.png"), "--out's plot")
    if not args.horizon > 0:
        raise ConfigError(f"--horizon = {args.horizon:g} is invalid; allowed: > 0 s")
    settings = LifetimeSettings(
        ages_s=args.ages, methods=methods, horizon_s=args.horizon, tolerance=args.tolerance,
        chips=args.chips, seed=args.seed, checks_per_decade=args.checks_per_decade,
        max_refreshes=args.max_refreshes, test_limit=args.test_limit,
        sram_ratio=args.sram_ratio, reads_per_s=args.reads_per_s,
        adapt=AdaptConfig(steps=args.steps, batch_size=args.adapt_batch),
        kd=kd_config(epochs=args.kd_epochs))
    device_file = resolve_device_file(args.device)
    args.hw, hw_label = hardware_spec(args.device, args.hw)
    hw = load_hardware(args.hw)
    teacher = load_teacher(args.model, args.dataset, args.data_dir, 0)
    resume = None
    if args.out:   # progress kept beside the results file: a rerun resumes
        n_test = settings.test_limit or len(teacher.dataset.y_test)
        resume = LifetimeProgress.beside(args.out, lifetime_fingerprint(
            teacher.model, teacher.dataset, device_file, hw, settings, n_test))
        if resume.started:
            print(f"resuming from {resume.folder}: {len(resume.units)} of "
                  f"{settings.chips * len(settings.methods)} (chip, method) runs done",
                  file=sys.stderr)
    tty = sys.stderr.isatty() and not args.json
    start = time.perf_counter()
    result = lifetime(teacher.model, teacher.dataset, device_file, hw, settings,
                      progress=(lambda s: print(f"  {s}", file=sys.stderr)) if tty else None,
                      resume=resume)
    result.update(model=teacher.label, dataset=teacher.dataset.name, hardware_preset=hw_label,
                  wall_s=time.perf_counter() - start)
    pngs = save_lifetime(args.out, result) if args.out else []
    if resume is not None:
        resume.remove()
    if args.json:
        print(dumps_json(result))
        return 0
    print(f"{teacher.label} on {teacher.dataset.summary()}; {result['n_test']} test images "
          f"per evaluation, {settings.chips} chip(s)")
    print(f"device {result['device']}: {result['device_summary']}")
    ages = result["ages_s"]
    print("accuracy (%) at each age: without refresh / right after a refresh")
    print(f"  {'method':<9} {'t=0':>6}  " + "  ".join(f"{a:>13g} s" for a in ages))
    for name, m in result["methods"].items():
        cells = "  ".join(f"{100 * a:6.2f} / {100 * b:6.2f}" for a, b in
                          zip(m["accuracy"], m["accuracy_refreshed"]))
        print(f"  {name:<9} {100 * m['accuracy_at_programming']:6.2f}  {cells}")
    print(f"refreshes to stay within {100 * settings.tolerance:g} point(s) up to "
          f"{settings.horizon_s:g} s:")
    for name, sch in result["schedule"].items():
        note = "" if sch["complete"] else (
            " (tolerance not held on this grid)" if not sch["held"] else
            f" (stopped at --max-refreshes; extrapolated "
            f"{sch['per_chip']['refreshes_extrapolated']})")
        print(f"  {name:<9} {sch['refresh']:<9} {sch['refreshes']:6g} refreshes, "
              f"{sch['time_s']:.4g} s, {sch['energy_pj'] * 1e-6:.4g} uJ{note}")
    for p in pngs:
        print(f"plot written to {p}")
    if args.out:
        print(f"results written to {args.out}")
    return 0
