"""The :class:`Dataset` every loader returns, and where data and caches live on disk.

Images are float32 NCHW arrays in [0, 1] (not mean/std normalised, so inputs stay
non-negative, as crossbar input drivers need) and labels int64; :class:`Dataset` checks both.
Data files are looked for under :func:`data_root`; decoded data and trained weights are cached
under :func:`cache_dir`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from xbar.errors import DataError

__all__ = ["Dataset", "cache_dir", "data_root"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image-classification data set with a fixed train/test split.

    Attributes:
        name: Data set name as passed to :func:`load_dataset`.
        x_train: Training images, float32, shape (N, C, H, W), values in [0, 1].
        y_train: Training labels, int64, shape (N,), values in [0, n_classes).
        x_test: Test images, float32, shape (M, C, H, W), values in [0, 1].
        y_test: Test labels, int64, shape (M,).
        input_shape: One image's shape (C, H, W).
        n_classes: Number of classes.
        note: Where the data came from and which split was used (shown to the user).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, int, int]
    n_classes: int
    note: str = ""

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise DataError(f"Dataset.input_shape = {self.input_shape!r} is invalid; "
                             "expected (C, H, W) with positive sizes")
        if self.n_classes < 1:
            raise DataError(f"Dataset.n_classes = {self.n_classes!r} is invalid; must be >= 1")
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != shape:
                raise DataError(f"Dataset.x_{split} has dtype {x.dtype} and shape {x.shape}; "
                                 f"expected float32 of shape (N, {', '.join(map(str, shape))})")
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise DataError(f"Dataset.y_{split} has dtype {y.dtype} and shape {y.shape}; "
                                 f"expected int64 of shape ({x.shape[0]},)")
            if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
                raise DataError(f"Dataset.x_{split} values span [{x.min()}, {x.max()}]; "
                                 "expected [0, 1]")
            if y.size and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise DataError(f"Dataset.y_{split} labels span [{y.min()}, {y.max()}]; "
                                 f"expected [0, {self.n_classes - 1}]")

    @cached_property
    def fingerprint(self) -> str:
        """A 12-hex-digit hash of the name, shapes and contents; changes when the data do."""
        h = hashlib.blake2b(digest_size=6)
        h.update(f"{self.name}|{self.input_shape}|{self.n_classes}".encode())
        for arr in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()

    def first_test(self, n: int | None) -> "Dataset":
        """This data set with only its first ``n`` test images (all for None or n >= their
        count); the note says so. The test order is the data set's own: MNIST's official
        file order, CIFAR-10's fixed shuffle (never sorted by class)."""
        if n is None:
            return self
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise DataError(f"first_test(n={n!r}) is invalid; allowed: an integer >= 1")
        if n >= len(self.y_test):
            return self
        return Dataset(self.name, self.x_train, self.y_train, self.x_test[:n], self.y_test[:n],
                       self.input_shape, self.n_classes, f"{self.note} First {n} test images.")

    def summary(self) -> str:
        """One line: name, sizes, shape and the note."""
        c, hh, w = self.input_shape
        return (f"{self.name}: {len(self.y_train):,} train / {len(self.y_test):,} test, "
                f"{c}x{hh}x{w}, {self.n_classes} classes. {self.note}")


def cache_dir() -> Path:
    """The cache directory, ``$XBAR_CACHE`` or ``~/.cache/xbar-sim``, created on demand."""
    env = os.environ.get("XBAR_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "xbar-sim"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_root(data_dir: str | Path | None = None) -> Path:
    """Where data sets are looked for: ``data_dir``, else ``$XBAR_DATA``, else ``../shared/data``.

    Args:
        data_dir: Explicit directory (for example from ``--data-dir``); wins when given.

    Returns:
        The directory (it may not exist; loaders report what they looked for).
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("XBAR_DATA")
    if env:
        return Path(env).expanduser()
    return Path.cwd().parent / "shared" / "data"
