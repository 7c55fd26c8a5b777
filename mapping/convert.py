"""Map any PyTorch network onto crossbars: fold BatchNorm, program, calibrate.

A BatchNorm that directly follows an ``nn.Linear``, ``nn.Conv2d`` or ``nn.Conv1d`` (its only
user) is folded into its weights and bias first. Grouped/depthwise and 1-D convolutions,
``nn.ConvTranspose2d``, ``nn.RNN``/``nn.GRU``/``nn.LSTM``, ``nn.MultiheadAttention`` (and the
Transformer layers using it) are then rewritten into Linear/Conv2d form
(:mod:`xbar.mapping.lowering` says how each maps), and every ``nn.Linear`` and ``nn.Conv2d``
(any kernel, stride, padding, dilation) becomes an analog layer. Everything else
(activations, pooling, residual adds, flatten, dropout in eval mode, normalisations that
cannot be folded, embeddings as digital look-ups, attention's softmax and products) runs as
written, digitally. Layers with weights that cannot be mapped (3-D and 1-D/3-D transposed
convolutions, bilinear layers, embedding bags, LSTM projections, attention with
``add_bias_kv``/``add_zero_attn``) are refused with the layer's name.
"""

from __future__ import annotations

import copy
import warnings
from typing import Iterable

import numpy as np
import torch
from torch import nn

from xbar.devices import Device
from xbar.mapping.analog_layers import AnalogConv2d, AnalogLayer, AnalogLinear
from xbar.mapping.lowering import lower
from xbar.analog import AnalogMatrix
from xbar.config import XbarConfig
from xbar.errors import ModelError

_UNSUPPORTED = {
    nn.Conv3d: "3-D convolution is not mapped",
    nn.ConvTranspose1d: "transposed 1-D convolution is not mapped (ConvTranspose2d is)",
    nn.ConvTranspose3d: "transposed 3-D convolution is not mapped",
    nn.EmbeddingBag: "embedding bags are not mapped (nn.Embedding is, as a digital look-up)",
    nn.Bilinear: "bilinear layers are not mapped",
}
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_FOLDABLE = (nn.Linear, nn.Conv2d, nn.Conv1d)


def _refusal(module: nn.Module) -> str | None:
    for klass, why in _UNSUPPORTED.items():
        if isinstance(module, klass):
            return why
    if isinstance(module, nn.LSTM) and module.proj_size:
        return "LSTM with proj_size > 0 is not mapped"
    if isinstance(module, nn.MultiheadAttention) and (module.bias_k is not None
                                                      or module.add_zero_attn):
        return "MultiheadAttention with add_bias_kv or add_zero_attn is not mapped"
    if isinstance(module, nn.ConvTranspose2d) and module.padding_mode != "zeros":
        return f"ConvTranspose2d padding_mode={module.padding_mode!r} is not mapped"
    return None


def check_supported(model: nn.Module) -> None:
    """Raise ModelError naming the first layer that cannot be mapped, and why."""
    for name, module in model.named_modules():
        why = _refusal(module)
        if why is not None:
            raise ModelError(f"layer {name!r} ({type(module).__name__}) cannot be mapped: "
                             f"{why}")


def _fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """Fold an eval-mode BatchNorm into the Linear/Conv2d before it (in place)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
        1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias.detach() if bn.affine else 0.0) - bn.running_mean * scale
    w = layer.weight.detach()
    shape = (-1,) + (1,) * (w.dim() - 1)
    new_w = w * scale.reshape(shape)
    old_b = layer.bias.detach() if layer.bias is not None else torch.zeros(w.shape[0])
    layer.weight = nn.Parameter(new_w)
    layer.bias = nn.Parameter(old_b * scale + shift)


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, list[tuple[str, str]]]:
    """A copy of ``model`` (eval mode) with each foldable BatchNorm folded away, in its
    mapped form (:func:`xbar.mapping.lowering.lower`): every weight matrix an ``nn.Linear``
    or a groups = 1 ``nn.Conv2d``, computing what ``model`` computes.

    Returns the copy and the (layer, batchnorm) pairs folded (names in ``model``). The graph
    is found with ``torch.fx``; where the model cannot be traced, a BatchNorm directly after
    a Linear, Conv2d or Conv1d in the same ``nn.Sequential`` is folded.

    Raises:
        ModelError: ``model`` has a layer that cannot be mapped (:func:`check_supported`).
    """
    check_supported(model)
    model = copy.deepcopy(model).eval()
    pairs: list[tuple[str, str]] = []
    if not any(isinstance(m, _BATCHNORMS) for m in model.modules()):
        return lower(model).eval(), pairs  # nothing to fold: no need to trace
    try:
        graph = torch.fx.symbolic_trace(model).graph
        for node in graph.nodes:
            if node.op != "call_module":
                continue
            bn = model.get_submodule(node.target)
            if not isinstance(bn, _BATCHNORMS) or len(node.args) != 1:
                continue
            prev = node.args[0]
            if not isinstance(prev, torch.fx.Node) or prev.op != "call_module" \
                    or len(prev.users) != 1:
                continue
            layer = model.get_submodule(prev.target)
            if isinstance(layer, _FOLDABLE):
                pairs.append((prev.target, node.target))
    except Exception as exc:  # dynamic control flow: fall back to Sequential adjacency
        warnings.warn(f"torch.fx could not trace the model ({exc}); folding only BatchNorms "
                      "that follow a Linear/Conv2d/Conv1d inside an nn.Sequential")
        for name, module in model.named_modules():
            if isinstance(module, nn.Sequential):
                kids = list(module.named_children())
                for (a, la), (b, lb) in zip(kids, kids[1:]):
                    if isinstance(la, _FOLDABLE) and isinstance(lb, _BATCHNORMS):
                        prefix = f"{name}." if name else ""
                        pairs.append((prefix + a, prefix + b))
    for layer_name, bn_name in pairs:
        _fold_into(model.get_submodule(layer_name), model.get_submodule(bn_name))
        _set_submodule(model, bn_name, nn.Identity())
    return lower(model).eval(), pairs


def mapped_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs that go onto crossbars, in definition order, of a model in
    mapped form (:func:`fold_batchnorm`'s result: every weight matrix a Linear or a groups
    = 1 Conv2d)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def program_layers(model: nn.Module, device: Device, config: XbarConfig,
                   rngs: Iterable[np.random.Generator], scale: str = "column") -> nn.Module:
    """Replace every Linear/Conv2d of a (folded) model by a programmed analog layer.

    ``rngs`` gives one generator per mapped layer, in :func:`mapped_layers` order. A masked
    (block-diagonal) layer programs its off-diagonal cells to the weight 0.
    """
    check_supported(model)
    model = copy.deepcopy(model).eval()
    for (name, layer), rng in zip(mapped_layers(model), rngs):
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            raise ModelError(f"layer {name!r} (Conv2d, groups={layer.groups}) is not in mapped "
                             "form; pass the model through fold_batchnorm first")
        weight = layer.weight.detach()
        mask = getattr(layer, "mask", None)
        w = (weight if mask is None else weight * mask).cpu().double().numpy()
        bias = None if layer.bias is None else layer.bias.detach().cpu().numpy()
        matrix = AnalogMatrix.program(w.reshape(w.shape[0], -1), device, config, rng, scale)
        if isinstance(layer, nn.Linear):
            new: AnalogLayer = AnalogLinear(matrix, bias, name)
        else:
            new = AnalogConv2d(matrix, bias, name, layer.in_channels, layer.kernel_size,
                               layer.stride, layer.padding if not isinstance(layer.padding, str)
                               else _same_padding(layer), layer.dilation, layer.padding_mode)
        _set_submodule(model, name, new)
    return model


def _same_padding(layer: nn.Conv2d) -> tuple[int, int]:
    if layer.padding == "valid":
        return (0, 0)
    pads = []
    for k, d, s in zip(layer.kernel_size, layer.dilation, layer.stride):
        total = d * (k - 1)
        if total % 2 or s != 1:
            raise ModelError(f"Conv2d padding='same' with an even total padding or stride > 1"
                             f" is not supported (kernel {layer.kernel_size}); give explicit "
                             "padding")
        pads.append(total // 2)
    return pads[0], pads[1]


def analog_layers(model: nn.Module) -> list[AnalogLayer]:
    return [m for m in model.modules() if isinstance(m, AnalogLayer)]
