"""VGG-16 on all 10,000 CIFAR-10 test images through the chip on a GPU, every non-ideality.

Full bit-serial fidelity: the default hardware (128x128 arrays, differential pairs, 8-bit DAC
read one bit at a time, 8-bit calibrated ADC) and the device of
``benchmarks/devices/all-nonidealities.toml`` (16 levels, programming variation, stuck-at
faults, 1 % read noise on every read). The whole network (im2col, pooling, the analog
layers' kernel :mod:`xbar.kernel_torch`) runs on the GPU (``Chip.use_backend("cuda")``),
calibration of the input and ADC ranges included. Prints program + calibrate time,
evaluation time, images/s, analog MACs/s, accuracy and the peak GPU memory of the evaluation
(``torch.cuda.max_memory_allocated``), and writes ``results/vgg16_cifar_gpu.json``.

Weights: by default the zoo's VGG-16 with its seed's initial weights (time and memory do not
depend on the weights; the accuracy is then chance level and is reported as such); with
``--trained`` the trained zoo teacher (read from the weight cache, or trained first: slow).

``--backend auto`` (the default) runs on CUDA; without a GPU it says so, runs an 8-image
smoke test on torch's CPU device (backend ``torch-cpu``, the same code path), writes nothing
and exits 0. ``--backend cpu`` measures the Numba kernel instead (the CPU reference figure:
give ``--limit``, all 10,000 images take hours on 2 cores) and writes the result like a GPU
run; the analog MACs per image and accuracy are the same quantities.

    python benchmarks/vgg16_cifar_gpu.py [--data-dir DIR] [--limit N] [--batch-size B]
                                         [--trained] [--seed S] [--out FILE.json]
                                         [--backend auto|cuda|cpu|torch-cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xbar.config import XbarConfig  # noqa: E402
from xbar.devices import resolve_device  # noqa: E402
from xbar.kernel_torch import resolve_backend  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.data.datasets import load_dataset  # noqa: E402
from xbar.mapping.data.workflow import calibration_inputs  # noqa: E402
from xbar.mapping.data.zoo import build_model  # noqa: E402
from xbar.files import write_json  # noqa: E402

DEVICE_FILE = ROOT / "benchmarks" / "devices" / "all-nonidealities.toml"
SMOKE_IMAGES = 8
SMOKE_CALIBRATION = (16, 256)  # images for input ranges, vectors per layer for ADC ranges


def macs_per_image(chip: Chip, x: torch.Tensor) -> int:
    """Analog MACs of one image: input vectors x n_in x n_out, summed over the layers."""
    total = 0
    hooks = []

    def count(mod, args) -> None:
        nonlocal total
        total += len(mod.input_columns(args[0])) * mod.matrix.n_in * mod.matrix.n_out

    for layer in chip.layers:
        hooks.append(layer.register_forward_pre_hook(count))
    saved = [layer.analog for layer in chip.layers]
    try:
        for layer in chip.layers:
            layer.analog = False  # digital, just to see the shapes
        with torch.no_grad():
            chip.module(x[:1].to(chip.torch_device))
    finally:
        for h in hooks:
            h.remove()
        for layer, analog in zip(chip.layers, saved):
            layer.analog = analog
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="where cifar10/ is (default: $XBAR_DATA or "
                    "../shared/data)")
    ap.add_argument("--limit", type=int, help="only N test images, evenly strided over the "
                    "test set (the image-folder release orders it by class)")
    ap.add_argument("--batch-size", type=int, default=500, help="images per forward pass")
    ap.add_argument("--trained", action="store_true",
                    help="the trained zoo VGG-16 (cached, or trained first) instead of "
                    "its initial weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/vgg16_cifar_gpu.json")
    ap.add_argument("--backend", default="auto", choices=("auto", "cuda", "cpu", "torch-cpu"),
                    help="auto: cuda, or a smoke test without a GPU (default)")
    args = ap.parse_args()

    smoke = args.backend == "auto" and not torch.cuda.is_available()
    if smoke:
        print(f"no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is "
              f"False): the timing needs a GPU; running a {SMOKE_IMAGES}-image smoke test "
              f"on backend torch-cpu instead, writing nothing")
    backend = "torch-cpu" if smoke else resolve_backend(args.backend)
    gpu = backend == "cuda"
    limit = SMOKE_IMAGES if smoke else args.limit

    data = load_dataset("cifar10", args.data_dir)
    if args.trained:
        from xbar.mapping.data.train import train_model
        model, info = train_model("vgg16", data, seed=args.seed)
        weights = f"trained (software accuracy {100 * info.test_accuracy:.2f} %)"
    else:
        torch.manual_seed(args.seed)
        model = build_model("vgg16", data.n_classes).eval()
        weights = "initial (untrained: accuracy is chance level)"
    x_test, y_test = data.x_test, data.y_test
    if limit is not None and limit < len(y_test):
        idx = np.linspace(0, len(y_test) - 1, limit).round().astype(int)
        x_test, y_test = x_test[idx], y_test[idx]
    device = resolve_device(str(DEVICE_FILE))
    config = XbarConfig()

    n_calib = 256
    if smoke:  # a small calibration: the point is that the code path runs
        import xbar.mapping.chip as chip_module
        n_calib, chip_module.ADC_CALIBRATION_VECTORS = SMOKE_CALIBRATION
    t0 = time.perf_counter()
    chip = Chip.program(model, device, config, args.seed, model_source="vgg16",
                        input_shape=data.input_shape)
    dev = chip.use_backend(backend).torch_device
    t_programmed = time.perf_counter()
    chip.calibrate(calibration_inputs(data, n=n_calib, seed=args.seed))
    t1 = time.perf_counter()
    macs = macs_per_image(chip, torch.from_numpy(x_test[:1]))

    chip.reset_reads()
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    correct = 0
    t2 = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(x_test), args.batch_size):
            xb = torch.from_numpy(x_test[lo:lo + args.batch_size]).to(dev)
            logits = chip.module(xb)
            if not bool(torch.isfinite(logits).all()):
                raise SystemExit("the chip returned NaN or infinite logits")
            yb = torch.from_numpy(np.asarray(y_test[lo:lo + args.batch_size])).to(dev)
            correct += int((logits.argmax(dim=1) == yb).sum())
    if gpu:
        torch.cuda.synchronize()
    t3 = time.perf_counter()
    peak = torch.cuda.max_memory_allocated() if gpu else None
    n = len(y_test)
    result = {
        "backend": backend, "gpu": torch.cuda.get_device_name() if gpu else None,
        "n_images": n, "batch_size": args.batch_size, "weights": weights,
        "device": device.name, "hardware": config.to_dict(), "seed": args.seed,
        "n_tiles": chip.n_tiles, "macs_per_image": macs, "program_s": t_programmed - t0,
        "calibrate_s": t1 - t_programmed,
        "evaluate_s": t3 - t2, "images_per_s": n / (t3 - t2),
        "analog_macs_per_s": macs * n / (t3 - t2), "hardware_accuracy": correct / n,
        "peak_gpu_bytes": peak,
    }
    a, d, c = config.array, config.dac, config.adc
    print(f"VGG-16 on {n} CIFAR-10 test images, backend {backend}"
          f"{' (' + result['gpu'] + ')' if result['gpu'] else ''}, weights {weights}")
    print(f"device {device.name}; arrays {a.rows}x{a.cols} {a.weight_mapping}; DAC "
          f"{d.input_bits} bits ({d.bits_per_read}/read); ADC {c.bits} bits {c.range_mode}; "
          f"{chip.n_tiles} tiles, {macs / 1e6:.0f} M analog MACs per image")
    print(f"program {t_programmed - t0:.1f} s, calibrate {t1 - t_programmed:.1f} s; "
          f"evaluate {t3 - t2:.2f} s "
          f"({n / (t3 - t2):.1f} images/s, {macs * n / (t3 - t2) / 1e9:.1f} GMAC/s); "
          f"accuracy {100 * correct / n:.2f} %")
    if smoke:
        print("smoke test done; run this on a machine with CUDA for the benchmark")
        return 0
    if gpu:
        print(f"peak GPU memory during evaluation {peak / 2**30:.2f} GiB "
              f"(torch.cuda.max_memory_allocated)")
    out = Path(args.out)
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
