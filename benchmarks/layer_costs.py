"""What each layer kind of issue 23 costs on the default chip: tiles, cycles of one
inference (layer schedule) and energy per inference, from ``layer_specs``, the SimPy engine
and the energy model (every cell at the nominal conductance). Prints the table of
docs/layers.md.

    python benchmarks/layer_costs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from xbar.config import HardwareConfig  # noqa: E402
from xbar.mapping.geometry import layer_specs  # noqa: E402
from xbar.timing import simulate  # noqa: E402
from xbar.timing.energy import inference_energy  # noqa: E402


class Sequence(nn.Module):
    """A recurrent layer's output sequence (batch first)."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


CASES = [
    ("Conv2d 32->32 3x3, dense (32x16x16)", nn.Conv2d(32, 32, 3, padding=1), (32, 16, 16)),
    ("Conv2d 32->32 3x3, depthwise (32x16x16)", nn.Conv2d(32, 32, 3, padding=1, groups=32),
     (32, 16, 16)),
    ("Conv2d 32->32 3x3, groups 4 (32x16x16)", nn.Conv2d(32, 32, 3, padding=1, groups=4),
     (32, 16, 16)),
    ("Conv1d 16->32 k 5 (16x64)", nn.Conv1d(16, 32, 5, padding=2), (16, 64)),
    ("ConvTranspose2d 32->16 4x4 stride 2 (32x8x8)", nn.ConvTranspose2d(32, 16, 4, 2, 1),
     (32, 8, 8)),
    ("RNN 28->64, 28 steps", Sequence(nn.RNN(28, 64, batch_first=True)), (28, 28)),
    ("GRU 28->64, 28 steps", Sequence(nn.GRU(28, 64, batch_first=True)), (28, 28)),
    ("LSTM 28->64, 28 steps", Sequence(nn.LSTM(28, 64, batch_first=True)), (28, 28)),
    ("MultiheadAttention d 64, 4 heads, 16 tokens", SelfAttention(), (16, 64)),
    ("TransformerEncoderLayer d 64, ff 128, 16 tokens",
     nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), (16, 64)),
]


def main() -> None:
    hw = HardwareConfig()
    print("| layer (input) | matrices (kind rows x outputs, vectors or steps) | tiles | cycles "
          "| energy |")
    print("|---|---|---:|---:|---:|")
    for label, module, shape in CASES:
        specs = layer_specs(module, shape)
        run = simulate(specs, hw)
        energy = inference_energy(specs, hw)
        mats = "; ".join(f"{s.kind} {s.n_in} x {s.n_out}, {s.positions}" for s in specs)
        print(f"| {label} | {mats} | {run.n_tiles} | {run.total_cycles:,} | "
              f"{energy.total_pj / 1e6:.3g} uJ |")


if __name__ == "__main__":
    main()
