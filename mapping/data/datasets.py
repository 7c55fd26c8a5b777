"""Data sets for training and evaluating networks: digits, MNIST and CIFAR-10.

Every loader returns a :class:`Dataset` with images as float32 NCHW arrays in [0, 1] (not
mean/std normalised, so inputs stay non-negative, as crossbar input drivers need) and int64
labels. Files are read in their standard distribution formats and verified:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits; always available offline.
* ``mnist``: the four IDX files (``*-ubyte.gz`` or raw ``*-ubyte``), checked against the
  official md5 sums of the decompressed bytes. With only the two ``t10k`` files the 10,000
  test images are split deterministically (first 8,000 train, last 2,000 test).
* ``cifar10``: the python batches directory ``cifar-10-batches-py`` or the image-folder tar
  ``cifar10/cifar10-jpeg.tar``; decoded JPEGs are cached as a compressed ``.npz``.

Where the files are looked for: the ``data_dir`` argument, else ``$XBAR_DATA``, else
``../shared/data`` relative to the current directory (see :func:`data_root`).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import pickle
import re
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from xbar.files import write_atomically
from xbar.errors import DataError, MissingFileError

DATASET_NAMES = ("digits", "mnist", "cifar10")
"""Names accepted by :func:`load_dataset`."""

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10 class names in the standard label order (label 0 = airplane)."""

MNIST_FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}
"""Standard MNIST file names (without ``.gz``)."""

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""md5 of the *decompressed* official MNIST files. (The often-quoted f68b3c2d.../d53e105e...
are md5 sums of the canonical ``.gz`` archives, which re-compressed copies do not match.)"""

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Download mirrors for the gzipped MNIST files, tried in order."""

DOWNLOAD_TIMEOUT_S = 10.0
"""Socket timeout for one MNIST download request, in seconds."""

MNIST_SPLIT_TRAIN = 8000
"""Images of the t10k set used for training when the official training files are absent."""

DIGITS_SPLIT_SEED = 0
DIGITS_N_TEST = 360

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_CIFAR_TAR = "cifar10-jpeg.tar"
_CIFAR_CACHE_VERSION = 1
_TAR_MEMBER = re.compile(r"^(?:\./)?(train|test)/([^/]+)/([^/]+)\.(?:jpe?g|png)$", re.IGNORECASE)


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
    raise DataError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")


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


# --- IDX / MNIST -------------------------------------------------------------------------------

def _read_maybe_gzip(path: Path) -> bytes:
    """File bytes, decompressed if the name ends in ``.gz``; ValueError names a bad file."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc}); the file is corrupt or "
                         "truncated: delete it and fetch it again") from exc


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (the MNIST format): magic number, big-endian dims, then the data.

    Args:
        data: The decompressed file contents.
        source: Name used in error messages (the file path).

    Returns:
        The array in native byte order, shaped by the header's dimensions.

    Raises:
        ValueError: Bad magic number, unknown type code, or a size that does not match the
            header (truncated or with trailing bytes).
    """
    if len(data) < 4:
        raise DataError(f"{source}: only {len(data)} bytes; an IDX file starts with a 4-byte "
                         "magic number (the file is truncated or not IDX)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{source}: bad IDX magic number 0x{data[:4].hex()}; expected "
                         "00 00 <type> <ndim> with type 08 (uint8) for MNIST: the file is "
                         "corrupt or not an IDX file")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{source}: IDX header declares {ndim} dimensions but the file has "
                         f"only {len(data)} bytes (corrupt or truncated)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise DataError(f"{source}: truncated: the header declares shape {dims} "
                         f"({expected:,} data bytes) but only {got:,} follow; fetch the file "
                         "again")
    if got > expected:
        raise DataError(f"{source}: {got - expected:,} unexpected trailing bytes after the "
                         f"{expected:,} data bytes of shape {dims} (corrupt file)")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(path)
    return parse_idx(_read_maybe_gzip(path), str(path))


def _find_file(directory: Path, stem: str) -> Path | None:
    """The raw or gzipped file ``stem`` in ``directory``, raw preferred, or None."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_mnist_file(path: Path, stem: str, ndim: int) -> np.ndarray:
    """Read one MNIST IDX file, verify its md5 and shape."""
    data = _read_maybe_gzip(path)
    arr = parse_idx(data, str(path))
    digest = hashlib.md5(data).hexdigest()
    if digest != MNIST_MD5[stem]:
        raise DataError(f"{path}: md5 of the decompressed contents is {digest}, expected "
                         f"{MNIST_MD5[stem]} for the official {stem}; the file is corrupt or "
                         "not the official MNIST file: replace it")
    if arr.ndim != ndim or arr.dtype != np.uint8:
        raise DataError(f"{path}: IDX shape {arr.shape} / {arr.dtype}; expected "
                         f"{ndim} dimensions of uint8")
    return arr


def _mnist_pair(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32 N,1,28,28 in [0,1]) and labels (int64) of ``train`` or ``t10k``."""
    paths = {}
    for kind, ndim in (("images", 3), ("labels", 1)):
        stem = MNIST_FILES[f"{split}-{kind}"]
        path = _find_file(directory, stem)
        if path is None:
            raise MissingFileError(f"{directory / stem}[.gz] is missing")
        paths[kind] = (_read_mnist_file(path, stem, ndim), path)
    images, ipath = paths["images"]
    labels, lpath = paths["labels"]
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise DataError(f"{ipath} holds images of shape {images.shape} but {lpath} holds "
                         f"{labels.shape[0]} labels; expected N x 28 x 28 images and N labels")
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return x, labels.astype(np.int64)


def _has_pair(directory: Path, split: str) -> bool:
    return all(_find_file(directory, MNIST_FILES[f"{split}-{k}"]) is not None
               for k in ("images", "labels"))


def _download_mnist(target: Path) -> list[str]:
    """Fetch the four gzipped MNIST files into ``target``, verified; returns failure reasons.

    Each file is fetched into memory, decompressed and md5-checked before it is written
    (atomically), so a failed or partial download leaves nothing behind.
    """
    failures: list[str] = []
    unreachable: set[str] = set()  # a mirror that fails to connect is not tried again
    for key in ("t10k-images", "t10k-labels", "train-images", "train-labels"):
        stem = MNIST_FILES[key]
        if _find_file(target, stem) is not None:
            continue
        for mirror in MNIST_MIRRORS:
            if mirror in unreachable:
                continue
            url = f"{mirror}{stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                    blob = resp.read()
            except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
                failures.append(f"{url}: {exc}")
                if not isinstance(exc, urllib.error.HTTPError):
                    unreachable.add(mirror)
                continue
            try:
                digest = hashlib.md5(gzip.decompress(blob)).hexdigest()
            except (OSError, EOFError, zlib.error) as exc:
                failures.append(f"{url}: corrupt download ({exc})")
                continue
            if digest != MNIST_MD5[stem]:
                failures.append(f"{url}: md5 {digest} of the decompressed download is not the "
                                f"official {MNIST_MD5[stem]}")
                continue
            try:
                target.mkdir(parents=True, exist_ok=True)
                write_atomic(target / f"{stem}.gz", lambda f, b=blob: f.write(b))
            except OSError as exc:
                failures.append(f"cannot write {target / stem}.gz: {exc}")
            break
    return failures


def load_mnist(data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Load MNIST from IDX files; see :func:`load_dataset` for the search order and split.

    Args:
        data_dir: Directory holding the files, or its parent (``<data_dir>/mnist``).
        download: Try the standard mirrors when no files are found.

    Returns:
        The official 60,000/10,000 split when all four files are present; otherwise the
        10,000 ``t10k`` images split into the first 8,000 (train) and last 2,000 (test).
    """
    root = data_root(data_dir)
    candidates = [root / "mnist", root]
    found = next((d for d in candidates if _has_pair(d, "t10k")), None)
    failures: list[str] = []
    if found is None and download:
        failures = _download_mnist(root / "mnist")
        if _has_pair(root / "mnist", "t10k"):
            found = root / "mnist"
    if found is None:
        msg = (f"MNIST files not found; looked in {candidates[0]} and {candidates[1]}. Put "
               f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzipped or raw; add "
               f"train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz for the official "
               f"60,000-image training set) into {candidates[0]}, or point --data-dir or the "
               f"XBAR_DATA environment variable at the directory that holds them.")
        if failures:
            msg += f" Download failed: {'; '.join(failures[:2])}"
        raise MissingFileError(msg)
    x_test, y_test = _mnist_pair(found, "t10k")
    if _has_pair(found, "train"):
        x_train, y_train = _mnist_pair(found, "train")
        note = (f"MNIST official split from {found}: {len(y_train):,} train / "
                f"{len(y_test):,} test.")
    else:
        n = MNIST_SPLIT_TRAIN
        x_train, y_train = x_test[:n], y_test[:n]
        x_test, y_test = x_test[n:], y_test[n:]
        note = (f"MNIST test set only (t10k, 10,000 images, from {found}); the training files "
                f"are absent, so split deterministically: first {n:,} for training, last "
                f"{len(y_test):,} for testing.")
    return Dataset(name="mnist", x_train=np.ascontiguousarray(x_train), y_train=y_train,
                   x_test=np.ascontiguousarray(x_test), y_test=y_test, input_shape=(1, 28, 28),
                   n_classes=10, note=note)


# --- CIFAR-10 ----------------------------------------------------------------------------------

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


def write_atomic(path: Path, write: Callable[[Any], Any]) -> None:
    """Write ``path`` through ``write(fileobj)`` (binary) via a temp file and ``os.replace``."""

    def to_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    write_atomically(path, to_file)


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
        write_atomic(cached, lambda f: np.savez_compressed(f, **arrays))
    else:
        source += f", decoded arrays from cache {cached.name}"
    return _cifar_dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                          arrays["y_test"], source)


def load_cifar10(data_dir: str | Path | None = None) -> Dataset:
    """Load CIFAR-10 from the python batches directory or the JPEG image-folder tar.

    Looked for, in order: ``cifar-10-batches-py`` (under ``<root>/cifar10`` or ``<root>``, or
    ``<root>`` itself), then ``cifar10-jpeg.tar`` (under ``<root>/cifar10`` or ``<root>``, or
    ``data_dir`` naming the tar itself), where ``<root>`` is :func:`data_root`.

    Returns:
        50,000 train / 10,000 test images, shape (3, 32, 32), standard class order.
    """
    root = data_root(data_dir)
    if root.is_file():
        return _cifar_from_tar(root)
    batch_dirs = [root / "cifar10" / "cifar-10-batches-py", root / "cifar-10-batches-py",
                  root / "cifar10", root]
    found = next((d for d in batch_dirs if (d / "data_batch_1").is_file()), None)
    if found is not None:
        return _cifar_from_batches(found)
    tars = [root / "cifar10" / _CIFAR_TAR, root / _CIFAR_TAR]
    tar = next((t for t in tars if t.is_file()), None)
    if tar is not None:
        return _cifar_from_tar(tar)
    raise MissingFileError(
        f"CIFAR-10 not found under {root}: looked for {batch_dirs[0]} (the python version, "
        f"data_batch_1..5 and test_batch) and {tars[0]} (image-folder tar with "
        "train/<class>/NNNN.jpg and test/<class>/NNNN.jpg). Put either there, or point "
        "--data-dir or the XBAR_DATA environment variable at the directory that holds it.")
