"""The Numba analog MVM kernel for tiled 1T1R arrays.

Semantics, for a batch of inputs X (B x n_in) and programmed conductances G (n_in x n_phys,
uS) split into row tiles of ``rows`` word lines:

1. DAC. Each input pass (pass 0: the positive part max(x, 0); pass 1, only for signed
   inputs: the negative part max(-x, 0)) is quantised to integer codes
   ``rint(min(v / x_max, 1) * (2**input_bits - 1))`` (round half to even).
2. Bit slices. Codes are cut into ``n_slices = ceil(input_bits / k)`` slices of k =
   ``bits_per_read`` bits, least significant first; slice s drives each word line at
   ``a_i * v_unit`` volts, a_i = (code_i >> k s) & (2**k - 1), v_unit = V_read / (2**k - 1).
3. Array read. For every slice and row tile t, each bit line's current in uA is
   ``I_tc = v_unit * sum_{i in t} a_i G_ic``. Read noise is output-referred: one Gaussian per
   column and read with standard deviation ``read_noise * v_unit * sqrt(sum_i a_i^2 G_ic^2)``,
   which is equal in distribution to drawing each cell's conductance G_ic (1 + read_noise *
   N(0, 1)) afresh for the read (a sum of independent Gaussians; tests check it).
4. ADC. ``q = clip(rint(I / lsb_tc), 0, 2**adc_bits - 1)``; lsb_tc = I_range / (2**adc_bits - 1)
   per tile and column (set by the caller: full scale or calibrated).
5. Digital: shift-and-add over slices (``2**(k s) * q * lsb``), sum over row tiles, the
   negative pass subtracted. The caller subtracts column pairs (G+ - G-, or G - G_ref) and
   converts back to the weight domain.

The array read of step 3 is a BLAS GEMM on each tile's slice matrix (``np.dot`` inside the
kernel); steps 1, 2, 4 and 5 are parallel loops, each thread owning whole batch rows.
Random numbers come from a counter-based generator (splitmix64 of the call's key and the
index of (pass, slice, tile, sample, column)), so the result does not depend on how many
threads run or how the batch is split into chunks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * math.pi
_INV_2_32 = 1.0 / 4294967296.0


@njit(inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a bijective 64-bit hash with full avalanche."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def normal_pair(key: np.uint64, counter: np.uint64) -> tuple[float, float]:
    """Two independent N(0, 1) draws for (key, counter), by Box-Muller on one 64-bit hash.

    Each uniform has 32 bits, so draws are bounded by |z| < 6.7 (a tail mass of 2e-11).
    """
    h = _mix64(_mix64(counter) ^ key)
    u1 = (np.float64(h >> np.uint64(32)) + 0.5) * _INV_2_32
    u2 = (np.float64(h & np.uint64(0xFFFFFFFF)) + 0.5) * _INV_2_32
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(_TWO_PI * u2), r * math.sin(_TWO_PI * u2)


@njit(cache=True)
def normals(key: np.uint64, n: int) -> np.ndarray:
    """``n`` draws from the kernel's generator (counters 0..n-1), for statistical tests."""
    out = np.empty(n, np.float64)
    for c in range(0, n, 2):
        z0, z1 = normal_pair(key, np.uint64(c))
        out[c] = z0
        if c + 1 < n:
            out[c + 1] = z1
    return out


@njit(parallel=True, cache=True)
def mvm_kernel(x: np.ndarray, x_max: float, input_bits: int, bits_per_read: int,
               n_passes: int, g_tiles: np.ndarray, g2_tiles: np.ndarray, lsb: np.ndarray,
               adc_bits: int, read_noise: float, v_read: float, key: np.uint64,
               batch_offset: int, batch_total: int, calibrate: bool, acc: np.ndarray) -> None:
    """Bit-serial analog MVM of a batch over row tiles; accumulates into ``acc``.

    Args:
        x: Inputs, float32 (B, n_in).
        x_max: Input value mapped to the full DAC code (> 0).
        input_bits, bits_per_read: DAC resolution and bits applied per read.
        n_passes: 1 (inputs >= 0) or 2 (signed: positive part, then negative part).
        g_tiles: Conductances in uS, float32 (n_row_tiles, rows, n_phys); rows past n_in in
            the last tile are zero.
        g2_tiles: ``g_tiles ** 2`` (same shape) when read_noise > 0, else any float32 array.
        lsb: ADC step in uA per row tile and column, float64 (n_row_tiles, n_phys).
        adc_bits: ADC resolution.
        read_noise: Relative per-read conductance noise sigma.
        v_read: Word-line voltage of a full-scale slice, volts.
        key: Random key of this call.
        batch_offset, batch_total: Position of this chunk in the whole batch (noise counters).
        calibrate: If True, no noise or ADC: ``acc[t, c]`` is raised to the largest current
            (uA) seen in row tile t, column c (acc shaped (n_row_tiles, n_phys)).
        acc: float64 (B, n_phys) output, added to (pass 0) and subtracted from (pass 1).
    """
    n_batch, n_in = x.shape
    n_tiles, rows, n_phys = g_tiles.shape
    k = bits_per_read
    n_slices = (input_bits + k - 1) // k
    full_code = (1 << input_bits) - 1
    mask = (1 << k) - 1
    v_unit = v_read / mask
    adc_top = float((1 << adc_bits) - 1)
    noisy = read_noise > 0.0 and not calibrate
    codes = np.empty((n_batch, n_in), np.int32)
    a = np.empty((n_slices * n_batch, rows), np.float32)
    a2 = np.empty((n_slices * n_batch, rows), np.float32) if (noisy and k > 1) else a
    for p in range(n_passes):
        sign = 1.0 if p == 0 else -1.0
        for b in prange(n_batch):
            for i in range(n_in):
                v = sign * x[b, i]
                if v <= 0.0:
                    codes[b, i] = 0
                else:
                    codes[b, i] = np.int32(np.rint(min(v / x_max, 1.0) * full_code))
        for t in range(n_tiles):
            r0 = t * rows
            r_used = min(rows, n_in - r0)
            for b in prange(n_batch):
                for s in range(n_slices):
                    row = s * n_batch + b
                    shift = s * k
                    for i in range(r_used):
                        a[row, i] = np.float32((codes[b, r0 + i] >> shift) & mask)
                    for i in range(r_used, rows):
                        a[row, i] = np.float32(0.0)
            cur = np.dot(a, g_tiles[t])
            if noisy:
                if k > 1:
                    for row in prange(n_slices * n_batch):
                        for i in range(rows):
                            a2[row, i] = a[row, i] * a[row, i]
                sq = np.dot(a2, g2_tiles[t])
            else:
                sq = cur
            if calibrate:
                for c in prange(n_phys):
                    m = acc[t, c]
                    for row in range(n_slices * n_batch):
                        i_ua = v_unit * np.float64(cur[row, c])
                        if i_ua > m:
                            m = i_ua
                    acc[t, c] = m
                continue
            for b in prange(n_batch):
                gb = batch_offset + b
                for s in range(n_slices):
                    row = s * n_batch + b
                    weight = sign * float(1 << (k * s))
                    base = np.uint64((((p * n_slices + s) * n_tiles + t) * batch_total + gb)
                                     * n_phys)
                    for c0 in range(0, n_phys, 2):
                        z0 = 0.0
                        z1 = 0.0
                        if noisy:
                            z0, z1 = normal_pair(key, base + np.uint64(c0))
                        for c in range(c0, min(c0 + 2, n_phys)):
                            i_ua = v_unit * np.float64(cur[row, c])
                            if noisy:
                                z = z0 if c == c0 else z1
                                i_ua += read_noise * v_unit * math.sqrt(
                                    max(np.float64(sq[row, c]), 0.0)) * z
                            step = lsb[t, c]
                            q = np.rint(i_ua / step)
                            if q < 0.0:
                                q = 0.0
                            elif q > adc_top:
                                q = adc_top
                            acc[b, c] += weight * q * step
