"""``xbar compare``: RSA versus R-V-W and the other recovery methods; ``xbar demo``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xbar.mapping.cli.common import (HW_IMPLIED, add_backend_arg, add_option_arg,
                                     check_image_output, check_output, count_arg, dumps_json,
                                     hardware_spec, parse_methods, parse_options, seed_arg)

COMMANDS = {"compare": "compare recovery methods: accuracy and time",
            "demo": "the embedded default comparison (digits, DAC 2020 cell)"}

# Memory per (chip, method) kept until the end: accuracies, times and pulses in lists.
_BYTES_PER_CHIP_METHOD = 200


def _add_common(p: argparse.ArgumentParser, defaults: dict) -> None:
    from xbar.mapping.recovery.compare import DEFAULT_METHODS
    from xbar.mapping.recovery.registry import method_names
    from xbar.mapping.recovery.techniques.kd import KDConfig

    p.add_argument("--model", default=defaults["model"], metavar="NAME|FILE")
    p.add_argument("--dataset", default=defaults.get("dataset"), metavar="NAME")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--device", default=defaults["device"], metavar="PRESET|FILE")
    p.add_argument("--hw", default=defaults.get("hw"), metavar="PRESET|FILE",
                   help="hardware preset (default, one-cell) or TOML with [array], [dac], "
                        "[adc], [timing], [programming], [adaptation]" + HW_IMPLIED)
    p.add_argument("--sram-ratio", type=float, default=0.05,
                   help="fraction of each layer's weights in SRAM (default 0.05)")
    p.add_argument("--chips", type=count_arg, default=defaults["chips"],
                   help="chip instances")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help="chip c has seed SEED + c (0 to 2**32 - 1; default 0)")
    p.add_argument("--steps", type=count_arg, default=defaults["steps"],
                   help="adaptation steps")
    p.add_argument("--batch", type=count_arg, default=defaults["batch"],
                   help="adaptation batch")
    p.add_argument("--kd-epochs", type=count_arg, default=defaults["kd_epochs"])
    p.add_argument("--kd-lr", type=float, metavar="RATE",
                   help=f"KD: Adam's initial learning rate (default {KDConfig.learning_rate:g})")
    p.add_argument("--kd-alpha", type=float, metavar="A",
                   help=f"KD: weight of the distillation term, 0-1 (default {KDConfig.alpha:g})")
    p.add_argument("--kd-temperature", type=float, metavar="T",
                   help=f"KD: softening temperature (default {KDConfig.temperature:g})")
    p.add_argument("--kd-noise-warmup", type=float, metavar="FRACTION",
                   help="KD: fraction of the steps over which the device noise ramps in, 0 to "
                        f"<1 (default {KDConfig.noise_warmup:g})")
    p.add_argument("--kd-weight-clip", type=float, metavar="K",
                   help="KD: clip each column's weights to K x its RMS weight; 0 = no clip "
                        f"(default {KDConfig.weight_clip:g})")
    p.add_argument("--kd-draws", type=count_arg, metavar="N",
                   help=f"KD: device draws per training step (default {KDConfig.draws})")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated subset of {','.join(method_names())}, or all "
                        f"(alone; default: works 1 and 2's, {','.join(DEFAULT_METHODS)})")
    add_option_arg(p)
    add_backend_arg(p, "where chips run and KD and SRAM/bias-only adaptation train: ")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default=defaults.get("out"), metavar="FILE.h5",
                   help="write results, configuration and plots to HDF5 (+ PNGs beside it)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help=COMMANDS["compare"],
                       description="Program the network onto N chip instances and compare "
                                   "one-shot, bias-only, KD, RSA, KD+RSA, OSA, KD+OSA and "
                                   "R-V-W in accuracy and in time on chip.")
    _add_common(p, {"model": "digits-cnn", "device": "charan2020-jxcdc", "chips": 3,
                    "steps": 200, "batch": 32, "kd_epochs": 10})
    p.set_defaults(func=run)
    d = sub.add_parser("demo", help=COMMANDS["demo"],
                       description="`xbar compare` on the embedded digits data with the "
                                   "charan2020-dac device mapped one cell per weight; prints "
                                   "the table and writes results/demo.h5 with plots.")
    _add_common(d, {"model": "digits-cnn", "dataset": "digits", "device": "charan2020-dac",
                    "hw": "one-cell", "chips": 2, "steps": 200, "batch": 32,
                    "kd_epochs": 30, "out": "results/demo.h5"})
    d.set_defaults(func=run)


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
    methods = parse_methods(args.methods, method_names())
    options = parse_options(args.option, methods)
    if args.out:
        out = Path(args.out)
        check_output(out, "--out", COMPARE_FORMAT)
        for name in ("accuracy", "time"):
            check_image_output(out.with_name(f"{out.stem}-{name}.png"), f"--out's {name} plot")
    settings = CompareSettings(
        sram_ratio=args.sram_ratio, chips=args.chips, seed=args.seed, methods=methods,
        adapt=AdaptConfig(steps=args.steps, batch_size=args.batch),
        kd=kd_config(epochs=args.kd_epochs, learning_rate=args.kd_lr, alpha=args.kd_alpha,
                     temperature=args.kd_temperature, noise_warmup=args.kd_noise_warmup,
                     weight_clip=args.kd_weight_clip, draws=args.kd_draws),
        options=options, backend=backend)
    check_budget(settings, _BYTES_PER_CHIP_METHOD, f"--chips {args.chips}")
    device_file = resolve_device_file(args.device)  # with its write-verify loop, if any
    device = device_file.device
    args.hw, hw_label = hardware_spec(args.device, args.hw)
    hw = load_hardware(args.hw)
    xbar, timing, programming, adaptation = hw.xbar, hw.timing, hw.programming, hw.adaptation
    teacher = load_teacher(args.model, args.dataset, args.data_dir, 0, backend=backend)
    start = time.perf_counter()
    tty = sys.stderr.isatty() and not args.json
    result = compare(teacher.model, teacher.dataset, device_file, hw, settings,
                     progress=(lambda s: print(f"  {s}", file=sys.stderr)) if tty else None)
    result.update(model=teacher.label, dataset=teacher.dataset.name,
                  dataset_note=teacher.dataset.note, device=device.name,
                  hardware_preset=hw_label, options=options_json(options),
                  wall_s=time.perf_counter() - start)
    config = {"device": device.to_dict(), "hardware": xbar.to_dict(),
              "timing": timing.to_dict(), "programming": programming.to_dict(),
              "adaptation": adaptation.to_dict(), "energy": hw.energy.to_dict(),
              "area": hw.area.to_dict(), "settings": result["settings"],
              "model": teacher.label, "dataset": teacher.dataset.name,
              "options": result["options"]}
    result["story"] = story(result)
    pngs = save_compare(args.out, result, config) if args.out else []
    if args.json:
        print(dumps_json({**result, "time_s": {m: v["time_s"] for m, v in
                                               result["methods"].items()}}))
        return 0
    print(f"{teacher.label} on {teacher.dataset.summary()}")
    print(f"device {device.name}: {device.summary()}; {xbar.array.weight_mapping} mapping "
          f"(hardware {hw_label}); backend {backend}")
    on_cpu = [m for m, v in result["methods"].items() if m != "software" and
              v["backend"] != backend]
    if on_cpu:
        print(f"methods run on the cpu backend (works 3-5 plug-ins): {', '.join(on_cpu)}")
    if args.option:
        print(f"method options: {' '.join(args.option)}")
    print(format_table(result))
    for line in result["story"]:
        print(f"- {line}")
    if result["kd"]:
        print(f"KD student trained off chip in {result['kd']['train_s']:.1f} s "
              f"({result['kd']['epochs']} epochs, T = {result['kd']['temperature']:g}); "
              "not counted in the times above")
    print(f"wall time {result['wall_s']:.1f} s")
    if args.out:
        print(f"results written to {args.out} (plots {', '.join(map(str, pngs))})")
    return 0
