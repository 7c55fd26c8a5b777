"""Speed of the analog MVM kernel against one float32 GEMM of the same shape, in one run.

For weight shapes (out x in) 128x128, 512x4608, 10x84 (LeNet-5's last layer) and 6x25
(LeNet-5's first convolution) and batches 1, 64 and 1024, with an 8-bit DAC read bit-serially
(``serial``: eight 1-bit reads) or at once (``multi``: one 8-bit read), an 8-bit calibrated
ADC and 1 % read noise (wan2022 device), prints the kernel's MACs per second (out * in *
batch / time) and its time relative to NumPy float32 ``X @ W.T`` (the faster of all cores
and one core). Faithful bit-serial simulation costs at least one GEMM per input bit (8 here)
over twice the columns (differential pairs), and output-referred read noise a second GEMM of
squares: 32 GEMM-equivalents, plus one Gaussian draw and one ADC conversion per column,
slice and row tile. A multi-bit read costs 4 GEMM-equivalents.

With ``--backend cuda`` the kernel is :mod:`xbar.kernel_torch` on the GPU (inputs already on
the device) and the reference GEMM is torch's float32 ``X @ W.T`` on the same GPU;
``torch-cpu`` runs that code path on the CPU (against the NumPy GEMM).

    python benchmarks/kernel_speed.py [--repeats N] [--no-read-noise] [--out FILE.json]
                                      [--mode serial|multi|both] [--batches 1,64,1024]
                                      [--clock wall|process]
                                      [--backend cpu|cuda|torch-cpu] [--baseline DIR]

``--baseline DIR`` (CPU backend): DIR holds another version's ``kernel.py``,
``kernel_noise.py`` and ``kernel_tables.py`` (for instance ``git show REV:xbar/kernel.py >
DIR/kernel.py``, and the two others); every shape is then also timed with that kernel, right
after this checkout's, in the same process against the same GEMM (the before/after protocol
of docs/speed.md on a shared machine), and the share of outputs that differ is printed. The
wrapper (``xbar/analog.py``: work units, kept plan) is this checkout's for both.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads
from xbar.devices import preset  # noqa: E402
from xbar.analog import AnalogMatrix  # noqa: E402
from xbar.config import XbarConfig  # noqa: E402
from xbar.errors import XbarError  # noqa: E402
from xbar.kernel_torch import resolve_backend  # noqa: E402
from xbar.files import write_json  # noqa: E402

SHAPES = [(128, 128), (512, 4608), (10, 84), (6, 25)]
MODES = {"serial": 1, "multi": 8}  # bits per read of the 8-bit DAC
BATCHES = [1, 64, 1024]


CLOCK = time.perf_counter  # --clock process: CPU seconds of this process


def best_time(fn, repeats: int, budget_s: float = 0.0) -> float:
    """The fastest of ``repeats`` calls, or of as many as fit in ``budget_s`` seconds when
    that is more (the minimum: the call's own cost, the scheduler's delays filtered out);
    :data:`MEDIANS` gets the median of the same calls."""
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < budget_s:
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    MEDIANS.append(float(np.median(times)))
    return min(times)


MEDIANS: list[float] = []
KERNEL_MODULES = ("kernel", "kernel_noise", "kernel_tables")


def load_baseline(folder: str):
    """The kernel module of another version (``folder``: its kernel.py, kernel_noise.py,
    kernel_tables.py), imported as a package of its own beside this checkout's."""
    texts = {}
    for name in KERNEL_MODULES:
        path = Path(folder) / f"{name}.py"
        if not path.is_file():
            sys.exit(f"kernel_speed.py: --baseline {folder}: no {name}.py there (it needs "
                     f"{', '.join(n + '.py' for n in KERNEL_MODULES)})")
        texts[name] = path.read_text()
    pkg = "baseline_" + hashlib.sha256("".join(texts.values()).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / "xbar_kernel_baselines"
    (root / pkg).mkdir(parents=True, exist_ok=True)
    (root / pkg / "__init__.py").write_text("")
    for name, text in texts.items():
        for dep in KERNEL_MODULES:
            text = text.replace(f"from xbar.{dep} import", f"from {pkg}.{dep} import")
        target = root / pkg / f"{name}.py"
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
    sys.path.insert(0, str(root))
    return importlib.import_module(f"{pkg}.kernel")
SHORT_BUDGET_S = 0.25  # calls under 1e7 MACs: timed for at least this long


def time_baseline(kernel_module, m: AnalogMatrix, x: np.ndarray, reps: int,
                  budget: float) -> tuple[float, float, float]:
    """Best and median time of ``m.matmul(x)`` with another version's kernel in place of
    this checkout's (``xbar.analog``'s names swapped for the calls, warmed up as the main
    loop does), and the share of outputs that differ from this checkout's for one noise
    key."""
    import xbar.analog as analog
    names = ("mvm_kernel", "mvm_kernel_serial")
    saved = [getattr(analog, n) for n in names]
    ours = m.matmul(x, rng=np.random.default_rng(2), x_max=1.0)
    try:
        for n in names:
            setattr(analog, n, getattr(kernel_module, n))
        theirs = m.matmul(x, rng=np.random.default_rng(2), x_max=1.0)  # compiles
        noise = np.random.default_rng(1)
        t_warm = time.perf_counter()
        while time.perf_counter() - t_warm < 0.3:
            m.matmul(x, rng=noise, x_max=1.0)
        t = best_time(lambda: m.matmul(x, rng=noise, x_max=1.0), reps, budget)
        median = MEDIANS[-1]
    finally:
        for n, f in zip(names, saved):
            setattr(analog, n, f)
    return t, median, float(np.mean(ours != theirs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/kernel_speed.json")
    ap.add_argument("--no-read-noise", action="store_true",
                    help="the same device with read_noise = 0 (no noise draws, no squares)")
    ap.add_argument("--backend", choices=("auto", "cpu", "cuda", "torch-cpu"), default="cpu",
                    help="cpu: the Numba kernel (default); cuda; torch-cpu; auto")
    ap.add_argument("--baseline", metavar="DIR",
                    help="time another version's kernel modules from DIR as well, alternating "
                         "(CPU backend)")
    ap.add_argument("--mode", choices=("serial", "multi", "both"), default="both",
                    help="bit-serial reads, one multi-bit read, or both (default)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)),
                    help="comma-separated batch sizes (default 1,64,1024)")
    ap.add_argument("--clock", choices=("wall", "process"), default="wall",
                    help="process: CPU time of the process instead of wall time (with "
                         "NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1: a per-core figure that a "
                         "busy machine disturbs less)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "process" else time.perf_counter
    batches = [int(b) for b in args.batches.split(",")]
    modes = list(MODES) if args.mode == "both" else [args.mode]
    try:
        backend = resolve_backend(args.backend)
    except XbarError as exc:
        sys.exit(f"kernel_speed.py: {exc}")  # exit status 1 with the message
    import torch
    cuda = backend == "cuda"
    baseline = None
    if args.baseline:
        if backend != "cpu":
            sys.exit(f"kernel_speed.py: --baseline needs --backend cpu, not {backend}")
        baseline = load_baseline(args.baseline)

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
          f"DAC, 8-bit ADC")
    print(f"{'mode':>6} {'shape (out x in)':>17} {'batch':>6} {'kernel s':>10} "
          f"{'median s':>10} {'GEMM s':>10} {'kernel MAC/s':>13} {'x GEMM':>8}")
    for mode, (n_out, n_in) in ((mode, shape) for mode in modes for shape in SHAPES):
        w = rng.normal(size=(n_out, n_in)).astype(np.float32)
        config = XbarConfig().replace(**{"dac.bits_per_read": MODES[mode]})
        m = AnalogMatrix.program(w, device, config, rng)
        m.backend = backend
        m.calibrate_adc(rng.uniform(0, 1, (64, n_in)))
        for batch in batches:
            x = rng.uniform(0, 1, (batch, n_in)).astype(np.float32)
            noise = np.random.default_rng(1)
            # Compile, and warm up outside the timing: the first calls of a shape also pay
            # for the allocator's first touch of the threads' work buffers, and Numba's
            # work-queue threads often share one core for the first ~0.1 s of a shape's
            # calls (measured: a 2-thread 128x128 call at its 1-thread time for its first
            # ~10 calls, then at half): at least 2 calls and 0.3 s.
            t_warm = time.perf_counter()
            for i in range(1000):
                m.matmul(x, rng=noise, x_max=1.0)
                if i >= 1 and time.perf_counter() - t_warm > 0.3:
                    break
            # Short calls get more repeats: their two threads' start is at the mercy of the
            # OS scheduler (bimodal times, one thread or two, on a shared machine), so they
            # are timed for SHORT_BUDGET_S (hundreds of calls); the median is kept as well.
            work = batch * n_in * n_out
            reps = (max(args.repeats, 15) if work < 1e7 else args.repeats if work < 1e8
                    else max(1, args.repeats - 1))
            budget = SHORT_BUDGET_S if work < 1e7 else 0.0
            if cuda:  # data already on the GPU, as between layers of a network
                xt, wt = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
                t_kernel = best_time(lambda: (m.matmul_tensor(xt, rng=noise, x_max=1.0),
                                              sync()), reps, budget)
                t_median = MEDIANS[-1]
                t_gemm = best_time(lambda: (xt @ wt.T, sync()), max(5, reps))
            else:
                t_kernel = best_time(lambda: m.matmul(x, rng=noise, x_max=1.0), reps, budget)
                t_median = MEDIANS[-1]
                if baseline is not None:  # the other kernel, right after, same inputs
                    t_base, med_base, differ = time_baseline(baseline, m, x, reps, budget)
                # One GEMM: the faster of BLAS on all cores and on one (on a busy machine a
                # small multi-threaded GEMM can wait a whole time slice for its second core).
                t_gemm = best_time(lambda: x @ w.T, max(5, reps))
                with threadpool_limits(1, user_api="blas"):
                    t_gemm = min(t_gemm, best_time(lambda: x @ w.T, max(5, reps)))
            macs = n_out * n_in * batch
            rows.append(dict(mode=mode, n_out=n_out, n_in=n_in, batch=batch, kernel_s=t_kernel,
                             kernel_median_s=t_median, gemm_s=t_gemm,
                             kernel_macs_per_s=macs / t_kernel,
                             ratio_to_gemm=t_kernel / t_gemm))
            print(f"{mode:>6} {f'{n_out}x{n_in}':>17} {batch:>6} {t_kernel:>10.4g} "
                  f"{t_median:>10.4g} {t_gemm:>10.4g} "
                  f"{macs / t_kernel:>13.3g} {t_kernel / t_gemm:>8.1f}")
            if baseline is not None:
                rows[-1].update(baseline_s=t_base, baseline_median_s=med_base,
                                baseline_ratio_to_gemm=t_base / t_gemm,
                                outputs_differing=differ)
                print(f"{'':>6} {'baseline':>17} {batch:>6} {t_base:>10.4g} "
                      f"{med_base:>10.4g} {t_gemm:>10.4g} "
                      f"{macs / t_base:>13.3g} {t_base / t_gemm:>8.1f}  outputs differing: "
                      f"{100 * differ:.3g} %")
    big = max(batches)
    for mode in modes:  # time per MAC of each shape over that of the largest, at the top batch
        per_mac = {(r["n_out"], r["n_in"]): r["kernel_s"] / (r["n_out"] * r["n_in"])
                   for r in rows if r["mode"] == mode and r["batch"] == big}
        base = per_mac[SHAPES[1]]
        print(f"{mode}: time per MAC at batch {big} relative to 512x4608: " + ", ".join(
            f"{o}x{i} {v / base:.2f}" for (o, i), v in per_mac.items()))
        med = {(r["n_out"], r["n_in"]): r["kernel_median_s"] / (r["n_out"] * r["n_in"])
               for r in rows if r["mode"] == mode and r["batch"] == big}
        print(f"{mode}: the same with median times: " + ", ".join(
            f"{o}x{i} {v / med[SHAPES[1]]:.2f}" for (o, i), v in med.items()))
    meta = {"backend": backend, "threads": numba.get_num_threads(), "clock": args.clock,
            "rows": rows}
    if backend == "cpu":
        meta["threading_layer"] = numba.threading_layer()
        print(f"numba threading layer: {meta['threading_layer']}")
    if cuda:
        meta["gpu"] = torch.cuda.get_device_name()
        meta["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    write_json(args.out, meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
