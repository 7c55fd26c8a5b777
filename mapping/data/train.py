"""Train the FP32 "teacher" networks of the zoo, deterministically and with a weight cache.

:func:`train_model` trains a zoo model on a :class:`~xbar.mapping.data.base.Dataset` with Adam and a
cosine learning-rate decay, seeded so that the same seed gives bit-identical weights (for the
single-threaded recipes of the small models, whatever the machine's core count; same torch
version and CPU kind assumed). Trained weights are cached as a state_dict under
``cache_dir()/models``; the file name holds the model, data set, seed, epochs and a
fingerprint of the data and the training recipe, so a change to either trains afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xbar.files import write_atomically
from xbar.mapping.data.base import Dataset, cache_dir
from xbar.mapping.data.zoo import INPUT_SHAPES, MODELS, build_model
from xbar.errors import ConfigError, ModelError

RECIPE_VERSION = 1
"""Bump when the training loop changes, so cached weights from the old loop are not reused."""


@dataclass(frozen=True)
class TrainRecipe:
    """Hyperparameters of one model's training run.

    Attributes:
        epochs: Passes over the training set, >= 1.
        batch_size: Images per optimiser step, >= 1.
        learning_rate: Adam's initial learning rate; decays to 0 along a cosine over the run.
        weight_decay: Adam's L2 penalty (0 for none).
        threads: CPU threads torch uses while training, or None for torch's default. The
            thread count changes the summation order and so the weights: with a fixed count
            the same seed gives the same weights on any machine. One thread suits the small
            models (and is fastest on a busy machine); None suits vgg16.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"TrainRecipe.epochs = {self.epochs!r} is invalid; must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"TrainRecipe.batch_size = {self.batch_size!r} is invalid; "
                             "must be >= 1")
        if not self.learning_rate > 0:
            raise ConfigError(f"TrainRecipe.learning_rate = {self.learning_rate!r} is invalid; "
                             "must be > 0")
        if self.weight_decay < 0:
            raise ConfigError(f"TrainRecipe.weight_decay = {self.weight_decay!r} is invalid; "
                             "must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"TrainRecipe.threads = {self.threads!r} is invalid; must be >= 1 "
                             "or None")


DEFAULT_RECIPES: dict[str, TrainRecipe] = {
    "digits-cnn": TrainRecipe(epochs=20, batch_size=32, learning_rate=2e-3),
    "lenet5": TrainRecipe(epochs=10, batch_size=64, learning_rate=2e-3),
    "mlp": TrainRecipe(epochs=20, batch_size=64, learning_rate=2e-3),
    "vgg16": TrainRecipe(epochs=30, batch_size=128, learning_rate=1e-3, weight_decay=5e-4,
                         threads=None),
    "vgg16-narrow": TrainRecipe(epochs=10, batch_size=128, learning_rate=2e-3,
                                weight_decay=5e-4, threads=None),
    "resnet18-narrow": TrainRecipe(epochs=10, batch_size=128, learning_rate=2e-3,
                                   weight_decay=5e-4, threads=None),
    "mobilenetv2-narrow": TrainRecipe(epochs=10, batch_size=128, learning_rate=2e-3,
                                      weight_decay=5e-4, threads=None),
    "lstm-rows": TrainRecipe(epochs=5, batch_size=64, learning_rate=2e-3),
    "transformer-patches": TrainRecipe(epochs=3, batch_size=64, learning_rate=1e-3),
}
"""Default recipe per zoo model (digits-cnn: seconds; lenet5 on the 60,000 official MNIST
training images: about a minute on one CPU thread, 99.19 % FP32 test accuracy with seed 0
(the mlp: 98.47 %, 43 s); vgg16: hours on a CPU; no data augmentation for any).
lstm-rows and transformer-patches train in about 3 minutes each on one loaded core (97.60 %
and 91.62 % FP32 test accuracy with seed 0);
resnet18-narrow's 10 epochs took 455 s on 2 quiet cores (76.68 %), mobilenetv2-narrow's 4,835 s
on 2 cores that other jobs shared for about half of it (75.00 %): a GPU makes either
minutes."""


@dataclass(frozen=True)
class TrainInfo:
    """What :func:`train_model` did.

    Attributes:
        model_name: Zoo model name.
        dataset_name: Data set name.
        dataset_note: The data set's note (source and split).
        seed: Seed of initialisation and shuffling.
        epochs: Epochs trained.
        batch_size: Images per step.
        learning_rate: Initial Adam learning rate.
        test_accuracy: FP32 software accuracy on the data set's test split, in [0, 1].
        train_seconds: Wall time of the training run that produced the weights, in s (for
            cached weights, the time of the original run).
        from_cache: Whether the weights were loaded from the cache instead of trained.
        cache_path: The cache file, or None when caching was off.
    """

    model_name: str
    dataset_name: str
    dataset_note: str
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    test_accuracy: float
    train_seconds: float
    from_cache: bool
    cache_path: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for result files."""
        return asdict(self)


@contextmanager
def seeded_deterministic(seed: int, threads: int | None,
                         device: torch.device | None = None) -> Iterator[None]:
    """Seed torch's global RNG, force deterministic kernels, fix the thread count; restore all
    three afterwards.

    On a CUDA ``device`` it also sets ``CUBLAS_WORKSPACE_CONFIG`` (when unset) and seeds that
    device's generator (restored afterwards). An operation torch has no deterministic CUDA
    kernel for warns (``warn_only``) instead of stopping a long GPU run; the training code
    avoids the ones it would meet (see :func:`classification_loss`).
    """
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    n_threads = torch.get_num_threads()
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:  # normally set already, when the backend was chosen (kernel_torch)
        from xbar.kernel_torch import CUBLAS_WORKSPACE
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    with torch.random.fork_rng(devices=[torch.device(device)] if cuda else []):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=cuda)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_on, warn_only=warn_only)
            torch.set_num_threads(n_threads)


def step_batches(n: int, batch_size: int, steps: int, generator: torch.Generator
                 ) -> Iterator[torch.Tensor]:
    """``steps`` batches of indices into ``n`` samples: a shuffled pass from ``generator``,
    reshuffled whenever the next batch would not fit in what is left of it (the schedule of
    every fixed-step training on a chip: adaptation, compensation, I/O-guided fine-tuning)."""
    order, pos = torch.randperm(n, generator=generator), 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=generator), 0
        yield order[pos:pos + batch_size]
        pos += batch_size


def backend_device(backend: str) -> torch.device:
    """The torch device that trains and runs the digital part for ``backend``
    (:data:`xbar.backends.BACKENDS`): the GPU for ``"cuda"`` (and ``"auto"`` with a GPU),
    else the CPU. Raises as :func:`xbar.kernel_torch.resolve_backend`."""
    from xbar.kernel_torch import resolve_backend, torch_device
    return torch_device(resolve_backend(backend))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (N, classes) against integer ``labels`` (N,).

    ``F.cross_entropy`` on the CPU; on CUDA the same loss as a log-softmax and a gather,
    because torch's CUDA NLL-loss backward accumulates with atomics (no deterministic
    kernel), which would make a seeded GPU run irreproducible.
    """
    if logits.device.type != "cuda":
        return nn.functional.cross_entropy(logits, labels)
    return gathered_cross_entropy(logits, labels)


def gathered_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy as ``-mean(log_softmax(logits)[i, labels[i]])``: the same loss as
    ``F.cross_entropy`` (to float rounding), built from operations whose CUDA backward is
    deterministic (a gather's backward is a scatter without atomics per row)."""
    logp = nn.functional.log_softmax(logits, dim=1)
    return -logp.gather(1, labels.view(-1, 1)).mean()


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate(model: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
             batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N,C,H,W) with labels ``y`` (N,).

    The model runs in eval mode without gradients; its previous mode is restored.

    Args:
        model: A classifier returning logits (N, n_classes).
        x: Images, float32.
        y: Integer labels.
        batch_size: Images per forward pass.

    Returns:
        The fraction of correctly classified images, in [0, 1].

    Raises:
        ValueError: Empty input, or x and y of different lengths.
        ModelError: The model returns something other than one logits tensor (N, classes)
            (a tuple, say), or NaN or infinite logits: such a model is refused, not scored.
    """
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    if xt.shape[0] == 0 or xt.shape[0] != yt.shape[0]:
        raise ConfigError(f"evaluate needs as many labels as images (at least one); got "
                         f"{xt.shape[0]} images and {yt.shape[0]} labels")
    if batch_size < 1:
        raise ConfigError(f"batch_size = {batch_size!r} is invalid; must be >= 1")
    device = model_device(model)
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, xt.shape[0], batch_size):
                batch = xt[start:start + batch_size]
                logits = check_logits(model(batch.to(device)), len(batch), start)
                pred = logits.argmax(dim=1)  # labels and images may live on either device
                correct += int((pred == yt[start:start + batch_size].to(pred.device)).sum())
    finally:
        model.train(was_training)
    return correct / xt.shape[0]


def check_logits(logits: Any, n: int, first: int = 0) -> torch.Tensor:
    """``logits`` if it is a finite (n, classes) tensor; else a :class:`ModelError` saying
    what the model returned (``first``: index of the batch's first image, for the message)."""
    if not isinstance(logits, torch.Tensor):
        raise ModelError(f"the model returns a {type(logits).__name__}, not a tensor of logits "
                         f"(N, classes); make its forward return the logits only (for a model "
                         "with several outputs, wrap it in a module that returns the class "
                         "scores)")
    if logits.dim() != 2 or logits.shape[0] != n or logits.shape[1] < 1:
        raise ModelError(f"the model returns a tensor of shape {tuple(logits.shape)} for {n} "
                         f"images; expected logits of shape ({n}, classes)")
    finite = torch.isfinite(logits)
    if not bool(finite.all()):
        bad = int((~finite.all(dim=1)).sum())
        raise ModelError(f"the model returns NaN or infinite logits for {bad} of {n} images "
                         f"(images {first} to {first + n - 1}); refusing to score it: check "
                         "its weights and its forward")
    return logits


def _fingerprint(model: nn.Module, dataset: Dataset, recipe: TrainRecipe,
                 regularizer: Any = None, device: torch.device | None = None) -> str:
    """12 hex digits over the data, the architecture and the recipe (and the regulariser's
    repr, when there is one, and the device type when it is not the CPU: without them the
    fingerprint is what it always was)."""
    h = hashlib.blake2b(digest_size=6)
    extra = "" if regularizer is None else f"|reg={regularizer!r}"
    if device is not None and torch.device(device).type != "cpu":
        extra += f"|device={torch.device(device).type}"
    h.update(f"{dataset.fingerprint}|{model!r}|{recipe!r}|v{RECIPE_VERSION}{extra}".encode())
    return h.hexdigest()


def _recipe(model_name: str, epochs: int | None) -> TrainRecipe:
    if model_name not in MODELS:
        raise ConfigError(f"unknown model {model_name!r}; valid names: {', '.join(MODELS)}")
    base = DEFAULT_RECIPES[model_name]
    if epochs is None:
        return base
    return dataclasses.replace(base, epochs=int(epochs))


def _fit(model: nn.Module, dataset: Dataset, recipe: TrainRecipe, seed: int,
         regularizer: Any = None) -> None:
    """Adam + cosine decay over ``recipe.epochs``; shuffling from a generator seeded by seed;
    ``regularizer(model)``, when given, is added to every step's loss."""
    device = model_device(model)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate,
                                 weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=recipe.epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=shuffle)
        for start in range(0, n, recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = classification_loss(model(x[idx].to(device)), y[idx].to(device))
            if regularizer is not None:
                loss = loss + regularizer(model)
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()


def _load_cached(model: nn.Module, path: Path) -> dict[str, Any] | None:
    """Load cached weights into ``model``; None (and a warning) if the file is unusable."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["state_dict"])
        meta = payload.get("meta", {})
        return meta if isinstance(meta, dict) else {}
    except Exception as exc:  # any damage to a cache entry means: train again
        warnings.warn(f"ignoring unusable cached weights {path} ({exc}); training again",
                      RuntimeWarning, stacklevel=3)
        return None


def train_model(model_name: str, dataset: Dataset, seed: int = 0, epochs: int | None = None,
                cache: bool = True, regularizer: Any = None, backend: str = "cpu"
                ) -> tuple[nn.Module, TrainInfo]:
    """Train (or load from the cache) the FP32 model ``model_name`` on ``dataset``.

    Deterministic: the seed fixes initialisation (torch's global RNG, saved and restored
    around the call) and shuffling (a separate seeded ``torch.Generator``); deterministic
    kernels and the recipe's thread count are enforced while training (process-wide settings,
    restored on return, so do not train from two threads at once).

    Args:
        model_name: A zoo model (:data:`xbar.mapping.data.zoo.MODELS`).
        dataset: Training and test data; its input shape must be the model's.
        seed: Random seed.
        epochs: Epochs to train; None for the model's default (:data:`DEFAULT_RECIPES`).
        cache: Read and write ``cache_dir()/models/<model>-<dataset>-seed<seed>-e<epochs>-
            <fingerprint>.pt``; the fingerprint covers the data, architecture and recipe.
        regularizer: None, or a callable ``regularizer(model) -> loss term`` added to every
            step's loss (e.g. :class:`xbar.mapping.recovery.techniques.lipschitz.LipschitzRegularizer`);
            its ``repr`` enters the fingerprint, so a regularised model is cached apart.
        backend: Where it trains (:data:`xbar.backends.BACKENDS`): ``"cpu"`` and
            ``"torch-cpu"`` on the CPU, ``"cuda"`` on the GPU (``"auto"``: the GPU when
            there is one). GPU-trained weights differ in their last bits, so they are cached
            apart (the device type enters the fingerprint); on the GPU, CPU-trained weights
            in the cache are used first, so both backends start from the same teacher.

    Returns:
        The model (CPU, eval mode) and a :class:`TrainInfo` with its test accuracy.

    Raises:
        ValueError: Unknown model, bad epochs, or a data set of the wrong input shape.
    """
    recipe = _recipe(model_name, epochs)
    expected = INPUT_SHAPES[model_name]
    if tuple(dataset.input_shape) != expected:
        suitable = [m for m, s in INPUT_SHAPES.items() if s == tuple(dataset.input_shape)]
        raise ConfigError(f"model {model_name!r} expects inputs of shape {expected} but data set "
                         f"{dataset.name!r} has {tuple(dataset.input_shape)}; models for this "
                         f"data set: {', '.join(suitable) or 'none'}")
    device = backend_device(backend)
    with seeded_deterministic(seed, recipe.threads, device):
        model = build_model(model_name, dataset.n_classes)
        paths = [cache_dir() / "models" / f"{model_name}-{dataset.name}-seed{seed}-"
                 f"e{recipe.epochs}-{_fingerprint(model, dataset, recipe, regularizer, d)}.pt"
                 for d in dict.fromkeys([torch.device("cpu"), device])]
        path = paths[-1]  # where weights trained here are cached
        meta = None
        for candidate in paths if cache else []:  # CPU-trained weights first: the reference
            meta = _load_cached(model, candidate) if candidate.is_file() else None
            if meta is not None:
                path = candidate
                break
        from_cache = meta is not None
        model.to(device)  # trained and evaluated there, returned and cached on the CPU
        if meta is None:
            start = time.perf_counter()
            _fit(model, dataset, recipe, seed, regularizer)
            train_seconds = time.perf_counter() - start
        else:
            train_seconds = float(meta.get("train_seconds", float("nan")))
        model.eval()
        accuracy = evaluate(model, dataset.x_test, dataset.y_test)
        model.cpu()
    if cache and not from_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"state_dict": model.state_dict(),
                   "meta": {"train_seconds": train_seconds, "test_accuracy": accuracy,
                            "torch_version": str(torch.__version__)}}
        write_atomically(path, lambda tmp: torch.save(payload, tmp))
    info = TrainInfo(model_name=model_name, dataset_name=dataset.name,
                     dataset_note=dataset.note, seed=seed, epochs=recipe.epochs,
                     batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
                     test_accuracy=accuracy, train_seconds=train_seconds,
                     from_cache=from_cache, cache_path=str(path) if cache else None)
    return model, info
