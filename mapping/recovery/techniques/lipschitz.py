"""Lipschitz regularisation (CorrectNet, Eldebiky et al., DATE 2023; CorrectNet+, TCAD 2024).

CorrectNet's error suppression: a weight error ``dW_l x`` made in layer ``l`` reaches the
output multiplied, at worst, by the Lipschitz constants of the layers after it; ReLU and
max-pooling are 1-Lipschitz, so a layer's constant is the spectral norm (largest singular
value) ``sigma_l`` of its weight matrix. Keeping every ``sigma_l`` small during training keeps
the errors of programming variation from growing through the layers.

What is computed, and the choices where the paper is silent (all in :class:`LipschitzConfig`):

* ``sigma_l`` of the matrix the crossbar holds: a Linear layer's ``W`` (out x in), a
  convolution's kernel reshaped to (out_channels) x (in_channels * kh * kw), the im2col
  matrix every output position goes through (:mod:`xbar.mapping.analog_layers`);
  block-diagonal for a grouped convolution, and for recurrent layers, attention and
  transposed convolutions the matrices :mod:`xbar.mapping.lowering` maps. This is not
  the convolution's operator norm, which is at most ``sqrt(kh * kw)`` times it (each input
  value feeds at most kh * kw positions with stride 1); the reshaped matrix is what the
  variation acts on, one output position at a time, and it is cheap.
* A BatchNorm directly after the layer is folded into its rows (``gamma / sqrt(running_var +
  eps)``, the folding :func:`xbar.mapping.convert.fold_batchnorm` does before mapping), so
  the regularised matrix is the one programmed.
* ``sigma_l`` by power iteration: persistent left/right vectors per layer (as
  ``torch.nn.utils.spectral_norm`` keeps them), ``iterations`` steps per training step
  (after ``warmup_iterations`` on the first), then ``sigma = u^T W v`` with u and v held
  fixed, whose gradient is ``u v^T``: the exact gradient of the largest singular value when
  the iteration has converged.
* The penalty, ``form``: ``"hinge"`` (the default) ``weight * sum_l max(0, sigma_l -
  target)^2``: only layers that amplify beyond ``target`` are pushed down, the others train
  freely; ``"orthogonal"``: ``weight * sum_l ||W_l W_l^T / target^2 - I||_F^2 / n_out``, the
  Parseval-network form (Cisse et al., ICML 2017) that holds every singular value near
  ``target`` (one reading of the paper's "modified" regularisation, whose formula is not
  public; no power iteration is needed for it).

Left out: the product of the per-layer constants is an upper bound of the network's
constant, not its value; nothing here bounds the activations' range (the DAC's input range is
calibrated per layer on the chip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from xbar.errors import ConfigError
from xbar.params import Params, param

__all__ = ["FORMS", "LipschitzConfig", "LipschitzRegularizer", "crossbar_matrices",
           "lipschitz_bound", "spectral_norm", "spectral_norms"]

FORMS = ("hinge", "orthogonal")


@dataclass(frozen=True)
class LipschitzConfig(Params):
    """The regulariser's settings.

    Attributes:
        weight: Multiplier lambda of the penalty in the loss (> 0).
        target: Spectral norm each layer may reach without penalty (``hinge``) or is held to
            (``orthogonal``); > 0.
        form: ``"hinge"`` or ``"orthogonal"`` (module docstring).
        iterations: Power-iteration steps per training step (>= 1).
        warmup_iterations: Power-iteration steps the first time a layer is seen (>= 1).
    """

    SECTION = "lipschitz"

    weight: float = param(0.2, unit="-", range=(0, 1e6, True, False),
                          doc="Multiplier of the Lipschitz penalty in the loss.")
    target: float = param(1.0, unit="-", range=(0, 1e6, True, False),
                          doc="Spectral norm a layer may reach without penalty.")
    form: str = param("hinge", choices=FORMS,
                      doc="hinge: sum max(0, sigma - target)^2; orthogonal: Parseval form.")
    iterations: int = param(1, unit="steps", range=(1, 10_000),
                            doc="Power-iteration steps per training step.")
    warmup_iterations: int = param(30, unit="steps", range=(1, 100_000),
                                   doc="Power-iteration steps when a layer is first seen.")


def _weight(layer: nn.Module) -> torch.Tensor:
    """The layer's trainable weight (under a parametrisation, the original one: a KD
    student's weights are seen through the device noise, the regulariser acts on its own)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def _blocks(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's kernel (out, in / groups, ...) as the block-diagonal matrix the
    crossbar holds (:mod:`xbar.mapping.conv_forms`): out x (in * taps)."""
    o = w.shape[0] // groups
    return torch.block_diag(*(w[q * o:(q + 1) * o].reshape(o, -1) for q in range(groups)))


def _transposed(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A ConvTranspose2d kernel (in, out / groups, kh, kw) as its (out * kh * kw) x in
    column matrix, block-diagonal over the groups."""
    c = w.shape[0] // groups
    return torch.block_diag(*(w[q * c:(q + 1) * c].permute(1, 2, 3, 0).reshape(-1, c)
                              for q in range(groups)))


def _own_matrices(name: str, layer: nn.Module) -> list[tuple[str, torch.Tensor]] | None:
    """The matrices of a layer the mapping rewrites (:mod:`xbar.mapping.lowering`), named as
    the chip names them; None for other layers."""
    if isinstance(layer, nn.RNNBase):  # weight_ih_l0_reverse -> name.l0_reverse.ih
        return [(f"{name}.{key.split('_', 2)[2]}.{key.split('_', 2)[1]}", p)
                for key, p in layer.named_parameters() if key.startswith("weight_")]
    if isinstance(layer, nn.MultiheadAttention):
        if layer._qkv_same_embed_dim:
            q, k, v = layer.in_proj_weight.chunk(3)
        else:
            q, k, v = layer.q_proj_weight, layer.k_proj_weight, layer.v_proj_weight
        return [(f"{name}.q_proj", q), (f"{name}.k_proj", k), (f"{name}.v_proj", v),
                (f"{name}.out_proj", _weight(layer.out_proj))]
    if isinstance(layer, nn.ConvTranspose2d):
        return [(f"{name}.cols", _transposed(_weight(layer), layer.groups))]
    return None


def crossbar_matrices(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, matrix) of every weight matrix of ``model`` as the crossbar holds it: out x
    (in * kh * kw) (block-diagonal for a grouped convolution), rows scaled by a BatchNorm that
    directly follows a Linear or convolution (its running variance held fixed); a recurrent
    layer's input and recurrent matrices, attention's four projections and a transposed
    convolution's column matrix as :mod:`xbar.mapping.lowering` maps them; differentiable
    with respect to the weights and the BN scale."""
    modules = list(model.named_modules())
    out = []
    skip: set[int] = set()
    for i, (name, layer) in enumerate(modules):
        own = _own_matrices(name, layer)
        if own is not None:
            out.extend(own)
            skip.update(id(m) for m in layer.modules())
            continue
        if id(layer) in skip or not isinstance(layer, (nn.Linear, nn.Conv2d, nn.Conv1d)):
            continue
        w = _weight(layer)
        groups = getattr(layer, "groups", 1)
        w = w.reshape(w.shape[0], -1) if groups == 1 else _blocks(w, groups)
        nxt = modules[i + 1][1] if i + 1 < len(modules) else None
        if isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)) and nxt.running_var is not None:
            scale = torch.rsqrt(nxt.running_var.detach() + nxt.eps)
            if nxt.weight is not None:
                scale = scale * nxt.weight
            w = w * scale[:, None]
        out.append((f"{name}.conv" if isinstance(layer, nn.Conv1d) else name, w))
    if not out:
        raise ConfigError("the model has no Linear or Conv2d layer to regularise")
    return out


def _normalise(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def spectral_norm(w: torch.Tensor, iterations: int = 100, u: torch.Tensor | None = None,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Largest singular value of a 2-D ``w`` by power iteration: ``(sigma, u, v)``.

    ``u`` (length ``w.shape[0]``) starts the iteration (default: a seeded random vector).
    ``sigma = u^T w v`` carries the gradient ``u v^T`` to ``w``; u and v are returned detached
    for the next call.
    """
    if w.dim() != 2 or min(w.shape) < 1:
        raise ConfigError(f"spectral_norm needs a non-empty 2-D matrix; got shape "
                          f"{tuple(w.shape)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"iterations = {iterations!r} is invalid; allowed: an integer >= 1")
    with torch.no_grad():
        wd = w.detach()
        if u is None:
            gen = torch.Generator().manual_seed(seed)
            u = torch.randn(wd.shape[0], generator=gen, dtype=wd.dtype).to(wd.device)
        u = _normalise(u)
        v = _normalise(wd.T @ u)
        for _ in range(iterations):
            v = _normalise(wd.T @ u)
            u = _normalise(wd @ v)
    return u @ w @ v, u, v


def spectral_norms(model: nn.Module, iterations: int = 100) -> dict[str, float]:
    """Each mapped layer's spectral norm (as :func:`crossbar_matrices` forms the matrix)."""
    with torch.no_grad():
        return {name: float(spectral_norm(w, iterations, seed=i)[0])
                for i, (name, w) in enumerate(crossbar_matrices(model))}


class LipschitzRegularizer:
    """``reg(model)``: the penalty (a scalar tensor) to add to a training loss.

    Keeps each layer's power-iteration vector between calls (keyed by layer name and shape),
    so one step per call tracks the slowly moving weights. ``repr`` names the configuration:
    the training cache (:func:`xbar.mapping.data.train.train_model`) puts it in the trained
    model's fingerprint.
    """

    def __init__(self, config: LipschitzConfig = LipschitzConfig()) -> None:
        if not isinstance(config, LipschitzConfig):
            raise ConfigError(f"LipschitzRegularizer needs a LipschitzConfig; got "
                              f"{type(config).__name__}")
        self.config = config
        self._u: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        self.last_sigmas: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"LipschitzRegularizer({self.config!r})"

    def __call__(self, model: nn.Module) -> torch.Tensor:
        c = self.config
        terms = []
        for i, (name, w) in enumerate(crossbar_matrices(model)):
            if c.form == "orthogonal":
                gram = w @ w.T / c.target ** 2
                eye = torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
                terms.append((gram - eye).pow(2).sum() / w.shape[0])
                continue
            key = (name, tuple(w.shape))
            u0 = self._u.get(key)
            sigma, u, _ = spectral_norm(w, c.iterations if u0 is not None
                                        else c.warmup_iterations, u0, seed=i)
            self._u[key] = u
            self.last_sigmas[name] = float(sigma.detach())
            terms.append(torch.relu(sigma - c.target) ** 2)
        return c.weight * torch.stack(terms).sum()


def lipschitz_bound(model: nn.Module, iterations: int = 100) -> float:
    """The product of the layers' spectral norms: an upper bound of the network's Lipschitz
    constant over the mapped layers (ReLU and max-pooling are 1-Lipschitz)."""
    return float(math.prod(spectral_norms(model, iterations).values()))
