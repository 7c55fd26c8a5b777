"""Model zoo shapes and structure; deterministic, cached teacher training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xbar.mapping.data.base import Dataset
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.data.train import DEFAULT_RECIPES, evaluate, train_model
from xbar.mapping.data.zoo import DEFAULT_DATASET, INPUT_SHAPES, MODELS, build_model


def test_registries_agree() -> None:
    assert set(MODELS) == set(DEFAULT_DATASET) == set(INPUT_SHAPES) == set(DEFAULT_RECIPES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(3, *INPUT_SHAPES[name])
    with torch.no_grad():
        assert model(x).shape == (3, 10)
    assert build_model(name, n_classes=7).eval()(x).shape == (3, 7)


SIGNED_MODELS = {"resnet18-narrow", "mobilenetv2-narrow", "lstm-rows", "transformer-patches"}
"""Zoo models whose hidden layers see signed inputs (linear bottlenecks, recurrent states,
attention outputs: xbar.mapping.data.zoo_modern)."""


@pytest.mark.parametrize("name", sorted(set(MODELS) - SIGNED_MODELS))
def test_hidden_inputs_are_non_negative(name: str) -> None:
    """Every conv/linear layer after the first sees non-negative inputs (ReLU before it)."""
    torch.manual_seed(1)
    model = build_model(name).eval()
    seen: list[float] = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_pre_hook(lambda _m, inp: seen.append(float(inp[0].min())))
             for m in layers[1:]]
    with torch.no_grad():
        model(torch.rand(2, *INPUT_SHAPES[name]))
    for h in hooks:
        h.remove()
    assert len(seen) == len(layers) - 1 and min(seen) >= 0.0


def test_architectures() -> None:
    lenet = build_model("lenet5")
    assert sum(p.numel() for p in lenet.parameters()) == 61706
    vgg = build_model("vgg16")
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules()) == 13
    assert [m.out_features for m in vgg.modules() if isinstance(m, nn.Linear)] == [512, 10]
    assert [m.out_features for m in build_model("mlp").modules()
            if isinstance(m, nn.Linear)] == [300, 100, 10]


def test_modern_architectures_map_with_their_stated_widths() -> None:
    """ResNet-18 at 1/8 width, MobileNetV2-style at 0.25, the MNIST LSTM and transformer:
    their layers and widths as zoo_modern says, and every weight matrix on the chip's form
    (the mapped layer counts from the architecture)."""
    from xbar.mapping.convert import fold_batchnorm, mapped_layers

    resnet = build_model("resnet18-narrow")
    convs = [m for m in resnet.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 16 + 3 and convs[-1].out_channels == 64   # stem, 8 blocks, 3 1x1
    mobile = build_model("mobilenetv2-narrow")
    depthwise = [m for m in mobile.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [m.groups for m in depthwise] == [96, 48, 48, 96, 96, 144, 144]
    lstm, _ = fold_batchnorm(build_model("lstm-rows"))
    assert [n for n, _ in mapped_layers(lstm)] == ["rnn.l0.ih", "rnn.l0.hh", "fc"]
    tf, _ = fold_batchnorm(build_model("transformer-patches"))
    assert len(mapped_layers(tf)) == 1 + 2 * 6 + 1   # embedding, 2 x (4 projections + 2), head


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="valid names: lenet5, mlp, digits-cnn, vgg16"):
        build_model("resnet50")


def test_evaluate() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Identity())
    x = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    assert evaluate(model, x, np.array([0, 1, 2]), batch_size=2) == 1.0
    assert evaluate(model, x, np.array([0, 0, 0])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="as many labels"):
        evaluate(model, x, np.array([0, 1]))


@pytest.fixture
def digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path / "cache"))
    return load_dataset("digits")


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_digits_cnn_trains_caches_and_is_deterministic(digits: Dataset, tmp_path: Path) -> None:
    rng_before, threads_before = torch.get_rng_state(), torch.get_num_threads()
    model, info = train_model("digits-cnn", digits, seed=0)
    # Global state is left untouched.
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before
    assert not torch.are_deterministic_algorithms_enabled()
    assert not info.from_cache and info.test_accuracy >= 0.95
    assert info.test_accuracy == evaluate(model, digits.x_test, digits.y_test)
    assert info.cache_path is not None
    path = Path(info.cache_path)
    assert path.parent == tmp_path / "cache" / "models"
    assert path.name.startswith("digits-cnn-digits-seed0-e20-") and path.suffix == ".pt"

    cached, info2 = train_model("digits-cnn", digits, seed=0)
    assert info2.from_cache and info2.test_accuracy == info.test_accuracy
    assert info2.train_seconds == info.train_seconds and same(state(model), state(cached))

    fresh, info3 = train_model("digits-cnn", digits, seed=0, cache=False)
    assert not info3.from_cache and info3.cache_path is None
    assert same(state(model), state(fresh))

    other, _ = train_model("digits-cnn", digits, seed=1, epochs=1, cache=False)
    assert not same(state(model), state(other))


@pytest.mark.slow
def test_damaged_cache_is_retrained(digits: Dataset) -> None:
    _, info = train_model("digits-cnn", digits, seed=3, epochs=1)
    assert info.cache_path is not None
    Path(info.cache_path).write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="unusable cached weights"):
        _, again = train_model("digits-cnn", digits, seed=3, epochs=1)
    assert not again.from_cache and again.test_accuracy == info.test_accuracy
    assert train_model("digits-cnn", digits, seed=3, epochs=1)[1].from_cache


def test_wrong_dataset_for_model(digits: Dataset) -> None:
    with pytest.raises(ValueError, match=r"expects inputs of shape \(1, 28, 28\).*digits-cnn"):
        train_model("lenet5", digits)
    with pytest.raises(ValueError, match="epochs"):
        train_model("digits-cnn", digits, epochs=0)
