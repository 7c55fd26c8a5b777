"""Where an analog MVM runs: the names of the compute backends.

A leaf module (no project imports), so that the array model (:mod:`xbar.analog`), the PyTorch
kernel that resolves a name (:func:`xbar.kernel_torch.resolve_backend`) and the command line
all read the one list without importing each other or torch.

* ``"cpu"``: the Numba kernel (:mod:`xbar.kernel`), counter-based noise streams: the same
  figures on every machine (the default everywhere).
* ``"auto"``: ``"cuda"`` when torch sees a GPU, else ``"cpu"``.
* ``"cuda"``: the PyTorch kernel (:mod:`xbar.kernel_torch`) on the GPU.
* ``"torch-cpu"``: the PyTorch kernel on torch's CPU device (the CUDA code path, for checks).
"""

from __future__ import annotations

__all__ = ["BACKENDS", "DEFAULT_BACKEND"]

BACKENDS = ("auto", "cpu", "cuda", "torch-cpu")
"""Backend names accepted by ``backend=`` arguments and ``--backend``."""

DEFAULT_BACKEND = "cpu"
"""The backend without ``--backend``: the Numba kernel, the same figures on every machine."""
