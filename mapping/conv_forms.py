"""Grouped, 1-D and transposed convolutions in the form the crossbars hold them.

Each class here computes exactly what the PyTorch layer it replaces computes, with its
weights in one ``nn.Linear`` or groups = 1 ``nn.Conv2d`` (possibly block-diagonal), so that
the mapping (:mod:`xbar.mapping.convert`) programs it like any other Linear/Conv2d.

* **Grouped and depthwise Conv2d** (:class:`MaskedConv2d`): block-diagonal on one matrix.
  The weight matrix of a conv with ``g`` groups is out_channels x (in_channels * kh * kw),
  with group ``q``'s (out/g) x (in/g * kh * kw) block on the diagonal and every other
  entry 0. The whole matrix goes onto tiles as one layer: the zero blocks are real cells,
  programmed to the weight 0 (a differential pair at g_min/g_min, or a single cell at the
  reference level), read with every MVM (their read noise and leakage included), counted in
  cells, tiles, area and energy. Utilisation: a fraction 1/g of the layer's cells hold
  weights (a depthwise 3x3 conv on 32 channels: 288 of 9,216 weight positions). The
  alternative, each group on its own tile region, would use one tile per group however small
  the group (32 tiles for that layer instead of 3 at 128 x 128); the block-diagonal placement
  is chosen because it never needs more tiles than the dense layer of the same shape. The
  mask keeps the off-diagonal weights at exactly 0 under training (recovery methods train the
  mapped form).
* **Conv1d** (:class:`Conv1dOn2d`): a Conv2d over a height-1 input with a (1, k) kernel;
  grouped Conv1d is block-diagonal as above.
* **ConvTranspose2d** (:class:`TransposedConv2d`): the scatter form. Each input position's
  in_channels vector goes through one (out_channels * kh * kw) x in_channels matrix (one MVM
  per input position); the digital side adds the overlapping kh x kw patches into the output
  map (col2im, ``F.fold``) and adds the bias. Grouped: block-diagonal as above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xbar.errors import ModelError


def block_mask(n_out: int, n_in: int, groups: int, taps: int = 1) -> torch.Tensor:
    """(n_out, n_in * taps) mask: output block q sees input block q (every tap of it)."""
    mask = torch.zeros(n_out, n_in, taps)
    o, i = n_out // groups, n_in // groups
    for q in range(groups):
        mask[q * o:(q + 1) * o, q * i:(q + 1) * i] = 1.0
    return mask.reshape(n_out, n_in * taps)


class MaskedConv2d(nn.Conv2d):
    """A groups = 1 Conv2d whose weight is kept block-diagonal by ``mask`` (module docstring).

    ``groups_mapped`` is the original layer's group count (for reports)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                         conv.padding, conv.dilation, 1, conv.bias is not None,
                         conv.padding_mode)
        g, kh, kw = conv.groups, *conv.kernel_size
        mask = block_mask(conv.out_channels, conv.in_channels, g, kh * kw)
        mask = mask.reshape(conv.out_channels, conv.in_channels, kh, kw)
        full = torch.zeros_like(mask)
        c_g, o_g = conv.in_channels // g, conv.out_channels // g
        w = conv.weight.detach()
        for q in range(g):
            full[q * o_g:(q + 1) * o_g, q * c_g:(q + 1) * c_g] = w[q * o_g:(q + 1) * o_g]
        self.weight = nn.Parameter(full.to(w.dtype))
        if conv.bias is not None:
            self.bias = nn.Parameter(conv.bias.detach().clone())
        self.register_buffer("mask", mask.to(w.dtype))
        self.groups_mapped = g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class MaskedLinear(nn.Linear):
    """An ``nn.Linear`` whose weight is kept at 0 outside ``mask`` (block-diagonal)."""

    def __init__(self, weight: torch.Tensor, mask: torch.Tensor,
                 bias: torch.Tensor | None = None) -> None:
        super().__init__(weight.shape[1], weight.shape[0], bias is not None)
        self.weight = nn.Parameter(weight.detach().clone() * mask)
        if bias is not None:
            self.bias = nn.Parameter(bias.detach().clone())
        self.register_buffer("mask", mask.to(weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def conv2d_form(conv: nn.Conv2d) -> nn.Conv2d:
    """``conv`` itself when groups = 1, else its block-diagonal :class:`MaskedConv2d`."""
    return conv if conv.groups == 1 else MaskedConv2d(conv)


class Conv1dOn2d(nn.Module):
    """``nn.Conv1d`` as a Conv2d with a (1, k) kernel over a height-1 map (``conv``)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        pad = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
        c2 = nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                       (1, conv.stride[0]), pad, (1, conv.dilation[0]), conv.groups,
                       conv.bias is not None, conv.padding_mode)
        with torch.no_grad():
            c2.weight.copy_(conv.weight.detach().unsqueeze(2))
            if conv.bias is not None:
                c2.bias.copy_(conv.bias.detach())
        self.conv = conv2d_form(c2)
        self.in_channels = conv.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # unbatched (C, L)
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 3:
            raise ModelError(f"Conv1d expects input (N, C, L) or (C, L), got shape "
                             f"{tuple(x.shape)}")
        return self.conv(x.unsqueeze(2)).squeeze(2)


class TransposedConv2d(nn.Module):
    """``nn.ConvTranspose2d`` as one MVM per input position plus a digital col2im.

    ``cols`` holds the (out_channels * kh * kw) x in_channels matrix (an ``nn.Linear``
    without bias, block-diagonal for groups > 1); ``bias`` is added digitally after the
    overlapping patches are summed."""

    def __init__(self, ct: nn.ConvTranspose2d) -> None:
        super().__init__()
        if ct.padding_mode != "zeros":
            raise ModelError(f"ConvTranspose2d padding_mode={ct.padding_mode!r} is not mapped;"
                             " allowed: 'zeros'")
        c_in, o_g, kh, kw = ct.weight.shape
        g = ct.groups
        c_g = c_in // g
        w = ct.weight.detach()
        full = torch.zeros(o_g * g, kh, kw, c_in, dtype=w.dtype)
        for q in range(g):  # rows (o, i, j) of group q see inputs of group q
            full[q * o_g:(q + 1) * o_g, :, :, q * c_g:(q + 1) * c_g] = \
                w[q * c_g:(q + 1) * c_g].permute(1, 2, 3, 0)
        full = full.reshape(o_g * g * kh * kw, c_in)
        if g == 1:
            self.cols: nn.Linear = nn.Linear(c_in, full.shape[0], bias=False)
            with torch.no_grad():
                self.cols.weight.copy_(full)
        else:
            mask = block_mask(o_g * g, c_in, g, 1)            # (out, in)
            mask = mask.repeat_interleave(kh * kw, dim=0)      # rows (o, i, j)
            self.cols = MaskedLinear(full, mask)
        self.bias = None if ct.bias is None else nn.Parameter(ct.bias.detach().clone())
        self.in_channels, self.out_channels = c_in, o_g * g
        self.kernel_size, self.stride = tuple(ct.kernel_size), tuple(ct.stride)
        self.padding, self.dilation = tuple(ct.padding), tuple(ct.dilation)
        self.output_padding = tuple(ct.output_padding)

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1  # type: ignore[return-value]
                     for n, s, p, d, k, op in zip((h, w), self.stride, self.padding,
                                                  self.dilation, self.kernel_size,
                                                  self.output_padding))

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0), output_size).squeeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ModelError(f"ConvTranspose2d expects input (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        size = tuple(output_size[-2:]) if output_size is not None else self.output_hw(h, w)
        cols = self.cols(x.flatten(2).transpose(1, 2))          # (N, H*W, out*kh*kw)
        y = F.fold(cols.transpose(1, 2), size, self.kernel_size, self.dilation, self.padding,
                   self.stride)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
