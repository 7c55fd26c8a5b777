"""Where IR drop shows: LeNet-5 MNIST accuracy against array size and wire resistance on the
JxCDC 2020 cell (device ``charan2020-jxcdc``: 16 levels, sigma 0.1, SA0 9.04 %, SA1 1.75 %),
and the time the wires cost (docs/ir_drop.md, docs/speed.md).

For each array size (rows = cols = N) and wire resistance r per cell pitch, one chip (seed 0:
the same cells for every r, since the wires change reads, not programming) is programmed,
calibrated on 256 training images (DAC and ADC ranges, through the wires), and scored on the
first ``--images`` held-out test images. Access resistance: ``--access`` ohm (default 0: the
cell's conductances as given). r: 0 (ideal wires), 0.6, 1.8 and 6.4 ohm: DNN+NeuroSim V1.3's
4 F and 12 F pitches of its 1T1R cell at 65 nm, and the 12 F pitch at 22 nm (docs/ir_drop.md).

``--speed``: LeNet-5 on ``--images`` test images at 128 x 128 with r = 0 and r = 1.8 ohm, the
programming (which solves every array's network once) and the evaluation timed separately
in one run, after an untimed warm-up (500 images, r = 0: imports, compiled kernels), the two
chips' evaluations alternating ``--repeats`` times (best kept); the ratio is what
docs/speed.md reports.

Run single-threaded (NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1):

    python benchmarks/ir_drop_accuracy.py [--model NAME|FILE --dataset NAME] [--images N]
        [--sizes 64 128 256 512]
        [--wires 0 0.6 1.8 6.4] [--access OHM] [--speed] [--out results/ir_drop_accuracy.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads  # noqa: E402
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig  # noqa: E402
from xbar.devices import resolve_device  # noqa: E402
from xbar.files import write_json  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.data.workflow import calibration_inputs, load_teacher  # noqa: E402


def run_one(teacher, device, x, y, rows: int, r: float, access: float, seed: int = 0
            ) -> dict:
    data = teacher.dataset
    config = XbarConfig(ArrayConfig(rows=rows, cols=rows, wire_resistance_ohm=r,
                                    access_resistance_ohm=access), DACConfig(), ADCConfig())
    t0 = time.perf_counter()
    chip = Chip.program(teacher.model, device, config, seed, "column", teacher.label,
                        data.input_shape)
    for layer in chip.layers:          # the network solves, counted in programming
        layer.matrix.read_conductances()
    chip.calibrate(calibration_inputs(data, seed=0))
    t1 = time.perf_counter()
    acc = chip.evaluate(x, y)
    t2 = time.perf_counter()
    # Current the wires leave to the sense amplifiers: all read conductances over the cells'.
    kept = [float(np.sum(lay.matrix.read_conductances(), dtype=np.float64)
                  / np.sum(lay.matrix.g_us, dtype=np.float64)) for lay in chip.layers]
    return {"rows": rows, "wire_ohm": r, "access_ohm": access, "accuracy": acc,
            "program_s": t1 - t0, "evaluate_s": t2 - t1, "current_kept_by_layer": kept}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--wires", type=float, nargs="+", default=[0.0, 0.6, 1.8, 6.4])
    ap.add_argument("--access", type=float, default=0.0)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="--speed: evaluations per chip")
    ap.add_argument("--data-dir")
    ap.add_argument("--model", default="lenet5",
                    help="zoo name or torch.save'd model file (default lenet5)")
    ap.add_argument("--dataset", default="mnist", help="its data set (default mnist)")
    ap.add_argument("--device", default="charan2020-jxcdc",
                    help="device preset or file (default charan2020-jxcdc)")
    ap.add_argument("--out", default="results/ir_drop_accuracy.json")
    args = ap.parse_args()
    configure_threads()
    import torch
    torch.set_num_threads(1)
    teacher = load_teacher(args.model, args.dataset, args.data_dir)
    data = teacher.dataset
    x, y = data.x_test[:args.images], data.y_test[:args.images]   # held-out images only
    device = resolve_device(args.device)
    rows = []
    if args.speed:
        run_one(teacher, device, x[:500], y[:500], 128, 0.0, args.access)   # warm-up, untimed
        chips, program_s, best = {}, {}, {}
        for r in (0.0, 1.8):
            config = XbarConfig(ArrayConfig(rows=128, cols=128, wire_resistance_ohm=r,
                                            access_resistance_ohm=args.access),
                                DACConfig(), ADCConfig())
            t0 = time.perf_counter()
            chip = Chip.program(teacher.model, device, config, 0, "column", teacher.label,
                                data.input_shape)
            for layer in chip.layers:
                layer.matrix.read_conductances()
            chip.calibrate(calibration_inputs(data, seed=0))
            program_s[r], chips[r], best[r] = time.perf_counter() - t0, chip, float("inf")
        for _ in range(args.repeats):            # alternating: the load drifts, not the code
            for r, chip in chips.items():
                t0 = time.perf_counter()
                acc = chip.evaluate(x, y)
                best[r] = min(best[r], time.perf_counter() - t0)
                rows.append({"wire_ohm": r, "evaluate_s": time.perf_counter() - t0,
                             "program_s": program_s[r], "accuracy": acc})
        for r in chips:
            print(f"128x128 r={r:g}: program+calibrate {program_s[r]:.2f} s, evaluate "
                  f"{best[r]:.2f} s (best of {args.repeats}), accuracy "
                  f"{100 * rows[-1 if r else -2]['accuracy']:.2f} %")
        print(f"ratio with/without wires: evaluate {best[1.8] / best[0.0]:.2f}, program+"
              f"calibrate+evaluate {(program_s[1.8] + best[1.8]) / (program_s[0.0] + best[0.0]):.2f}")
    else:
        print(f"{teacher.label}, {len(x)} held-out {data.name} test images, {device.name}, "
              f"seed 0, access "
              f"{args.access:g} ohm; teacher FP32 {100 * teacher.software_accuracy:.2f} %")
        print("| rows x cols | " + " | ".join(f"r = {r:g} ohm" for r in args.wires) + " |")
        print("|---|" + "---|" * len(args.wires))
        for n in args.sizes:
            line = []
            for r in args.wires:
                rows.append(run_one(teacher, device, x, y, n, r, args.access))
                s = rows[-1]
                line.append(f"{100 * s['accuracy']:.1f} % ({min(s['current_kept_by_layer']):.2f})")
            print(f"| {n} x {n} | " + " | ".join(line) + " |", flush=True)
    write_json(args.out, {"images": len(x), "device": device.name, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
