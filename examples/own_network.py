"""Your own network on your own RRAM cell, through the Python API.

What it shows: a small PyTorch CNN of your own, trained briefly on scikit-learn's 8x8 digits
(bundled, offline); a cell described by its numbers (conductance range, levels, programming
variation, read noise, stuck-at faults); the network programmed onto crossbars
(``xbar.Chip.program``), its converters calibrated on training images and its accuracy
measured on the test images; then the same network's latency, throughput, energy, area and
one-shot programming time from the timing model.

Run it (about 10-30 s on one core)::

    python examples/own_network.py
    python examples/own_network.py --epochs 3 --sigma 0.2 --seed 1

Replace ``SmallCNN`` with your network (any Linear/Conv2d/pooling/BatchNorm stack) and
``my_device`` with your cell's figures; ``xbar device list`` lists the presets for comparison.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import xbar


class SmallCNN(nn.Module):
    """A small CNN for 1x8x8 images and 10 classes: put your own network here."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)  # folded into conv1 when the chip is programmed
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)  # 8 x 4 x 4
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: int,
          seed: int) -> None:
    """Plain Adam on the training images (a few seconds on one core)."""
    torch.manual_seed(seed)
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def my_device(sigma: float) -> xbar.Device:
    """A cell described by numbers (every field, its unit and range: docs/parameters.md)."""
    return xbar.Device(
        name="my-cell",
        g_min_us=2.0, g_max_us=60.0,        # HRS and LRS conductance, uS
        n_levels=8,                         # programmable levels, uniform in conductance
        variation="gaussian", sigma=sigma,  # programming spread, a fraction ...
        sigma_reference="spacing",          # ... of the spacing between adjacent levels
        read_noise=0.01,                    # 1 % relative noise on every read
        sa0_rate=0.005, sa1_rate=0.001,     # cells stuck at g_min / g_max
        source="example numbers, not a measured cell")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--sigma", type=float, default=0.3,
                        help="programming spread in level spacings (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="the chip's seed (default 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = xbar.load_dataset("digits")
    model = SmallCNN()
    train(model, data.x_train, data.y_train, args.epochs, seed=0)
    fp32 = xbar.evaluate(model, data.x_test, data.y_test)

    device = my_device(args.sigma)
    hw = xbar.load_hardware("default")  # or a TOML file with [array], [adc], [timing], ...
    chip = xbar.Chip.program(model, device, hw.xbar, seed=args.seed,
                             input_shape=data.input_shape)
    chip.calibrate(data.x_train[:256])  # DAC input ranges and ADC ranges
    analog = chip.evaluate(data.x_test, data.y_test)

    print(f"data:     {data.name}, {len(data.x_train)} train / {len(data.x_test)} test images")
    print(f"device:   {device.name}: {device.n_levels} levels in {device.g_min_us:g}-"
          f"{device.g_max_us:g} uS, {device.variation} sigma {device.sigma:g} "
          f"({device.sigma_reference}), read noise {device.read_noise:g}")
    print(f"mapped:   {chip.n_tiles} tiles, {chip.n_cells} cells "
          f"({hw.xbar.array.rows}x{hw.xbar.array.cols} arrays, seed {chip.seed})")
    print(f"accuracy: FP32 {100 * fp32:.2f} %, on the chip {100 * analog:.2f} %")

    # Timing, energy and area come from the layer shapes (cycles), not from the cells' values.
    specs = xbar.layer_specs(model, data.input_shape)
    latency = xbar.simulate_latency(specs, hw, batch=8)
    energy = xbar.inference_energy(specs, hw, g_sum_us=xbar.conductance_sums(chip))
    area = xbar.chip_area(specs, hw)
    program = xbar.one_shot_time(specs, hw)
    print(f"latency:  {latency.total_cycles} cycles = {latency.latency_ns:.0f} ns per image; "
          f"{latency.throughput_inferences_per_s:,.0f} images/s at batch {latency.batch}")
    for layer in latency.layers:
        print(f"          {layer.name:>5}: {layer.cycles:>6} cycles on {layer.tiles} tile(s)")
    print(f"energy:   {energy.total_pj:,.0f} pJ per image ({energy.tops_per_w:.1f} TOPS/W); "
          f"ADC {energy.by_component['adc']:,.0f} pJ")
    print(f"area:     {area.total_mm2:.4f} mm2; "
          f"one-shot programming {program.total_s * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
