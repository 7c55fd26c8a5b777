"""Knowledge distillation with the device in the loop (Charan et al., JxCDC 2020, work 1).

The student starts as the teacher with BatchNorm folded away and is trained with every
mapped layer's weight passed, on every forward, through the chip's one-shot programming:
the weight layout's quantisation to the device's levels (per-output-column scale) and cell
placement (:mod:`xbar.layout`: differential pairs, or one cell per weight against the
reference column its array shares), then the device's own programming of every cell
(:meth:`xbar.devices.Device.program_cells`: variation with the device's model, measured
table means included, clipping, stuck-at faults), drawn afresh with a torch generator, and
read back as effective weights by the layout. It is the code ``Chip.program`` runs, on
tensors, so the student trains on the chip's weights in distribution. Gradients pass
straight through (w_noisy = w + (noisy(w) - w).detach()). The loss mixes the softened
teacher outputs with the labels:

    L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)

with temperature T = 2 (work 1) and alpha = 0.5 by default.

Left out of the training noise: read noise and converter quantisation (the student meets
them on the chip).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from xbar.devices import Device
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.datasets import Dataset
from xbar.mapping.data.train import seeded_deterministic, evaluate
from xbar.config import ArrayConfig, XbarConfig
from xbar.layout import weight_layout
from xbar.errors import ConfigError


class DeviceNoise(nn.Module):
    """Weight parametrization: the weights a one-shot programmed array would hold.

    Args:
        device: The cell technology.
        array: The arrays' configuration (its weight mapping and columns place the cells);
            a mapping name alone (``"differential"``, ``"offset"``) means default-sized
            arrays of that mapping.
        generator: The torch generator of the programming draws (on the weights' device or
            the CPU).
        scale: The scale policy, as :meth:`xbar.analog.AnalogMatrix.program`'s.
    """

    def __init__(self, device: Device, array: ArrayConfig | str, generator: torch.Generator,
                 scale: str = "column") -> None:
        super().__init__()
        if isinstance(array, str):
            array = ArrayConfig(weight_mapping=array)
        self.device = device
        self.layout = weight_layout(array)
        self.layout.span_us(device)  # refuse a device the mapping cannot use, up front
        self.generator = generator
        self.scale = scale
        self.active = True

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return w
        with torch.no_grad():
            flat = w.detach().reshape(w.shape[0], -1)
            cells = self.layout.program(flat, self.device, self.generator, self.scale)
            noisy = self.layout.effective_weights(cells.g_us, cells.g_scale).to(w.dtype)
        return w + (noisy.reshape(w.shape) - w).detach()


@dataclass(frozen=True)
class KDConfig:
    """Distillation settings.

    Attributes:
        epochs: Passes over the training set (>= 1).
        batch_size: Images per step (>= 1).
        learning_rate: Adam's rate, cosine-decayed to 0 (> 0).
        temperature: Softening temperature T (> 0; work 1 uses 2).
        alpha: Weight of the distillation term, in [0, 1]; 1 - alpha goes to the labels.
    """

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        for name, lo in (("epochs", 1), ("batch_size", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"KDConfig.{name} = {v!r} is invalid; allowed: an integer "
                                 f">= {lo}")
        if not self.learning_rate > 0:
            raise ConfigError(f"KDConfig.learning_rate = {self.learning_rate!r} is invalid; "
                             "allowed: > 0")
        if not self.temperature > 0:
            raise ConfigError(f"KDConfig.temperature = {self.temperature!r} is invalid; "
                             "allowed: > 0")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"KDConfig.alpha = {self.alpha!r} is invalid; allowed: [0, 1]")


def distill(teacher: nn.Module, dataset: Dataset, device: Device, config: XbarConfig,
            kd: KDConfig = KDConfig(), seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """Train a device-aware student from ``teacher``; returns it (plain weights) and info."""
    student, _ = fold_batchnorm(teacher)
    teacher = teacher.eval()
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    with torch.no_grad():
        soft = torch.cat([teacher(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    start = time.perf_counter()
    with seeded_deterministic(seed, 1):
        gen = torch.Generator().manual_seed(seed + 1)
        noises = []
        for _, layer in mapped_layers(student):
            noise = DeviceNoise(device, config.array, gen)
            parametrize.register_parametrization(layer, "weight", noise)
            noises.append(noise)
        opt = torch.optim.Adam(student.parameters(), lr=kd.learning_rate)
        steps = kd.epochs * math.ceil(len(x) / kd.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        shuffle = torch.Generator().manual_seed(seed + 2)
        t = kd.temperature
        student.train()
        for _ in range(kd.epochs):
            order = torch.randperm(len(x), generator=shuffle)
            for lo in range(0, len(x), kd.batch_size):
                idx = order[lo:lo + kd.batch_size]
                out = student(x[idx])
                loss_kd = F.kl_div(F.log_softmax(out / t, 1), F.softmax(soft[idx] / t, 1),
                                   reduction="batchmean") * t * t
                loss = kd.alpha * loss_kd + (1 - kd.alpha) * F.cross_entropy(out, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        student.eval()
        for noise in noises:
            noise.active = False
        clean = evaluate(student, dataset.x_test, dataset.y_test)
        for noise in noises:
            noise.active = True
        with torch.no_grad():
            noisy = evaluate(student, dataset.x_test, dataset.y_test)
        for _, layer in mapped_layers(student):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    info = {"train_s": time.perf_counter() - start, "student_fp32_accuracy": clean,
            "student_noisy_weight_accuracy": noisy, "epochs": kd.epochs,
            "temperature": kd.temperature, "alpha": kd.alpha}
    return copy.deepcopy(student).eval(), info

