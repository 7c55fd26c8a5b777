"""Analog stand-ins for ``nn.Linear`` and ``nn.Conv2d`` that run the crossbar kernel.

A layer holds one :class:`xbar.analog.AnalogMatrix` (its weights as programmed cells), a
digital bias, and its input range (``x_max``, ``signed``) from calibration. Convolution runs
through im2col: ``unfold`` turns each output position's receptive field into a row of
in_channels * kh * kw values (channel-major, the order of ``weight.reshape(out, -1)``), so
the weight matrix is (out_channels) x (in_channels * kh * kw) and every output position is
one vector through the arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbar.analog import AnalogMatrix
from xbar.errors import ModelError


class AnalogLayer(nn.Module):
    """Common part: the programmed matrix, the digital bias, the input range, noise source."""

    def __init__(self, matrix: AnalogMatrix, bias: np.ndarray | None, name: str) -> None:
        super().__init__()
        self.matrix = matrix
        self.layer_name = name
        self.register_buffer("bias", None if bias is None else
                             torch.as_tensor(np.asarray(bias), dtype=torch.float32))
        self.x_max: float | None = None
        self.signed = False
        self.read_rng: np.random.Generator | None = None
        self.analog = True  # False: exact digital matmul with the programmed weights (checks)
        # Weights the programmed cells hold, for straight-through gradients (see _mvm).
        self.register_buffer("w_eff", torch.as_tensor(matrix.effective_weights(),
                                                      dtype=torch.float32))
        # Digital additions for recovery methods (xbar.mapping.recovery.techniques.sram): a per-column gain, and a
        # sparse SRAM array of integer words at the positions in sram_mask.
        self.col_gain: nn.Parameter | None = None
        self.sram_mask: torch.Tensor | None = None
        self.sram_code: nn.Parameter | None = None
        self.sram_step = 0.0
        self.sram_word_bits = 0

    def refresh_weights(self) -> None:
        """Recompute the straight-through weights (``w_eff``) from the matrix's
        conductances, on ``w_eff``'s device: after anything rewrites, disturbs or ages the
        cells (:meth:`xbar.analog.AnalogMatrix.write`, ``write_verify``, ``disturb``,
        ``age_to``)."""
        self.w_eff = torch.as_tensor(self.matrix.effective_weights(), dtype=torch.float32,
                                     device=self.w_eff.device)

    def set_input_range(self, x_max: float, signed: bool) -> None:
        self.x_max = float(x_max) if x_max > 0 else 1.0
        self.signed = bool(signed)

    def _mvm(self, cols: torch.Tensor) -> torch.Tensor:
        """(n, n_in) -> (n, n_out) through the arrays (no bias), plus gain and SRAM.

        The value is the crossbar's; under autograd the gradient is that of ``cols @
        w_eff.T`` (straight-through: the programmed weights, noise-free), so recovery
        methods can train digital parameters through the chip.
        """
        if self.x_max is None:
            raise ModelError(f"layer {self.layer_name!r} has no input range: calibrate the "
                             "chip before running it")
        if not self.analog:
            x = cols.detach().cpu().numpy()
            y = torch.from_numpy((x.astype(np.float64) @ self.matrix.effective_weights().T
                                  ).astype(np.float32)).to(cols.device)
        else:  # on the matrix's backend; a torch backend keeps cols on their device
            y = self.matrix.matmul_tensor(cols, rng=self.read_rng, x_max=self.x_max,
                                          signed=self.signed)
        if torch.is_grad_enabled() and (cols.requires_grad or self.w_eff.requires_grad):
            surrogate = cols @ self.w_eff.T
            y = surrogate + (y - surrogate).detach()
        if self.col_gain is not None:
            y = y * self.col_gain
        if self.sram_code is not None:
            y = y + cols @ self.sram_weights().T
        return y

    def sram_weights(self) -> torch.Tensor:
        """The SRAM words as weights (zero outside the mask); rounding is straight-through."""
        code = self.sram_code
        q = 2 ** (self.sram_word_bits - 1) - 1
        rounded = code + (code.round() - code).detach()
        return self.sram_mask * rounded.clamp(-q, q) * self.sram_step

    def input_columns(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class AnalogLinear(AnalogLayer):
    """``y = x W^T + b`` with ``x W^T`` computed by the crossbar."""

    def __init__(self, matrix: AnalogMatrix, bias: np.ndarray | None, name: str) -> None:
        super().__init__(matrix, bias, name)

    def input_columns(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, x.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.matrix.n_in:
            raise ModelError(f"layer {self.layer_name!r} expects {self.matrix.n_in} input "
                             f"features, got input of shape {tuple(x.shape)}")
        y = self._mvm(self.input_columns(x)).reshape(*x.shape[:-1], self.matrix.n_out)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        m = self.matrix
        return f"{m.n_in} -> {m.n_out}, tiles={m.n_tiles}, device={m.device.name}"


class AnalogConv2d(AnalogLayer):
    """2-D convolution (groups = 1) as im2col rows through the crossbar."""

    def __init__(self, matrix: AnalogMatrix, bias: np.ndarray | None, name: str,
                 in_channels: int, kernel_size: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int],
                 padding_mode: str = "zeros") -> None:
        super().__init__(matrix, bias, name)
        self.in_channels = in_channels
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.dilation = tuple(dilation)
        self.padding_mode = padding_mode

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if self.padding_mode == "zeros":
            return x, self.padding
        ph, pw = self.padding
        mode = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[
            self.padding_mode]
        return F.pad(x, (pw, pw, ph, ph), mode=mode), (0, 0)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        out = []
        for size, k, s, p, d in zip((h, w), self.kernel_size, self.stride, self.padding,
                                    self.dilation):
            out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return out[0], out[1]

    def input_columns(self, x: torch.Tensor) -> torch.Tensor:
        xp, pad = self._padded(x)
        cols = F.unfold(xp, self.kernel_size, dilation=self.dilation, padding=pad,
                        stride=self.stride)                       # (N, C*kh*kw, L)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    def patch_offsets(self, shape: tuple[int, ...], pad: tuple[int, int]) -> np.ndarray:
        """int32 (L, C*kh*kw): where each im2col entry sits in a flattened (C, H, W) input,
        -1 for zero padding; built by unfolding the input's own indices, so the order is
        exactly :meth:`input_columns`'. Kept per input shape."""
        key = (tuple(shape), tuple(pad))
        cached = getattr(self, "_patch_cache", None)
        if cached is None or cached[0] != key:
            index = torch.arange(1, int(np.prod(shape)) + 1, dtype=torch.float64)
            cols = F.unfold(index.view(1, *shape), self.kernel_size, dilation=self.dilation,
                            padding=pad, stride=self.stride)[0]   # (C*kh*kw, L), 0 = pad
            cached = (key, np.ascontiguousarray((cols.T - 1).numpy().astype(np.int32)))
            self._patch_cache = cached
        return cached[1]

    def _fast_path(self, x: torch.Tensor) -> bool:
        """Whether im2col can run inside the CPU kernel: same values, noise draws included,
        no (N*L, C*kh*kw) matrix. Needs the Numba backend, no gradient through the
        crossbar (straight-through training needs the columns) and no SRAM words."""
        grad = torch.is_grad_enabled() and (x.requires_grad or self.w_eff.requires_grad)
        return (self.analog and not grad and self.sram_code is None and self.x_max is not None
                and x.device.type == "cpu" and self.matrix.resolved_backend() == "cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ModelError(f"layer {self.layer_name!r} expects input (N, {self.in_channels},"
                             f" H, W), got shape {tuple(x.shape)}")
        h_out, w_out = self.output_size(x.shape[2], x.shape[3])
        if self._fast_path(x):
            xp, pad = self._padded(x.detach())
            images = xp.reshape(xp.shape[0], -1).to(torch.float32).contiguous().numpy()
            y = torch.from_numpy(self.matrix.matmul_patches(
                images, self.patch_offsets(tuple(xp.shape[1:]), pad), self.read_rng,
                self.x_max, self.signed)).view(x.shape[0], -1, h_out, w_out)
            if self.col_gain is not None:
                y = y * self.col_gain.view(1, -1, 1, 1)
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        y = self._mvm(self.input_columns(x))                     # (N*L, out)
        y = y.reshape(x.shape[0], h_out * w_out, -1).transpose(1, 2)
        y = y.reshape(x.shape[0], -1, h_out, w_out)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        m = self.matrix
        return (f"{self.in_channels} -> {m.n_out}, kernel={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"tiles={m.n_tiles}, device={m.device.name}")
