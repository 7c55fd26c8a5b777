"""The fast Numba kernel against outputs of the kernel before the speed work (issue 11).

The digests are SHA-256 prefixes of the float32 outputs that the previous kernel (one
stacked [G | G**2] GEMM per tile, a fused per-element loop) gave for these configurations, on
integer conductances (every bit-line sum exact, so GEMM summation order cannot matter), with
and without read noise: the rewrite kept the noise stream (same counters, same ziggurat) and
the arithmetic, so outputs must be bit for bit the old ones, noise included. Zero inputs,
whole zero samples and signed inputs exercise the skipped all-zero slice rows.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from xbar.analog import AnalogMatrix
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.devices import Device

DYADIC = Device(name="dyadic", g_min_us=1.0, g_max_us=128.0, n_levels=128)
SHAPES = [(16, 5, 37), (128, 6, 25), (32, 20, 70), (128, 10, 300)]  # rows, n_out, n_in
READS = [(8, 1), (8, 8), (6, 3), (5, 2)]  # input bits, bits per read

# Configuration number -> digest of the old kernel's output (1..64 noise-free, 65..128 with
# read noise 0.03); numbering follows _configs().
OLD_DIGESTS = {
    1: "61d8be9cf83f111c", 6: "49265715a461d657", 11: "a480aa885aec71c3",
    20: "98bcd3505dc49452", 27: "02fec3c674535072", 42: "b6775fcb520babae",
    59: "9e5f22acc3785fd2", 64: "5648d60e30669b85", 66: "0141c478ea8961be",
    71: "1980248a4209e7ec", 76: "5084512260cefda3", 85: "3b6b689a058135f0",
    92: "a87e2c25fa6971d5", 107: "6ae99b72d001a775", 117: "cbe709be8b374fca",
    128: "8f458d43cf173308",
}


def _configs():
    devices = [DYADIC, DYADIC.replace(read_noise=0.03)]
    combos = itertools.product(devices, SHAPES, READS, [False, True],
                               ["differential", "offset"])
    for i, (dev, (rows, n_out, n_in), (bits, k), signed, mapping) in enumerate(combos, 1):
        yield i, dev, rows, n_out, n_in, bits, k, signed, mapping


@pytest.mark.parametrize("number", sorted(OLD_DIGESTS))
def test_outputs_equal_the_previous_kernel_bit_for_bit(number):
    _, dev, rows, n_out, n_in, bits, k, signed, mapping = next(
        c for c in _configs() if c[0] == number)
    rng = np.random.default_rng(number)
    cfg = XbarConfig(ArrayConfig(rows=rows, cols=32, weight_mapping=mapping),
                     DACConfig(input_bits=bits, bits_per_read=k),
                     ADCConfig(bits=8, range_mode="calibrated"))
    m = AnalogMatrix.program(rng.normal(size=(n_out, n_in)), dev, cfg, rng)
    x = rng.uniform(-1 if signed else 0, 1, (67, n_in)).astype(np.float32)
    x[::3, ::2] = 0
    x[5] = 0
    m.calibrate_adc(x[:20])
    y = m.matmul(x, rng=np.random.default_rng(number + 1000))
    assert hashlib.sha256(y.tobytes()).hexdigest()[:16] == OLD_DIGESTS[number]


def test_every_slice_row_zero_gives_zero_output(rng):
    """A batch of zeros drives no word line: no GEMM, no noise, exact zeros out."""
    m = AnalogMatrix.program(rng.normal(size=(4, 40)), DYADIC.replace(read_noise=0.05),
                             XbarConfig(array=ArrayConfig(rows=16, cols=16),
                                        adc=ADCConfig(range_mode="full-scale")), rng)
    y = m.matmul(np.zeros((9, 40), np.float32), rng=np.random.default_rng(0), x_max=1.0)
    assert y.shape == (9, 4) and not y.any()


@pytest.mark.parametrize("stride,padding,dilation,mode", [
    ((1, 1), (2, 2), (1, 1), "zeros"), ((2, 1), (1, 0), (1, 2), "zeros"),
    ((1, 1), (1, 1), (1, 1), "reflect")])
def test_conv_im2col_in_the_kernel_equals_explicit_columns(stride, padding, dilation, mode):
    """AnalogConv2d's CPU path (patch offsets into the image, output written as N, C, H, W)
    gives the values of the im2col path, read noise included (the same counters)."""
    import torch

    from xbar.devices import preset
    from xbar.mapping.analog_layers import AnalogConv2d

    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 3, 3, 3))
    m = AnalogMatrix.program(w.reshape(5, -1), preset("wan2022"),
                             XbarConfig(array=ArrayConfig(rows=16, cols=16)), rng)
    layer = AnalogConv2d(m, rng.normal(size=5), "conv", 3, (3, 3), stride, padding, dilation,
                         padding_mode=mode)
    x = torch.as_tensor(rng.uniform(-1, 1, (4, 3, 9, 8)).astype(np.float32))
    layer.set_input_range(1.0, True)
    m.calibrate_adc(layer.input_columns(x).numpy(), 1.0, True)
    layer.read_rng = np.random.default_rng(7)
    with torch.no_grad():
        assert layer._fast_path(x)
        fast = layer(x)
    layer.read_rng = np.random.default_rng(7)
    cols = layer.input_columns(x)
    slow = m.matmul(cols.numpy(), rng=layer.read_rng, x_max=1.0, signed=True)
    h, w_out = layer.output_size(9, 8)
    slow = torch.from_numpy(slow).reshape(4, h * w_out, 5).transpose(1, 2).reshape(4, 5, h,
                                                                                   w_out)
    np.testing.assert_array_equal(fast.numpy(), (slow + layer.bias.view(1, -1, 1, 1)).numpy())


def test_matmul_patches_checks_its_inputs(rng):
    m = AnalogMatrix.program(rng.normal(size=(2, 4)), DYADIC, XbarConfig(
        adc=ADCConfig(range_mode="full-scale")), rng)
    images = np.zeros((3, 10), np.float32)
    with pytest.raises(ValueError, match="patch must have shape"):
        m.matmul_patches(images, np.zeros((2, 3), np.int32), None, 1.0, False)
    with pytest.raises(ValueError, match="offsets must lie"):
        m.matmul_patches(images, np.full((2, 4), 10), None, 1.0, False)
    images[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.matmul_patches(images, np.zeros((2, 4), np.int32), None, 1.0, False)


@pytest.mark.parametrize("n_out,n_in,rows,bits,mapping", [
    (9, 37, 16, 8, "differential"),  # 18 columns: a second, partly used vector; 3 tiles
    (16, 21, 128, 16, "differential"),  # 32 columns: two whole vectors; 16-bit codes
    (3, 5, 128, 4, "offset"),
    (7, 64, 32, 8, "offset"),
    (128, 40, 16, 8, "differential"),  # 256 columns, the widest with tables: 16 vectors
    (70, 30, 16, 8, "offset")])
def test_narrow_table_path_equals_the_gemm_path(n_out, n_in, rows, bits, mapping, monkeypatch):
    """1-bit reads of layers up to 256 physical columns sum G rows from tables instead of two
    GEMMs: on integer conductances the outputs are the GEMM path's bit for bit, read noise
    included (the GEMM path run as the kernel's Python function with the tables off)."""
    import xbar.analog
    import xbar.kernel

    rng = np.random.default_rng(n_in)
    cfg = XbarConfig(ArrayConfig(rows=rows, cols=32, weight_mapping=mapping),
                     DACConfig(input_bits=bits, bits_per_read=1),
                     ADCConfig(bits=8, range_mode="calibrated"))
    m = AnalogMatrix.program(rng.normal(size=(n_out, n_in)), DYADIC.replace(read_noise=0.03),
                             cfg, rng)
    x = rng.uniform(-1, 1, (23, n_in)).astype(np.float32)
    x[::4, 1::3] = 0
    x[2] = 0
    m.calibrate_adc(x[:10])
    fast = m.matmul(x, rng=np.random.default_rng(5))
    # The kernel's Python functions down to the work unit, where the tables are turned off;
    # the loops below it (slices, GEMMs, noise and ADC) run compiled.
    for module in (xbar.kernel, xbar.analog):
        monkeypatch.setattr(module, "table_reads", lambda *args: False)
    monkeypatch.setattr(xbar.kernel, "_mvm_chunk", xbar.kernel._mvm_chunk.py_func)
    monkeypatch.setattr(xbar.analog, "mvm_kernel", xbar.kernel.mvm_kernel.py_func)
    monkeypatch.setattr(xbar.analog, "mvm_kernel_serial", xbar.kernel.mvm_kernel.py_func)
    del m._numba_plan  # planned again: no tables
    gemm = m.matmul(x, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(fast, gemm)
    assert np.abs(fast).max() > 0


@pytest.mark.parametrize("n_out,n_in,rows,bits,mapping", [
    (150, 37, 16, 8, "differential"),  # 300 columns: blocks of 128, 128, 44; a partial group
    (300, 40, 128, 16, "offset"),  # 16-bit codes; one tile of 40 rows; reference columns
    (129, 64, 32, 8, "differential")])  # 258 columns: a last block of 2 columns
def test_wide_table_path_equals_the_gemm_path(n_out, n_in, rows, bits, mapping, monkeypatch):
    """1-bit reads of layers wider than 256 physical columns sum G rows from tables that each
    work unit builds by blocks of columns: on integer conductances the outputs are the GEMM
    path's bit for bit, read noise included."""
    import xbar.analog
    import xbar.kernel
    from xbar.kernel_tables import BLOCK_COLS, block_reads

    rng = np.random.default_rng(n_out)
    cfg = XbarConfig(ArrayConfig(rows=rows, cols=32, weight_mapping=mapping),
                     DACConfig(input_bits=bits, bits_per_read=1),
                     ADCConfig(bits=8, range_mode="calibrated"))
    m = AnalogMatrix.program(rng.normal(size=(n_out, n_in)), DYADIC.replace(read_noise=0.03),
                             cfg, rng)
    g_shape = m._kernel_tiles().shape
    assert block_reads(1, bits, g_shape) and g_shape[2] > BLOCK_COLS
    x = rng.uniform(-1, 1, (23, n_in)).astype(np.float32)
    x[::4, 1::3] = 0
    x[2] = 0
    m.calibrate_adc(x[:10])
    fast = m.matmul(x, rng=np.random.default_rng(5))
    monkeypatch.setattr(xbar.kernel, "block_reads", lambda *args: False)
    monkeypatch.setattr(xbar.kernel, "_mvm_chunk", xbar.kernel._mvm_chunk.py_func)
    monkeypatch.setattr(xbar.analog, "mvm_kernel", xbar.kernel.mvm_kernel.py_func)
    monkeypatch.setattr(xbar.analog, "mvm_kernel_serial", xbar.kernel.mvm_kernel.py_func)
    gemm = m.matmul(x, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(fast, gemm)
    assert np.abs(fast).max() > 0


def test_block_tables_equal_the_kept_tables():
    """A block of the per-work-unit tables is the kept tables' columns, bit for bit, on real
    (inexact) conductances: the same sums in the same order, whole and partial groups."""
    from xbar.kernel_tables import LANES, aligned_floats, block_table, lut_tables

    rng = np.random.default_rng(3)
    g = rng.uniform(0.5, 80.0, (2, 16, 53)).astype(np.float32)
    g[1, 10:] = 0.0  # the last tile: 10 inputs used, 2.5 groups
    kept = lut_tables(g, 26)
    lanes = 64
    for t, r_used in ((0, 16), (1, 10)):
        for c0, bw in ((0, 32), (32, 32), (48, 16), (0, 64)):
            tab = aligned_floats((r_used + 3) // 4 * 16 * bw)
            block_table(g[t], r_used, c0, bw, tab)
            w = min(bw, 53 - c0)
            for grp in range((r_used + 3) // 4):
                for e in range(16):
                    got = tab[(grp * 16 + e) * bw:][:bw]
                    want = kept[t, (grp * 16 + e) * lanes + c0:][:w]
                    np.testing.assert_array_equal(got[:w], want)
                    assert not got[w:].any()
    assert tab.ctypes.data % (4 * LANES) == 0


@pytest.mark.parametrize("n_out,n_in,k", [(6, 25, 1), (20, 70, 1), (6, 25, 2)])
def test_serial_twin_equals_the_parallel_kernel(n_out, n_in, k, monkeypatch):
    """Calls of one work unit, or on one thread, run the kernel's serial twin: the same
    output as the parallel kernel, noise included, on any number of work units."""
    import numba

    import xbar.analog
    import xbar.kernel

    rng = np.random.default_rng(n_in + k)
    cfg = XbarConfig(ArrayConfig(rows=16, cols=32), DACConfig(input_bits=8, bits_per_read=k),
                     ADCConfig(bits=8, range_mode="calibrated"))
    m = AnalogMatrix.program(rng.normal(size=(n_out, n_in)), DYADIC.replace(read_noise=0.03),
                             cfg, rng)
    x = rng.uniform(-1, 1, (41, n_in)).astype(np.float32)
    m.calibrate_adc(x[:10])
    calls = []
    for name in ("mvm_kernel", "mvm_kernel_serial"):
        kernel = getattr(xbar.kernel, name)
        monkeypatch.setattr(xbar.analog, name,
                            lambda *a, _k=kernel, _n=name: (calls.append(_n), _k(*a))[1])
    whole = m.matmul(x, rng=np.random.default_rng(5))  # one work unit: serial
    monkeypatch.setattr(xbar.analog, "_THREAD_CHUNK_BYTES", 1)  # work units of 1 sample
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = m.matmul(x, rng=np.random.default_rng(5))
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = m.matmul(x, rng=np.random.default_rng(5))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(whole, one)
    np.testing.assert_array_equal(whole, two)
    assert calls[:2] == ["mvm_kernel_serial"] * 2
    if numba.config.NUMBA_NUM_THREADS > 1:
        assert calls[2] == "mvm_kernel"


def test_which_reads_use_tables():
    from xbar.kernel_tables import table_reads

    assert table_reads(1, 8, (1, 25, 12)) and table_reads(1, 16, (3, 128, 256))
    assert not table_reads(2, 8, (1, 25, 12))  # multi-bit reads: GEMMs
    assert not table_reads(1, 17, (1, 25, 12))  # codes past 16 bits
    assert not table_reads(1, 8, (1, 128, 257))  # wider than 256 columns
    assert not table_reads(1, 8, (65, 128, 256))  # tables over 32 MB
    from xbar.kernel_tables import block_reads

    # 1-bit reads that kept tables leave out: tables built by each work unit
    assert block_reads(1, 8, (1, 128, 257)) and block_reads(1, 8, (65, 128, 256))
    assert not block_reads(1, 8, (1, 25, 12))  # kept tables
    assert not block_reads(2, 8, (1, 128, 1024)) and not block_reads(1, 17, (1, 128, 1024))


def test_noise_and_adc_loops_equal_one_draw_at_a_time():
    """convert_run's split loops (hashes, fast path, slow-path stages, conversion) against
    the plain model: each element's draw is ``normals`` (one ziggurat draw at a time, its
    slow path whole), then noise, ADC and shift-and-add, over ~300,000 draws: ~8,000
    through the slow path, ~170 of them in the tail."""
    from xbar.kernel_noise import PIECE, ZIGGURAT, convert_run, normals, ziggurat_edges

    rng = np.random.default_rng(11)
    n = 300_000
    cur = rng.integers(0, 3000, n).astype(np.float32)
    sq = (cur * rng.uniform(50, 128, n)).astype(np.float32)
    sq[::7] = 0  # no word line driven: no noise
    lsb = np.full(PIECE, 0.37)
    acc = rng.normal(size=n)
    want = acc.copy()
    key, ctr0, weight, v_unit, scale, top = np.uint64(2**63 + 5), 1234, -4.0, 0.2, 0.02, 255.0
    work = [np.empty(PIECE, np.uint64), np.empty(PIECE), np.empty(PIECE, np.int64)]
    convert_run(cur, sq, lsb, acc, weight, v_unit, scale, top, key, ctr0, ZIGGURAT,
                ziggurat_edges(ZIGGURAT), *work)
    z = normals(key, ctr0 + n)[ctr0:]
    s2 = sq.astype(np.float64)
    sd = np.where(s2 > 0, scale * np.sqrt(s2), 0.0)
    i_ua = v_unit * cur.astype(np.float64) + sd * z
    want += weight * np.minimum(np.maximum(np.rint(i_ua / 0.37), 0.0), top) * 0.37
    np.testing.assert_array_equal(acc, want)


@pytest.mark.parametrize("bits_per_read", [1, 2])
def test_kept_kernel_plan_follows_new_ranges_and_conductances(bits_per_read):
    """Tiles, ADC steps and tables are kept between calls while ``g_us``, ``config`` and
    ``adc_range_ua`` are the same objects; calibrating again or programming new cells (new
    arrays) must give what a matrix without anything kept gives."""
    import dataclasses

    rng = np.random.default_rng(3)
    cfg = XbarConfig(ArrayConfig(rows=16, cols=32),
                     DACConfig(input_bits=8, bits_per_read=bits_per_read),
                     ADCConfig(bits=8, range_mode="calibrated"))
    m = AnalogMatrix.program(rng.normal(size=(6, 25)), DYADIC.replace(read_noise=0.03),
                             cfg, rng)
    x = rng.uniform(0, 1, (40, 25)).astype(np.float32)

    def same_as_fresh() -> None:
        fresh = dataclasses.replace(m)  # the same fields, nothing kept
        assert not hasattr(fresh, "_numba_plan")
        np.testing.assert_array_equal(m.matmul(x, rng=np.random.default_rng(1)),
                                      fresh.matmul(x, rng=np.random.default_rng(1)))

    m.calibrate_adc(x[:5])
    first = m.matmul(x, rng=np.random.default_rng(1))
    same_as_fresh()
    m.calibrate_adc(x * 0.5)  # other ADC ranges
    same_as_fresh()
    assert not np.array_equal(first, m.matmul(x, rng=np.random.default_rng(1)))
    m.g_us = np.where(m.g_us > 8, m.g_us - 1, m.g_us).astype(np.float32)  # other cells
    same_as_fresh()
