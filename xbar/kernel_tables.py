"""Table reads for 1-bit slices (:mod:`xbar.kernel`'s step 3 without BLAS): the G rows of a
tile's driven word lines summed from tables of subset sums, in a fixed order; tables kept on
the matrix for narrow layers, built by each work unit in column blocks for wide ones.
Measured: ``docs/speed.md``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["BLOCK_COLS", "LANES", "LUT_MAX_COLS", "add_to_runs", "aligned_floats", "block_reads",
           "block_table", "lut_rows", "lut_rows_blocked", "lut_tables", "table_reads"]

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

LUT_MAX_COLS = 256  # physical columns up to which 1-bit reads use the tables
_LUT_MAX_BYTES = 32 << 20  # and tables up to this size (each of G and G**2)


@njit(cache=True)
def table_reads(bits_per_read: int, input_bits: int, g_shape: tuple[int, int, int]) -> bool:
    """Whether :func:`mvm_kernel` reads tiles of shape ``g_shape`` (n_tiles, rows, n_phys)
    with tables (:func:`lut_rows`), not BLAS GEMMs."""
    n_tiles, rows, n_phys = g_shape
    lanes = (n_phys + LANES - 1) // LANES * LANES
    size = n_tiles * ((rows + 3) // 4) * 16 * lanes * 4  # bytes, as lut_tables
    return (bits_per_read == 1 and n_phys <= LUT_MAX_COLS and input_bits <= 16
            and size <= _LUT_MAX_BYTES)
LANES = 16  # floats per vector (AVX-512); a table row holds whole vectors
# Wide layers (more physical columns than LUT_MAX_COLS, or kept tables over the size cap):
# each work unit builds a tile's tables itself, one block of columns at a time, so that the
# block's tables (G and G**2: 2 x n_groups x 16 x BLOCK_COLS floats, 512 KB for 128 rows) stay
# in L2 while every slice row of the work unit is summed from them. Nothing is kept between
# calls. A multiple of LANES.
BLOCK_COLS = 128


@njit(cache=True)
def block_reads(bits_per_read: int, input_bits: int, g_shape: tuple[int, int, int]) -> bool:
    """Whether :func:`mvm_kernel` reads tiles of shape ``g_shape`` with tables that each
    work unit builds by column blocks (:func:`lut_rows_blocked`): the 1-bit reads that
    :func:`table_reads` leaves out for their width or table size."""
    return (bits_per_read == 1 and input_bits <= 16
            and not table_reads(bits_per_read, input_bits, g_shape))
_BIT_GATHER = np.uint64((1 << 48) | (1 << 33) | (1 << 18) | (1 << 3))


def _lut_sum_codegen(two: bool, nvec: int = 1):
    """The table sums' LLVM code: ``nvec`` consecutive vectors per table, each its own
    accumulator (independent add chains: one chain waits an add's latency per group)."""
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
        vt = ir.VectorType(ir.FloatType(), LANES)

        def vload(base, off):
            ld = builder.load(builder.bitcast(builder.gep(base, [off]), vt.as_pointer()))
            ld.align = 4
            return ld

        def offset(g):  # offs[obase + g * ostride] + add
            at = builder.add(obase_v, builder.mul(g, ostride_v))
            return builder.add(builder.sext(builder.load(builder.gep(op, [at])), i64), add_v)

        lanes = [ir.Constant(i64, j * LANES) for j in range(nvec)]
        # promoted to registers: one accumulator per table and vector
        accs = [[cgutils.alloca_once(builder, vt) for _ in range(nvec)] for _ in tables]
        o0 = offset(ir.Constant(i64, 0))
        for acc, tab in zip(accs, tables):
            for j in range(nvec):
                builder.store(vload(tab, builder.add(o0, lanes[j])), acc[j])
        with cgutils.for_range_slice(builder, ir.Constant(i64, 1), ng_v, ir.Constant(i64, 1),
                                     inc=True) as (g, _):
            o = offset(g)
            for acc, tab in zip(accs, tables):
                for j in range(nvec):
                    builder.store(builder.fadd(builder.load(acc[j]),
                                               vload(tab, builder.add(o, lanes[j]))), acc[j])
        for acc, dst in zip(accs, dests):
            for j in range(nvec):
                at = builder.gep(dst, [builder.add(doff_v, lanes[j])])
                st = builder.store(builder.load(acc[j]), builder.bitcast(at, vt.as_pointer()))
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


def _group_sums_codegen(context, builder, signature, args):
    g_arr, goff, gstride, t_arr, toff, bw = args
    gp = context.make_array(signature.args[0])(context, builder, g_arr).data
    tp = context.make_array(signature.args[3])(context, builder, t_arr).data
    vt = ir.VectorType(ir.FloatType(), LANES)

    def at(base, off):
        return builder.bitcast(builder.gep(base, [off]), vt.as_pointer())

    rows = []
    for j in range(4):
        ld = builder.load(at(gp, builder.add(goff, builder.mul(ir.Constant(gstride.type, j),
                                                               gstride))))
        ld.align = 4
        rows.append(ld)
    e = [ir.Constant(vt, [0.0] * LANES)]
    for m in range(1, 16):  # entry m = entry m without its top bit + that bit's row
        hb = m.bit_length() - 1
        e.append(builder.fadd(e[m ^ (1 << hb)], rows[hb]))
    for m in range(16):
        st = builder.store(e[m], at(tp, builder.add(toff, builder.mul(ir.Constant(
            bw.type, m), bw))))
        st.align = 4
    return context.get_dummy_value()


@intrinsic
def _group_sums(typingctx, g, goff, gstride, tab, toff, bw):
    """The 16 subset sums of 4 G rows for 16 columns: ``tab[toff + m * bw:][:16]`` = sum of
    the rows ``g.flat[goff + j * gstride:][:16]`` over the bits j of m, ascending j, from
    0.0 (entry 0: zeros), as :func:`lut_tables` adds them."""
    return types.void(g, goff, gstride, tab, toff, bw), _group_sums_codegen


VECS = 4  # vectors per call of the wide table sums (_lut_sum2v, _lut_sum1v)


@intrinsic
def _lut_sum2v(typingctx, tab, tab2, offs, obase, ostride, ng, add, cur, sq, doff):
    """:func:`_lut_sum2` for :data:`VECS` consecutive vectors (64 floats) at once: the same
    sums in the same order, with independent add chains."""
    return (types.void(tab, tab2, offs, obase, ostride, ng, add, cur, sq, doff),
            _lut_sum_codegen(True, VECS))


@intrinsic
def _lut_sum1v(typingctx, tab, offs, obase, ostride, ng, add, cur, doff):
    """:func:`_lut_sum1` for :data:`VECS` consecutive vectors."""
    return (types.void(tab, offs, obase, ostride, ng, add, cur, doff),
            _lut_sum_codegen(False, VECS))


@njit(inline="always")
def add_to_runs(runs: np.ndarray, n_runs: int, in_run: bool, s: int, b: int, n: int) -> int:
    """Record slice row ``n`` (slice ``s``, sample ``b``) in ``runs``, the work unit's runs
    of consecutive samples kept in one slice (``runs[j] = (slice, first sample, first row,
    length)``, see :func:`xbar.kernel.mvm_kernel`): it extends the last run when ``in_run``
    (the previous sample of this slice kept a row), else starts one. Returns the run count."""
    if in_run:
        runs[n_runs - 1, 3] += 1
        return n_runs
    runs[n_runs, 0] = s
    runs[n_runs, 1] = b
    runs[n_runs, 2] = n
    runs[n_runs, 3] = 1
    return n_runs + 1


@njit(cache=True)
def lut_tables(g_tiles: np.ndarray, n_in: int) -> np.ndarray:
    """Subset sums of each tile's G rows in groups of 4: float32 (n_tiles, n_groups * 16 *
    lanes), entry ((g * 16 + m) * lanes + c) = sum of G[4 g + j, c] over the bits j of m
    (ascending j, from 0; rows past n_in count as absent), lanes = n_phys rounded up to whole
    vectors (zeros past n_phys)."""
    n_tiles, rows, n_phys = g_tiles.shape
    lanes = (n_phys + LANES - 1) // LANES * LANES
    n_groups = (rows + 3) // 4
    size = n_groups * 16 * lanes  # a multiple of 16 floats: every vector 64-byte aligned
    buf = np.zeros(n_tiles * size + LANES, np.float32)
    first = (-(buf.ctypes.data // 4)) % LANES  # a vector split over two cache lines costs two
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


@njit(inline="always")
def _pack_codes(codes: np.ndarray, r0: int, r_used: int, packed: np.ndarray) -> np.ndarray:
    """Four 16-bit codes of inputs r0 .. r0 + r_used per uint64 word, group-major
    (``packed[g, b]``: inputs 4 g .. 4 g + 3 of sample b); returns each sample's OR of its
    codes (slice s drives a word line iff bit s is set)."""
    nb = codes.shape[0]
    n_groups = (r_used + 3) // 4
    n_full = r_used // 4
    on = np.empty(nb, np.int32)
    for b in range(nb):
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
    return on


@njit(cache=True)
def lut_rows(codes: np.ndarray, r0: int, r_used: int, n_slices: int, tab: np.ndarray,
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
    lanes = (n_phys + LANES - 1) // LANES * LANES
    on = _pack_codes(codes, r0, r_used, packed)
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
            v = 0
            while v + VECS * LANES <= lanes:
                if noisy:
                    _lut_sum2v(tab, tab2, offs, b, nb, n_groups, v, cur, sq, n * n_phys + v)
                else:
                    _lut_sum1v(tab, offs, b, nb, n_groups, v, cur, n * n_phys + v)
                v += VECS * LANES
            for v in range(v, n_phys, LANES):
                if noisy:
                    _lut_sum2(tab, tab2, offs, b, nb, n_groups, v, cur, sq, n * n_phys + v)
                else:
                    _lut_sum1(tab, offs, b, nb, n_groups, v, cur, n * n_phys + v)
            n_runs = add_to_runs(runs, n_runs, in_run, s, b, n)
            in_run = True
            n += 1
    return n, n_runs


@njit(cache=True)
def block_table(g: np.ndarray, r_used: int, c0: int, bw: int, tab: np.ndarray) -> None:
    """The subset-sum tables of one tile's columns c0 .. c0 + bw (:func:`lut_tables`'s
    entries, in its order: input order from 0 within a group of 4) into ``tab``, float32
    (n_groups * 16 * bw): entry ((grp * 16 + m) * bw + c) = sum of g[4 grp + j, c0 + c] over
    the bits j of m; zeros past the tile's last column.

    Whole groups go 16 columns at a time in registers (:func:`_group_sums`); a row's last
    columns short of a vector and a last, partial group (rows past ``r_used`` count as
    absent) go entry by entry."""
    n_phys = g.shape[1]
    n_groups = (r_used + 3) // 4
    n_full = r_used // 4
    w = min(bw, n_phys - c0)
    zero = np.float32(0.0)
    w_full = w // LANES * LANES  # whole vectors of G inside the row
    for grp in range(n_full):
        base = grp * 16 * bw
        for c in range(0, w_full, LANES):
            _group_sums(g, 4 * grp * n_phys + c0 + c, n_phys, tab, base + c, bw)
        for m in range(16):
            hb = 3 if m >= 8 else 2 if m >= 4 else 1 if m >= 2 else 0
            for c in range(w_full, bw):  # the row's last columns; zeros past them
                v = tab[base + (m ^ (1 << hb)) * bw + c] if m > 0 else zero
                if m > 0 and c < w:
                    v = v + g[4 * grp + hb, c0 + c]
                tab[base + m * bw + c] = v
    for grp in range(n_full, n_groups):
        base = grp * 16 * bw
        for c in range(bw):
            tab[base + c] = zero
        for m in range(1, 16):
            hb = 3 if m >= 8 else 2 if m >= 4 else 1 if m >= 2 else 0
            prev = base + (m ^ (1 << hb)) * bw
            dst = base + m * bw
            row = 4 * grp + hb
            for c in range(w):
                v = tab[prev + c]
                if row < r_used:
                    v = v + g[row, c0 + c]
                tab[dst + c] = v
            for c in range(w, bw):
                tab[dst + c] = zero


@njit(cache=True)
def lut_rows_blocked(codes: np.ndarray, r0: int, r_used: int, n_slices: int, g: np.ndarray,
                     g2: np.ndarray, noisy: bool, cur: np.ndarray, sq: np.ndarray,
                     runs: np.ndarray, packed: np.ndarray, offs: np.ndarray,
                     row_of: np.ndarray, tab: np.ndarray, tab2: np.ndarray,
                     bw: int) -> tuple[int, int]:
    """:func:`lut_rows` for wide tiles, with tables built here by blocks of ``bw`` columns
    (:func:`block_table`) from the tile's G rows ``g`` (and ``g2`` = G**2 when noisy), both
    (rows, n_phys): for each block, its tables, then every driven slice row's columns of
    that block. The same rows, runs, order of sums and output as :func:`lut_rows` on kept
    tables. ``offs`` (int32, slices x groups x samples), ``row_of`` (int64, slices x
    samples), ``tab`` and ``tab2`` (float32, n_groups * 16 * bw, 64-byte aligned) are work
    space; ``cur`` and ``sq`` need LANES floats past the last row."""
    nb = codes.shape[0]
    n_phys = g.shape[1]
    n_groups = (r_used + 3) // 4
    on = _pack_codes(codes, r0, r_used, packed)
    ones = np.uint64(0x0001000100010001)
    n = 0
    n_runs = 0
    for s in range(n_slices):
        sh = np.uint64(s)
        for grp in range(n_groups):  # bit s of a group's 4 codes, gathered by a multiply
            pg, og = packed[grp], offs[s, grp]
            base = grp * 16 * bw
            for b in range(nb):
                m = ((((pg[b] >> sh) & ones) * _BIT_GATHER) >> np.uint64(48)) & np.uint64(15)
                og[b] = np.int32(base + np.int64(m) * bw)
        in_run = False
        for b in range(nb):
            if (on[b] >> s) & 1 == 0:
                in_run = False
                row_of[s, b] = -1
                continue
            row_of[s, b] = n
            n_runs = add_to_runs(runs, n_runs, in_run, s, b, n)
            in_run = True
            n += 1
    if n == 0:
        return 0, 0
    n_blocks = (n_phys + bw - 1) // bw
    for j in range(n_blocks):
        # The last block first: its last vector may spill past the row's end into the next
        # row's first columns (block 0's, written later); with one block, rows go in order.
        blk = (j + n_blocks - 1) % n_blocks
        c0 = blk * bw
        w = min(bw, n_phys - c0)
        w_vec = (w + LANES - 1) // LANES * LANES  # whole vectors (the last may spill)
        block_table(g, r_used, c0, bw, tab)
        if noisy:
            block_table(g2, r_used, c0, bw, tab2)
        for s in range(n_slices):
            os = offs[s]
            for b in range(nb):
                r = row_of[s, b]
                if r < 0:
                    continue
                d = r * n_phys + c0
                v = 0
                while v + VECS * LANES <= w_vec:
                    if noisy:
                        _lut_sum2v(tab, tab2, os, b, nb, n_groups, v, cur, sq, d + v)
                    else:
                        _lut_sum1v(tab, os, b, nb, n_groups, v, cur, d + v)
                    v += VECS * LANES
                for v in range(v, w, LANES):
                    if noisy:
                        _lut_sum2(tab, tab2, os, b, nb, n_groups, v, cur, sq, d + v)
                    else:
                        _lut_sum1(tab, os, b, nb, n_groups, v, cur, d + v)
    return n, n_runs


@njit(cache=True)
def aligned_floats(n: int) -> np.ndarray:
    """float32 work space of ``n`` floats starting on a 64-byte boundary (a vector split
    over two cache lines costs two loads)."""
    buf = np.empty(n + LANES, np.float32)
    first = (-(buf.ctypes.data // 4)) % LANES
    return buf[first:first + n]
