"""Data set loaders: digits, MNIST IDX files, CIFAR-10 python batches and JPEG tar."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from xbar.mapping.data import mnist
from xbar.mapping.data.base import Dataset, cache_dir
from xbar.mapping.data.cifar import CIFAR10_CLASSES, shuffled_test_order
from xbar.mapping.data.datasets import DATASET_NAMES, load_dataset
from xbar.mapping.data.mnist import parse_idx, read_idx


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file (uint8) holding ``arr``."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XBAR_CACHE", str(cache))
    return cache


# --- digits ------------------------------------------------------------------------------------

def test_digits_shapes_range_and_fixed_split() -> None:
    ds = load_dataset("digits")
    assert ds.name == "digits" and ds.input_shape == (1, 8, 8) and ds.n_classes == 10
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))
    # Golden: the split is pinned (RandomState's stream is frozen by NumPy).
    assert ds.y_test[:10].tolist() == [2, 8, 2, 6, 6, 7, 1, 9, 8, 5]
    again = load_dataset("Digits")
    assert np.array_equal(ds.x_test, again.x_test) and np.array_equal(ds.y_train, again.y_train)
    assert ds.fingerprint == again.fingerprint
    assert "1,437 train / 360 test" in ds.note


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: digits, mnist, cifar10"):
        load_dataset("imagenet")
    assert DATASET_NAMES == ("digits", "mnist", "cifar10")


def test_dataset_validates_fields() -> None:
    x = np.zeros((4, 1, 8, 8), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="x_train"):
        Dataset("t", x + 2, y, x, y, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="y_test"):
        Dataset("t", x, y, x, y.astype(np.int32), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="labels span"):
        Dataset("t", x, y + 10, x, y, (1, 8, 8), 10)


def test_cache_dir_honours_env(isolated_cache: Path) -> None:
    assert not isolated_cache.exists()
    assert cache_dir() == isolated_cache and isolated_cache.is_dir()


# --- MNIST -------------------------------------------------------------------------------------

def test_mnist_t10k_only_is_split_8000_2000(mnist_dir: Path, tmp_path: Path) -> None:
    """The fallback: a folder holding only copies of the two t10k files (no training files)."""
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / f"{stem}.gz").write_bytes((mnist_dir / f"{stem}.gz").read_bytes())
    ds = load_dataset("mnist", d, download=False)
    assert ds.x_train.shape == (8000, 1, 28, 28) and ds.x_test.shape == (2000, 1, 28, 28)
    assert ds.y_train.dtype == np.int64 and set(np.unique(ds.y_test)) == set(range(10))
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert "first 8,000" in ds.note and "last 2,000" in ds.note
    assert "training files are absent" in ds.note and "official split" not in ds.note
    # The parent directory works too (it holds mnist/).
    assert np.array_equal(load_dataset("mnist", d.parent, download=False).y_test, ds.y_test)
    # The first test label of the official t10k file is a 7.
    assert ds.y_train[0] == 7


@pytest.mark.slow
def test_mnist_shared_folder_gives_official_split(mnist_dir: Path) -> None:
    """The shared folder holds all four official files: 60,000 train / 10,000 test."""
    if not (mnist_dir / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST training files are absent from {mnist_dir}")
    ds = load_dataset("mnist", mnist_dir, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert set(np.unique(ds.y_train)) == set(range(10)) == set(np.unique(ds.y_test))
    assert "official split" in ds.note and "60,000 train / 10,000 test" in ds.note
    # The first labels of the official files: train starts 5 0 4 1, t10k starts 7 2 1 0.
    assert ds.y_train[:4].tolist() == [5, 0, 4, 1] and ds.y_test[:4].tolist() == [7, 2, 1, 0]


def test_mnist_checksum_mismatch_names_file(mnist_dir: Path, tmp_path: Path) -> None:
    images = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    tampered = bytearray(images)
    tampered[1000] ^= 0xFF  # still a well-formed IDX file, but not the official one
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte").write_bytes(bytes(tampered))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*md5"):
        load_dataset("mnist", tmp_path, download=False)


def test_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    d = tmp_path / "mnist"
    d.mkdir()
    full = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    (d / "t10k-images-idx3-ubyte").write_bytes(full[:500])
    (d / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(10, np.uint8)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated"):
        load_dataset("mnist", tmp_path, download=False)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    blob = gzip.compress(idx_bytes(np.arange(1000) % 10))
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: not a valid gzip"):
        read_idx(path)


def test_parse_idx_rejects_bad_headers() -> None:
    good = idx_bytes(np.arange(12).reshape(3, 4))
    assert parse_idx(good).tolist() == np.arange(12).reshape(3, 4).tolist()
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x01\x02" + good[2:], "f")
    with pytest.raises(ValueError, match="trailing"):
        parse_idx(good + b"\x00", "f")
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(good[:6], "f")
    big = bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + struct.pack(">2h", -3, 500)
    assert parse_idx(big).tolist() == [-3, 500]


def test_missing_mnist_says_what_to_put_where(tmp_path: Path) -> None:
    where = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", where, download=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(where / "mnist") in msg and "XBAR_DATA" in msg
    assert "load_mnist(data_dir=...)" in msg and "--" not in msg  # the argument, not a flag


def test_failed_download_reports_and_leaves_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> None:
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="Download failed.*network unreachable"):
        load_dataset("mnist", tmp_path)
    assert not (tmp_path / "mnist").exists()


def test_official_split_with_all_four_files(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            rng: np.random.Generator) -> None:
    """Synthetic four-file set (checksums patched to match) via XBAR_DATA, gzip and raw."""
    d = tmp_path / "mnist"
    d.mkdir()
    md5 = {}
    for split, n in (("train", 30), ("t10k", 12)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            stem = f"{split}-{kind}-ubyte"
            data = idx_bytes(arr)
            md5[stem] = hashlib.md5(data).hexdigest()
            if split == "train":
                (d / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (d / stem).write_bytes(data)
        if split == "train":
            train_images = images
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    monkeypatch.setenv("XBAR_DATA", str(tmp_path))
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (12, 1, 28, 28)
    assert "official split" in ds.note
    np.testing.assert_allclose(ds.x_train[:, 0] * 255, train_images, atol=1e-3)


# --- CIFAR-10 ----------------------------------------------------------------------------------

def write_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    with path.open("wb") as f:
        pickle.dump({b"batch_label": b"fake", b"labels": labels, b"data": data}, f, protocol=2)


def test_cifar_python_batches(tmp_path: Path, rng: np.random.Generator) -> None:
    d = tmp_path / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(4)]
        write_batch(d / name, data, labels)
        batches[name] = (data, labels)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.input_shape == (3, 32, 32) and ds.x_train.shape == (20, 3, 32, 32)
    assert ds.x_test.shape == (4, 3, 32, 32) and ds.x_test.dtype == np.float32
    data, labels = batches["data_batch_2"]
    np.testing.assert_allclose(ds.x_train[4:8] * 255, data.reshape(4, 3, 32, 32), atol=1e-3)
    assert ds.y_train[4:8].tolist() == labels and ds.y_test.tolist() == batches["test_batch"][1]
    assert "python batches" in ds.note


def test_cifar_batches_refuse_foreign_pickles(tmp_path: Path) -> None:
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(pickle.dumps({b"data": os.getcwd, b"labels": []}))
    with pytest.raises(ValueError, match="data_batch_1.*refusing to load global"):
        load_dataset("cifar10", tmp_path)
    (d / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks test_batch"):
        load_dataset("cifar10", tmp_path)


COLOURS = {"airplane": (250, 10, 10), "truck": (10, 10, 250)}


def write_jpeg_tar(path: Path, size: int = 32) -> None:
    from PIL import Image

    with tarfile.open(path, "w") as tar:
        # Deliberately out of order: the loader sorts by split, class and name.
        for split, n in (("test", 1), ("train", 2)):
            for cls in ("truck", "airplane"):
                for k in reversed(range(n)):
                    buf = io.BytesIO()
                    Image.new("RGB", (size, size), COLOURS[cls]).save(buf, format="JPEG",
                                                                      quality=95)
                    info = tarfile.TarInfo(f"{split}/{cls}/{k:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)


def test_cifar_jpeg_tar_and_its_cache(tmp_path: Path, isolated_cache: Path) -> None:
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    tar = data / "cifar10" / "cifar10-jpeg.tar"
    write_jpeg_tar(tar)
    ds = load_dataset("cifar10", data)
    assert ds.x_train.shape == (4, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
    # test images in the fixed shuffled order (sorted by class, then permuted)
    assert ds.y_train.tolist() == [0, 0, 9, 9]
    assert ds.y_test.tolist() == np.array([0, 9])[shuffled_test_order(2)].tolist()
    assert CIFAR10_CLASSES.index("truck") == 9
    mean_rgb = ds.x_train.mean(axis=(2, 3)) * 255
    np.testing.assert_allclose(mean_rgb[0], COLOURS["airplane"], atol=4)
    np.testing.assert_allclose(mean_rgb[-1], COLOURS["truck"], atol=4)
    cached = list((isolated_cache / "data").glob("cifar10-*.npz"))
    assert len(cached) == 1 and "cache" not in ds.note
    again = load_dataset("cifar10", data)
    assert "from cache" in again.note and np.array_equal(again.x_train, ds.x_train)
    # A changed tar (new mtime) is decoded afresh under a new key.
    os.utime(tar, ns=(1_000_000_000, 1_000_000_000))
    assert "cache" not in load_dataset("cifar10", data).note
    assert len(list((isolated_cache / "data").glob("cifar10-*.npz"))) == 2
    assert not list((isolated_cache / "data").glob(".*tmp"))


def test_cifar_tar_with_wrong_image_size(tmp_path: Path) -> None:
    tar = tmp_path / "cifar10-jpeg.tar"
    write_jpeg_tar(tar, size=28)
    with pytest.raises(ValueError, match="0000.jpg is 28x28; CIFAR-10 images are 32x32"):
        load_dataset("cifar10", tmp_path)


def test_missing_cifar_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*cifar10-jpeg.tar"):
        load_dataset("cifar10", tmp_path)


def test_a_tars_test_images_come_shuffled_with_their_labels(tmp_path: Path,
                                                             isolated_cache: Path) -> None:
    """The folders give the test images sorted by class; the loader gives them in a fixed
    shuffled order, so a prefix (--test-limit, a benchmark's first N images) holds every
    class, not one: 3 classes x 20 test images, the first 15 hold all three; each image keeps
    its label (its colour is its class's); the order is the same on every load."""
    from PIL import Image

    tar = tmp_path / "cifar10-jpeg.tar"
    classes = ("truck", "airplane", "bird")
    colours = {"truck": (200, 30, 30), "airplane": (30, 200, 30), "bird": (30, 30, 200)}
    with tarfile.open(tar, "w") as t:
        for split, n in (("test", 20), ("train", 1)):
            for cls in classes:
                for k in range(n):
                    buf = io.BytesIO()
                    Image.new("RGB", (32, 32), colours[cls]).save(buf, format="JPEG",
                                                                   quality=95)
                    info = tarfile.TarInfo(f"{split}/{cls}/{k:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    t.addfile(info, buf)
    ds = load_dataset("cifar10", tmp_path)
    assert len(set(ds.y_test[:15].tolist())) == 3
    assert sorted(ds.y_test.tolist()) == sorted([CIFAR10_CLASSES.index(c) for c in classes
                                                 for _ in range(20)])
    mean = ds.x_test.mean(axis=(2, 3)) * 255
    for img, label in zip(mean, ds.y_test):
        np.testing.assert_allclose(img, colours[CIFAR10_CLASSES[label]], atol=4)
    again = load_dataset("cifar10", tmp_path)
    assert np.array_equal(again.y_test, ds.y_test) and np.array_equal(again.x_test, ds.x_test)


def test_first_test_keeps_the_order_and_says_so() -> None:
    from xbar.errors import DataError
    from xbar.mapping.data.datasets import load_dataset

    data = load_dataset("digits")
    first = data.first_test(50)
    assert len(first.y_test) == 50 and first.note.endswith("First 50 test images.")
    assert (first.y_test == data.y_test[:50]).all() and first.x_train is data.x_train
    assert data.first_test(None) is data and data.first_test(10**6) is data
    with pytest.raises(DataError, match=r"first_test\(n=0\) is invalid"):
        data.first_test(0)


def test_compare_test_limit_evaluates_that_many_images(capsys) -> None:
    import json

    from xbar.mapping.cli.main import main

    assert main(["compare", "--model", "digits-cnn", "--dataset", "digits", "--methods",
                 "software,one-shot", "--chips", "1", "--test-limit", "40", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_test"] == 40 and out["dataset_note"].endswith("First 40 test images.")
    for m in ("software", "one-shot"):   # a whole number of the 40 images
        right = out["methods"][m]["accuracy"] * 40
        assert abs(right - round(right)) < 1e-9
