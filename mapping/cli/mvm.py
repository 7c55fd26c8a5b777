"""``xbar mvm``: one analog matrix-vector product on a device, against float matmul."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

from xbar.errors import ConfigError
from xbar.mapping.cli.common import (add_backend_arg, add_device_arg, add_hw_arg, count_arg,
                                     dumps_json, hardware_spec, seed_arg)

COMMANDS = {"mvm": "run the analog MVM kernel once and compare to float"}


def _shape(text: str) -> tuple[int, int]:
    try:
        n_out, n_in = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must look like OUTxIN (e.g. 256x1024), "
                                         f"got {text!r}") from None
    if n_out < 1 or n_in < 1:
        raise argparse.ArgumentTypeError(f"--shape sizes must be >= 1, got {text!r}")
    return n_out, n_in


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mvm", help=COMMANDS["mvm"],
                       description="Program a random Gaussian weight matrix onto tiled arrays "
                                   "of a device and multiply a batch of uniform [0, 1) inputs "
                                   "through DAC, noisy arrays and ADC; print the error "
                                   "against float64 matmul.")
    add_device_arg(p)
    add_hw_arg(p)
    p.add_argument("--shape", type=_shape, default=(256, 1024), metavar="OUTxIN",
                   help="weight matrix shape (default 256x1024)")
    p.add_argument("--batch", type=count_arg, default=256, metavar="N",
                   help="input vectors multiplied together (default %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed (0 to 2**32 - 1; default 0)")
    add_backend_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from xbar.analog import AnalogMatrix
    from xbar.config import load_hardware
    from xbar.devices import resolve_device
    from xbar.kernel_torch import resolve_backend
    from xbar.resources import check_memory

    if args.batch < 1:
        raise ConfigError(f"--batch = {args.batch} is invalid; allowed: >= 1")

    backend = resolve_backend(args.backend)  # before any work: cuda without a GPU fails here

    n_out, n_in = args.shape
    # Per input vector: float32 and float64 inputs, the DAC slices, the outputs and the two
    # float64 references; per weight: the conductances, targets and effective weights of
    # both cells of a pair.
    check_memory(args.batch * (12 * n_in + 8 * n_in + 32 * n_out) + 48 * n_out * n_in,
                 f"--batch {args.batch} with --shape {n_out}x{n_in}",
                 "inputs, outputs and programmed cells")
    device = resolve_device(args.device)
    args.hw, args.hw_label = hardware_spec(args.device, args.hw)
    config = load_hardware(args.hw).xbar
    rng_weights, rng_cells, rng_inputs, rng_reads = np.random.default_rng(args.seed).spawn(4)
    w = rng_weights.standard_normal((n_out, n_in))
    x = rng_inputs.random((args.batch, n_in)).astype(np.float32)
    t0 = time.perf_counter()
    m = AnalogMatrix.program(w, device, config, rng_cells)
    m.backend = backend
    m.calibrate_adc(x[: min(64, len(x))], x_max=1.0)
    t1 = time.perf_counter()
    reads_ideal = copy.deepcopy(rng_reads)     # the same read-noise draws, for the wires' share
    y = m.matmul(x, rng=rng_reads, x_max=1.0).astype(np.float64)
    t2 = time.perf_counter()
    exact = x.astype(np.float64) @ w.T

    def rel(ref: np.ndarray, y: np.ndarray = y) -> float:
        return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))

    a = config.array
    wired = a.wire_resistance_ohm > 0 or a.access_resistance_ohm > 0
    y_ideal = None
    if wired:  # the same cells, calibration and reads through ideal wires (docs/ir_drop.md)
        ideal = dataclasses.replace(m, config=config.replace(
            **{"array.wire_resistance_ohm": 0.0, "array.access_resistance_ohm": 0.0}))
        ideal.calibrate_adc(x[: min(64, len(x))], x_max=1.0)
        y_ideal = ideal.matmul(x, rng=reads_ideal, x_max=1.0).astype(np.float64)

    result = {
        "device": device.name, "seed": args.seed, "shape": [n_out, n_in], "batch": args.batch,
        "n_tiles": m.n_tiles, "n_cells": m.n_cells,
        "relative_error_vs_float": rel(exact),
        "relative_error_vs_level_weights": rel(x.astype(np.float64) @ m.quantised_weights().T),
        "relative_error_of_programmed_weights": float(
            np.linalg.norm(m.effective_weights() - w) / np.linalg.norm(w)),
        "relative_error_vs_float_ideal_wires": None if y_ideal is None else rel(exact, y_ideal),
        "relative_change_from_wires": None if y_ideal is None else rel(y_ideal),
        "program_s": t1 - t0, "mvm_s": t2 - t1, "backend": backend,
        "hardware": config.to_dict(),
    }
    if args.json:
        print(dumps_json(result))
        return 0
    d, c = config.dac, config.adc
    print(f"device   {device.name}: {device.summary()}")
    print(f"arrays   {a.rows}x{a.cols}, {a.weight_mapping} mapping, read {a.read_voltage_v} V; "
          f"DAC {d.input_bits} bits, {d.bits_per_read} per read; ADC {c.bits} bits, "
          f"{c.range_mode}")
    print(f"matrix   {n_out}x{n_in} on {m.n_tiles} tiles ({m.n_cells} cells), batch "
          f"{args.batch}, seed {args.seed}")
    print(f"error    {result['relative_error_vs_float']:.4f} relative (Frobenius) vs float "
          f"matmul; {result['relative_error_vs_level_weights']:.4f} vs the device's level "
          f"weights; programmed weights off by {result['relative_error_of_programmed_weights']:.4f}")
    if wired:
        print(f"wires    {a.wire_resistance_ohm:g} ohm per cell pitch, access transistor "
              f"{a.access_resistance_ohm:g} ohm (IR drop): "
              f"{result['relative_error_vs_float_ideal_wires']:.4f} vs float with ideal wires "
              f"(same cells and reads); the wires move the outputs by "
              f"{result['relative_change_from_wires']:.4f} relative")
    print(f"time     program {t1 - t0:.3f} s (incl. ADC calibration), MVM {t2 - t1:.3f} s "
          f"({backend} backend)")
    return 0
