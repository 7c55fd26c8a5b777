"""Data sets for training and evaluating networks: digits, MNIST and CIFAR-10, by name.

Every loader returns a :class:`~xbar.mapping.data.base.Dataset` with images as float32 NCHW
arrays in [0, 1] and int64 labels. Files are read in their standard distribution formats and
verified:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits; always available offline (here).
* ``mnist``: the four IDX files, md5-checked (:mod:`xbar.mapping.data.mnist`).
* ``cifar10``: the python batches or the JPEG image-folder tar
  (:mod:`xbar.mapping.data.cifar`).

Where the files are looked for: the ``data_dir`` argument, else ``$XBAR_DATA``, else
``../shared/data`` relative to the current directory (see
:func:`xbar.mapping.data.base.data_root`). Each format's names (``parse_idx``,
``CIFAR10_CLASSES``, ...) are imported from its own module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xbar.errors import DataError
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.cifar import load_cifar10
from xbar.mapping.data.mnist import load_mnist

__all__ = ["DATASET_NAMES", "DIGITS_N_TEST", "DIGITS_SPLIT_SEED", "load_dataset",
           "load_digits"]

DATASET_NAMES = ("digits", "mnist", "cifar10")
"""Names accepted by :func:`load_dataset`."""

DIGITS_SPLIT_SEED = 0
"""Seed of the digits train/test permutation."""
DIGITS_N_TEST = 360
"""Digits images held out for testing (the first of the seeded permutation)."""


def load_dataset(name: str, data_dir: str | Path | None = None, *,
                 download: bool = True) -> Dataset:
    """Load a data set by name.

    Args:
        name: One of :data:`DATASET_NAMES` (``digits``, ``mnist``, ``cifar10``).
        data_dir: Directory holding the files (the data set's subdirectory, e.g. ``mnist/``, or
            its parent). Default: ``$XBAR_DATA``, else ``../shared/data``. Unused for digits.
        download: For MNIST only: when no files are found, try the standard mirrors (short
            timeout) and store the verified files under ``<data dir>/mnist``.

    Returns:
        The data set with its fixed train/test split.

    Raises:
        ValueError: Unknown name, or a corrupt, truncated or wrong-checksum file (named).
        FileNotFoundError: The files are absent; the message says which to put where.
    """
    key = name.strip().lower()
    if key == "digits":
        return load_digits()
    if key == "mnist":
        return load_mnist(data_dir, download=download)
    if key in ("cifar10", "cifar-10"):
        return load_cifar10(data_dir)
    raise DataError(f"load_dataset(name={name!r}): unknown data set; valid names: "
                    f"{', '.join(DATASET_NAMES)}")


# --- digits ------------------------------------------------------------------------------------

def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images): a fixed seeded split, 1,437 train / 360 test.

    The split uses ``np.random.RandomState(0).permutation``, whose stream NumPy keeps frozen,
    so it is the same on every NumPy version.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(y))
    test, train = order[:DIGITS_N_TEST], order[DIGITS_N_TEST:]
    return Dataset(
        name="digits", x_train=np.ascontiguousarray(x[train]), y_train=y[train],
        x_test=np.ascontiguousarray(x[test]), y_test=y[test], input_shape=(1, 8, 8),
        n_classes=10,
        note=f"scikit-learn 8x8 digits, seeded split (RandomState({DIGITS_SPLIT_SEED})): "
             f"{len(train):,} train / {len(test):,} test.")
