"""Thread set-up for the Numba kernels, done explicitly at entry points (never on import).

Numba's OpenMP threading layer spins against the OpenMP runtime that PyTorch loads and
against BLAS's own threads: on 2 cores it made 2-thread kernel runs 5-50x slower than 1-thread
runs. The work-queue layer has no such fight, so :func:`configure_threads` selects it unless
``NUMBA_THREADING_LAYER`` is set. Numba fixes the layer when the first parallel kernel
launches, so the command line calls this first thing, and the kernels' wrappers call it before
their first launch (a no-op afterwards) so that library users get the same behaviour.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["configure_threads", "single_threaded_blas"]

_configured = False
_blas_controller: Any = None


def configure_threads() -> None:
    """Select Numba's work-queue threading layer unless the environment names one."""
    global _configured
    if _configured:
        return
    if "NUMBA_THREADING_LAYER" not in os.environ:
        import numba
        numba.config.THREADING_LAYER = "workqueue"
    _configured = True


def single_threaded_blas() -> Any:
    """Context in which BLAS runs on one thread: the kernel's threads each call it, and
    BLAS's own spinning threads would otherwise fight them for the cores."""
    global _blas_controller
    if _blas_controller is None:
        # Numba's np.dot calls SciPy's BLAS (scipy.linalg.cython_blas), which is often a
        # different library from NumPy's: load it before threadpoolctl takes its inventory,
        # or the kernel's GEMMs run multi-threaded inside Numba's threads (measured: 2
        # Numba threads x 2 OpenBLAS threads made the bit-serial kernel 5-10x slower and
        # left OpenBLAS threads spinning after it returned).
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")
