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
   negative pass subtracted, in float64 per physical column; then each output is the
   difference of its column pair (G+ - G-, or G - G_ref) times the caller's factor back to
   the weight domain, as float32.

The array read of step 3 is a BLAS GEMM on each tile's slice matrix, and one on the squares
for noisy reads (``np.dot`` inside the kernel), except for 1-bit reads, which sum the G rows
of the driven word lines from tables of subset sums (no BLAS call): kept on the matrix for
layers up to 256 physical columns (:func:`table_reads`, :func:`~xbar.kernel_tables.lut_rows`),
built by each work unit in blocks of columns for wider ones (:func:`block_reads`,
:func:`~xbar.kernel_tables.lut_rows_blocked`); steps 1, 2, 4
and 5 are parallel loops, each thread owning whole batch rows (:func:`mvm_kernel_serial`: the
same on the calling thread). A slice row whose inputs are all zero is skipped: it draws no
current, so no noise (the variance is zero) and code 0, exactly what the full read gives.
Random numbers come from a counter-based generator (a ziggurat on the splitmix64 hash of the
call's key and the index of (pass, slice, tile, sample, column)), so the result does not
depend on how many threads run (work units are fixed by the shape, not the thread count) or
how the batch is split into calls: bit for bit where the bit-line sums are exact in float32,
else up to the GEMM's float32 rounding, which BLAS may order differently for a different
number of rows (a rare one-LSB ADC flip; the kernel before issue 11 shared this). The tables
sum in a fixed order (inputs in order within groups of 4, then the groups in order), the same
for any batch split and both kinds of table; they differ from a GEMM's order, so on inexact
sums the two paths may differ by that float32 rounding too.

Where the time goes and what was measured: ``docs/speed.md``.
"""


from __future__ import annotations

import numpy as np
from numba import njit, prange

from xbar.errors import ConfigError
from xbar.kernel_noise import PIECE, convert_run, ziggurat_edges
from xbar.kernel_tables import (BLOCK_COLS, LANES, LUT_MAX_COLS, add_to_runs, aligned_floats,
                                block_reads, lut_rows, lut_rows_blocked, lut_tables,
                                table_reads)

__all__ = ["mvm_kernel", "mvm_kernel_serial",
           "peak_kernel"]



@njit(cache=True)
def _slice_rows(codes: np.ndarray, r0: int, k: int, n_slices: int, a: np.ndarray,
                runs: np.ndarray) -> tuple[int, int]:
    """Fill ``a`` with the bit-slice rows of one row tile (inputs r0 .. r0 + a.shape[1])
    that drive any word line.

    Rows go slice-major (sample order within a slice); a row of zeros draws no current and
    no noise and converts to code 0, so it is left out. Consecutive samples kept in one
    slice form a run, ``runs[j] = (slice, first sample, first row of a, length)``: their
    rows in ``a``, their noise counters and their rows of the output are each contiguous.
    Returns (rows filled, runs).
    """
    nb = codes.shape[0]
    r_used = a.shape[1]
    mask = (1 << k) - 1
    on = np.empty(nb, np.int32)  # slice s of sample b drives a word line: bits of on[b]
    for b in range(nb):
        row = codes[b, r0:r0 + r_used]
        o = 0
        for i in range(r_used):
            o |= row[i]
        on[b] = o
    n = 0
    n_runs = 0
    for s in range(n_slices):
        shift = s * k
        in_run = False
        for b in range(nb):
            if (on[b] >> shift) & mask == 0:
                in_run = False
                continue
            row, dst = codes[b, r0:r0 + r_used], a[n]
            for i in range(r_used):  # no reduction in the loop: it vectorises
                dst[i] = np.float32((row[i] >> shift) & mask)
            n_runs = add_to_runs(runs, n_runs, in_run, s, b, n)
            in_run = True
            n += 1
    return n, n_runs


@njit(cache=True)
def _repeat_rows(lsb: np.ndarray, n: int) -> np.ndarray:
    """Each row of ``lsb`` repeated ``n`` times end to end: (n_tiles, n * n_phys).

    Outside the parallel kernel so that Numba does not turn the copies into parallel loops
    (each a launch of the thread pool).
    """
    n_tiles, n_phys = lsb.shape
    out = np.empty((n_tiles, n * n_phys))
    for t in range(n_tiles):
        for r in range(n):
            for c in range(n_phys):
                out[t, r * n_phys + c] = lsb[t, c]
    return out


@njit(cache=True)
def _dac_codes(x: np.ndarray, patch: np.ndarray, b0: int, sign: float, x_max: float,
               full_code: int, pixels: np.ndarray, codes: np.ndarray) -> None:
    """DAC codes of samples ``b0 ..`` of one pass (sign +1: max(x, 0); -1: max(-x, 0)).

    Sample b is patch ``b % L`` of row ``b // L`` of ``x``: input i is ``x[b // L, patch[b
    % L, i]]``, or 0 where the offset is -1 (a convolution's zero padding). Each value of
    ``x`` the samples touch is coded once (into ``pixels``, at least rows x F), then gathered:
    a 5x5 convolution codes each pixel once, not 25 times.
    """
    nb, n_in = codes.shape
    n_patch = patch.shape[0]
    identity = n_patch == 1 and n_in == x.shape[1]  # plain vectors: code them in place
    for i in range(n_in if identity else 0):
        identity &= patch[0, i] == i
    if identity:
        for b in range(nb):
            row = codes[b]
            for i in range(n_in):  # max(v, 0) for v <= 0 is +0: code 0, as the branch
                v = max(sign * x[b0 + b, i], 0.0)
                row[i] = np.int32(np.rint(min(v / x_max, 1.0) * full_code))
        return
    n_first = b0 // n_patch
    n_last = (b0 + nb - 1) // n_patch
    for n in range(n_first, n_last + 1):
        row = pixels[n - n_first]
        for f in range(x.shape[1]):
            v = max(sign * x[n, f], 0.0)
            row[f] = np.int32(np.rint(min(v / x_max, 1.0) * full_code))
    for b in range(nb):
        n = (b0 + b) // n_patch
        offsets = patch[(b0 + b) - n * n_patch]
        row = pixels[n - n_first]
        for i in range(n_in):
            o = offsets[i]
            codes[b, i] = row[o] if o >= 0 else 0


@njit(cache=True)
def _mvm_setup(input_bits: int, bits_per_read: int, g_tiles: np.ndarray, g2_tiles: np.ndarray,
               lsb: np.ndarray, read_noise: float, n_in: int, zig: np.ndarray,
               tab: np.ndarray, tab2: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-call tables of :func:`mvm_kernel`, built once outside its parallel loop: the ADC
    steps repeated for whole pieces, the ziggurat's integer bounds, the subset-sum tables."""
    n_tiles, rows, n_phys = g_tiles.shape
    noisy = read_noise > 0.0
    if noisy and g2_tiles.shape != g_tiles.shape:
        raise ConfigError("noisy reads need g2_tiles (G**2) shaped like g_tiles")
    lsb_rows = _repeat_rows(lsb, max(1, PIECE // n_phys))
    x_edge = ziggurat_edges(zig)
    # Narrow 1-bit layers: table look-ups instead of the GEMMs (see lut_rows).
    lut = table_reads(bits_per_read, input_bits, g_tiles.shape)
    size = (rows + 3) // 4 * 16 * ((n_phys + LANES - 1) // LANES * LANES)
    if not lut:
        tab = tab2 = np.empty((n_tiles, 0), np.float32)
    else:  # the caller's tables (kept between calls), else built here
        if tab.shape != (n_tiles, size):
            tab = lut_tables(g_tiles, n_in)
        if not noisy:
            tab2 = tab
        elif tab2.shape != (n_tiles, size):
            tab2 = lut_tables(g2_tiles, n_in)
    return lsb_rows, x_edge, tab, tab2


@njit(cache=True)
def _mvm_chunk(ch: int, x: np.ndarray, patch: np.ndarray, x_max: float, input_bits: int,
               bits_per_read: int, n_passes: int, g_tiles: np.ndarray, g2_tiles: np.ndarray,
               adc_bits: int, read_noise: float, v_read: float, key: np.uint64,
               batch_offset: int, batch_total: int, chunk: int, pos_cols: np.ndarray,
               neg_cols: np.ndarray, to_weight: np.ndarray, out: np.ndarray, zig: np.ndarray,
               lsb_rows: np.ndarray, x_edge: np.ndarray, tab: np.ndarray,
               tab2: np.ndarray) -> None:
    """Work unit ``ch`` of :func:`mvm_kernel` (samples ch * chunk ..), with the tables of
    :func:`_mvm_setup`."""
    n_patch, n_in = patch.shape
    n_batch = x.shape[0] * n_patch
    n_tiles, rows, n_phys = g_tiles.shape
    k = bits_per_read
    n_slices = (input_bits + k - 1) // k
    v_unit = v_read / ((1 << k) - 1)
    adc_top = float((1 << adc_bits) - 1)
    noisy = read_noise > 0.0
    noise_scale = read_noise * v_unit if noisy else 0.0
    piece_rows = max(1, PIECE // n_phys)  # a run converts in pieces of whole rows
    lut = table_reads(k, input_bits, g_tiles.shape)
    blocked = not lut and block_reads(k, input_bits, g_tiles.shape)  # tables built here
    n_groups = (rows + 3) // 4
    spill = LUT_MAX_COLS if lut or blocked else 0  # the last row's vectors write past it
    b0 = ch * chunk
    nb = min(chunk, n_batch - b0)
    codes = np.empty((nb, n_in), np.int32)
    pixels = np.empty(((b0 + nb - 1) // n_patch - b0 // n_patch + 1, x.shape[1]), np.int32)
    a_buf = np.empty(0 if lut or blocked else n_slices * nb * rows, np.float32)
    a2_buf = np.empty(n_slices * nb * rows, np.float32) if (noisy and k > 1) else a_buf
    cur = np.empty(n_slices * nb * n_phys + spill, np.float32)
    sq = np.empty(n_slices * nb * n_phys + spill, np.float32) if noisy else cur
    runs = np.empty((n_slices * nb, 4), np.int64)
    packed = np.empty((n_groups, nb if lut or blocked else 0), np.uint64)
    offs = np.empty((n_groups, nb if lut else 0), np.int32)
    offs_s = np.empty((n_slices if blocked else 0, n_groups, nb), np.int32)
    row_of = np.empty((n_slices if blocked else 0, nb), np.int64)
    btab = aligned_floats(n_groups * 16 * BLOCK_COLS if blocked else 0)
    btab2 = aligned_floats(n_groups * 16 * BLOCK_COLS if blocked and noisy else 0)
    hs = np.empty(piece_rows * n_phys, np.uint64)
    z = np.empty(piece_rows * n_phys, np.float64)
    slow = np.empty(piece_rows * n_phys, np.int64)
    acc = np.zeros(nb * n_phys)
    for p in range(n_passes):
        sign = 1.0 if p == 0 else -1.0
        _dac_codes(x, patch, b0, sign, x_max, (1 << input_bits) - 1, pixels, codes)
        for t in range(n_tiles):
            r0 = t * rows
            r_used = min(rows, n_in - r0)  # the GEMM skips the last tile's padding
            if lut:
                n_used, n_runs = lut_rows(codes, r0, r_used, n_slices, tab[t], tab2[t],
                                           noisy, n_phys, cur, sq, runs, packed, offs)
                if n_used == 0:
                    continue
            elif blocked:
                n_used, n_runs = lut_rows_blocked(codes, r0, r_used, n_slices, g_tiles[t],
                                                  g2_tiles[t], noisy, cur, sq, runs, packed,
                                                  offs_s, row_of, btab, btab2, BLOCK_COLS)
                if n_used == 0:
                    continue
            else:
                a = a_buf[:n_slices * nb * r_used].reshape(n_slices * nb, r_used)
                n_used, n_runs = _slice_rows(codes, r0, k, n_slices, a, runs)
                if n_used == 0:
                    continue
                np.dot(a[:n_used], g_tiles[t, :r_used],
                       cur[:n_used * n_phys].reshape(n_used, n_phys))
            if noisy and not lut and not blocked:
                a2 = a
                if k > 1:
                    a2 = a2_buf[:n_slices * nb * r_used].reshape(n_slices * nb, r_used)
                    for row in range(n_used):
                        for i in range(r_used):
                            a2[row, i] = a[row, i] * a[row, i]
                np.dot(a2[:n_used], g2_tiles[t, :r_used],
                       sq[:n_used * n_phys].reshape(n_used, n_phys))
            for q in range(n_runs):
                s, b_first, j0, n_rows = runs[q, 0], runs[q, 1], runs[q, 2], runs[q, 3]
                ctr0 = (((p * n_slices + s) * n_tiles + t) * batch_total + batch_offset
                        + b0 + b_first) * n_phys
                e0, e1 = j0 * n_phys, (j0 + n_rows) * n_phys
                convert_run(cur[e0:e1], sq[e0:e1], lsb_rows[t],
                             acc[b_first * n_phys:(b_first + n_rows) * n_phys],
                             sign * float(1 << (k * s)), v_unit, noise_scale, adc_top,
                             key, ctr0, zig, x_edge, hs, z, slow)
    for b in range(nb):
        n = (b0 + b) // n_patch
        l = (b0 + b) - n * n_patch
        for j in range(pos_cols.shape[0]):
            out[n, j, l] = np.float32((acc[b * n_phys + pos_cols[j]]
                                       - acc[b * n_phys + neg_cols[j]]) * to_weight[j])


@njit(parallel=True, cache=True)
def mvm_kernel(x: np.ndarray, patch: np.ndarray, x_max: float, input_bits: int,
               bits_per_read: int, n_passes: int, g_tiles: np.ndarray, g2_tiles: np.ndarray,
               lsb: np.ndarray, adc_bits: int, read_noise: float, v_read: float, key: np.uint64,
               batch_offset: int, batch_total: int, chunk: int, pos_cols: np.ndarray,
               neg_cols: np.ndarray, to_weight: np.ndarray, out: np.ndarray,
               zig: np.ndarray, tab: np.ndarray, tab2: np.ndarray) -> None:
    """Bit-serial analog MVM of a batch over row tiles, written to ``out``.

    Threads take chunks of ``chunk`` samples. For each pass and row tile a thread builds
    its chunk's bit-slice matrix (only the slice rows that drive a word line: an all-zero
    row reads zero current and converts to code 0), reads the array with one GEMM, and a
    second of the squares for noisy reads (``np.dot``: call this with BLAS limited to one
    thread, see :func:`xbar.threads.single_threaded_blas`), or for 1-bit reads sums each
    slice row from subset-sum tables (no BLAS, no slice matrix): kept ones for narrow tiles
    (:func:`table_reads`, :func:`lut_rows`), else built by the work unit in column blocks
    (:func:`block_reads`, :func:`lut_rows_blocked`), then converts and accumulates
    the currents (float64, per physical column) while they are in cache. Last, each output
    is ``(acc[pos] - acc[neg]) * to_weight`` as float32.

    Args:
        x: Inputs, float32 (N, F): images for a convolution, else the input vectors.
        patch: int32 (L, n_in) offsets into a row of ``x`` (-1: zero padding); the batch
            is the N * L vectors ``x[n, patch[l]]``, sample b = n * L + l (im2col order).
            For plain vectors, L = 1 and ``patch[0] = 0 .. n_in - 1``.
        x_max: Input value mapped to the full DAC code (> 0).
        input_bits, bits_per_read: DAC resolution and bits applied per read.
        n_passes: 1 (inputs >= 0) or 2 (signed: positive part, then negative part).
        g_tiles: Conductances in uS, float32 (n_row_tiles, rows, n_phys); rows past n_in in
            the last tile are zero.
        g2_tiles: ``G ** 2``, the same shape, for noisy reads (the noise variance is
            ``sum_i a_i**2 G_i**2``), else any float32 3-D array.
        lsb: ADC step in uA per row tile and column, float64 (n_row_tiles, n_phys).
        adc_bits: ADC resolution.
        read_noise: Relative per-read conductance noise sigma.
        v_read: Word-line voltage of a full-scale slice, volts.
        key: Random key of this call.
        batch_offset, batch_total: Position of ``x`` in the whole batch (noise counters).
        chunk: Samples per thread work unit (results do not depend on it).
        pos_cols, neg_cols: int64 (n_out,): the physical columns subtracted for each output.
        to_weight: float64 (n_out,): from digital sum (uA) to the weight domain.
        out: float32 (N, n_out, L), written: sample n * L + l at ``out[n, :, l]``.
        zig: The ziggurat tables, :data:`xbar.kernel_noise.ZIGGURAT`.
        tab, tab2: float32 subset-sum tables of ``g_tiles`` and ``g2_tiles``
            (:func:`lut_tables`) for the reads that use them (:func:`table_reads`), kept by
            the caller between calls; any other shape (``np.empty((0, 0), np.float32)``):
            built for this call.
    """
    tables = _mvm_setup(input_bits, bits_per_read, g_tiles, g2_tiles, lsb, read_noise,
                        patch.shape[1], zig, tab, tab2)
    n_chunks = (x.shape[0] * patch.shape[0] + chunk - 1) // chunk
    for ch in prange(n_chunks):
        _mvm_chunk(ch, x, patch, x_max, input_bits, bits_per_read, n_passes, g_tiles,
                   g2_tiles, adc_bits, read_noise, v_read, key, batch_offset, batch_total,
                   chunk, pos_cols, neg_cols, to_weight, out, zig, *tables)


@njit(cache=True)
def mvm_kernel_serial(x: np.ndarray, patch: np.ndarray, x_max: float, input_bits: int,
                      bits_per_read: int, n_passes: int, g_tiles: np.ndarray,
                      g2_tiles: np.ndarray, lsb: np.ndarray, adc_bits: int, read_noise: float,
                      v_read: float, key: np.uint64, batch_offset: int, batch_total: int,
                      chunk: int, pos_cols: np.ndarray, neg_cols: np.ndarray,
                      to_weight: np.ndarray, out: np.ndarray, zig: np.ndarray, tab: np.ndarray,
                      tab2: np.ndarray) -> None:
    """:func:`mvm_kernel` on the calling thread: the same work units in order, the same
    output bit for bit, without the thread pool's launch (~25-60 us, measured; a 6x25 layer's
    1024-sample call is ~0.3 ms of work)."""
    tables = _mvm_setup(input_bits, bits_per_read, g_tiles, g2_tiles, lsb, read_noise,
                        patch.shape[1], zig, tab, tab2)
    n_chunks = (x.shape[0] * patch.shape[0] + chunk - 1) // chunk
    for ch in range(n_chunks):
        _mvm_chunk(ch, x, patch, x_max, input_bits, bits_per_read, n_passes, g_tiles,
                   g2_tiles, adc_bits, read_noise, v_read, key, batch_offset, batch_total,
                   chunk, pos_cols, neg_cols, to_weight, out, zig, *tables)


@njit(parallel=True, cache=True)
def peak_kernel(x: np.ndarray, patch: np.ndarray, x_max: float, input_bits: int,
                bits_per_read: int, n_passes: int, g_tiles: np.ndarray, v_read: float,
                chunk: int, peak: np.ndarray) -> None:
    """Raise ``peak[t, c]`` (uA, float64 (n_row_tiles, n_phys)) to the largest noise-free
    bit-line current of row tile t, column c over the batch: for ADC range calibration.

    Args as :func:`mvm_kernel`; the reads are the same (DAC codes, bit slices, one GEMM).
    """
    n_patch, n_in = patch.shape
    n_batch = x.shape[0] * n_patch
    n_tiles, rows, n_phys = g_tiles.shape
    k = bits_per_read
    n_slices = (input_bits + k - 1) // k
    v_unit = v_read / ((1 << k) - 1)
    n_chunks = (n_batch + chunk - 1) // chunk
    peaks = np.zeros((n_chunks, n_tiles, n_phys))
    for ch in prange(n_chunks):
        b0 = ch * chunk
        nb = min(chunk, n_batch - b0)
        codes = np.empty((nb, n_in), np.int32)
        pixels = np.empty(((b0 + nb - 1) // n_patch - b0 // n_patch + 1, x.shape[1]), np.int32)
        a_buf = np.empty(n_slices * nb * rows, np.float32)
        cur = np.empty((n_slices * nb, n_phys), np.float32)
        runs = np.empty((n_slices * nb, 4), np.int64)
        for p in range(n_passes):
            _dac_codes(x, patch, b0, 1.0 if p == 0 else -1.0, x_max, (1 << input_bits) - 1,
                       pixels, codes)
            for t in range(n_tiles):
                r_used = min(rows, n_in - t * rows)
                a = a_buf[:n_slices * nb * r_used].reshape(n_slices * nb, r_used)
                n_used, _ = _slice_rows(codes, t * rows, k, n_slices, a, runs)
                if n_used == 0:
                    continue
                np.dot(a[:n_used], g_tiles[t, :r_used], cur[:n_used])
                for row in range(n_used):
                    for c in range(n_phys):
                        i_ua = v_unit * np.float64(cur[row, c])
                        if i_ua > peaks[ch, t, c]:
                            peaks[ch, t, c] = i_ua
    for t in range(n_tiles):
        for c in range(n_phys):
            m = peak[t, c]
            for ch in range(n_chunks):
                m = max(m, peaks[ch, t, c])
            peak[t, c] = m
