"""End-to-end speed: LeNet-5 on the 10,000 MNIST test images with every non-ideality, on the CPU.

The device is ``benchmarks/devices/all-nonidealities.toml`` (the JxCDC 2020 cell: 16 levels,
sigma 0.1, SA0 9.04 %, SA1 1.75 %, plus 1 % read noise per read); the hardware is the default
(128x128 arrays, differential pairs, 8-bit bit-serial DAC, 8-bit calibrated ADC). The chip is
programmed and calibrated once (seed 0, on training images), then the data set's held-out
test images (the 10,000 t10k images with the official split; the last 2,000 of them when only
the t10k files are there) run through it with ``Chip.evaluate`` in its default batches of 500,
as ``xbar simulate`` does. Only test images are scored: the accuracy it prints is a test
accuracy, never one on the teacher's training images.

It prints the programming + calibration time, the evaluation time, images per second, and
where the evaluation time goes: inside :meth:`AnalogMatrix.matmul` and ``matmul_patches``
per layer (the kernel, with a convolution's im2col inside it) and outside (pooling, ReLU,
torch glue). ``--torch-threads`` sets torch's intra-op threads (default: torch's own).

    python benchmarks/lenet_speed.py [--repeats N] [--torch-threads N] [--out FILE.json]
                                     [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads  # noqa: E402
from xbar.analog import AnalogMatrix  # noqa: E402
from xbar.config import load_hardware  # noqa: E402
from xbar.devices.files import resolve_device  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.data.workflow import calibration_inputs, load_teacher  # noqa: E402
from xbar.files import write_json  # noqa: E402

DEVICE_FILE = Path(__file__).resolve().parent / "devices" / "all-nonidealities.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="evaluations timed (best kept)")
    ap.add_argument("--data-dir", help="MNIST files (default: the project's data search)")
    ap.add_argument("--out", default="results/lenet_speed.json")
    ap.add_argument("--torch-threads", type=int, help="torch intra-op threads")
    args = ap.parse_args()
    configure_threads()  # before Numba starts its pool (see xbar.threads)
    import torch
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    teacher = load_teacher("lenet5", "mnist", args.data_dir)
    data = teacher.dataset
    x, y = data.x_test, data.y_test  # held-out images only (never the training split)
    device = resolve_device(str(DEVICE_FILE))
    config = load_hardware(None).xbar
    t0 = time.perf_counter()
    chip = Chip.program(teacher.model, device, config, 0, "column", teacher.label,
                        data.input_shape)
    chip.calibrate(calibration_inputs(data, seed=0))
    t_program = time.perf_counter() - t0
    chip.evaluate(x[:500], y[:500])  # compile and warm up outside the timing (test images)

    in_matmul: dict[int, float] = {}
    plain = {name: getattr(AnalogMatrix, name) for name in ("matmul", "matmul_patches")
             if hasattr(AnalogMatrix, name)}  # matmul_patches: since issue 11

    def timed(name: str):  # noqa: ANN202
        def run(self: AnalogMatrix, *a: object, **kw: object) -> np.ndarray:
            t = time.perf_counter()
            out = plain[name](self, *a, **kw)
            in_matmul[id(self)] = in_matmul.get(id(self), 0.0) + time.perf_counter() - t
            return out
        return run

    best, accuracy, split = float("inf"), 0.0, {}
    for _ in range(args.repeats):
        in_matmul.clear()
        for name in plain:
            setattr(AnalogMatrix, name, timed(name))
        try:
            t0 = time.perf_counter()
            accuracy = chip.evaluate(x, y)
            elapsed = time.perf_counter() - t0
        finally:
            for name, fn in plain.items():
                setattr(AnalogMatrix, name, fn)
        if elapsed < best:
            best = elapsed
            split = {layer.layer_name: in_matmul.get(id(layer.matrix), 0.0)
                     for layer in chip.layers}
    print(f"LeNet-5, {len(x)} held-out MNIST test images (no training image scored; "
          f"{data.note.rstrip('.')}), device {device.name}, numba threads "
          f"{numba.get_num_threads()} ({numba.threading_layer()} layer), torch threads "
          f"{torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"program + calibrate {t_program:.2f} s; evaluate {best:.2f} s "
          f"({len(x) / best:.0f} images/s, best of {args.repeats}); test accuracy "
          f"{100 * accuracy:.2f} % on {len(x)} test images")
    for layer in chip.layers:
        m = layer.matrix
        print(f"  {layer.layer_name:<12} {m.n_out:>4} x {m.n_in:<5} matmul "
              f"{split[layer.layer_name]:6.2f} s")
    rest = best - sum(split.values())
    print(f"  {'outside matmul (im2col, pooling, glue)':<40} {rest:6.2f} s")
    write_json(args.out, {"images": len(x), "images_split": "test", "dataset_note": data.note,
                          "evaluate_s": best, "program_s": t_program,
                          "accuracy": accuracy, "matmul_s": split,
                          "threads": numba.get_num_threads(),
                          "torch_threads": torch.get_num_threads()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
