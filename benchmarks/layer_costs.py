"""What each layer kind of issue 23 costs on the default chip: tiles, cycles of one
inference (layer schedule) and energy per inference, from ``layer_specs``, the SimPy engine
and the energy model (every cell at the nominal conductance). Prints the table of
docs/layers.md.

    python benchmarks/layer_costs.py
    python benchmarks/layer_costs.py --network mobilenetv2-narrow

With ``--network``, a zoo network's energy by layer, and for each grouped convolution the ADC
conversions the model counts (every column of the block-diagonal matrix in every row tile)
against the bound of converting only the columns that hold weights in each row tile (a
controller that skips the others), computed from the layer's groups and the array rows: the
energy that placement would save, which the simulator does not model.
"""

from __future__ import annotations

import argparse
import math
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


def weighted_columns(conv: nn.Conv2d, rows: int) -> tuple[int, int]:
    """(conversions per input vector the model counts, conversions of only the columns that
    hold weights in each row tile) for a grouped conv on arrays of ``rows`` word lines."""
    per_group = conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
    out_per_group = conv.out_channels // conv.groups
    n_rows = per_group * conv.groups
    row_tiles = math.ceil(n_rows / rows)
    weighted = 0
    for r in range(row_tiles):
        first, last = r * rows, min(n_rows, (r + 1) * rows) - 1
        weighted += (last // per_group - first // per_group + 1) * out_per_group
    return row_tiles * conv.out_channels, weighted


def network(name: str) -> None:
    from xbar.mapping.data.zoo import INPUT_SHAPES, build_model

    hw = HardwareConfig()
    model = build_model(name).eval()
    specs = layer_specs(model, INPUT_SHAPES[name])
    energy = inference_energy(specs, hw)
    grouped = {n: m for n, m in model.named_modules()
               if isinstance(m, nn.Conv2d) and m.groups > 1}
    total = energy.total_pj
    saved = 0.0
    weights = sum(p.numel() for n, p in model.named_parameters()
                  if n.endswith("weight") and p.dim() > 1)
    print(f"{name}: {weights:,} weights (PyTorch), {energy.macs:,} MACs on the arrays per "
          f"inference (zero blocks included), {total / 1e6:.1f} uJ per inference")
    print("| layer | groups | energy | of which ADC | conversions per vector (model) "
          "| weighted columns only | ADC energy then |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals = energy.layer_totals
    for layer_name, parts in energy.per_layer.items():
        conv = grouped.get(layer_name)
        if conv is None:
            continue
        counted, weighted = weighted_columns(conv, hw.xbar.array.rows)
        adc_then = parts["adc"] * weighted / counted
        saved += parts["adc"] - adc_then
        print(f"| {layer_name} | {conv.groups} | {totals[layer_name] / 1e6:.1f} uJ | "
              f"{parts['adc'] / 1e6:.1f} uJ | {counted} | {weighted} | {adc_then / 1e6:.1f} uJ |")
    share = sum(totals[n] for n in grouped if n in totals) / total
    print(f"grouped layers: {100 * share:.1f} % of the energy; converting only weighted "
          f"columns: {(total - saved) / 1e6:.1f} uJ per inference instead of "
          f"{total / 1e6:.1f} uJ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", metavar="NAME", help="a zoo network (xbar.mapping.data"
                        ".zoo.MODELS): its grouped layers' conversions instead of the table")
    args = parser.parse_args()
    if args.network:
        network(args.network)
        return
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
