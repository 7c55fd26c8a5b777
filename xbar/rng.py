"""Counter-based random numbers: the splitmix64 hash that every Numba kernel draws from.

A draw is a pure function of (key, counter), so kernels give the same numbers on any thread
count and for any split of the work (Steele, Lea and Flood, "Fast splittable pseudorandom
number generators", OOPSLA 2014: splitmix64).
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's output function: a bijective 64-bit hash with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))
