"""A network rewritten so that every weight matrix is an ``nn.Linear`` or a groups = 1
``nn.Conv2d``: the form the mapping programs onto crossbars.

:func:`lower` replaces, in place, each layer of these kinds by a module that computes the same
function with its weights in Linear/Conv2d submodules (each is documented where it is built):

=============================  ==========================================================
PyTorch layer                  mapped form
=============================  ==========================================================
Conv2d, groups > 1             :class:`~xbar.mapping.conv_forms.MaskedConv2d`: one
                               block-diagonal matrix (zero blocks are cells)
Conv1d                         :class:`~xbar.mapping.conv_forms.Conv1dOn2d`: a (1, k) Conv2d
ConvTranspose2d                :class:`~xbar.mapping.conv_forms.TransposedConv2d`: one MVM
                               per input position, digital col2im
RNN, GRU, LSTM                 :class:`~xbar.mapping.recurrent.MappedRNN`: input and
                               recurrent matrices per layer and direction, gates digital
MultiheadAttention             :class:`~xbar.mapping.attention.MappedMultiheadAttention`:
                               q/k/v/out projections, attention digital
TransformerEncoder(Layer)      PyTorch's slow path, so the submodules above run
Embedding                      :class:`DigitalEmbedding`: a digital table look-up, no cells
=============================  ==========================================================

Layers with weights that are still not mapped are refused by name
(:func:`xbar.mapping.convert.check_supported`).
"""

from __future__ import annotations

import torch
from torch import nn

from xbar.errors import ModelError
from xbar.mapping.attention import MappedMultiheadAttention, slow_path
from xbar.mapping.conv_forms import Conv1dOn2d, TransposedConv2d, conv2d_form
from xbar.mapping.recurrent import MappedRNN


class DigitalEmbedding(nn.Embedding):
    """``nn.Embedding`` kept digital: a table look-up in SRAM, not an MVM, so no cells.

    Chips take float32 inputs (:meth:`xbar.mapping.chip.Chip.predict`): token ids that arrive
    as floats are taken as integers (refused unless every id is a whole number)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            ids = x.round()
            if not torch.equal(ids, x):
                raise ModelError("an Embedding received inputs that are not whole numbers; "
                                 "allowed: token ids")
            x = ids.long()
        return super().forward(x)


def _embedding(e: nn.Embedding) -> DigitalEmbedding:
    new = DigitalEmbedding.__new__(DigitalEmbedding)
    new.__dict__ = e.__dict__.copy()  # same parameters and settings, another forward
    return new


def _replacement(module: nn.Module) -> nn.Module | None:
    if isinstance(module, (DigitalEmbedding, MappedRNN, MappedMultiheadAttention)):
        return None
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        return conv2d_form(module)
    if isinstance(module, nn.Conv1d):
        return Conv1dOn2d(module)
    if isinstance(module, nn.ConvTranspose2d):
        return TransposedConv2d(module)
    if isinstance(module, nn.RNNBase):
        return MappedRNN(module)
    if isinstance(module, nn.MultiheadAttention):
        return MappedMultiheadAttention(module)
    if isinstance(module, nn.Embedding):
        return _embedding(module)
    return None


def lower(model: nn.Module) -> nn.Module:
    """Rewrite ``model`` in place into its mapped form (module docstring); returns it.

    The root itself is replaced when it is one of the layers above (a bare ``nn.LSTM``)."""
    root = _replacement(model)
    if root is not None:
        return root.train(model.training)
    for name, module in list(model.named_modules()):
        slow_path(module)
        new = _replacement(module)
        if new is None or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new.train(module.training))
    return model


def digital_layers(model: nn.Module) -> list[dict[str, object]]:
    """The layers with weights that stay digital (embeddings), for reports: name, kind,
    table shape and parameters."""
    return [{"name": n, "kind": "Embedding (digital look-up)",
             "table": [m.num_embeddings, m.embedding_dim], "parameters": m.weight.numel()}
            for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
