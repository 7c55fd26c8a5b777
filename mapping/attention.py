"""``nn.MultiheadAttention`` (and the Transformer layers built on it) with its projections on
crossbars.

The four projections are ``nn.Linear`` modules the mapping programs onto tiles: ``q_proj``,
``k_proj``, ``v_proj`` (the three E x E blocks of ``in_proj_weight``, or ``q/k/v_proj_weight``
when key and value have their own sizes) and ``out_proj``; each token is one MVM through each.
The attention itself is digital, in float32, exactly as PyTorch computes it: the scores
``Q K^T / sqrt(head_dim)`` per head, the masks, the softmax, dropout (training only) and the
weighted sum ``softmax(.) V``. These products have no stored operand (both sides change with
every input), so they are not crossbar MVMs here; the timing, energy and area models count the
projections only and leave this digital work out.

PyTorch's fast path (``torch._transformer_encoder_layer_fwd`` in ``nn.TransformerEncoderLayer``
and the nested-tensor path of ``nn.TransformerEncoder``, taken in eval mode) reads the
attention's weights directly and would bypass the crossbars. :func:`slow_path` gives each
encoder layer a forward that always runs the submodules (the code of PyTorch's own slow path),
and turns the encoder's nested-tensor conversion off, so every projection and every
feed-forward Linear runs through the arrays.

Not mapped, refused by name: ``add_bias_kv`` and ``add_zero_attn``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xbar.errors import ModelError


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight.detach())
        if bias is not None:
            lin.bias.copy_(bias.detach())
    return lin


class MappedMultiheadAttention(nn.Module):
    """Multi-head attention with its four projections as ``nn.Linear`` (module docstring).

    Same call and results as ``nn.MultiheadAttention.forward`` (masks, ``need_weights``,
    ``average_attn_weights``, ``is_causal``, ``batch_first``, unbatched inputs)."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ModelError("MultiheadAttention with add_bias_kv or add_zero_attn is not "
                             "mapped")
        e = mha.embed_dim
        self.embed_dim, self.num_heads, self.head_dim = e, mha.num_heads, mha.head_dim
        self.batch_first, self.dropout = mha.batch_first, float(mha.dropout)
        self._qkv_same_embed_dim = mha._qkv_same_embed_dim  # read by PyTorch's Transformer
        if mha._qkv_same_embed_dim:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        bq = bk = bv = None
        if mha.in_proj_bias is not None:
            bq, bk, bv = mha.in_proj_bias.chunk(3)
        self.q_proj, self.k_proj, self.v_proj = (_linear(wq, bq), _linear(wk, bk),
                                                 _linear(wv, bv))
        self.out_proj = _linear(mha.out_proj.weight, mha.out_proj.bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, l_q, _ = query.shape
        s = key.shape[1]
        h, d = self.num_heads, self.head_dim
        q = self.q_proj(query).view(n, l_q, h, d).transpose(1, 2)    # (N, h, L, d)
        k = self.k_proj(key).view(n, s, h, d).transpose(1, 2)        # (N, h, S, d)
        v = self.v_proj(value).view(n, s, h, d).transpose(1, 2)
        scores = (q / math.sqrt(d)) @ k.transpose(-2, -1)             # (N, h, L, S)
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(l_q, s, dtype=torch.bool, device=q.device).triu(1)
        if attn_mask is not None:
            mask = attn_mask.view(n, h, l_q, s) if attn_mask.dim() == 3 else attn_mask
            scores = (scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool
                      else scores + mask)
        if key_padding_mask is not None:
            kpm = key_padding_mask.view(n, 1, 1, s)
            scores = (scores.masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool
                      else scores + kpm)
        attn = torch.softmax(scores, -1)
        if self.dropout and self.training:
            attn = F.dropout(attn, self.dropout, True)
        out = (attn @ v).transpose(1, 2).reshape(n, l_q, self.embed_dim)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = attn.mean(1) if average_attn_weights else attn
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights


class SlowPathEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` that always runs its submodules (PyTorch's slow path),
    so the mapped attention and feed-forward layers are the ones that compute."""

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask,
                                   is_causal=is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask,
                                          is_causal=is_causal))
        return self.norm2(x + self._ff_block(x))


def slow_path(module: nn.Module) -> None:
    """Make ``module`` (an encoder layer or encoder) skip PyTorch's fused fast path, in
    place (module docstring)."""
    if isinstance(module, nn.TransformerEncoderLayer):
        module.__class__ = SlowPathEncoderLayer
    elif isinstance(module, nn.TransformerEncoder):
        module.use_nested_tensor = False
