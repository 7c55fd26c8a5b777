"""Hardware-aware training in your own PyTorch loop, then programming the result onto chips.

What it shows: a small CNN trained as usual on scikit-learn's 8x8 digits (bundled, offline);
a copy fine-tuned through ``xbar.to_analog``, an ``nn.Module`` whose every Conv2d/Linear
returns what a programmed chip computes (DAC, 8-level cells with programming variation and
stuck-at faults, read noise, ADC) while the gradient is the float layer's (straight-through;
the estimator is documented in ``xbar.mapping.trainable``); the same optimiser loop as plain
training; then both networks programmed onto the same unseen chips (seeds the training never
used) and their accuracies side by side, mean and spread over the chips.

Run it (about 20-40 s on one core)::

    python examples/hardware_aware_training.py
    python examples/hardware_aware_training.py --hwa-epochs 4 --chips 10 --sigma 0.8

The printed numbers are what this run measured; on a device whose errors are mostly level
quantisation and variation, hardware-aware fine-tuning typically trades a little FP32 accuracy
for accuracy on chips, and the gain depends on the device and the settings.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import xbar


def small_cnn() -> nn.Module:
    """Conv-BN-ReLU-pool and two Linear layers for 1x8x8 digits (BatchNorm is folded)."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 32), nn.ReLU(),
                         nn.Linear(32, 10))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
          seed: int) -> None:
    """One plain loop for both trainings: Adam, batches of 64, cross-entropy."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def on_chips(model: nn.Module, device: xbar.Device, data, chips: int) -> tuple[float, float]:
    """Mean and std of the test accuracy over ``chips`` chips (seeds 1000, 1001, ...)."""
    accs = []
    for seed in range(1000, 1000 + chips):
        chip = xbar.Chip.program(model, device, xbar.XbarConfig(), seed=seed)
        chip.calibrate(data.x_train[:256])
        accs.append(chip.evaluate(data.x_test, data.y_test))
    return float(np.mean(accs)), float(np.std(accs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="plain training epochs "
                        "(default 15)")
    parser.add_argument("--hwa-epochs", type=int, default=2, help="hardware-aware "
                        "fine-tuning epochs (default 2)")
    parser.add_argument("--chips", type=int, default=5, help="chips to evaluate on "
                        "(default 5)")
    parser.add_argument("--sigma", type=float, default=0.5,
                        help="programming spread in level spacings (default 0.5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = xbar.load_dataset("digits")
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    device = xbar.Device(name="noisy-cell", g_min_us=2.0, g_max_us=60.0, n_levels=8,
                         variation="gaussian", sigma=args.sigma, sigma_reference="spacing",
                         read_noise=0.02, sa0_rate=0.01, sa1_rate=0.002,
                         source="example numbers, not a measured cell")
    print(f"device:   {device.name}: {device.summary()}")

    torch.manual_seed(0)
    plain = small_cnn()
    train(plain, x, y, args.epochs, 3e-3, seed=0)

    # Hardware-aware fine-tuning: the same loop, on the analog model. Each training pass
    # programs a fresh chip (program_every=1) from the current weights, so the network
    # learns to tolerate any chip's errors, not one chip's.
    analog = xbar.to_analog(plain, device, calibration=data.x_train[:256], seed=7,
                               program_every=1, chip_draws="fresh")
    train(analog, x, y, args.hwa_epochs, 3e-4, seed=1)
    tuned = analog.model   # BatchNorm folded, float weights: programs like any network
    print(f"training: {args.epochs} epochs plain, then {args.hwa_epochs} through the chip "
          f"({analog.programmings} chips programmed on the way)")

    for label, model in (("plain", plain), ("hardware-aware", tuned)):
        fp32 = xbar.evaluate(model, data.x_test, data.y_test)
        mean, std = on_chips(model, device, data, args.chips)
        print(f"{label:<15} FP32 {100 * fp32:6.2f} %   on {args.chips} unseen chips "
              f"{100 * mean:6.2f} +- {100 * std:.2f} %")


if __name__ == "__main__":
    main()
