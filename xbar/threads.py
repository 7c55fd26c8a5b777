"""Thread set-up for the Numba kernels, done explicitly at entry points (never on import).

:func:`configure_threads` makes Numba prefer its OpenMP threading layer (then the work-queue
layer, where Numba has no OpenMP runtime, then TBB) unless ``NUMBA_THREADING_LAYER`` or
``NUMBA_THREADING_LAYER_PRIORITY`` is set. Why OpenMP, measured on the project's 2 cores
with the same outputs either way (work units are fixed by the shape, not the threads):
OpenMP's threads wait for the next parallel region spinning for a moment, so a short kernel
call starts at once, whereas the work-queue layer wakes its threads through the OS, which on
a shared machine often starts the second thread late or on the first one's core. LeNet-5 on
10,000 MNIST images with every non-ideality took 1.63 s against 2.36 s, ``xbar demo`` 16.6 s
against 20.0 s wall (25.4 s against 20.6 s of CPU: the spinning), and the 6x25 layer's time
per MAC over 512x4608's was 2.2 steadily against 2.9-3.6 (docs/speed.md). The OpenMP layer
is also safe to call from several Python threads at once, which the work-queue layer is not.
GNU OpenMP is not fork-safe: a process that has run a parallel kernel must not fork a child
that runs one (``xbar sweep`` spawns its workers; use ``spawn`` likewise, or set
``NUMBA_THREADING_LAYER=workqueue``).

(Before issue 11's BLAS fix, BLAS ran multi-threaded inside the kernel's threads, and the
OpenMP layer's spinning made 2-thread runs 5-50x slower than 1-thread runs; the work-queue
layer was chosen then. With BLAS held to one thread inside the kernel that fight is gone.)

Numba fixes the layer when the first parallel kernel launches, so the command line calls
this first thing, and the kernels' wrappers call it before their first launch (a no-op
afterwards) so that library users get the same behaviour.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PRIORITY", "configure_threads", "single_threaded_blas"]

_configured = False
_blas_controller: Any = None


PRIORITY = ("omp", "workqueue", "tbb")
"""Numba's threading layers in the order :func:`configure_threads` prefers them."""


def configure_threads() -> None:
    """Prefer Numba's OpenMP threading layer (see the module docstring) unless the
    environment names a layer or a priority."""
    global _configured
    if _configured:
        return
    if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
        import numba
        numba.config.THREADING_LAYER = "default"
        numba.config.THREADING_LAYER_PRIORITY = list(PRIORITY)
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
