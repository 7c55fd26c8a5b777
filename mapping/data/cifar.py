"""CIFAR-10: the python batches, the JPEG image-folder tar, and the decoded-tar cache.

Looked for as the python batches directory ``cifar-10-batches-py`` or the image-folder tar
``cifar10/cifar10-jpeg.tar``; decoded JPEGs are cached as a compressed ``.npz`` under
:func:`~xbar.mapping.data.base.cache_dir`, keyed by the tar's size and modification time.
"""

from __future__ import annotations

import importlib
import io
import pickle
import re
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from xbar.errors import DataError, MissingFileError
from xbar.files import write_atomically
from xbar.mapping.data.base import Dataset, cache_dir, data_root

__all__ = ["CIFAR10_CLASSES", "decode_cifar_tar", "find_cifar10", "load_cifar10"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10 class names in the standard label order (label 0 = airplane)."""

_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
"""File names of the python version's five training batches and its test batch."""
_CIFAR_TAR = "cifar10-jpeg.tar"
"""File name of the JPEG image-folder tar."""
_CIFAR_CACHE_VERSION = 1
"""Bump when the decoding changes, so stale cached arrays are not reused."""
_TAR_MEMBER = re.compile(r"^(?:\./)?(train|test)/([^/]+)/([^/]+)\.(?:jpe?g|png)$", re.IGNORECASE)
"""An image member of the tar: ``train|test/<class>/<name>.jpg`` (or .jpeg, .png)."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a CIFAR batch needs (numpy arrays)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}; a CIFAR "
                                         "batch holds only numpy arrays and lists")
        if module.startswith("numpy.core"):  # NumPy 2 moved numpy.core to numpy._core
            core = "numpy._core" if hasattr(np, "_core") else "numpy.core"
            module = core + module[len("numpy.core"):]
        return getattr(importlib.import_module(module), name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch: uint8 images (N,3,32,32) and int64 labels."""
    try:
        with path.open("rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CIFAR-10 python batch ({exc}); the file is "
                         "corrupt or truncated") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise DataError(f"{path}: data of shape {data.shape} and {labels.size} labels; "
                         "expected N x 3072 uint8 and N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_from_batches(directory: Path) -> Dataset:
    missing = [n for n in _CIFAR_BATCHES if not (directory / n).is_file()]
    if missing:
        raise MissingFileError(f"CIFAR-10 batches directory {directory} lacks "
                                f"{', '.join(missing)}; it needs data_batch_1..5 and test_batch")
    parts = [_read_cifar_batch(directory / n) for n in _CIFAR_BATCHES]
    x_train = np.concatenate([p[0] for p in parts[:5]])
    y_train = np.concatenate([p[1] for p in parts[:5]])
    x_test, y_test = parts[5]
    return _cifar_dataset(x_train, y_train, x_test, y_test,
                          f"CIFAR-10 python batches from {directory}")


def _cifar_dataset(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, source: str) -> Dataset:
    def to_float(x: np.ndarray) -> np.ndarray:
        out = x.astype(np.float32)
        out *= np.float32(1.0 / 255.0)
        return out

    return Dataset(name="cifar10", x_train=to_float(x_train), y_train=y_train,
                   x_test=to_float(x_test), y_test=y_test, input_shape=(3, 32, 32),
                   n_classes=10,
                   note=f"{source}: {len(y_train):,} train / {len(y_test):,} test.")


def decode_cifar_tar(path: str | Path) -> dict[str, np.ndarray]:
    """Decode an image-folder tar (``train|test/<class>/<name>.jpg``) to uint8 arrays.

    Images are ordered by split, class (standard order) and file name, so the result is the
    same whatever the member order in the tar.

    Returns:
        ``x_train``, ``y_train``, ``x_test``, ``y_test``: uint8 (N,3,32,32) and int64 (N,).

    Raises:
        ValueError: An unknown class directory, an image that is not 32x32, an undecodable
            image, or a split with no images.
    """
    from PIL import Image

    path = Path(path)
    items: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                match = _TAR_MEMBER.match(member.name)
                if not member.isfile() or match is None:
                    continue
                split, cls, stem = match.groups()
                if cls not in CIFAR10_CLASSES:
                    raise DataError(f"{path}: member {member.name}: unknown class {cls!r}; "
                                     f"expected one of {', '.join(CIFAR10_CLASSES)}")
                fobj = tar.extractfile(member)
                assert fobj is not None
                try:
                    with Image.open(io.BytesIO(fobj.read())) as img:
                        arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
                except OSError as exc:
                    raise DataError(f"{path}: member {member.name} is not a readable "
                                     f"image ({exc})") from exc
                if arr.shape != (32, 32, 3):
                    raise DataError(f"{path}: member {member.name} is {arr.shape[1]}x"
                                     f"{arr.shape[0]}; CIFAR-10 images are 32x32")
                items[split].append((CIFAR10_CLASSES.index(cls), stem, arr))
    except (tarfile.TarError, EOFError) as exc:
        raise DataError(f"{path}: not a readable tar file ({exc}); it is corrupt or "
                         "truncated") from exc
    out: dict[str, np.ndarray] = {}
    for split, rows in items.items():
        if not rows:
            raise DataError(f"{path}: no images under {split}/<class>/; expected "
                             f"{split}/<class>/NNNN.jpg members")
        rows.sort(key=lambda r: (r[0], r[1]))
        out[f"x_{split}"] = np.stack([r[2] for r in rows]).transpose(0, 3, 1, 2).copy()
        out[f"y_{split}"] = np.array([r[0] for r in rows], dtype=np.int64)
    return out


def _cifar_from_tar(path: Path) -> Dataset:
    """Load the JPEG tar, through a cache keyed by the tar's size and mtime."""
    st = path.stat()
    cache = cache_dir() / "data"
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / (f"cifar10-{path.stem}-v{_CIFAR_CACHE_VERSION}-{st.st_size}-"
                      f"{st.st_mtime_ns}.npz")
    arrays: dict[str, np.ndarray] | None = None
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, KeyError, ValueError, EOFError, zlib.error):
            arrays = None  # a damaged cache entry is rebuilt below
    source = f"CIFAR-10 JPEG image-folder tar {path} (JPEG re-encodes; pixels differ slightly "
    source += "from the canonical release)"
    if arrays is None:
        arrays = decode_cifar_tar(path)
        def write(tmp: str, arrays: dict[str, np.ndarray] = arrays) -> None:
            with open(tmp, "wb") as f:  # a file object: savez would append .npz to a name
                np.savez_compressed(f, **arrays)

        write_atomically(cached, write)
    else:
        source += f", decoded arrays from cache {cached.name}"
    order = shuffled_test_order(len(arrays["y_test"]))
    source += "; test images in a fixed shuffled order (TEST_ORDER_SEED)"
    return _cifar_dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"][order],
                          arrays["y_test"][order], source)


#: Seed of the fixed permutation of an image-folder tar's test images. The folders give them
#: sorted by class, so the first N test images (``--test-limit``, a benchmark's ``--images``)
#: would be one or two classes: a collapsed network that never predicts class 0 scored 0 %
#: on the first 1,000. The canonical python batches are already in a shuffled order.
TEST_ORDER_SEED = 20091


def shuffled_test_order(n: int) -> np.ndarray:
    """The fixed order the tar's ``n`` test images are given in (a seeded permutation)."""
    return np.random.default_rng(np.random.SeedSequence([TEST_ORDER_SEED, n])).permutation(n)


def find_cifar10(data_dir: str | Path | None = None) -> Path:
    """Where CIFAR-10 is, without reading it: the python batches directory or the JPEG
    image-folder tar :func:`load_cifar10` would read (so that a run needing it can check
    before any work).

    Raises:
        MissingFileError: Neither is there; says what to put where.
    """
    root = data_root(data_dir)
    if root.is_file():
        return root
    batch_dirs = [root / "cifar10" / "cifar-10-batches-py", root / "cifar-10-batches-py",
                  root / "cifar10", root]
    found = next((d for d in batch_dirs if (d / "data_batch_1").is_file()), None)
    if found is not None:
        return found
    tars = [root / "cifar10" / _CIFAR_TAR, root / _CIFAR_TAR]
    tar = next((t for t in tars if t.is_file()), None)
    if tar is not None:
        return tar
    raise MissingFileError(
        f"CIFAR-10 not found under {root}: looked for {batch_dirs[0]} (the python version, "
        f"data_batch_1..5 and test_batch) and {tars[0]} (image-folder tar with "
        "train/<class>/NNNN.jpg and test/<class>/NNNN.jpg). Put either there, or give the "
        "directory that holds it as find_cifar10(data_dir=...) or the XBAR_DATA environment "
        "variable.")


def load_cifar10(data_dir: str | Path | None = None) -> Dataset:
    """Load CIFAR-10 from the python batches directory or the JPEG image-folder tar.

    Looked for, in order: ``cifar-10-batches-py`` (under ``<root>/cifar10`` or ``<root>``, or
    ``<root>`` itself), then ``cifar10-jpeg.tar`` (under ``<root>/cifar10`` or ``<root>``, or
    ``data_dir`` naming the tar itself), where ``<root>`` is :func:`data_root`
    (:func:`find_cifar10`).

    Returns:
        50,000 train / 10,000 test images, shape (3, 32, 32), standard class order.
    """
    found = find_cifar10(data_dir)
    return _cifar_from_tar(found) if found.is_file() else _cifar_from_batches(found)
