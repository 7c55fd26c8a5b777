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

The recipe (:class:`KDConfig`; every knob is a ``xbar compare`` flag) and why its defaults:
30 epochs of Adam at 5e-3 (cosine-decayed), T = 2 (work 1), alpha = 0.5, the device noise
ramped in over the first 30 % of the steps, and each output column's weights clipped to
1.5 x its RMS weight (the clip ramped in with the noise). On scikit-learn's digits with the
digits CNN (teacher 98.1 %) these defaults put the student's chip accuracy above one-shot
on every device preset and its clean accuracy within 1 point of the teacher's on all of them
but ``charan2020-dac`` mapped one cell per weight, whose weight errors are comparable to the
column's largest weight (there the student gives up about 2 points of clean accuracy for
about 60 points on the chip). The clip is what rescues the very noisy devices: with the
scale set per column by its largest weight, one large weight leaves all the others small
against the programming error of the cells that hold them (and on few levels); clipping makes
the column use the whole range (without it, that device's student reaches about 45 % on the
chip, with it about 80 %).

A held-out slice of the *training* images (never the test set) gives the student's and the
teacher's accuracy through the noise: ``info["learned"]`` and ``info["reason"]`` say whether
the student learned the device (:func:`judge`), so a failed student is not reported as KD.

Left out of the training noise: read noise and converter quantisation (the student meets
them on the chip).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from xbar.devices import Device
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.train import (backend_device, classification_loss, evaluate,
                                     seeded_deterministic)
from xbar.config import ArrayConfig, XbarConfig
from xbar.layout import check_device_mapping, weight_layout
from xbar.errors import DataError
from xbar.params import ParamSpec, param


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

    Attribute ``strength`` (default 1) scales the programming error: the weights returned
    are ``w + strength * (programmed(w) - w)``; at 1 they are the programmed weights, which
    is what the chip holds (``active = False`` returns ``w`` itself).
    """

    def __init__(self, device: Device, array: ArrayConfig | str, generator: torch.Generator,
                 scale: str = "column") -> None:
        super().__init__()
        if isinstance(array, str):
            array = ArrayConfig(weight_mapping=array)
        self.device = device
        self.layout = weight_layout(array)
        # refuse, up front, a device the mapping cannot use or whose source rules it out
        check_device_mapping(device, array, "KD's array configuration")
        self.layout.span_us(device)
        self.generator = generator
        self.scale = scale
        self.active = True
        self.strength = 1.0

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return w
        with torch.no_grad():
            flat = w.detach().reshape(w.shape[0], -1)
            cells = self.layout.program(flat, self.device, self.generator, self.scale)
            noisy = self.layout.effective_weights(cells.g_us, cells.g_scale).to(w.dtype)
            error = noisy.reshape(w.shape) - w
            if self.strength != 1.0:  # the noise ramp; at 1 the chip's weights exactly
                error = error * self.strength
        return w + error.detach()


SELECTIONS = ("last", "best")


@dataclass(frozen=True)
class KDConfig:
    """Distillation settings (the recipe).

    Attributes:
        epochs: Passes over the training images (an integer >= 1).
        batch_size: Images per step (an integer >= 1).
        learning_rate: Adam's initial rate, cosine-decayed to 0 over all steps (> 0). The
            default 5e-3 suits the digits and MNIST networks; it drives a deep BN-folded
            student (``resnet18-narrow`` on CIFAR-10) to chance, where 1e-3 works
            (docs/layers.md, ``benchmarks/kd_recipe.py``).
        temperature: Softening temperature T of the distillation term (> 0; work 1 uses 2).
        alpha: Weight of the distillation term, in [0, 1]; 1 - alpha goes to the labels.
        noise_warmup: Fraction of the training steps, in [0, 1), over which the device noise
            is ramped linearly from 0 to full strength (the programming error
            ``programmed(w) - w`` is scaled by step / warmup steps); afterwards, and always
            when 0, every forward sees the chip's programming exactly.
        draws: Independent programming draws per step, an integer >= 1: the batch's loss is
            the mean over that many noisy forwards (each a fresh chip), which lowers the
            variance of the gradient on noisy devices at ``draws`` times the cost.
        weight_clip: ``None`` (no clipping) or a number > 0: after every step each output
            column's weights are clipped to +-``weight_clip`` x that column's RMS weight (before
            the clip; ramped in with the noise: ``weight_clip`` / noise strength), so
            that no single large weight sets the column's scale (w_max) and pushes the rest
            down to the low levels where the device's error is relatively large.
        selection: Which student to return: ``"last"`` (after the final epoch) or ``"best"``
            (the epoch, among those at full noise strength, with the best noisy accuracy on
            the held-out slice of the training data; the test set is never looked at).
        validation_fraction: Fraction of the training images held out of training, in
            (0, 0.5]: the student's and the teacher's noisy accuracy on them decides
            ``selection = "best"`` and whether the student learned (``info["learned"]``).
        validation_draws: Programming draws the held-out accuracies are averaged over (an
            integer >= 1).
    """

    epochs: int = param(30, unit="epochs", range=(1, 10**6), doc="Passes over the training images.")
    batch_size: int = param(64, unit="images", range=(1, 10**6), doc="Images per step.")
    learning_rate: float = param(5e-3, range=(0, math.inf, True, False),
                                 doc="Adam's initial rate, cosine-decayed to 0.")
    temperature: float = param(2.0, range=(0, math.inf, True, False),
                               doc="Softening temperature T of the distillation term.")
    alpha: float = param(0.5, unit="fraction", range=(0, 1, False, False),
                         doc="Weight of the distillation term; 1 - alpha goes to the labels.")
    noise_warmup: float = param(0.3, unit="fraction", range=(0, 1, False, True),
                                note="a fraction of the training steps",
                                doc="Fraction of the steps over which the device noise ramps in.")
    draws: int = param(1, unit="draws", range=(1, 1000), doc="Programming draws per step.")
    weight_clip: float | None = 1.5
    selection: str = param("last", choices=SELECTIONS, doc="Which student to return.")
    validation_fraction: float = param(0.1, unit="fraction", range=(0, 0.5, True, False),
                                       doc="Fraction of the training images held out.")
    validation_draws: int = param(4, unit="draws", range=(1, 1000),
                                  doc="Programming draws the held-out accuracies average.")

    def __post_init__(self) -> None:
        # One set of validation helpers (xbar.params); errors name the field (KDConfig.alpha),
        # and the command line adds its flag (xbar.mapping.cli.common.with_flags).
        for f in dataclasses.fields(self):
            spec = f.metadata.get("param")
            if spec is not None:
                object.__setattr__(self, f.name, spec.check("KDConfig", f.name,
                                                            getattr(self, f.name)))
        if self.weight_clip is not None:
            clip = ParamSpec(float, range=(0, math.inf, True, False),
                             note="None, or 0 on the command line, turns it off; else x the "
                                  "column's RMS weight")
            object.__setattr__(self, "weight_clip",
                               clip.check("KDConfig", "weight_clip", self.weight_clip))


def kd_config(**options: Any) -> KDConfig:
    """A :class:`KDConfig` from command-line options: ``None`` takes the field's default and
    ``weight_clip = 0`` turns the clip off."""
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("weight_clip") == 0:
        options["weight_clip"] = None
    return KDConfig(**options)


# The student learned when its noisy accuracy on the held-out training images beats the
# teacher's (one-shot) by this much, or when the device leaves nothing to recover (the
# teacher's noisy accuracy within this much of its clean one) ...
LEARN_MARGIN = 0.02
# ... and in either case its noisy accuracy is at least this far from chance towards the
# teacher's clean accuracy (a student that is right on a few more images than chance
# is no working network).
LEARN_FLOOR = 0.5


def _noisy_accuracy(model: nn.Module, noises: list[DeviceNoise], x: torch.Tensor,
                    y: torch.Tensor, draws: int) -> float:
    """Mean accuracy over ``draws`` programming draws (noise at full strength)."""
    for noise in noises:
        noise.strength = 1.0
    with torch.no_grad():
        return float(np.mean([evaluate(model, x, y) for _ in range(draws)]))


def _clip_columns(layers: list[nn.Module], clip: float) -> None:
    """Clip each output column's weights to ``clip`` x its RMS weight; the RMS of a masked
    (block-diagonal, :mod:`xbar.mapping.conv_forms`) layer is over its own block, not the
    zeros around it."""
    with torch.no_grad():
        for layer in layers:
            w = layer.parametrizations.weight.original
            flat = w.reshape(w.shape[0], -1)
            mask = getattr(layer, "mask", None)
            if mask is None:
                ms = flat.pow(2).mean(dim=1, keepdim=True)
            else:
                m = mask.reshape(mask.shape[0], -1)
                ms = (flat.pow(2) * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)
            bound = clip * ms.sqrt()
            flat.copy_(torch.maximum(torch.minimum(flat, bound), -bound))


def distill(teacher: nn.Module, dataset: Dataset, device: Device, config: XbarConfig,
            kd: KDConfig = KDConfig(), seed: int = 0, regularizer: Any = None,
            backend: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Train a device-aware student from ``teacher``; returns it (plain weights) and info.

    ``regularizer``: None (the recipe as it always was), or a callable ``regularizer(student)``
    added to every draw's loss, e.g. a
    :class:`~xbar.mapping.recovery.techniques.lipschitz.LipschitzRegularizer` (it acts on the
    student's own weights, not the noisy ones the forward sees).

    ``backend``: where it trains (:func:`xbar.mapping.data.train.backend_device`: the GPU for
    ``"cuda"``); the programming draws then come from a generator on that device, so a GPU
    student is another draw of the same recipe, not the CPU's student. It is returned on
    the CPU either way.

    ``info`` holds the recipe, the training time, the student's clean and noisy-weight test
    accuracies (reported, never used to choose anything), and from the held-out training
    slice: ``val_student_noisy``, ``val_teacher_noisy`` (the BN-folded teacher through the
    same noise: one-shot), ``val_teacher_clean``, ``selected_epoch``, and ``learned`` with
    its ``reason`` (a sentence with the numbers).
    """
    dev = backend_device(backend)
    student, _ = fold_batchnorm(teacher)
    plain_teacher = copy.deepcopy(student).to(dev)
    student.to(dev)
    teacher = teacher.eval() if dev.type == "cpu" else copy.deepcopy(teacher).eval().to(dev)
    x_all = torch.from_numpy(dataset.x_train).to(dev)
    y_all = torch.from_numpy(dataset.y_train).to(dev)
    split = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(seed + 3)
                           ).to(dev)
    n_val = max(1, int(round(kd.validation_fraction * len(x_all))))
    if len(x_all) - n_val < 1:
        raise DataError(f"knowledge distillation needs at least 2 training images (one held "
                        f"out to judge the student); data set {dataset.name!r} has "
                        f"{len(x_all)}")
    val, train = split[:n_val], split[n_val:]
    x, y = x_all[train], y_all[train]
    x_val, y_val = x_all[val], y_all[val]
    with torch.no_grad():
        soft = torch.cat([teacher(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    start = time.perf_counter()
    with seeded_deterministic(seed, 1, dev):
        gen = torch.Generator(device=dev).manual_seed(seed + 1)
        noises = []
        layers = [layer for _, layer in mapped_layers(student)]
        for layer in layers:
            noise = DeviceNoise(device, config.array, gen)
            parametrize.register_parametrization(layer, "weight", noise)
            noises.append(noise)
        opt = torch.optim.Adam(student.parameters(), lr=kd.learning_rate)
        per_epoch = math.ceil(len(x) / kd.batch_size)
        steps = kd.epochs * per_epoch
        warm = int(round(kd.noise_warmup * steps))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        shuffle = torch.Generator().manual_seed(seed + 2)
        t = kd.temperature
        step = 0
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        history = []
        for epoch in range(kd.epochs):
            student.train()
            order = torch.randperm(len(x), generator=shuffle).to(dev)
            for lo in range(0, len(x), kd.batch_size):
                idx = order[lo:lo + kd.batch_size]
                strength = min(1.0, (step + 1) / warm) if warm else 1.0
                for noise in noises:
                    noise.strength = strength
                target = F.softmax(soft[idx] / t, 1)
                opt.zero_grad(set_to_none=True)
                for _ in range(kd.draws):
                    out = student(x[idx])
                    loss_kd = F.kl_div(F.log_softmax(out / t, 1), target,
                                       reduction="batchmean") * t * t
                    loss = kd.alpha * loss_kd + (1 - kd.alpha) * classification_loss(out, y[idx])
                    if regularizer is not None:
                        loss = loss + regularizer(student)
                    (loss / kd.draws).backward()
                opt.step()
                sched.step()
                if kd.weight_clip is not None:  # ramped with the noise
                    _clip_columns(layers, kd.weight_clip / strength)
                step += 1
            if kd.selection == "best" and step >= warm:
                acc = _noisy_accuracy(student, noises, x_val, y_val, kd.validation_draws)
                history.append(acc)
                if best is None or acc > best[0]:
                    best = (acc, epoch + 1, copy.deepcopy(student.state_dict()))
        student.eval()
        selected = kd.epochs
        if best is not None:
            student.load_state_dict(best[2])
            selected = best[1]
        for noise in noises:
            noise.strength = 1.0
        val_noisy = _noisy_accuracy(student, noises, x_val, y_val, kd.validation_draws)
        for noise in noises:
            noise.active = False
        val_clean = evaluate(student, x_val, y_val)
        clean = evaluate(student, dataset.x_test, dataset.y_test)
        for noise in noises:
            noise.active = True
        with torch.no_grad():
            noisy = evaluate(student, dataset.x_test, dataset.y_test)
        for layer in layers:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        # The teacher through the same noise (its one-shot accuracy), same held-out images.
        t_noises = []
        for layer in [layer for _, layer in mapped_layers(plain_teacher)]:
            noise = DeviceNoise(device, config.array, gen)
            parametrize.register_parametrization(layer, "weight", noise)
            t_noises.append(noise)
        plain_teacher.eval()
        val_teacher_noisy = _noisy_accuracy(plain_teacher, t_noises, x_val, y_val,
                                            kd.validation_draws)
    val_teacher_clean = evaluate(teacher, x_val, y_val)
    teacher_clean = evaluate(teacher, dataset.x_test, dataset.y_test)
    learned, reason = judge(val_noisy, val_teacher_noisy, val_teacher_clean, dataset.n_classes)
    info = {"train_s": time.perf_counter() - start, "student_fp32_accuracy": clean,
            "student_noisy_weight_accuracy": noisy,
            "teacher_fp32_accuracy": teacher_clean,
            "clean_gap": teacher_clean - clean,
            "epochs": kd.epochs, "temperature": kd.temperature, "alpha": kd.alpha,
            "learning_rate": kd.learning_rate, "batch_size": kd.batch_size,
            "noise_warmup": kd.noise_warmup, "draws": kd.draws,
            "weight_clip": kd.weight_clip, "selection": kd.selection,
            "selected_epoch": selected, "validation_images": int(n_val),
            "val_student_noisy": val_noisy, "val_student_clean": val_clean,
            "val_teacher_noisy": val_teacher_noisy, "val_teacher_clean": val_teacher_clean,
            "val_history": history, "learned": learned, "reason": reason}
    return copy.deepcopy(student).cpu().eval(), info


def judge(student_noisy: float, teacher_noisy: float, teacher_clean: float,
          n_classes: int) -> tuple[bool, str]:
    """Did the student learn? From accuracies on held-out training images (fractions):
    the student's and the teacher's through the device noise, and the teacher's clean.
    Returns the verdict and a sentence with the numbers."""
    chance = 1.0 / n_classes
    floor = chance + LEARN_FLOOR * (teacher_clean - chance)
    numbers = (f"noisy accuracy {100 * student_noisy:.1f} % on held-out training data, "
               f"teacher's {100 * teacher_noisy:.1f} %")
    if teacher_noisy >= teacher_clean - LEARN_MARGIN and student_noisy >= teacher_noisy - \
            LEARN_MARGIN:
        return True, f"the device leaves little to recover ({numbers})"
    if student_noisy < teacher_noisy + LEARN_MARGIN:
        return False, (f"the student did not learn on this device ({numbers}): "
                       "no better than the teacher programmed as it is")
    if student_noisy < floor:
        return False, (f"the student did not learn on this device ({numbers}; below "
                       f"{100 * floor:.1f} %, halfway from chance to the teacher's clean "
                       f"{100 * teacher_clean:.1f} %)")
    return True, f"the student learned ({numbers})"
