"""A small LeNet-like MNIST CNN saved as a user's model file (issue 20 item 7's third network).

Works 4 and 5 are re-measured on the zoo ``lenet5`` and ``mlp`` and on a network a user
brings: this one, defined here as a plain ``nn.Sequential`` (so ``torch.load`` restores it in
any process), trained on the 60,000 MNIST training images and saved whole with
``torch.save`` for ``--model FILE --dataset mnist``:

    conv 1->8 3x3, ReLU, max-pool 2; conv 8->16 3x3, ReLU, max-pool 2; 400-64-10
    (27,562 parameters: weights 72 + 1,152 + 25,600 + 640, and 98 biases)

Usage::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/small_cnn.py --out results/small_cnn_mnist.pt

Adam 2e-3, batch 64, 5 epochs, seed 0, one thread (deterministic); prints the test accuracy
(98.71 % on this revision; 114 s on 2 busy cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def small_cnn() -> nn.Sequential:
    """The network (module docstring)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/small_cnn_mnist.pt")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from xbar.mapping.data.train import evaluate
    from xbar.mapping.data.datasets import load_dataset

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    ds = load_dataset("mnist")
    model = small_cnn()
    x = torch.from_numpy(ds.x_train)
    y = torch.from_numpy(ds.y_train).long()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(a.seed + 1)
    start = time.perf_counter()
    for _ in range(a.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for lo in range(0, len(x), 64):
            idx = order[lo:lo + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    acc = evaluate(model, ds.x_test, ds.y_test)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model, a.out)
    print(f"small CNN: {sum(p.numel() for p in model.parameters())} parameters, test accuracy "
          f"{100 * acc:.2f} % ({len(ds.y_test)} images), {time.perf_counter() - start:.0f} s "
          f"training; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
