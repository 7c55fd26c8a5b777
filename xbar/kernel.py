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
Random numbers come from a counter-based generator (a ziggurat on the splitmix64 hash of the
call's key and the index of (pass, slice, tile, sample, column)), so the result does not depend on how many
threads run or how the batch is split into chunks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xbar.errors import ConfigError
from xbar.rng import GOLDEN, mix64

_INV_2_32 = 1.0 / 4294967296.0


def _ziggurat_tables(n: int = 128, r: float = 3.442619855899,
                     v: float = 9.91256303526217e-3) -> np.ndarray:
    """Marsaglia and Tsang's (2000) ziggurat for N(0, 1): rows k (int bound), w, f per layer."""
    m1 = 2.0 ** 31
    kn, wn, fn = np.zeros(n), np.zeros(n), np.zeros(n)
    dn = tn = r
    q = v / math.exp(-0.5 * dn * dn)
    kn[0], kn[1] = (dn / q) * m1, 0.0
    wn[0], wn[n - 1] = q / m1, dn / m1
    fn[0], fn[n - 1] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(n - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = (dn / tn) * m1
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return np.stack([kn, wn, fn])


ZIGGURAT = _ziggurat_tables()
_ZIG_R = 3.442619855899


@njit(inline="always")
def _uniform(h: np.uint64) -> float:
    """(0, 1) from the top 32 bits of a hash."""
    return (np.float64(h >> np.uint64(32)) + 0.5) * _INV_2_32


@njit
def _normal_slow(h: np.uint64, hz: np.int64, iz: np.int64, zig: np.ndarray) -> float:
    """The ziggurat's rare paths (about 1.2 % of draws): wedges and the tail."""
    while True:
        x = hz * zig[1, iz]
        if iz == 0:  # tail beyond r, by Marsaglia's exponential method
            while True:
                h = mix64(h + GOLDEN)
                xt = -math.log(_uniform(h)) / _ZIG_R
                h = mix64(h + GOLDEN)
                y = -math.log(_uniform(h))
                if y + y >= xt * xt:
                    break
            return _ZIG_R + xt if hz > 0 else -_ZIG_R - xt
        h = mix64(h + GOLDEN)
        if zig[2, iz] + _uniform(h) * (zig[2, iz - 1] - zig[2, iz]) < math.exp(-0.5 * x * x):
            return x
        h = mix64(h + GOLDEN)
        hz = np.int64(np.int32(h & np.uint64(0xFFFFFFFF)))
        iz = np.int64((h >> np.uint64(32)) & np.uint64(127))
        if abs(hz) < zig[0, iz]:
            return hz * zig[1, iz]


@njit(inline="always")
def normal(key: np.uint64, counter: np.uint64, zig: np.ndarray) -> float:
    """N(0, 1) draw number ``counter`` of stream ``key``: a ziggurat on a splitmix64 hash.

    Counter-based, so any thread may draw any number in any order with the same result.
    The layer index and the value come from separate bits of the hash (Doornik's fix).
    """
    h = mix64(key + counter * GOLDEN)
    hz = np.int64(np.int32(h & np.uint64(0xFFFFFFFF)))
    iz = np.int64((h >> np.uint64(32)) & np.uint64(127))
    if abs(hz) < zig[0, iz]:
        return hz * zig[1, iz]
    return _normal_slow(h, hz, iz, zig)


@njit(cache=True)
def normals(key: np.uint64, n: int, zig: np.ndarray = ZIGGURAT) -> np.ndarray:
    """``n`` draws from the kernel's generator (counters 0..n-1), for statistical tests."""
    out = np.empty(n, np.float64)
    for c in range(n):
        out[c] = normal(key, np.uint64(c), zig)
    return out


@njit(parallel=True, cache=True)
def mvm_kernel(x: np.ndarray, x_max: float, input_bits: int, bits_per_read: int,
               n_passes: int, g_tiles: np.ndarray, g2_tiles: np.ndarray, lsb: np.ndarray,
               adc_bits: int, read_noise: float, v_read: float, key: np.uint64,
               batch_offset: int, batch_total: int, chunk: int, calibrate: bool,
               acc: np.ndarray, zig: np.ndarray) -> None:
    """Bit-serial analog MVM of a batch over row tiles; accumulates into ``acc``.

    Threads take chunks of ``chunk`` samples; for each pass and row tile a thread builds
    its chunk's bit-slice matrix, reads the array with one GEMM (``np.dot``: call this with
    BLAS limited to one thread, see :func:`xbar.analog.single_threaded_blas`), and converts
    and accumulates the currents while they are in cache.

    Args:
        x: Inputs, float32 (B, n_in).
        x_max: Input value mapped to the full DAC code (> 0).
        input_bits, bits_per_read: DAC resolution and bits applied per read.
        n_passes: 1 (inputs >= 0) or 2 (signed: positive part, then negative part).
        g_tiles: Conductances in uS, float32 (n_row_tiles, rows, n_phys); rows past n_in in
            the last tile are zero. For noisy bit-serial reads, stacked with their squares as
            (n_row_tiles, rows, 2 n_phys) = [G | G**2], so one GEMM gives both sums (a_i**2
            = a_i for one-bit slices).
        g2_tiles: ``G ** 2`` (n_row_tiles, rows, n_phys) for noisy multi-bit reads, else any
            float32 3-D array.
        lsb: ADC step in uA per row tile and column, float64 (n_row_tiles, n_phys).
        adc_bits: ADC resolution.
        read_noise: Relative per-read conductance noise sigma.
        v_read: Word-line voltage of a full-scale slice, volts.
        key: Random key of this call.
        batch_offset, batch_total: Position of ``x`` in the whole batch (noise counters).
        chunk: Samples per thread work unit (results do not depend on it).
        calibrate: If True, no noise or ADC: ``acc[t, c]`` is raised to the largest current
            (uA) seen in row tile t, column c (acc shaped (n_row_tiles, n_phys)).
        acc: float64 (B, n_phys) output, added to (pass 0) and subtracted from (pass 1).
        zig: The ziggurat tables, :data:`ZIGGURAT`.
    """
    n_batch, n_in = x.shape
    n_tiles, rows, n_g = g_tiles.shape
    n_phys = lsb.shape[1]
    stacked = n_g == 2 * n_phys
    k = bits_per_read
    n_slices = (input_bits + k - 1) // k
    full_code = (1 << input_bits) - 1
    mask = (1 << k) - 1
    v_unit = v_read / mask
    adc_top = float((1 << adc_bits) - 1)
    noisy = read_noise > 0.0 and not calibrate
    if noisy and k == 1 and not stacked:
        raise ConfigError("bit-serial reads with noise need g_tiles stacked as [G | G**2]")
    n_chunks = (n_batch + chunk - 1) // chunk
    peak = np.zeros((n_chunks if calibrate else 1, n_tiles, n_phys))
    for ch in prange(n_chunks):
        b0 = ch * chunk
        nb = min(chunk, n_batch - b0)
        codes = np.empty((nb, n_in), np.int32)
        a = np.empty((n_slices * nb, rows), np.float32)
        a2 = np.empty((n_slices * nb, rows), np.float32) if (noisy and k > 1) else a
        for p in range(n_passes):
            sign = 1.0 if p == 0 else -1.0
            for b in range(nb):
                for i in range(n_in):
                    v = sign * x[b0 + b, i]
                    codes[b, i] = 0 if v <= 0.0 else np.int32(
                        np.rint(min(v / x_max, 1.0) * full_code))
            for t in range(n_tiles):
                r0 = t * rows
                r_used = min(rows, n_in - r0)
                for s in range(n_slices):
                    shift = s * k
                    for b in range(nb):
                        row = s * nb + b
                        for i in range(r_used):
                            a[row, i] = np.float32((codes[b, r0 + i] >> shift) & mask)
                        for i in range(r_used, rows):
                            a[row, i] = np.float32(0.0)
                cur = np.dot(a, g_tiles[t])
                sq = cur[:, n_phys:] if stacked else cur
                if noisy and k > 1:
                    for row in range(n_slices * nb):
                        for i in range(rows):
                            a2[row, i] = a[row, i] * a[row, i]
                    sq = np.dot(a2, g2_tiles[t])
                if calibrate:
                    for row in range(n_slices * nb):
                        for c in range(n_phys):
                            i_ua = v_unit * np.float64(cur[row, c])
                            if i_ua > peak[ch, t, c]:
                                peak[ch, t, c] = i_ua
                    continue
                for s in range(n_slices):
                    weight = sign * float(1 << (k * s))
                    for b in range(nb):
                        row = s * nb + b
                        base = (((p * n_slices + s) * n_tiles + t) * batch_total
                                + batch_offset + b0 + b) * n_phys
                        for c in range(n_phys):
                            i_ua = v_unit * np.float64(cur[row, c])
                            s2 = np.float64(sq[row, c]) if noisy else 0.0
                            if s2 > 0.0:  # no driven cell, no current, no noise to draw
                                i_ua += read_noise * v_unit * math.sqrt(s2) * normal(
                                    key, np.uint64(base + c), zig)
                            elif i_ua == 0.0:
                                continue  # a zero current converts to code 0
                            step = lsb[t, c]
                            q = min(max(np.rint(i_ua / step), 0.0), adc_top)
                            acc[b0 + b, c] += weight * q * step
    if calibrate:
        for t in range(n_tiles):
            for c in range(n_phys):
                m = acc[t, c]
                for ch in range(n_chunks):
                    m = max(m, peak[ch, t, c])
                acc[t, c] = m
