"""``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` with their weight matrices on crossbars.

Every layer and direction of the recurrent module holds two matrices, each an ``nn.Linear``
the mapping programs onto its own tiles:

* ``ih``: the input matrix (gates x input size, with ``bias_ih``). Its inputs ``x_1 .. x_T``
  are all known when the layer starts, so it runs as T input vectors (one MVM each) in one
  call, like a Linear layer applied to a sequence.
* ``hh``: the recurrent matrix (gates x hidden size, with ``bias_hh``). One analog MVM per
  time step on ``h_{t-1}``; step t + 1 cannot start before step t's gates and state are
  computed (the timing engine's ``recurrent`` layer kind).

The gates (sigmoid, tanh, ReLU for ``nn.RNN(nonlinearity='relu')``), the elementwise products
and the cell state ``c_t`` are digital, in float32, exactly as PyTorch computes them:

* RNN:  ``h_t = act(ih(x_t) + hh(h_{t-1}))``
* LSTM: ``i, f, g, o = ih(x_t) + hh(h_{t-1})``; ``c_t = s(f) c_{t-1} + s(i) tanh(g)``;
  ``h_t = s(o) tanh(c_t)``
* GRU:  ``r = s(ih_r + hh_r)``, ``z = s(ih_z + hh_z)``, ``n = tanh(ih_n + r * hh_n)``;
  ``h_t = (1 - z) n + z h_{t-1}`` (``hh_n`` includes ``bias_hn``, so the recurrent matrix's
  n rows must be a separate MVM from the input matrix's: they are, ``hh`` is its own matrix).

Layers, both directions, ``batch_first``, an initial state and dropout between layers (in
training mode) behave as in PyTorch. Not mapped, refused by name: LSTM ``proj_size`` > 0 and
packed sequences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from xbar.errors import ModelError

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RecurrentDirection(nn.Module):
    """One layer and direction: the input matrix ``ih`` and the recurrent matrix ``hh``."""

    def __init__(self, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor | None,
                 b_hh: torch.Tensor | None) -> None:
        super().__init__()
        self.ih = nn.Linear(w_ih.shape[1], w_ih.shape[0], bias=b_ih is not None)
        self.hh = nn.Linear(w_hh.shape[1], w_hh.shape[0], bias=b_hh is not None)
        with torch.no_grad():
            self.ih.weight.copy_(w_ih.detach())
            self.hh.weight.copy_(w_hh.detach())
            if b_ih is not None:
                self.ih.bias.copy_(b_ih.detach())
                self.hh.bias.copy_(b_hh.detach())
        # Read by xbar.mapping.geometry: calls of this matrix are sequential time steps of
        # one layer on one set of tiles, not layers of their own.
        self.hh.xbar_recurrent = True  # type: ignore[assignment]


class MappedRNN(nn.Module):
    """A recurrent module (RNN, GRU or LSTM) computed with ``ih``/``hh`` matrices per layer
    and direction (module docstring); same inputs, outputs and state as the original."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        if getattr(rnn, "proj_size", 0):
            raise ModelError("LSTM with proj_size > 0 is not mapped")
        self.mode = rnn.mode
        self.hidden_size, self.num_layers = rnn.hidden_size, rnn.num_layers
        self.bidirectional, self.batch_first = rnn.bidirectional, rnn.batch_first
        self.dropout = float(rnn.dropout)
        self.directions: list[str] = []
        for layer in range(self.num_layers):
            for sfx in ("", "_reverse")[: 2 if self.bidirectional else 1]:
                key = f"l{layer}{sfx}"
                b_ih = getattr(rnn, f"bias_ih_{key}", None) if rnn.bias else None
                b_hh = getattr(rnn, f"bias_hh_{key}", None) if rnn.bias else None
                self.add_module(key, RecurrentDirection(
                    getattr(rnn, f"weight_ih_{key}"), getattr(rnn, f"weight_hh_{key}"),
                    b_ih, b_hh))
                self.directions.append(key)

    def _run(self, d: RecurrentDirection, x: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One direction over x (N, T, I) from state h (N, H), c: outputs (N, T, H), h, c."""
        gi = d.ih(x)                                   # (N, T, G*H): all steps at once
        outs = []
        for t in range(x.shape[1]):
            gh = d.hh(h)                               # one MVM per step
            g = gi[:, t]
            if self.mode == "LSTM":
                i, f, gg, o = (g + gh).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(c)
            elif self.mode == "GRU":
                ri, zi, ni = g.chunk(3, 1)
                rh, zh, nh = gh.chunk(3, 1)
                r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
                n = torch.tanh(ni + r * nh)
                h = (1 - z) * n + z * h
            elif self.mode == "RNN_RELU":
                h = torch.relu(g + gh)
            else:
                h = torch.tanh(g + gh)
            outs.append(h)
        return torch.stack(outs, 1), h, c

    def forward(self, x: torch.Tensor, hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
                | None = None):
        if isinstance(x, PackedSequence):
            raise ModelError("packed sequences are not mapped; pass padded (N, T, F) tensors")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0 if self.batch_first else 1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) \
                    else hx.unsqueeze(1)
        if x.dim() != 3:
            raise ModelError(f"{self.mode} expects input (T, N, F), (N, T, F) or (T, F); got "
                             f"shape {tuple(x.shape)}")
        seq = x if self.batch_first else x.transpose(0, 1)          # (N, T, F)
        n_dir = 2 if self.bidirectional else 1
        shape = (self.num_layers * n_dir, seq.shape[0], self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = seq.new_zeros(shape)
            c0 = seq.new_zeros(shape) if lstm else None
        elif lstm:
            h0, c0 = hx  # type: ignore[misc]
        else:
            h0, c0 = hx, None  # type: ignore[assignment]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for di in range(n_dir):
                k = layer * n_dir + di
                d = getattr(self, self.directions[k])
                inp = seq.flip(1) if di else seq
                out, h, c = self._run(d, inp, h0[k], c0[k] if lstm else None)
                outs.append(out.flip(1) if di else out)
                h_n.append(h)
                c_n.append(c)
            seq = torch.cat(outs, 2) if n_dir == 2 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                seq = F.dropout(seq, self.dropout, True)
        out = seq if self.batch_first else seq.transpose(0, 1)
        hn = torch.stack(h_n)
        cn = torch.stack(c_n) if lstm else None
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            hn = hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        return (out, (hn, cn)) if lstm else (out, hn)
