"""``xbar simulate``: accuracy of a network programmed onto a device's crossbars."""

from __future__ import annotations

import argparse
import time

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_backend_arg, add_device_arg, add_hw_arg, add_model_arg,
                                     check_output, count_arg, dumps_json, hardware_spec, seed_arg)
from xbar.mapping.cli.lifetime import add_age_arg

COMMANDS = {"simulate": "accuracy of a network mapped onto RRAM crossbars"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help=COMMANDS["simulate"],
        description="Train (or read from the cache) the FP32 network, program it onto tiled "
                    "1T1R arrays of a device, calibrate DAC and ADC ranges on training images, "
                    "and measure test accuracy through the analog model (DAC, conductance "
                    "levels, programming variation, stuck-at faults, read noise, ADC).",
        epilog="A model FILE is a whole nn.Module saved with torch.save(model, FILE); loading "
               "it unpickles it, which runs code from the file: only use files you trust.")

    add_model_arg(p)
    p.add_argument("--dataset", metavar="NAME",
                   help="digits, mnist or cifar10 (default: the zoo model's own)")
    p.add_argument("--data-dir", metavar="DIR", help="where the data set files are "
                   "(default: $XBAR_DATA, else ../shared/data)")
    add_device_arg(p)
    add_hw_arg(p)
    p.add_argument("--seed", type=seed_arg, default=0,
                   help="chip seed: programming and read noise (0 to 2**32 - 1)")
    p.add_argument("--teacher-seed", type=seed_arg, default=0,
                   help="seed of the FP32 training (0 to 2**32 - 1)")
    p.add_argument("--scale", choices=("column", "layer"), default="column",
                   help="weight-to-conductance scale per output column or per layer")
    p.add_argument("--test-limit", type=count_arg, metavar="N",
                   help="evaluate only the first N test images")
    p.add_argument("--save-chip", metavar="FILE.h5", help="write the programmed chip to HDF5")
    add_age_arg(p)
    add_backend_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xbar.config import load_hardware
    from xbar.devices import resolve_device
    from xbar.kernel_torch import resolve_backend
    from xbar.mapping.chip import Chip
    from xbar.mapping.chip_file import FORMAT as CHIP_FORMAT
    from xbar.mapping.data.workflow import calibration_inputs, load_teacher, progress_printer

    backend = resolve_backend(args.backend)  # before any work: cuda without a GPU fails here

    if args.test_limit is not None and args.test_limit < 1:
        raise ConfigError(f"--test-limit = {args.test_limit} is invalid; allowed: >= 1")
    if args.save_chip:
        check_output(args.save_chip, "--save-chip", CHIP_FORMAT)
    device = resolve_device(args.device)
    args.hw, args.hw_label = hardware_spec(args.device, args.hw)
    config = load_hardware(args.hw).xbar
    teacher = load_teacher(args.model, args.dataset, args.data_dir, args.teacher_seed)
    data = teacher.dataset
    x_test, y_test = data.x_test, data.y_test
    software = teacher.software_accuracy
    if args.test_limit is not None:
        from xbar.mapping.data.train import evaluate
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
        software = evaluate(teacher.model, x_test, y_test)
    t0 = time.perf_counter()
    chip = Chip.program(teacher.model, device, config, args.seed, args.scale, teacher.label,
                        data.input_shape)
    chip.use_backend(backend).calibrate(calibration_inputs(data, seed=args.seed))
    chip.age_to(args.age, args.reads_per_s)   # calibrated at programming, then it ages
    t1 = time.perf_counter()
    hardware = chip.evaluate(x_test, y_test, progress=progress_printer(
        "evaluating", not args.json))
    t2 = time.perf_counter()
    if args.save_chip:
        chip.save(args.save_chip)
    result = {
        "model": teacher.label, "dataset": data.name, "dataset_note": data.note,
        "n_test": int(len(y_test)), "software_accuracy": software,
        "hardware_accuracy": hardware, "n_tiles": chip.n_tiles, "n_cells": chip.n_cells,
        "device": device.name, "hardware_preset": args.hw_label, "seed": args.seed,
        "teacher_seed": args.teacher_seed, "age_s": args.age,
        "reads_per_s": args.reads_per_s,
        "scale": args.scale, "program_s": t1 - t0, "evaluate_s": t2 - t1, "backend": backend,
        "device_parameters": device.to_dict(), "hardware": config.to_dict(),
        "layers": chip.describe(), "digital_layers": chip.digital_layers(),
    }
    if args.json:
        print(dumps_json(result))
        return 0
    a, d, c = config.array, config.dac, config.adc
    print(f"model      {teacher.label} on {data.summary()}")
    print(f"device     {device.name}: {device.summary()}")
    print(f"hardware   {args.hw_label}")
    print(f"arrays     {a.rows}x{a.cols} 1T1R, {a.weight_mapping} mapping, {args.scale} scale, "
          f"read {a.read_voltage_v} V; DAC {d.input_bits} bits ({d.bits_per_read}/read); "
          f"ADC {c.bits} bits, {c.range_mode} range")
    print(f"mapping    {len(chip.layers)} layers on {chip.n_tiles} tiles, {chip.n_cells} cells")
    for layer in chip.describe():
        print(f"  {layer['name']:<14} {layer['kind']:<13} {layer['weights'][0]:>5} x "
              f"{layer['weights'][1]:<6} {layer['tiles']:>4} tiles  input range "
              f"{layer['x_max']:.3g}{' signed' if layer['signed'] else ''}")
    for layer in chip.digital_layers():
        print(f"  {layer['name']:<14} {layer['kind']}, {layer['table'][0]} x "
              f"{layer['table'][1]} table, no cells")
    print(f"accuracy   software (FP32) {100 * software:.2f}%   hardware "
          f"{100 * hardware:.2f}%   ({len(y_test)} test images, seed {args.seed}"
          f"{f', {args.age:g} s after programming' if args.age else ''})")
    print(f"time       program + calibrate {t1 - t0:.2f} s, evaluate {t2 - t1:.2f} s "
          f"({backend} backend)")
    if args.save_chip:
        print(f"chip       written to {args.save_chip}")
    return 0
