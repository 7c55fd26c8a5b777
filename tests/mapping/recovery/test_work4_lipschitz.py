"""Work 4's Lipschitz regulariser: power iteration against an SVD, the penalty's gradient, the
BatchNorm folding against the mapper's own, the training hooks (cache fingerprint unchanged
when off), and errors for bad options."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from xbar.errors import ConfigError
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.data.train import RECIPE_VERSION, DEFAULT_RECIPES, train_model
from xbar.mapping.data.zoo import build_model
from xbar.mapping.recovery.techniques.lipschitz import (LipschitzConfig, LipschitzRegularizer,
                                             crossbar_matrices, spectral_norm, spectral_norms)


@pytest.mark.parametrize("shape", [(7, 3), (5, 40), (64, 64), (1, 9)])
def test_power_iteration_matches_svd(shape: tuple[int, int]) -> None:
    w = torch.from_numpy(np.random.default_rng(sum(shape)).normal(size=shape))
    sigma, u, v = spectral_norm(w, iterations=500)
    assert float(sigma) == pytest.approx(float(torch.linalg.matrix_norm(w, ord=2)), rel=1e-6)
    assert float(sigma) == pytest.approx(np.linalg.svd(w.numpy(), compute_uv=False)[0],
                                         rel=1e-6)
    assert float(u.norm()) == pytest.approx(1.0) and float(v.norm()) == pytest.approx(1.0)


def test_penalty_gradient_reduces_the_spectral_norm() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(20, 10)
    with torch.no_grad():
        layer.weight.mul_(10.0)
    model = nn.Sequential(layer)
    reg = LipschitzRegularizer(LipschitzConfig(weight=1.0, target=1.0))
    before = spectral_norms(model)["0"]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        reg(model).backward()
        opt.step()
    after = spectral_norms(model)["0"]
    assert before > 2.0 and after < before - 0.5
    # one power step per call tracks the moving weights from below (a lower estimate)
    assert 0.8 * after <= reg.last_sigmas["0"] <= after * 1.001
    # below the target the hinge penalty is zero, and so is its gradient
    with torch.no_grad():
        layer.weight.mul_(0.5 / after)
    assert float(reg(model).detach()) == 0.0


def test_orthogonal_form_is_zero_for_an_orthogonal_matrix() -> None:
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    layer = nn.Linear(8, 8, bias=False)
    with torch.no_grad():
        layer.weight.copy_(2.0 * q)
    reg = LipschitzRegularizer(LipschitzConfig(form="orthogonal", target=2.0))
    assert float(reg(nn.Sequential(layer)).detach()) == pytest.approx(0.0, abs=1e-9)


def test_crossbar_matrices_fold_batchnorm_as_the_mapper_does() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 5))
    bn = model[1]
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    model.eval()
    folded, _ = fold_batchnorm(model)
    ours = dict(crossbar_matrices(model))
    for name, layer in mapped_layers(folded):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        assert torch.allclose(ours[name].detach(), w, atol=1e-6), name


def test_train_model_fingerprint_unchanged_without_regulariser(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path))
    ds = load_dataset("digits")
    plain, info = train_model("digits-cnn", ds, epochs=1)
    # the fingerprint formula as it was before the regulariser existed
    recipe = dataclasses.replace(DEFAULT_RECIPES["digits-cnn"], epochs=1)
    h = hashlib.blake2b(digest_size=6)
    h.update(f"{ds.fingerprint}|{build_model('digits-cnn')!r}|{recipe!r}|v{RECIPE_VERSION}"
             .encode())
    assert info.cache_path.endswith(f"-e1-{h.hexdigest()}.pt")
    reg = LipschitzRegularizer(LipschitzConfig(weight=0.5))
    lip, lip_info = train_model("digits-cnn", ds, epochs=1, regularizer=reg)
    assert lip_info.cache_path != info.cache_path and not lip_info.from_cache
    again, again_info = train_model("digits-cnn", ds, epochs=1, regularizer=LipschitzRegularizer(
        LipschitzConfig(weight=0.5)))
    assert again_info.from_cache and again_info.cache_path == lip_info.cache_path
    assert max(spectral_norms(lip).values()) < max(spectral_norms(plain).values())


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="weight"):
        LipschitzConfig(weight=0.0)
    with pytest.raises(ConfigError, match="form"):
        LipschitzConfig(form="frobenius")
    with pytest.raises(ConfigError, match="iterations"):
        LipschitzConfig(iterations=0)
    with pytest.raises(ConfigError, match="LipschitzConfig"):
        LipschitzRegularizer({"weight": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="2-D"):
        spectral_norm(torch.zeros(3))
    with pytest.raises(ConfigError, match="iterations"):
        spectral_norm(torch.ones(2, 2), iterations=0)
    with pytest.raises(ConfigError, match="no Linear or Conv2d"):
        crossbar_matrices(nn.Sequential(nn.ReLU()))


def test_kd_student_takes_the_regulariser() -> None:
    from xbar.config import XbarConfig
    from xbar.devices.presets import preset
    from xbar.mapping.recovery.techniques.kd import KDConfig, distill

    ds = load_dataset("digits")
    teacher, _ = train_model("digits-cnn", ds)
    kd = KDConfig(epochs=1, validation_draws=1)
    plain, _ = distill(teacher, ds, preset("charan2020-jxcdc"), XbarConfig(), kd, seed=0)
    reg = LipschitzRegularizer(LipschitzConfig(weight=5.0, target=1.0))
    lip, _ = distill(teacher, ds, preset("charan2020-jxcdc"), XbarConfig(), kd, seed=0,
                     regularizer=reg)
    assert reg.last_sigmas  # it ran on the student's own (parametrised) weights
    assert max(spectral_norms(lip).values()) < max(spectral_norms(plain).values()) - 0.2
