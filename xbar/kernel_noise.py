"""The kernel's read-noise draws and ADC conversion (:mod:`xbar.kernel`'s step 3's noise and
step 4): a counter-based N(0, 1) generator, Marsaglia and Tsang's ziggurat on a splitmix64
hash of (key, counter), and the loops that turn a run of bit-line currents into ADC codes and
add them up. Split so that the bulk vectorises; each output is the step-by-step model's,
operation for operation. Measured: ``docs/speed.md``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from xbar.rng import GOLDEN, mix64

__all__ = ["PIECE", "ZIGGURAT", "convert_run", "normal", "normals", "ziggurat_edges"]

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



PIECE = 2048  # noise draws per step of a run: hashes and draws stay in L1

@njit(cache=True, error_model="numpy")
def convert_run(cur: np.ndarray, sq: np.ndarray, lsb: np.ndarray, acc: np.ndarray,
                 weight: float, v_unit: float, noise_scale: float, adc_top: float,
                 key: np.uint64, ctr0: int, zig: np.ndarray, x_edge: np.ndarray,
                 hs: np.ndarray, z: np.ndarray, slow: np.ndarray) -> None:
    """Read noise, ADC and shift-and-add for one run: consecutive samples of one slice.

    ``cur``, ``sq`` (sum a_i**2 G_i**2; unused without noise) and ``acc`` are the run's rows
    flattened (row-major, n_phys columns); ``lsb`` is the tile's ADC steps repeated for
    whole rows, at least :data:`PIECE` long. Element e draws its noise with counter
    ``ctr0 + e``. ``noise_scale`` is read_noise * v_unit (0: no noise). ``x_edge`` is the
    ziggurat's fast-path bound on the value (:func:`ziggurat_edges`).

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
                slow[n_slow] = e  # |hz| >= kn[iz], as |v| >= x_edge[iz] (see ziggurat_edges)
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
def ziggurat_edges(zig: np.ndarray) -> np.ndarray:
    """The ziggurat's fast-path test on the value: ``|hz| < kn[iz]`` (hz an integer, |hz| <=
    2**31) holds exactly when ``|hz * wn[iz]| < x_edge[iz] = ceil(kn[iz]) * wn[iz]`` in
    float64: |hz| < K = ceil(kn) is |hz| <= K - 1, rounding is monotonic, and (K - 1) wn and
    K wn differ by a factor 1 + 2**-31 or more, far beyond rounding, so they round apart."""
    k = _ceil_int(zig[0])
    out = np.empty(k.shape[0])
    for i in range(k.shape[0]):
        out[i] = np.float64(k[i]) * zig[1, i]
    return out
