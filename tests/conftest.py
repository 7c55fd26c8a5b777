"""Shared fixtures: the real data directory and seeded generators."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
# The tests live in folders that mirror the packages (tests/xbar, tests/devices,
# tests/mapping/..., tests/project); their shared helpers (naive.py, this file) stay here.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data_dir() -> Path:
    """``$XBAR_DATA`` if set, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("XBAR_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def data_dir() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"shared data directory {d} is absent (set XBAR_DATA to its location)")
    return d


@pytest.fixture
def mnist_dir(data_dir: Path) -> Path:
    d = data_dir / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST test files are absent from {d}")
    return d


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tests (two torch threads on two shared cores made
    chip evaluations 30x slower); restored afterwards. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
