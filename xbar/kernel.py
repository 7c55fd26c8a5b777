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
for noisy reads (``np.dot`` inside the kernel), except for 1-bit reads of layers up to 256
physical columns (:func:`table_reads`), which sum the G rows of the driven word lines from
tables of subset sums (:func:`_lut_rows`; no BLAS call); steps 1, 2, 4 and 5 are parallel
loops, each thread owning whole batch rows (:func:`mvm_kernel_serial`: the same on the
calling thread). A slice row whose inputs are all zero is skipped: it draws no
current, so no noise (the variance is zero) and code 0, exactly what the full read gives.
Random numbers come from a counter-based generator (a ziggurat on the splitmix64 hash of the
call's key and the index of (pass, slice, tile, sample, column)), so the result does not
depend on how many threads run (work units are fixed by the shape, not the thread count) or
how the batch is split into calls: bit for bit where the bit-line sums are exact in float32,
else up to the GEMM's float32 rounding, which BLAS may order differently for a different
number of rows (a rare one-LSB ADC flip; the kernel before issue 11 shared this). The tables
sum in a fixed order (inputs in order within groups of 4, then the groups in order), the same
for any batch split; they differ from a GEMM's order, so on inexact sums the two paths may
differ by that float32 rounding too.

Where the time goes and what was measured: ``docs/speed.md``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

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



# ------------------------------------------------------------------ narrow bit-serial layers
# A 1-bit slice row drives a subset of word lines, so a bit line's current is a sum of the
# G rows of the driven inputs. For narrow layers (few physical columns) that sum is faster as
# look-ups than as a GEMM: the inputs of a tile go in groups of 4, each with a table of the 16
# subset sums of its 4 G rows (and of their squares), padded to whole 16-float vectors; a
# slice row is then one vector load and add per group (the GEMM: 4 FMAs per group and column,
# and a float copy of the slice row). The tables sum in input order from 0, and the groups are
# added in order: where the bit-line sums are exact in float32 (integer conductances in the
# tests) this is the GEMM's result bit for bit; elsewhere it differs from BLAS's order by
# float32 rounding only, as BLAS itself does between row counts.

_LUT_MAX_COLS = 256  # physical columns up to which 1-bit reads use the tables
_LUT_MAX_BYTES = 32 << 20  # and tables up to this size (each of G and G**2)


@njit(cache=True)
def table_reads(bits_per_read: int, input_bits: int, g_shape: tuple[int, int, int]) -> bool:
    """Whether :func:`mvm_kernel` reads tiles of shape ``g_shape`` (n_tiles, rows, n_phys)
    with tables (:func:`_lut_rows`), not BLAS GEMMs."""
    n_tiles, rows, n_phys = g_shape
    lanes = (n_phys + _LANES - 1) // _LANES * _LANES
    size = n_tiles * ((rows + 3) // 4) * 16 * lanes * 4  # bytes, as lut_tables
    return (bits_per_read == 1 and n_phys <= _LUT_MAX_COLS and input_bits <= 16
            and size <= _LUT_MAX_BYTES)
_LANES = 16  # floats per vector (AVX-512); a table row holds whole vectors
_BIT_GATHER = np.uint64((1 << 48) | (1 << 33) | (1 << 18) | (1 << 3))


def _lut_sum_codegen(two: bool):
    def codegen(context, builder, signature, args):
        if two:  # tab, tab2, offs, obase, ostride, ng, add, cur, sq, doff
            obase_v, ostride_v, ng_v, add_v, doff_v = (args[i] for i in (3, 4, 5, 6, 9))
            arr_args = (0, 1, 2, 7, 8)
        else:  # tab, offs, obase, ostride, ng, add, cur, doff
            obase_v, ostride_v, ng_v, add_v, doff_v = (args[i] for i in (2, 3, 4, 5, 7))
            arr_args = (0, 1, 6)
        ptrs = [context.make_array(signature.args[i])(context, builder, args[i]).data
                for i in arr_args]
        if two:
            tp, t2p, op, cp, sp = ptrs
            tables, dests = (tp, t2p), (cp, sp)
        else:
            tp, op, cp = ptrs
            tables, dests = (tp,), (cp,)
        i64 = ir.IntType(64)
        vt = ir.VectorType(ir.FloatType(), _LANES)

        def vload(base, off):
            ld = builder.load(builder.bitcast(builder.gep(base, [off]), vt.as_pointer()))
            ld.align = 4
            return ld

        def offset(g):  # offs[obase + g * ostride] + add
            at = builder.add(obase_v, builder.mul(g, ostride_v))
            return builder.add(builder.sext(builder.load(builder.gep(op, [at])), i64), add_v)

        accs = [cgutils.alloca_once(builder, vt) for _ in tables]  # promoted to registers
        o0 = offset(ir.Constant(i64, 0))
        for acc, tab in zip(accs, tables):
            builder.store(vload(tab, o0), acc)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 1), ng_v, ir.Constant(i64, 1),
                                     inc=True) as (g, _):
            o = offset(g)
            for acc, tab in zip(accs, tables):
                builder.store(builder.fadd(builder.load(acc), vload(tab, o)), acc)
        for acc, dst in zip(accs, dests):
            st = builder.store(builder.load(acc),
                               builder.bitcast(builder.gep(dst, [doff_v]), vt.as_pointer()))
            st.align = 4
        return context.get_dummy_value()
    return codegen


@intrinsic
def _lut_sum2(typingctx, tab, tab2, offs, obase, ostride, ng, add, cur, sq, doff):
    """``cur[doff:doff + 16] = sum_g tab[o_g + add:][:16]`` over g < ng in order (float32),
    o_g = offs[obase + g * ostride]; ``sq`` likewise from ``tab2``: one 16-float vector each,
    accumulated in registers."""
    return (types.void(tab, tab2, offs, obase, ostride, ng, add, cur, sq, doff),
            _lut_sum_codegen(True))


@intrinsic
def _lut_sum1(typingctx, tab, offs, obase, ostride, ng, add, cur, doff):
    """:func:`_lut_sum2` for one table (noise-free reads)."""
    return (types.void(tab, offs, obase, ostride, ng, add, cur, doff),
            _lut_sum_codegen(False))


@njit(cache=True)
def lut_tables(g_tiles: np.ndarray, n_in: int) -> np.ndarray:
    """Subset sums of each tile's G rows in groups of 4: float32 (n_tiles, n_groups * 16 *
    lanes), entry ((g * 16 + m) * lanes + c) = sum of G[4 g + j, c] over the bits j of m
    (ascending j, from 0; rows past n_in count as absent), lanes = n_phys rounded up to whole
    vectors (zeros past n_phys)."""
    n_tiles, rows, n_phys = g_tiles.shape
    lanes = (n_phys + _LANES - 1) // _LANES * _LANES
    n_groups = (rows + 3) // 4
    size = n_groups * 16 * lanes  # a multiple of 16 floats: every vector 64-byte aligned
    buf = np.zeros(n_tiles * size + _LANES, np.float32)
    first = (-(buf.ctypes.data // 4)) % _LANES  # a vector split over two cache lines costs two
    tab = buf[first:first + n_tiles * size].reshape(n_tiles, size)
    for t in range(n_tiles):
        r_used = min(rows, n_in - t * rows)
        for g in range(n_groups):
            for m in range(1, 16):
                hb = 3 if m >= 8 else 2 if m >= 4 else 1 if m >= 2 else 0
                prev = (g * 16 + (m ^ (1 << hb))) * lanes
                dst = (g * 16 + m) * lanes
                row = 4 * g + hb
                for c in range(n_phys):
                    v = tab[t, prev + c]
                    if row < r_used:
                        v = v + g_tiles[t, row, c]
                    tab[t, dst + c] = v
    return tab


@njit(cache=True)
def _lut_rows(codes: np.ndarray, r0: int, r_used: int, n_slices: int, tab: np.ndarray,
              tab2: np.ndarray, noisy: bool, n_phys: int, cur: np.ndarray, sq: np.ndarray,
              runs: np.ndarray, packed: np.ndarray, offs: np.ndarray) -> tuple[int, int]:
    """:func:`_slice_rows` and the GEMMs in one, for 1-bit slices of narrow tiles: each slice
    row that drives a word line is summed from the tile's tables (:func:`lut_tables`) into
    ``cur`` (and ``sq`` from ``tab2`` when noisy), flat, n_phys per row, in the same order and
    with the same runs as :func:`_slice_rows`. ``cur`` and ``sq`` need ``lanes`` floats past
    the last row (each row writes whole vectors; the next row overwrites the spill).
    ``packed`` (uint64) and ``offs`` (int32), both at least groups x samples, are work space.
    Codes must be below 2**16."""
    nb = codes.shape[0]
    n_groups = (r_used + 3) // 4
    n_full = r_used // 4
    lanes = (n_phys + _LANES - 1) // _LANES * _LANES
    on = np.empty(nb, np.int32)
    for b in range(nb):  # four 16-bit codes per word, group-major
        row = codes[b, r0:r0 + r_used]
        o = 0
        for i in range(r_used):
            o |= row[i]
        on[b] = o
        for g in range(n_full):
            i = 4 * g
            packed[g, b] = (np.uint64(row[i]) | (np.uint64(row[i + 1]) << np.uint64(16))
                            | (np.uint64(row[i + 2]) << np.uint64(32))
                            | (np.uint64(row[i + 3]) << np.uint64(48)))
        if n_full < n_groups:
            w = np.uint64(0)
            for i in range(4 * n_full, r_used):
                w |= np.uint64(row[i]) << np.uint64(16 * (i - 4 * n_full))
            packed[n_full, b] = w
    ones = np.uint64(0x0001000100010001)
    n = 0
    n_runs = 0
    for s in range(n_slices):
        any_on = 0
        for b in range(nb):
            any_on |= on[b]
        if (any_on >> s) & 1 == 0:
            continue
        sh = np.uint64(s)
        for g in range(n_groups):  # bit s of a group's 4 codes, gathered by a multiply
            pg, og = packed[g], offs[g]
            base = g * 16 * lanes
            for b in range(nb):
                m = ((((pg[b] >> sh) & ones) * _BIT_GATHER) >> np.uint64(48)) & np.uint64(15)
                og[b] = np.int32(base + np.int64(m) * lanes)
        in_run = False
        for b in range(nb):
            if (on[b] >> s) & 1 == 0:
                in_run = False
                continue
            for v in range(0, n_phys, _LANES):
                if noisy:
                    _lut_sum2(tab, tab2, offs, b, nb, n_groups, v, cur, sq, n * n_phys + v)
                else:
                    _lut_sum1(tab, offs, b, nb, n_groups, v, cur, n * n_phys + v)
            if in_run:
                runs[n_runs - 1, 3] += 1
            else:
                runs[n_runs, 0] = s
                runs[n_runs, 1] = b
                runs[n_runs, 2] = n
                runs[n_runs, 3] = 1
                n_runs += 1
                in_run = True
            n += 1
    return n, n_runs


_PIECE = 2048  # noise draws per step of a run: hashes and draws stay in L1


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
            if in_run:
                runs[n_runs - 1, 3] += 1
            else:
                runs[n_runs, 0] = s
                runs[n_runs, 1] = b
                runs[n_runs, 2] = n
                runs[n_runs, 3] = 1
                n_runs += 1
                in_run = True
            n += 1
    return n, n_runs


@njit(cache=True, error_model="numpy")
def _convert_run(cur: np.ndarray, sq: np.ndarray, lsb: np.ndarray, acc: np.ndarray,
                 weight: float, v_unit: float, noise_scale: float, adc_top: float,
                 key: np.uint64, ctr0: int, zig: np.ndarray, x_edge: np.ndarray,
                 hs: np.ndarray, z: np.ndarray, slow: np.ndarray) -> None:
    """Read noise, ADC and shift-and-add for one run: consecutive samples of one slice.

    ``cur``, ``sq`` (sum a_i**2 G_i**2; unused without noise) and ``acc`` are the run's rows
    flattened (row-major, n_phys columns); ``lsb`` is the tile's ADC steps repeated for
    whole rows, at least :data:`_PIECE` long. Element e draws its noise with counter
    ``ctr0 + e``. ``noise_scale`` is read_noise * v_unit (0: no noise). ``x_edge`` is the
    ziggurat's fast-path bound on the value (:func:`_edges`).

    The loops are split so that the bulk vectorises (hashes, conversion); the ziggurat's
    table look-ups run in a scalar loop that computes every draw's fast-path value and lists
    the draws it rejects (about 2.8 %, branch-free); a second loop, also branch-free, gives
    those the wedge test's value or else the redraw's fast-path value; the few left (the
    tail, a redraw rejected again: ~0.1 % of draws) go through :func:`_normal_slow` from the
    start. The arithmetic is the step-by-step model's, operation for operation (no
    reciprocal of the LSB, no reordering), so each output is the plain loop's.
    """
    n = cur.shape[0]
    wn, fn = zig[1], zig[2]
    piece = lsb.shape[0]
    for e0 in range(0, n, piece):
        m = min(piece, n - e0)
        cur_p = cur[e0:e0 + m]
        acc_p = acc[e0:e0 + m]
        if noise_scale > 0.0:
            sq_p = sq[e0:e0 + m]
            first = key + np.uint64(ctr0 + e0) * GOLDEN
            for e in range(m):
                hs[e] = mix64(first + np.uint64(e) * GOLDEN)
            n_slow = 0
            for e in range(m):  # fast-path values; the rejected draws listed, branch-free
                h = hs[e]
                iz = np.int64((h >> np.uint64(32)) & np.uint64(127))
                v = np.int64(np.int32(h & np.uint64(0xFFFFFFFF))) * wn[iz]
                z[e] = v
                slow[n_slow] = e  # |hz| >= kn[iz], as |v| >= x_edge[iz] (see _edges)
                n_slow += 1 if abs(v) >= x_edge[iz] else 0
            # The slow path's usual outcomes without branches (97 % of its draws): the
            # wedge test (accepted: x), else the redraw's fast path; the rest (tail, a
            # redraw rejected again) from the start by _normal_slow: the same sequence.
            n_rest = 0
            for j in range(n_slow):
                e = slow[j]
                h = hs[e]
                iz = np.int64((h >> np.uint64(32)) & np.uint64(127))
                x = z[e]  # hz * wn[iz]
                h2 = mix64(h + GOLDEN)
                y = fn[iz] + _uniform(h2) * (fn[iz - 1] - fn[iz])  # iz = 0: not used
                wedge = y < math.exp(-0.5 * x * x)
                h3 = mix64(h2 + GOLDEN)
                iz3 = np.int64((h3 >> np.uint64(32)) & np.uint64(127))
                x3 = np.int64(np.int32(h3 & np.uint64(0xFFFFFFFF))) * wn[iz3]
                z[e] = x if wedge else x3
                slow[n_rest] = e
                done = (iz != 0) & (wedge | (abs(x3) < x_edge[iz3]))
                n_rest += 0 if done else 1
            for j in range(n_rest):
                e = slow[j]
                h = hs[e]
                hz = np.int64(np.int32(h & np.uint64(0xFFFFFFFF)))
                iz = np.int64((h >> np.uint64(32)) & np.uint64(127))
                z[e] = _normal_slow(h, hz, iz, zig)
            for e in range(m):
                s2 = np.float64(sq_p[e])
                sd = noise_scale * np.sqrt(s2) if s2 > 0.0 else 0.0
                i_ua = v_unit * np.float64(cur_p[e]) + sd * z[e]
                step = lsb[e]
                acc_p[e] += weight * min(max(np.rint(i_ua / step), 0.0), adc_top) * step
        else:
            for e in range(m):
                i_ua = v_unit * np.float64(cur_p[e])
                step = lsb[e]
                acc_p[e] += weight * min(max(np.rint(i_ua / step), 0.0), adc_top) * step


@njit(cache=True)
def _ceil_int(v: np.ndarray) -> np.ndarray:
    """``ceil(v)`` as int64 (outside the parallel kernel: no parallel loop launched)."""
    out = np.empty(v.shape[0], np.int64)
    for i in range(v.shape[0]):
        out[i] = np.int64(math.ceil(v[i]))
    return out


@njit(cache=True)
def _edges(zig: np.ndarray) -> np.ndarray:
    """The ziggurat's fast-path test on the value: ``|hz| < kn[iz]`` (hz an integer, |hz| <=
    2**31) holds exactly when ``|hz * wn[iz]| < x_edge[iz] = ceil(kn[iz]) * wn[iz]`` in
    float64: |hz| < K = ceil(kn) is |hz| <= K - 1, rounding is monotonic, and (K - 1) wn and
    K wn differ by a factor 1 + 2**-31 or more, far beyond rounding, so they round apart."""
    k = _ceil_int(zig[0])
    out = np.empty(k.shape[0])
    for i in range(k.shape[0]):
        out[i] = np.float64(k[i]) * zig[1, i]
    return out


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
    lsb_rows = _repeat_rows(lsb, max(1, _PIECE // n_phys))
    x_edge = _edges(zig)
    # Narrow 1-bit layers: table look-ups instead of the GEMMs (see _lut_rows).
    lut = table_reads(bits_per_read, input_bits, g_tiles.shape)
    size = (rows + 3) // 4 * 16 * ((n_phys + _LANES - 1) // _LANES * _LANES)
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
    piece_rows = max(1, _PIECE // n_phys)  # a run converts in pieces of whole rows
    lut = table_reads(k, input_bits, g_tiles.shape)
    n_groups = (rows + 3) // 4
    spill = _LUT_MAX_COLS if lut else 0  # the last row's vectors write past it
    b0 = ch * chunk
    nb = min(chunk, n_batch - b0)
    codes = np.empty((nb, n_in), np.int32)
    pixels = np.empty(((b0 + nb - 1) // n_patch - b0 // n_patch + 1, x.shape[1]), np.int32)
    a_buf = np.empty(0 if lut else n_slices * nb * rows, np.float32)
    a2_buf = np.empty(n_slices * nb * rows, np.float32) if (noisy and k > 1) else a_buf
    cur = np.empty(n_slices * nb * n_phys + spill, np.float32)
    sq = np.empty(n_slices * nb * n_phys + spill, np.float32) if noisy else cur
    runs = np.empty((n_slices * nb, 4), np.int64)
    packed = np.empty((n_groups, nb if lut else 0), np.uint64)
    offs = np.empty((n_groups, nb if lut else 0), np.int32)
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
                n_used, n_runs = _lut_rows(codes, r0, r_used, n_slices, tab[t], tab2[t],
                                           noisy, n_phys, cur, sq, runs, packed, offs)
                if n_used == 0:
                    continue
            else:
                a = a_buf[:n_slices * nb * r_used].reshape(n_slices * nb, r_used)
                n_used, n_runs = _slice_rows(codes, r0, k, n_slices, a, runs)
                if n_used == 0:
                    continue
                np.dot(a[:n_used], g_tiles[t, :r_used],
                       cur[:n_used * n_phys].reshape(n_used, n_phys))
            if noisy and not lut:
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
                _convert_run(cur[e0:e1], sq[e0:e1], lsb_rows[t],
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
    thread, see :func:`xbar.threads.single_threaded_blas`), or for 1-bit reads of narrow
    tiles (:func:`table_reads`) sums each slice row from subset-sum tables (no BLAS, no
    slice matrix; :func:`_lut_rows`), then converts and accumulates
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
        zig: The ziggurat tables, :data:`ZIGGURAT`.
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
               bits_per_read: int, n_passes: int, g_tiles: np.ndarray, g2_tiles: np.ndarray,
               lsb: np.ndarray, adc_bits: int, read_noise: float, v_read: float, key: np.uint64,
               batch_offset: int, batch_total: int, chunk: int, pos_cols: np.ndarray,
               neg_cols: np.ndarray, to_weight: np.ndarray, out: np.ndarray,
               zig: np.ndarray, tab: np.ndarray, tab2: np.ndarray) -> None:
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
