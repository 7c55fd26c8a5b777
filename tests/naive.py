"""Slow, obvious references for the kernels (compare, never import into the package)."""

from __future__ import annotations

import numpy as np


def naive_matmul(m, x: np.ndarray, x_max: float, signed: bool,
                 cell_noise_rng: np.random.Generator | None = None) -> np.ndarray:
    """The analog MVM of ``m`` (an AnalogMatrix) on ``x``, step by step.

    With ``cell_noise_rng`` every cell's conductance is redrawn for every read as
    G * (1 + read_noise * N(0, 1)), the physical per-cell model the kernel replaces by one
    output-referred Gaussian per column.
    """
    cfg = m.config
    rows, bits, k = cfg.array.rows, cfg.dac.input_bits, cfg.dac.bits_per_read
    n_slices = -(-bits // k)
    mask = (1 << k) - 1
    v_unit = cfg.array.read_voltage_v / mask
    top = (1 << cfg.adc.bits) - 1
    lsb = m._lsb()
    g = m.g_us.astype(np.float64)
    n_in, n_phys = g.shape
    n_tiles = -(-n_in // rows)
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    acc = np.zeros((len(x), n_phys))
    for p, sign in enumerate([1.0, -1.0][: 2 if signed else 1]):
        v = np.maximum(sign * x, 0.0)
        codes = np.rint(np.minimum(v / x_max, 1.0) * ((1 << bits) - 1)).astype(np.int64)
        for t in range(n_tiles):
            r = slice(t * rows, min(n_in, (t + 1) * rows))
            for s in range(n_slices):
                a = ((codes[:, r] >> (k * s)) & mask).astype(np.float64)
                if cell_noise_rng is None:
                    current = v_unit * (a @ g[r])
                else:
                    eps = cell_noise_rng.standard_normal((len(x),) + g[r].shape)
                    g_read = g[r][None] * (1 + m.device.read_noise * eps)
                    current = v_unit * np.einsum("bi,bic->bc", a, g_read)
                for b in range(len(x)):
                    for c in range(n_phys):
                        q = min(max(np.rint(current[b, c] / lsb[t, c]), 0.0), top)
                        acc[b, c] += sign * float(1 << (k * s)) * q * lsb[t, c]
    to_weight = x_max / (((1 << bits) - 1) * v_unit * m.g_scale)
    return ((acc[:, m.pos_cols] - acc[:, m.neg_cols]) * to_weight).astype(np.float32)
