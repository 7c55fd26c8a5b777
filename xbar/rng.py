"""Counter-based random numbers: the splitmix64 hash that every Numba kernel draws from.

A draw is a pure function of (key, counter), so kernels give the same numbers on any thread
count and for any split of the work (Steele, Lea and Flood, "Fast splittable pseudorandom
number generators", OOPSLA 2014: splitmix64). The per-cell streams (a key per run, a stream
per cell, normals by Acklam's inverse-CDF approximation) serve the write-verify loop of
:mod:`xbar.devices.write_verify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from xbar.errors import ConfigError

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's output function: a bijective 64-bit hash with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


# --------------------------------------------------------------------------- per-cell streams
_CELL = np.uint64(0xD6E8FEB86659FD93)
_SEED_SALT = np.uint64(0x5772_6974_6556_6572)  # "WriteVer"
_INV_2_32 = 1.0 / 4294967296.0
#: Bound on |z| for the read shortcut: above the largest |z| the normal generator can
#: return (its uniforms stay 2**-33 away from 0 and 1, so |z| <= 6.36).
Z_MAX = 6.5

# Acklam's rational approximation of the standard normal quantile, |relative error| < 1.2e-9.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_P_LOW = 0.02425


@njit(inline="always")
def cell_key(key: np.uint64, cell: np.uint64) -> np.uint64:
    """The stream of one cell: a hash of the run's key and the cell index."""
    return mix64(key ^ (cell * _CELL))


@njit(inline="always")
def uniform_draw(cell_key: np.uint64, counter: np.uint64) -> float:
    """Uniform (0, 1) draw number ``counter`` of a cell's stream (top 32 bits of a hash)."""
    h = mix64(cell_key + (counter + np.uint64(1)) * GOLDEN)
    return (np.float64(h >> np.uint64(32)) + 0.5) * _INV_2_32


@njit(inline="always")
def _normal_quantile(p: float) -> float:
    if p < _P_LOW or p > 1.0 - _P_LOW:
        q = math.sqrt(-2.0 * math.log(p if p < 0.5 else 1.0 - p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))


@njit(inline="always")
def normal_draw(cell_key: np.uint64, counter: np.uint64) -> float:
    """N(0, 1) draw number ``counter`` of a cell's stream; |value| < :data:`Z_MAX`."""
    return _normal_quantile(uniform_draw(cell_key, counter))


def seed_key(seed: int) -> np.uint64:
    """The 64-bit key of a run from a non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not \
            0 <= int(seed) < 2 ** 64:
        raise ConfigError(f"seed = {seed!r} is invalid; allowed: an integer in [0, 2**64)")
    s = (int(seed) ^ int(_SEED_SALT)) & 0xFFFFFFFFFFFFFFFF
    z = (s + int(GOLDEN)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * int(MIX1)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * int(MIX2)) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(z ^ (z >> 31))


@njit(cache=True)
def cell_draws(key: np.uint64, cell: int, n: int) -> np.ndarray:
    """Normal draws 0..n-1 of one cell's stream (for tests and references)."""
    ck = cell_key(key, np.uint64(cell))
    out = np.empty(n, np.float64)
    for c in range(n):
        out[c] = normal_draw(ck, np.uint64(c))
    return out
