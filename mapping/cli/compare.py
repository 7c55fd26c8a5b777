"""``xbar compare``: RSA versus R-V-W and the other recovery methods; ``xbar demo``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_backend_arg, add_deprecated, add_device_arg, add_hw_arg,
                                     add_model_arg, check_image_output, check_output, count_arg,
                                     dumps_json, hardware_spec, name_options, parse_methods,
                                     seed_arg)
from xbar.mapping.cli.options import add_option_arg, parse_options
from xbar.mapping.cli.lifetime import add_age_arg

COMMANDS = {"compare": "compare recovery methods: accuracy and time",
            "demo": "the embedded default comparison (digits, DAC 2020 cell)"}

# Memory per (chip, method) kept until the end: accuracies, times and pulses in lists.
_BYTES_PER_CHIP_METHOD = 200


DEMO = {"dataset": "digits", "device": "charan2020-dac", "hw": "one-cell", "chips": 2,
        "out": "results/demo.h5"}
"""What ``xbar demo`` sets (its definition: the DAC 2020 cell mapped one cell per weight on the
embedded digits); every other default is :class:`CompareSettings`' and the commands'."""

FLAGS = {"CompareSettings.sram_ratio": "--sram-ratio", "CompareSettings.chips": "--chips",
         "CompareSettings.seed": "--seed", "CompareSettings.methods": "--methods",
         "CompareSettings.options": "--option", "CompareSettings.backend": "--backend",
         "AdaptConfig.steps": "--steps", "AdaptConfig.batch_size": "--adapt-batch",
         "KDConfig.epochs": "--kd-epochs", "KDConfig.learning_rate": "--kd-lr",
         "KDConfig.temperature": "--kd-temperature", "KDConfig.alpha": "--kd-alpha",
         "KDConfig.noise_warmup": "--kd-noise-warmup", "KDConfig.draws": "--kd-draws",
         "KDConfig.weight_clip": "--kd-weight-clip", "CompareSettings.age_s": "--age",
         "CompareSettings.reads_per_s": "--reads-per-s"}
"""The option that sets each settings field (``xbar sweep`` shares them), for errors that
name the field (:func:`xbar.mapping.cli.common.with_flags`)."""


def _add_common(p: argparse.ArgumentParser, demo: bool) -> None:
    from xbar.mapping.recovery.compare import DEFAULT_METHODS, CompareSettings
    from xbar.mapping.recovery.registry import method_names

    s, d = CompareSettings(), DEMO if demo else {}
    kd, adapt = s.kd, s.adapt
    add_model_arg(p)
    p.add_argument("--dataset", default=d.get("dataset"), metavar="NAME",
                   help="digits, mnist or cifar10 (default: "
                        + (d["dataset"] if demo else "the zoo model's own") + ")")
    p.add_argument("--data-dir", metavar="DIR", help="where the data set files are "
                   "(default: $XBAR_DATA, else ../shared/data)")
    add_device_arg(p, d.get("device"))
    add_hw_arg(p, d.get("hw"))
    p.add_argument("--sram-ratio", type=float, default=s.sram_ratio, metavar="FRACTION",
                   help="fraction of each layer's weights in SRAM (RSA, OSA; default "
                        "%(default)s)")
    p.add_argument("--chips", type=count_arg, default=d.get("chips", s.chips), metavar="N",
                   help="chip instances (default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=s.seed,
                   help="chip c has seed SEED + c (0 to 2**32 - 1; default %(default)s)")
    p.add_argument("--test-limit", type=count_arg, metavar="N",
                   help="evaluate on the first N test images only (default: all; CIFAR-10's "
                        "test order is a fixed shuffle, never sorted by class)")
    p.add_argument("--steps", type=count_arg, default=adapt.steps, metavar="N",
                   help="adaptation steps (default %(default)s)")
    p.add_argument("--adapt-batch", type=count_arg, default=adapt.batch_size, metavar="N",
                   help="adaptation batch: training images per step (default %(default)s)")
    add_deprecated(p, "--batch", "--adapt-batch", "adapt_batch", type=count_arg)
    p.add_argument("--kd-epochs", type=count_arg, default=kd.epochs, metavar="N",
                   help="KD: passes over the training images (default %(default)s)")
    p.add_argument("--kd-lr", type=float, default=kd.learning_rate, metavar="RATE",
                   help="KD: Adam's initial learning rate (default %(default)g, for the "
                        "digits and MNIST networks; 1e-3 for a deep CIFAR-10 network such as "
                        "resnet18-narrow, docs/layers.md)")
    p.add_argument("--kd-alpha", type=float, default=kd.alpha, metavar="A",
                   help="KD: weight of the distillation term, 0-1 (default %(default)g)")
    p.add_argument("--kd-temperature", type=float, default=kd.temperature, metavar="T",
                   help="KD: softening temperature (default %(default)g)")
    p.add_argument("--kd-noise-warmup", type=float, default=kd.noise_warmup,
                   metavar="FRACTION",
                   help="KD: fraction of the steps over which the device noise ramps in, 0 to "
                        "<1 (default %(default)g)")
    p.add_argument("--kd-weight-clip", type=float, default=kd.weight_clip or 0, metavar="K",
                   help="KD: clip each column's weights to K x its RMS weight; 0 = no clip "
                        "(default %(default)g)")
    p.add_argument("--kd-draws", type=count_arg, default=kd.draws, metavar="N",
                   help="KD: device draws per training step (default %(default)s)")
    p.add_argument("--methods", default=",".join(s.methods),
                   help=f"comma-separated subset of {','.join(method_names())}, or all "
                        f"(alone; default: works 1 and 2's, {','.join(DEFAULT_METHODS)})")
    add_option_arg(p)
    add_age_arg(p)
    add_backend_arg(p, "where chips run and KD and SRAM/bias-only adaptation train: ")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default=d.get("out"), metavar="FILE.h5",
                   help="write results, configuration and plots to HDF5 (+ PNGs beside it)"
                        + (" (default %(default)s)" if demo else ""))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help=COMMANDS["compare"],
                       description="Program the network onto N chip instances and compare "
                                   "one-shot, bias-only, KD, RSA, KD+RSA, OSA, KD+OSA and "
                                   "R-V-W in accuracy and in time on chip.")
    _add_common(p, demo=False)
    p.set_defaults(func=run, flags=FLAGS)
    d = sub.add_parser("demo", help=COMMANDS["demo"],
                       description="`xbar compare` on the embedded digits data with the "
                                   "charan2020-dac device mapped one cell per weight; prints "
                                   "the table and writes results/demo.h5 with plots.")
    _add_common(d, demo=True)
    d.set_defaults(func=run, flags=FLAGS)


def run(args: argparse.Namespace) -> int:
    from xbar.config import load_hardware
    from xbar.devices import resolve_device_file
    from xbar.kernel_torch import resolve_backend
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.budget import check_budget
    from xbar.mapping.recovery.compare import CompareSettings, compare, story
    from xbar.mapping.recovery.registry import method_names
    from xbar.mapping.recovery.techniques.kd import kd_config
    from xbar.mapping.recovery.registry import options_json
    from xbar.mapping.recovery.report import FORMAT as COMPARE_FORMAT, format_table, save_compare
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    backend = resolve_backend(args.backend)  # before any work: cuda without a GPU fails here
    if args.test_limit is not None and args.test_limit < 1:
        raise ConfigError(f"--test-limit = {args.test_limit} is invalid; allowed: >= 1")
    methods = parse_methods(args.methods, method_names())
    options = parse_options(args.option, methods)
    if args.out:
        out = Path(args.out)
        check_output(out, "--out", COMPARE_FORMAT)
        for name in ("accuracy", "time"):
            check_image_output(out.with_name(f"{out.stem}-{name}.png"), f"--out's {name} plot")
    settings = CompareSettings(
        sram_ratio=args.sram_ratio, chips=args.chips, seed=args.seed, methods=methods,
        adapt=AdaptConfig(steps=args.steps, batch_size=args.adapt_batch),
        kd=kd_config(epochs=args.kd_epochs, learning_rate=args.kd_lr, alpha=args.kd_alpha,
                     temperature=args.kd_temperature, noise_warmup=args.kd_noise_warmup,
                     weight_clip=args.kd_weight_clip, draws=args.kd_draws),
        options=options, backend=backend, age_s=args.age,
        reads_per_s=args.reads_per_s)
    check_budget(settings, _BYTES_PER_CHIP_METHOD, f"--chips {args.chips}")
    device_file = resolve_device_file(args.device)  # with its write-verify loop, if any
    device = device_file.device
    args.hw, hw_label = hardware_spec(args.device, args.hw)
    hw = load_hardware(args.hw)
    xbar, timing, programming, adaptation = hw.xbar, hw.timing, hw.programming, hw.adaptation
    teacher = load_teacher(args.model, args.dataset, args.data_dir, 0, backend=backend)
    dataset = teacher.dataset.first_test(args.test_limit)
    start = time.perf_counter()
    tty = sys.stderr.isatty() and not args.json
    result = compare(teacher.model, dataset, device_file, hw, settings,
                     progress=(lambda s: print(f"  {s}", file=sys.stderr)) if tty else None)
    result.update(model=teacher.label, dataset=dataset.name, dataset_note=dataset.note,
                  n_test=len(dataset.y_test), device=device.name,
                  hardware_preset=hw_label, options=options_json(options),
                  wall_s=time.perf_counter() - start)
    config = {"device": device.to_dict(), "hardware": xbar.to_dict(),
              "timing": timing.to_dict(), "programming": programming.to_dict(),
              "adaptation": adaptation.to_dict(), "energy": hw.energy.to_dict(),
              "area": hw.area.to_dict(), "settings": result["settings"],
              "model": teacher.label, "dataset": dataset.name, "n_test": len(dataset.y_test),
              "options": result["options"]}
    result["story"] = story(result)
    pngs = save_compare(args.out, result, config) if args.out else []
    if args.json:
        print(dumps_json({**result, "time_s": {m: v["time_s"] for m, v in
                                               result["methods"].items()}}))
        return 0
    print(f"{teacher.label} on {dataset.summary()}")
    print(f"device {device.name}: {device.summary()}; {xbar.array.weight_mapping} mapping "
          f"(hardware {hw_label}); backend {backend}")
    on_cpu = [m for m, v in result["methods"].items() if m != "software" and
              v["backend"] != backend]
    if on_cpu:
        print(f"methods run on the cpu backend (those of works 3-5): {', '.join(on_cpu)}")
    if args.option:
        print(f"method options: {' '.join(args.option)}")
    print(format_table(result))
    for line in result["story"]:
        print(f"- {name_options(line, FLAGS)}")
    if result["kd"]:
        print(f"KD student trained off chip in {result['kd']['train_s']:.1f} s "
              f"({result['kd']['epochs']} epochs, T = {result['kd']['temperature']:g}); "
              "not counted in the times above")
    print(f"wall time {result['wall_s']:.1f} s")
    if args.out:
        print(f"results written to {args.out} (plots {', '.join(map(str, pngs))})")
    return 0
