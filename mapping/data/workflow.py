"""Shared steps of the commands: resolve a model, its data, its teacher; progress output."""

from __future__ import annotations

import os
import pickle
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from xbar.mapping.data.base import Dataset
from xbar.mapping.data.datasets import DATASET_NAMES, load_dataset
from xbar.errors import ConfigError, FileFormatError, MissingFileError, ModelError


def load_model_spec(spec: str, input_shape: str | tuple[int, ...] | None
                    ) -> tuple[nn.Module, tuple[int, ...], str]:
    """Resolve a model name or file into (module, input shape, label).

    ``spec`` is a zoo name or a file holding a whole ``nn.Module`` saved with
    ``torch.save(model, FILE)``. Loading such a file unpickles it, which runs code from the
    file (``weights_only`` loading cannot restore a module's class): only use files you trust.

    Raises:
        MissingFileError, FileFormatError, ConfigError: Naming the argument
            (``load_model_spec(spec='x.pt')``): a missing file, a directory, a file torch
            cannot load or that holds no ``nn.Module``, an unknown zoo name.
    """
    from xbar.mapping.data import zoo
    from xbar.mapping.geometry import parse_input_shape

    if isinstance(input_shape, str):
        shape: tuple[int, ...] | None = parse_input_shape(input_shape)
    else:
        shape = tuple(input_shape) if input_shape is not None else None
    path = Path(spec)
    looks_like_file = path.suffix.lower() in (".pt", ".pth") or os.sep in spec or path.exists()
    if looks_like_file:
        if path.is_dir():
            raise FileFormatError(f"load_model_spec(spec={spec!r}): the model file is a "
                                  "directory; give a file saved with torch.save(model, FILE), "
                                  f"or a zoo name: {', '.join(zoo.MODELS)}")
        if not path.is_file():
            raise MissingFileError(f"load_model_spec(spec={spec!r}): model file {spec!r} does "
                                   f"not exist (or give a zoo name: {', '.join(zoo.MODELS)})")
        import torch
        try:
            model = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise FileFormatError(f"load_model_spec(spec={spec!r}): the model file cannot be "
                                  f"loaded: {_load_failure(exc)}") from None
        if not isinstance(model, nn.Module):
            raise ConfigError(f"load_model_spec(spec={spec!r}): the model file holds a "
                              f"{type(model).__name__}, not an nn.Module; save the whole model "
                              "with torch.save(model, FILE), not its state_dict")
        return model.eval(), shape or (), str(path)
    name = spec.strip().lower()
    if name not in zoo.MODELS:
        raise ConfigError(f"load_model_spec(spec={spec!r}): unknown model {spec!r}: not a file "
                          f"and not a zoo model; zoo models: {', '.join(zoo.MODELS)}")
    return zoo.build_model(name), shape or tuple(zoo.INPUT_SHAPES[name]), name


def _load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` failed, in a line: a damaged or truncated file says so (torch and
    the OS report it as an EOF, a zip-archive or an "Invalid argument" error)."""
    first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    if isinstance(exc, (EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile)) or (
            isinstance(exc, RuntimeError) and "zip archive" in first):
        return (f"the file is damaged or truncated ({type(exc).__name__}: {first}); save the "
                "model again with torch.save(model, FILE)")
    return f"{type(exc).__name__}: {first}"


def check_output_width(model: nn.Module, dataset: Dataset, label: str,
                       what: str = "model") -> None:
    """Refuse ``model`` unless it maps one ``dataset`` image to one logit per class.

    A network with another output count would be scored anyway (the argmax picks some
    output), silently wrong, and training against it fails inside the loss; this runs one
    training image through it and names both counts.

    Raises:
        ModelError: The output count differs from ``dataset.n_classes`` (or the model does
            not take the data set's images, or returns no logits tensor).
    """
    import torch

    from xbar.mapping.data.train import check_logits, model_device

    # a training image: a shape check must not show the network a test image (the leakage
    # test marks them)
    x = torch.as_tensor(dataset.x_train[:1], dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x.to(model_device(model)))
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != 1:
            check_logits(logits, 1)  # says what the model returned instead
    except RuntimeError as exc:
        raise ModelError(f"{what} {label!r} does not accept {dataset.name} inputs of shape "
                         f"{dataset.input_shape}: {exc}") from None
    finally:
        model.train(was_training)
    if logits.shape[1] != dataset.n_classes:
        raise ModelError(f"{what} {label!r} has {logits.shape[1]} output(s) but data set "
                         f"{dataset.name} has {dataset.n_classes} classes; allowed: a model "
                         f"whose last layer gives one logit per class ({dataset.n_classes} "
                         "outputs)")


@dataclass
class Teacher:
    """The FP32 network and what is known about it."""

    model: nn.Module
    label: str
    dataset: Dataset
    software_accuracy: float
    from_cache: bool
    train_seconds: float


def load_teacher(spec: str, dataset_name: str | None, data_dir: str | None = None,
                 seed: int = 0, backend: str = "cpu") -> Teacher:
    """A trained FP32 model and its data: a zoo model trained (or read from the cache) on the
    data set, or a user's model file evaluated on it. ``backend``: where a zoo model trains
    when it is not cached (:func:`xbar.mapping.data.train.train_model`)."""
    from xbar.mapping.data import zoo
    from xbar.mapping.data.train import evaluate, train_model

    name = spec.strip().lower()
    is_zoo = name in zoo.MODELS and not Path(spec).is_file()
    if dataset_name is None:
        if not is_zoo:
            raise ConfigError(f"load_teacher(dataset_name=None) is refused with the model file "
                              f"{spec!r}: a zoo model names its own data set, a file does not; "
                              "give the data set it was trained on "
                              f"({', '.join(DATASET_NAMES)})")
        dataset_name = zoo.DEFAULT_DATASET[name]
    dataset = load_dataset(dataset_name, data_dir)
    if is_zoo:
        model, info = train_model(name, dataset, seed=seed, backend=backend)
        return Teacher(model, name, dataset, info.test_accuracy, info.from_cache,
                       info.train_seconds)
    model, _, label = load_model_spec(spec, None)
    # Where every command's model meets its data (compare, simulate, sweep, reproduce).
    check_output_width(model, dataset, label, f"load_teacher(spec={spec!r}): the model")
    try:
        accuracy = evaluate(model, dataset.x_test, dataset.y_test)
    except RuntimeError as exc:  # one image passed, a batch did not (a fixed batch size?)
        raise ModelError(f"model {label!r} fails on a batch of {dataset.name} images: {exc}"
                         ) from None
    return Teacher(model, label, dataset, accuracy, True, 0.0)


def progress_printer(label: str, enabled: bool) -> Callable[[int, int], None] | None:
    """A one-line progress bar on stderr when it is a terminal and ``enabled``."""
    if not enabled or not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        frac = done / max(total, 1)
        elapsed = time.perf_counter() - start
        left = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r{label} [{bar:<30}] {done}/{total} {elapsed:5.1f} s, "
                         f"~{left:4.0f} s left")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def calibration_inputs(dataset: Dataset, n: int = 256, seed: int = 0) -> np.ndarray:
    """A fixed random subset of the training images for DAC/ADC range calibration."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    idx = rng.choice(len(dataset.x_train), min(n, len(dataset.x_train)), replace=False)
    return dataset.x_train[np.sort(idx)]
