"""MNIST: the IDX file format, the four official files, their checksums and download.

The four IDX files (``*-ubyte.gz`` or raw ``*-ubyte``) are checked against the official md5
sums of the decompressed bytes. With only the two ``t10k`` files the 10,000 test images are
split deterministically (first 8,000 train, last 2,000 test). When no files are found,
:func:`load_mnist` can fetch them from the standard mirrors (verified before they are
written).
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from xbar.errors import DataError, MissingFileError
from xbar.files import write_atomically
from xbar.mapping.data.base import Dataset, data_root

__all__ = ["DOWNLOAD_TIMEOUT_S", "MNIST_FILES", "MNIST_MD5", "MNIST_MIRRORS", "MNIST_SPLIT_TRAIN",
           "load_mnist", "parse_idx", "read_idx"]

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

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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
                write_atomically(target / f"{stem}.gz",
                                 lambda tmp, b=blob: Path(tmp).write_bytes(b))
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
               f"60,000-image training set) into {candidates[0]}, or give the directory that "
               f"holds them as load_mnist(data_dir=...) or the XBAR_DATA environment "
               f"variable.")
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
