"""Numba's threading layer (xbar.threads): OpenMP preferred, the environment obeyed, and the
kernel's outputs the same on every layer."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from xbar.threads import PRIORITY

SCRIPT = """
import numpy as np, numba
from xbar.analog import AnalogMatrix
from xbar.config import XbarConfig
from xbar.devices import preset
rng = np.random.default_rng(0)
m = AnalogMatrix.program(rng.normal(size=(20, 300)), preset("wan2022"), XbarConfig(), rng)
x = rng.random((3000, 300)).astype(np.float32)
m.calibrate_adc(x[:64])
y = m.matmul(x, rng=np.random.default_rng(1))   # several work units: the parallel kernel
print(numba.threading_layer(), y.astype(np.float64).sum().hex())
"""


def _run(**env: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env={**clean, **env},
                         capture_output=True, text=True, timeout=300, check=True)
    layer, digest = out.stdout.split()
    return layer, digest


def _available(layer: str) -> bool:
    module = {"omp": "omppool", "workqueue": "workqueue", "tbb": "tbbpool"}[layer]
    try:
        return importlib.util.find_spec(f"numba.np.ufunc.{module}") is not None
    except ImportError:
        return False


@pytest.mark.slow
def test_openmp_preferred_environment_obeyed_outputs_identical():
    layer, digest = _run(NUMBA_NUM_THREADS="2")
    expected = next(name for name in PRIORITY if _available(name))
    assert layer == expected
    forced, forced_digest = _run(NUMBA_NUM_THREADS="2", NUMBA_THREADING_LAYER="workqueue")
    assert forced == "workqueue"
    assert forced_digest == digest  # work units are fixed by the shape: the same output


@pytest.mark.slow
@pytest.mark.skipif(not _available("omp"), reason="this Numba has no OpenMP layer")
def test_priority_from_the_environment_is_kept():
    layer, _ = _run(NUMBA_THREADING_LAYER_PRIORITY="workqueue omp tbb")
    assert layer == "workqueue"
