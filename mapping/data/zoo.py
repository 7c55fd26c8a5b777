"""Model zoo: the networks the simulator maps onto crossbars, as plain ``nn.Sequential``.

Every model is a flat chain of Conv2d / Linear / BatchNorm2d / ReLU / MaxPool2d / Flatten, with
a ReLU after every hidden layer, so every layer after the first sees non-negative inputs
(inputs themselves are images in [0, 1]), which is what unsigned crossbar input drivers need.
No dropout: it does nothing at inference and would only be one more layer to skip.

* ``lenet5``: LeCun et al. 1998 for 1x28x28 MNIST (ReLU and max-pool instead of tanh and
  subsampling): conv 1->6 5x5 pad 2, pool, conv 6->16 5x5, pool, 400-120-84-10.
* ``mlp``: 784-300-100-10, LeCun et al.'s 300-100 fully connected net, for MNIST.
* ``digits-cnn``: a small CNN for scikit-learn's 1x8x8 digits.
* ``vgg16``: VGG-16 (configuration D, Simonyan & Zisserman 2015) for 3x32x32 CIFAR-10: 13
  conv 3x3 layers, each followed by BatchNorm and ReLU, 5 max-pools (32 -> 1), then the
  classifier 512-512-10 (Linear, ReLU, Linear). BatchNorm is meant to be folded into the
  preceding convolution before mapping.
* ``resnet18-narrow``, ``mobilenetv2-narrow`` (CIFAR-10), ``lstm-rows``,
  ``transformer-patches`` (MNIST): residual, depthwise, recurrent and attention networks at
  CPU-sized widths (:mod:`xbar.mapping.data.zoo_modern`, which states each width); they are
  not flat chains and see signed inputs after their first layer.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from xbar.errors import ConfigError
from xbar.mapping.data.zoo_modern import (lstm_rows, mobilenetv2_narrow, resnet18_narrow,
                                          transformer_patches)

__all__ = ["MODELS", "DEFAULT_DATASET", "INPUT_SHAPES", "build_model",
           "lenet5", "mlp", "digits_cnn", "vgg16"]

VGG16_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                       512, 512, 512, "M", 512, 512, 512, "M")
"""VGG-16 feature layers: output channels of each 3x3 convolution, ``"M"`` for a 2x2 max-pool."""


def lenet5(n_classes: int = 10) -> nn.Sequential:
    """LeNet-5 for 1x28x28 inputs (61,706 parameters with 10 classes)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, n_classes),
    )


def mlp(n_classes: int = 10) -> nn.Sequential:
    """784-300-100-n_classes multilayer perceptron for 1x28x28 inputs."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 300), nn.ReLU(),
        nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, n_classes),
    )


def digits_cnn(n_classes: int = 10) -> nn.Sequential:
    """Small CNN for 1x8x8 digits: conv 16, conv 32, pool, 512-64-n_classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, n_classes),
    )


def vgg16(n_classes: int = 10, width_divisor: int = 1) -> nn.Sequential:
    """VGG-16 with BatchNorm for 3x32x32 inputs; classifier 512-512-n_classes (every width
    divided by ``width_divisor``)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            out = int(item) // width_divisor
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1),
                       nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
    hidden = 512 // width_divisor
    layers += [nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(),
               nn.Linear(hidden, n_classes)]
    return nn.Sequential(*layers)


def vgg16_narrow(n_classes: int = 10) -> nn.Sequential:
    """VGG-16's 13 conv and 3 linear layers at 1/8 of every width (8 to 64 channels, about
    1/64 of its MACs): the CPU-sized stand-in for CIFAR-10 VGG-16, named as such wherever it
    is used."""
    return vgg16(n_classes, width_divisor=8)


MODELS: dict[str, Callable[[int], nn.Module]] = {
    "lenet5": lenet5,
    "mlp": mlp,
    "digits-cnn": digits_cnn,
    "vgg16": vgg16,
    "vgg16-narrow": vgg16_narrow,
    "resnet18-narrow": resnet18_narrow,
    "mobilenetv2-narrow": mobilenetv2_narrow,
    "lstm-rows": lstm_rows,
    "transformer-patches": transformer_patches,
}
"""Registry: model name -> builder taking ``n_classes``."""

DEFAULT_MODEL = "digits-cnn"
"""The model every command and :class:`~xbar.mapping.sweep.run.SweepSpec` use without
``--model``: the digits CNN, whose data set ships with scikit-learn (runs offline)."""

DEFAULT_DATASET: dict[str, str] = {
    "lenet5": "mnist",
    "mlp": "mnist",
    "digits-cnn": "digits",
    "vgg16": "cifar10",
    "vgg16-narrow": "cifar10",
    "resnet18-narrow": "cifar10",
    "mobilenetv2-narrow": "cifar10",
    "lstm-rows": "mnist",
    "transformer-patches": "mnist",
}
"""The data set each model is meant for (a name for :func:`xbar.mapping.data.datasets.load_dataset`)."""

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "lenet5": (1, 28, 28),
    "mlp": (1, 28, 28),
    "digits-cnn": (1, 8, 8),
    "vgg16": (3, 32, 32),
    "vgg16-narrow": (3, 32, 32),
    "resnet18-narrow": (3, 32, 32),
    "mobilenetv2-narrow": (3, 32, 32),
    "lstm-rows": (1, 28, 28),
    "transformer-patches": (1, 28, 28),
}
"""Input shape (C, H, W) each model expects."""


def build_model(name: str, n_classes: int = 10) -> nn.Module:
    """Build a freshly initialised model from the zoo.

    Initialisation draws from torch's global generator: seed it (``torch.manual_seed``) first
    for reproducible weights, as :func:`xbar.mapping.data.train.train_model` does.

    Args:
        name: A key of :data:`MODELS`.
        n_classes: Number of output classes (width of the last layer).

    Returns:
        The model (an ``nn.Sequential``) in training mode, on the CPU.

    Raises:
        ValueError: Unknown name or ``n_classes`` < 2.
    """
    builder = MODELS.get(name.strip().lower())
    if builder is None:
        raise ConfigError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    if n_classes < 2:
        raise ConfigError(f"n_classes = {n_classes!r} is invalid; a classifier needs >= 2")
    return builder(n_classes)
