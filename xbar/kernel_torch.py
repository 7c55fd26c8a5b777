"""The analog MVM kernel in PyTorch: the same semantics as :mod:`xbar.kernel`, on CUDA or CPU.

Every step is the Numba kernel's (see :mod:`xbar.kernel` for the model): DAC codes
``rint(min(v / x_max, 1) * (2**input_bits - 1))`` per pass (positive part, then for signed
inputs the negative part), bit slices of ``bits_per_read`` bits, one array read per slice and
row tile, output-referred read noise of standard deviation ``read_noise * v_unit *
sqrt(sum_i a_i**2 G_ic**2)``, ADC ``clip(rint(I / lsb), 0, 2**adc_bits - 1)``, shift-and-add
over slices, sum over row tiles, the negative pass subtracted. A bit line with no driven
cell (zero sum of squares) gets no noise, as in the Numba kernel (here the draw is made and
multiplied by sqrt(0) = 0, which keeps the stream's layout fixed).

Why PyTorch and not numba.cuda: torch is already a dependency (the mapping layers are torch
modules, so inputs can stay on the GPU between layers), the same code runs on torch's CPU
device, so CI checks the CUDA code path without a GPU (backend ``"torch-cpu"``), and the
per-tile GEMMs of every slice and row tile become one batched ``torch.bmm`` call on cuBLAS.

Arithmetic, kept equal to the Numba kernel's so that results match bit for bit with noise
off wherever the float32 GEMM does: slice matrices and conductances are float32 and the
array read is a float32 GEMM (TF32 is switched off for the call); DAC codes (float64
division by x_max, clipping to 1, ``torch.round``: half to even, as ``np.rint``), currents
(``v_unit * I`` in float64), the ADC division, rounding and clipping, and the accumulation
are float64, and the accumulator is added to in the Numba kernel's order (pass, row tile,
slice). Only the noise term ``read_noise * v_unit * sqrt(sum a**2 G**2) * N(0, 1)`` is
float32 (its rounding, about 1e-7 of one standard deviation, is far below an ADC step), which
saves memory traffic on the GPU. With conductances whose partial sums are exact in float32
(the tests' integer levels) the two backends agree bit for bit, calibrated ADC ranges
included; otherwise BLAS and cuBLAS may sum a bit line in another order, and a current
within float32 rounding of an ADC threshold may convert to the neighbouring code (rarely;
the tests bound it).

Random numbers: the noise comes from a ``torch.Generator`` on the compute device seeded with
the call's 64-bit key, drawn in a fixed order (chunk, pass, row tile, slice, sample,
column). The same key gives the same result run to run on the same device and chunk size;
the stream is not the Numba kernel's counter-based one (nor is CUDA's Philox stream the CPU
generator's), so across backends results are equal in distribution, not bit-identical.

Memory: the batch is processed in chunks of samples so that the largest intermediate (row
tiles x slices x samples x columns) stays under :data:`CHUNK_ELEMS` elements of the device;
results do not depend on the chunk size with noise off.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np
import torch

from xbar.backends import BACKENDS
from xbar.errors import ConfigError, ResourceError

__all__ = ["CHUNK_ELEMS", "CUBLAS_WORKSPACE", "conductance_tiles", "matmul_on",
           "mvm_torch", "peak_currents_on", "resolve_backend", "torch_device"]

CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS GEMMs (NVIDIA's documented setting;
torch refuses deterministic training on CUDA without it): set, when unset, as soon as the
cuda backend is chosen, before cuBLAS creates its handle."""

CHUNK_ELEMS = {"cuda": 1 << 27, "cpu": 1 << 21}
"""Largest (row tiles x slices x samples x columns) block per chunk, per device type: bounds
the peak memory (about 32 bytes per element with noise on: 4 GiB on CUDA, 64 MiB on the CPU)
without changing noise-free results. Large on CUDA because each chunk costs a Python loop of
row tiles x slices small additions."""


def resolve_backend(backend: str) -> str:
    """The backend that runs: ``"cpu"`` (Numba), ``"cuda"`` or ``"torch-cpu"``.

    ``auto`` is CUDA when ``torch.cuda.is_available()``, else the Numba CPU kernel;
    ``torch-cpu`` runs this module's kernel on torch's CPU device: the CI check of the CUDA
    code path, slower than ``cpu``.

    Raises:
        ConfigError: ``backend`` is not one of :data:`BACKENDS`.
        ResourceError: ``"cuda"`` asked for where torch sees no CUDA device.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend = {backend!r} is invalid; allowed: one of "
                          f"{', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "cuda" and not torch.cuda.is_available():
        raise ResourceError(f"backend 'cuda' needs a CUDA GPU, but torch {torch.__version__} "
                            "sees none (torch.cuda.is_available() is False); use backend "
                            "'cpu' or 'auto'")
    if backend == "cuda":  # before cuBLAS starts: it reads this once, when it creates a handle
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    return backend


def torch_device(backend: str) -> torch.device:
    """The torch device of a resolved backend: the GPU for ``"cuda"``, else the CPU."""
    return torch.device("cuda" if backend == "cuda" else "cpu")


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """Full float32 GEMMs on CUDA (TF32 would drop mantissa bits of the array read)."""
    if not torch.cuda.is_available():
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _slices(codes: torch.Tensor, n_tiles: int, rows: int, n_slices: int, k: int
            ) -> torch.Tensor:
    """Bit-slice matrices, float32 (n_tiles, n_slices * nb, rows); row s * nb + b."""
    nb, n_in = codes.shape
    if n_tiles * rows > n_in:  # rows past n_in in the last tile are not driven
        codes = torch.nn.functional.pad(codes, (0, n_tiles * rows - n_in))
    shifts = torch.arange(n_slices, device=codes.device, dtype=codes.dtype) * k
    a = (codes.unsqueeze(0) >> shifts.view(-1, 1, 1)) & ((1 << k) - 1)  # (S, nb, T*rows)
    a = a.view(n_slices, nb, n_tiles, rows).permute(2, 0, 1, 3)
    return a.reshape(n_tiles, n_slices * nb, rows).to(torch.float32)


def mvm_torch(x: torch.Tensor, x_max: float, input_bits: int, bits_per_read: int,
              n_passes: int, g_tiles: torch.Tensor, g2_tiles: torch.Tensor | None,
              lsb: torch.Tensor, adc_bits: int, read_noise: float, v_read: float, key: int,
              calibrate: bool, acc: torch.Tensor, chunk_elems: int | None = None) -> None:
    """Bit-serial analog MVM of a batch over row tiles; accumulates into ``acc``.

    All tensors live on one device. Args as :func:`xbar.kernel.mvm_kernel`, except:

    Args:
        x: Inputs, float32 (B, n_in).
        g_tiles: Conductances in uS, float32 (n_row_tiles, rows, n_phys), never stacked with
            their squares.
        g2_tiles: ``G ** 2`` in the same shape, needed when ``read_noise > 0`` and not
            ``calibrate``; else ignored.
        lsb: ADC step in uA, float64 (n_row_tiles, n_phys).
        key: Seed of this call's noise generator (0 <= key < 2**63).
        acc: float64 (B, n_phys) output, added to (pass 0) and subtracted from (pass 1); in
            calibrate mode (n_row_tiles, n_phys), raised to the largest noise-free current.
        chunk_elems: Largest intermediate per chunk, default :data:`CHUNK_ELEMS`.
    """
    dev = x.device
    n_batch, n_in = x.shape
    n_tiles, rows, n_phys = g_tiles.shape
    k = bits_per_read
    n_slices = (input_bits + k - 1) // k
    full_code = float((1 << input_bits) - 1)
    v_unit = v_read / ((1 << k) - 1)
    adc_top = float((1 << adc_bits) - 1)
    noisy = read_noise > 0.0 and not calibrate
    if noisy and g2_tiles is None:
        raise ConfigError("noisy reads need g2_tiles (the squared conductances)")
    if chunk_elems is None:
        chunk_elems = CHUNK_ELEMS["cuda" if dev.type == "cuda" else "cpu"]
    nb_max = max(1, chunk_elems // (n_tiles * n_slices * max(n_phys, rows)))
    gen = None
    if noisy:
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(key))
    step = lsb.view(n_tiles, 1, n_phys)
    with _no_tf32(), torch.no_grad():
        for b0 in range(0, n_batch, nb_max):
            xb = x[b0:b0 + nb_max].to(torch.float64)
            nb = len(xb)
            for p in range(n_passes):
                sign = 1.0 if p == 0 else -1.0
                v = sign * xb
                codes = torch.where(v > 0.0, torch.round(torch.clamp(v / x_max, max=1.0)
                                                         * full_code), 0.0).to(torch.int32)
                a = _slices(codes, n_tiles, rows, n_slices, k)
                cur = torch.bmm(a, g_tiles).to(torch.float64).mul_(v_unit)  # uA
                if calibrate:
                    torch.maximum(acc, cur.amax(dim=1), out=acc)
                    continue
                if noisy:  # the noise term in float32, added to the float64 current
                    sq = torch.bmm(a * a if k > 1 else a, g2_tiles)
                    z = torch.randn(sq.shape, generator=gen, device=dev, dtype=torch.float32)
                    cur += z.mul_(sq.sqrt_()).mul_(read_noise * v_unit)  # 0 where undriven
                    del sq, z
                out = cur.div_(step).round_().clamp_(0.0, adc_top).mul_(step)
                out = out.view(n_tiles, n_slices, nb, n_phys)
                for t in range(n_tiles):
                    for s in range(n_slices):
                        acc[b0:b0 + nb].add_(out[t, s], alpha=sign * float(1 << (k * s)))
                del cur, out, a


def to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A NumPy array as a tensor of ``dtype`` on ``device``."""
    return torch.as_tensor(np.ascontiguousarray(array)).to(device=device, dtype=dtype)


def conductance_tiles(m, device: torch.device, squares: bool
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``m``'s conductance tiles (and their squares if asked) as float32 on ``device``.

    Kept on the matrix between calls while ``m.g_us`` and ``m.config`` are the same objects
    (programming replaces ``g_us``, it never edits it in place), so a network's layers do not
    rebuild and copy their conductances for every batch.
    """
    cached = getattr(m, "_torch_tiles", None)
    if (cached is None or cached[0] is not m.g_us or cached[1] is not m.config
            or cached[2] != device):
        cached = [m.g_us, m.config, device, to_device(m._g_tiles(), device, torch.float32),
                  None]
        m._torch_tiles = cached
    if squares and cached[4] is None:
        cached[4] = to_device(m._g_tiles(square=True), device, torch.float32)
    return cached[3], cached[4] if squares else None


def matmul_on(m, x: torch.Tensor, key: int, x_max: float, signed: bool, sigma: float,
              device: torch.device) -> torch.Tensor:
    """``x @ W.T`` of an :class:`xbar.analog.AnalogMatrix` ``m`` on ``device``, float32.

    ``x`` is float32 (B, n_in), already checked; the result is on ``device``.
    """
    cfg = m.config
    dac, adc = cfg.dac, cfg.adc
    x = x.to(device=device, dtype=torch.float32)
    g, g2 = conductance_tiles(m, device, sigma > 0)
    lsb = to_device(m._lsb(), device, torch.float64)
    acc = torch.zeros((len(x), m.g_us.shape[1]), dtype=torch.float64, device=device)
    mvm_torch(x, x_max, dac.input_bits, dac.bits_per_read, 2 if signed else 1, g, g2, lsb,
              adc.bits, sigma, cfg.array.read_voltage_v, key, False, acc)
    v_unit = cfg.array.read_voltage_v / ((1 << dac.bits_per_read) - 1)
    to_weight = x_max / (((1 << dac.input_bits) - 1) * v_unit * m.g_scale)
    pos = torch.as_tensor(m.pos_cols, device=device)
    neg = torch.as_tensor(m.neg_cols, device=device)
    w = to_device(to_weight, device, torch.float64)
    return ((acc[:, pos] - acc[:, neg]) * w).to(torch.float32)


def peak_currents_on(m, x: torch.Tensor, x_max: float, signed: bool, device: torch.device
                     ) -> np.ndarray:
    """Largest noise-free current (uA) per row tile and physical column of ``m`` on ``x``."""
    cfg = m.config
    x = x.to(device=device, dtype=torch.float32)
    g, _ = conductance_tiles(m, device, False)
    peak = torch.zeros((m.n_row_tiles, m.g_us.shape[1]), dtype=torch.float64, device=device)
    mvm_torch(x, x_max, cfg.dac.input_bits, cfg.dac.bits_per_read, 2 if signed else 1, g,
              None, torch.ones_like(peak), cfg.adc.bits, 0.0, cfg.array.read_voltage_v, 0,
              True, peak)
    return peak.cpu().numpy()
