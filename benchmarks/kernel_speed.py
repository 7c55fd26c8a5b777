"""Speed of the analog MVM kernel against one float32 GEMM of the same shape, in one run.

For weight shapes (out x in) 128x128, 512x4608 and 10x84 and batches 1, 64 and 1024, with an
8-bit bit-serial DAC, an 8-bit calibrated ADC and 1 % read noise (wan2022 device), prints the
kernel's MACs per second (out * in * batch / time) and its time relative to NumPy float32
``X @ W.T``. Faithful bit-serial simulation costs at least one GEMM per input bit (8 here),
and output-referred read noise a second GEMM of squares (so 16 GEMM-equivalents), plus one
Gaussian draw and one ADC conversion per column, slice and row tile.

With ``--backend cuda`` the kernel is :mod:`xbar.kernel_torch` on the GPU (inputs already on
the device) and the reference GEMM is torch's float32 ``X @ W.T`` on the same GPU;
``torch-cpu`` runs that code path on the CPU (against the NumPy GEMM).

    python benchmarks/kernel_speed.py [--repeats N] [--no-read-noise] [--out FILE.json]
                                      [--backend cpu|cuda|torch-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads
from xbar.devices import preset  # noqa: E402
from xbar.analog import AnalogMatrix  # noqa: E402
from xbar.config import XbarConfig  # noqa: E402
from xbar.errors import XbarError  # noqa: E402
from xbar.kernel_torch import resolve_backend  # noqa: E402

SHAPES = [(128, 128), (512, 4608), (10, 84)]
BATCHES = [1, 64, 1024]


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/kernel_speed.json")
    ap.add_argument("--no-read-noise", action="store_true",
                    help="the same device with read_noise = 0 (no noise draws, no squares)")
    ap.add_argument("--backend", choices=("auto", "cpu", "cuda", "torch-cpu"), default="cpu",
                    help="cpu: the Numba kernel (default); cuda; torch-cpu; auto")
    args = ap.parse_args()
    try:
        backend = resolve_backend(args.backend)
    except XbarError as exc:
        sys.exit(f"kernel_speed.py: {exc}")  # exit status 1 with the message
    import torch
    cuda = backend == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()
    configure_threads()  # before Numba starts its pool (see xbar.threads)
    rng = np.random.default_rng(0)
    device = preset("wan2022")
    if args.no_read_noise:
        device = device.replace(read_noise=0.0)
    rows = []
    print(f"backend {backend}"
          f"{' (' + torch.cuda.get_device_name() + ')' if cuda else ''}, numba threads "
          f"{numba.get_num_threads()}, torch threads {torch.get_num_threads()}, cpus "
          f"{os.cpu_count()}, device {device.name} (read noise {device.read_noise}), 8-bit "
          f"bit-serial DAC, 8-bit ADC")
    print(f"{'shape (out x in)':>17} {'batch':>6} {'kernel s':>10} {'GEMM s':>10} "
          f"{'kernel MAC/s':>13} {'x GEMM':>8}")
    for n_out, n_in in SHAPES:
        w = rng.normal(size=(n_out, n_in)).astype(np.float32)
        m = AnalogMatrix.program(w, device, XbarConfig(), rng)
        m.backend = backend
        m.calibrate_adc(rng.uniform(0, 1, (64, n_in)))
        for batch in BATCHES:
            x = rng.uniform(0, 1, (batch, n_in)).astype(np.float32)
            noise = np.random.default_rng(1)
            m.matmul(x[:1], rng=noise, x_max=1.0)  # compile outside the timing
            reps = args.repeats if batch * n_in * n_out < 1e8 else max(1, args.repeats - 1)
            if cuda:  # data already on the GPU, as between layers of a network
                xt, wt = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
                t_kernel = best_time(lambda: (m.matmul_tensor(xt, rng=noise, x_max=1.0),
                                              sync()), reps)
                t_gemm = best_time(lambda: (xt @ wt.T, sync()), max(5, reps))
            else:
                t_kernel = best_time(lambda: m.matmul(x, rng=noise, x_max=1.0), reps)
                t_gemm = best_time(lambda: x @ w.T, max(5, reps))
            macs = n_out * n_in * batch
            rows.append(dict(n_out=n_out, n_in=n_in, batch=batch, kernel_s=t_kernel,
                             gemm_s=t_gemm, kernel_macs_per_s=macs / t_kernel,
                             ratio_to_gemm=t_kernel / t_gemm))
            print(f"{f'{n_out}x{n_in}':>17} {batch:>6} {t_kernel:>10.4g} {t_gemm:>10.4g} "
                  f"{macs / t_kernel:>13.3g} {t_kernel / t_gemm:>8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    meta = {"backend": backend, "threads": numba.get_num_threads(), "rows": rows}
    if cuda:
        meta["gpu"] = torch.cuda.get_device_name()
        meta["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
