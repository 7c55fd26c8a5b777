"""Work 5 benchmark: every fine-tuning strategy's accuracy over several chips and its chip cost.

Lv, Zhang, Wang, IEEE TCAD 2024: one multilevel cell per weight with device variation, read
disturb and a limited on/off ratio (the ``lv2024-mlc`` preset on the ``one-cell`` hardware;
docs/work5.md). Methods: one-shot, KD (``compare``'s built-in), variation-aware training
(``vat``), fine-tuning through the chip (``chip-ft``) and the I/O-guided progressive KD
fine-tuning (``io-kd``), all from :mod:`xbar.mapping.recovery.lv2024` through
:func:`xbar.mapping.recovery.compare.compare` (via :func:`xbar.mapping.recovery.lv2024.run`).

Usage (single-threaded, as measured in docs/work5.md)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/work5.py --chips 3
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/work5.py --cifar --sigma 0.1 \\
        --chips 2 --kd-epochs 2 --steps 60 --images 256 --cifar-test-limit 500
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/work5.py --served 0,1e4,1e5,1e6 \\
        --chips 2

MNIST LeNet-5 (the default) or, with ``--cifar``, CIFAR-10 on the width-reduced VGG-16
(``vgg16-narrow``, 1/8 of every width: the CPU-sized CIFAR-10 CNN). Prints one row per
method (accuracy mean +- std over chips, programming time and pulses including rewrites,
chip time after programming, images the chip ran, rewrite pulses, host training time) and
io-kd minus vat per chip; writes the full ``compare`` result as JSON (``--out``, default
``results/work5_<model>.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xbar.files import write_json
from xbar.mapping.data.workflow import load_teacher
from xbar.mapping.recovery.reproduce import ReproduceSettings
from xbar.mapping.recovery.lv2024 import REPRODUCE_METHODS, run


def _teacher(cifar: bool, test_limit: int | None) -> object:
    if not cifar:
        return load_teacher("lenet5", "mnist")
    from xbar.mapping.data.train import evaluate

    teacher = load_teacher("vgg16-narrow", "cifar10")
    ds = teacher.dataset
    if test_limit is not None and test_limit < len(ds.y_test):
        # evenly strided: the image-folder test set is ordered by class
        idx = np.linspace(0, len(ds.y_test) - 1, test_limit).round().astype(int)
        ds = dataclasses.replace(ds, x_test=ds.x_test[idx], y_test=ds.y_test[idx])
    return dataclasses.replace(teacher, dataset=ds,
                               software_accuracy=evaluate(teacher.model, ds.x_test, ds.y_test))


def table(result: dict) -> list[str]:
    """The printed table: one line per method."""
    lines = [f"{'method':9s} {'accuracy %':>15s} {'program s':>10s} {'pulses':>9s} "
             f"{'chip s':>8s} {'chip imgs':>9s} {'rewrites':>9s} {'host s':>8s}"]
    for name, m in result["methods"].items():
        lines.append(
            f"{name:9s} {100 * m['accuracy']:7.2f} +- {100 * m['accuracy_std']:4.2f} "
            f"{m['program_s']:10.4g} {m['pulses']:9.0f} {m['adapt_s']:8.3g} "
            f"{m.get('chip_inferences', 0):9.0f} {m.get('rewrite_pulses', 0):9.0f} "
            f"{m.get('offline_train_s', 0):8.1f}")
    return lines


def deployment(teacher: object, device: object, served: list[int], chips: int, seed: int,
               kd_epochs: int) -> list[dict]:
    """Read disturb on a deployed chip: the KD student programmed one-shot, its accuracy
    after serving each number of inferences in ``served`` (reads applied in closed form by
    :func:`xbar.mapping.recovery.techniques.chip_loop.serve_reads`; the converters stay as first
    calibrated, as on a chip in the field)."""
    from xbar.config import load_hardware
    from xbar.mapping.chip import Chip
    from xbar.mapping.data.workflow import calibration_inputs
    from xbar.mapping.geometry import layer_specs
    from xbar.mapping.recovery.techniques.chip_loop import serve_reads
    from xbar.mapping.recovery.techniques.kd import KDConfig, distill

    ds = teacher.dataset
    hw = load_hardware("one-cell")
    student, _ = distill(teacher.model, ds, device, hw.xbar, KDConfig(epochs=kd_epochs), seed)
    specs = layer_specs(student, tuple(ds.input_shape))
    rows = []
    for c in range(chips):
        chip = Chip.program(student, device, hw.xbar, seed + c, "column", "",
                            tuple(ds.input_shape))
        chip.calibrate(calibration_inputs(ds, seed=seed + c))
        done = 0
        reads: dict = {}
        for n in sorted(served):
            serve_reads(chip, specs, n - done, reads)   # accumulates the pulses per layer
            done = n
            rows.append({"chip": seed + c, "inferences": n,
                         "read_pulses_max": max(reads.values()),
                         "accuracy": chip.evaluate(ds.x_test, ds.y_test)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cifar", action="store_true", help="CIFAR-10 on vgg16-narrow")
    p.add_argument("--chips", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200, help="chip-ft steps; io-kd per layer")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--kd-epochs", type=int, default=10, help="KD and VAT epochs")
    p.add_argument("--images", type=int, default=1024, help="io-kd images measured per stage")
    p.add_argument("--methods", default=",".join(REPRODUCE_METHODS))
    p.add_argument("--cifar-test-limit", type=int, default=1000)
    p.add_argument("--sigma", type=float, default=None,
                   help="lognormal sigma of the lv2024-mlc cell (default: the preset's 0.3)")
    p.add_argument("--served", default=None,
                   help="instead of the comparison: the KD student's accuracy after serving "
                        "these numbers of inferences (read disturb), e.g. 0,1e4,1e5,1e6")
    p.add_argument("--io-start", default="student", choices=("student", "teacher"),
                   help="what io-kd programs first and fine-tunes")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    teacher = _teacher(args.cifar, args.cifar_test_limit)
    model = "vgg16-narrow" if args.cifar else "lenet5"
    settings = ReproduceSettings(works=("work5",), chips=args.chips, seed=args.seed,
                                 steps=args.steps, batch=args.batch, kd_epochs=args.kd_epochs)

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {text}", file=sys.stderr, flush=True)

    from xbar.devices.presets import preset
    device = preset("lv2024-mlc")
    if args.sigma is not None:
        device = device.replace(sigma=args.sigma)
    if args.served is not None:
        served = [int(float(v)) for v in args.served.split(",")]
        rows = deployment(teacher, device, served, args.chips, args.seed, args.kd_epochs)
        print(f"read disturb on a deployed {model} KD student, {device.name} (rate "
              f"{device.read_disturb_rate:g} per read toward {device.read_disturb_toward})")
        for r in rows:
            print(f"chip {r['chip']}: {r['inferences']:>10,} inferences, "
                  f"{r['read_pulses_max']:.3g} read pulses, {100 * r['accuracy']:.2f} %")
        out = Path(args.out or f"results/work5_{model}_served.json")
        write_json(out, {"rows": rows, "device": device.to_dict(),
                         "wall_s": time.perf_counter() - start})
        print(f"wrote {out}")
        return 0
    result = run(settings, teacher, say, methods=tuple(args.methods.split(",")),
                 images=args.images, device=device, io_start=args.io_start)
    wall = time.perf_counter() - start
    m = result["methods"]
    print(f"work 5 on {model} ({teacher.dataset.name}, {len(teacher.dataset.y_test)} test "
          f"images), lv2024-mlc (sigma {device.sigma:g}) one cell per weight, "
          f"{args.chips} chips, {wall:.0f} s")
    print("\n".join(table(result)))
    if "io-kd" in m and "vat" in m:
        gain = np.asarray(m["io-kd"]["accuracies"]) - np.asarray(m["vat"]["accuracies"])
        print(f"io-kd - vat: {100 * gain.mean():+.2f} +- {100 * gain.std():.2f} points "
              f"(per chip: {', '.join(f'{100 * g:+.2f}' for g in gain)}); paper: > +3 points")
    result["benchmark"] = {"command": " ".join(["python", "benchmarks/work5.py", *(argv or
                                                sys.argv[1:])]), "wall_s": wall,
                           "model": model, "torch_threads": 1}
    out = Path(args.out or f"results/work5_{model}.json")
    write_json(out, result, default=str)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
