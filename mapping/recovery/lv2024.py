"""Work 5's fine-tuning strategies as recovery methods (Lv, Zhang, Wang, "Improving DNN
Accuracy on MLC PIM via Non-Ideal PIM Device Fine-Tuning", IEEE TCAD 2024), each with its
chip cost. KD alone is ``compare``'s built-in ``kd`` (the same recipe, reused, not copied).

========= ============================================================================
vat       variation-aware training: the teacher fine-tuned off chip with the device's
          programming noise injected on every forward (the KD recipe's noise model and
          schedule, :func:`xbar.mapping.recovery.techniques.kd.distill` with ``alpha = 0``: labels
          only, no teacher outputs), then programmed one-shot. Chip: one programming.
chip-ft   fine-tuning through the chip: the KD student programmed one-shot; ``steps``
          batches run forward on the programmed chip (its real cells, read noise and
          converters) with the weight change learnt so far added digitally, gradients
          back through the arrays (straight-through: transposed reads of the programmed
          weights) to host-held float weights (KD loss on the logits); then every layer
          re-programmed one-shot to the fine-tuned weights (changed cells only, a fresh
          programming error each). Chip: forward + backward passes, rewrites.
io-kd     the I/O-guided KD fine-tuning, progressive from the first layer
          (:mod:`xbar.mapping.recovery.techniques.iokd`): the chip's measured layer inputs, the
          teacher's logits and clean layer outputs (the start model's own by default)
          guide each layer's fine-tuning; the layer is re-programmed, measured and its
          digital bias corrected before the next. Chip: measurements, rewrites.
========= ============================================================================

Costs (``MethodOutcome.costs``, means over chips in ``compare``): ``chip_inferences``
(images the chip ran, measurements and calibrations included), ``rewrite_pulses``,
``rewrite_s`` and ``rewrite_pj`` (the programming engine's time and energy of the rewrites),
``measure_s`` (the engine's forward time of the measurements and calibrations),
``forward_passes``, ``offline_train_s`` (host wall time of the training, never added to
chip time) and ``read_pulses_max`` (the most read pulses any layer's cells saw: what read
disturb acted on). Programming time and pulses include the rewrites; ``adapt_s`` is the
chip's time between programming and use (measurements, training passes, calibrations).

Its rows in ``xbar reproduce work5``: Lv, Zhang, Wang, IEEE TCAD 2024 (work 5) beside our numbers.

The published figures (its abstract; the full text is closed): the I/O-guided KD fine-tuning
recovers accuracy "nearly completely" and beats variation-aware training by "more than 3
points", on multilevel RRAM mapped one cell per weight with device variation, read disturb
and a limited on/off ratio.

Our setting (the project's choices where the paper is silent, docs/work5.md): the
``lv2024-mlc`` cell (16 levels, on/off 10, lognormal sigma 0.3, read disturb 1e-9 per read,
read noise 1 %) on the hardware its preset implies (``one-cell``: one cell per signed weight
against a reference column); LeNet-5 on MNIST (the digits CNN on digits with ``quick``);
for every chip (seeds ``seed``, ``seed + 1``, ...) the methods of
:mod:`xbar.mapping.recovery.lv2024` beside one-shot and the built-in KD, through
:func:`xbar.mapping.recovery.compare.compare`, with the run's budget: KD and VAT
``kd_epochs`` epochs, ``chip-ft`` ``steps`` x ``batch``, ``io-kd`` ``steps`` x ``batch``
per layer stage on ``images`` measured images (``settings.extra["work5_images"]``,
default 1024).

Rows: ``io-vs-vat`` is io-kd's accuracy minus VAT's (mean over chips of the per-chip
difference, its standard deviation beside it); ``recovery`` is io-kd's accuracy: the paper
prints no number ("nearly complete", against its own FP32), so the row's ``published`` is
None and ``versus_our_fp32`` holds io-kd minus our FP32 teacher (the setting says
"baseline = our FP32").
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from xbar.errors import ConfigError
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.train import seeded_deterministic
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.recovery.compare import layer_conductances
from xbar.mapping.recovery.published import published
from xbar.mapping.recovery.techniques.iokd import progressive
from xbar.mapping.recovery.techniques.kd import distill
from xbar.mapping.recovery.registry import (Method, MethodContext, MethodOutcome, Work, options_of,
                                            register, register_work)
from xbar.mapping.recovery.techniques.chip_loop import (forward_seconds, reprogram_layer,
                                                        rewrite_cost, serve_reads)
from xbar.mapping.recovery.reproduce import ReproduceSettings, row
from xbar.params import Params, param
from xbar.timing.adaptation import adaptation_time
from xbar.timing.energy import adaptation_energy, inference_energy

__all__ = ["CORRECTIONS", "DEVICE", "FEATURE_TARGETS", "ChipFTConfig", "IOKDConfig",
           "QUICK_REPRODUCE_METHODS", "REPRODUCE_METHODS", "STARTS", "VATConfig", "rows", "run"]

STARTS = ("student", "teacher")
CORRECTIONS = ("bias", "affine", "none")
FEATURE_TARGETS = ("teacher", "start")


@dataclass(frozen=True)
class VATConfig(Params):
    """Variation-aware training: the KD recipe (:class:`KDConfig`) without the teacher.

    Attributes:
        epochs: Passes over the training images; 0 takes the KD recipe's (``--kd-epochs``).
    """

    SECTION = "vat"
    epochs: int = param(0, unit="epochs", range=(0, 10**6),
                        doc="Training epochs; 0: the KD recipe's.")


@dataclass(frozen=True)
class ChipFTConfig(Params):
    """Fine-tuning through the chip.

    Attributes:
        steps: Optimiser steps, each one batch forward and backward through the chip.
        batch_size: Training images per step.
        learning_rate: Adam's rate on the float weights (weight units).
        start: ``"student"`` (the KD student) or ``"teacher"``.
    """

    SECTION = "chip-ft"
    steps: int = param(200, unit="steps", range=(1, 10**7), doc="Optimiser steps.")
    batch_size: int = param(32, unit="images", range=(1, 10**6), doc="Images per step.")
    learning_rate: float = param(1e-3, range=(0, 1e3, True, False), doc="Adam's rate.")
    start: str = param("student", choices=STARTS, doc="The network programmed first.")


@dataclass(frozen=True)
class IOKDConfig(Params):
    """The I/O-guided progressive KD fine-tuning (:mod:`xbar.mapping.recovery.techniques.iokd`).

    Attributes:
        images: Training images measured on the chip at each stage (and trained on).
        steps: Optimiser steps per stage (per re-programmed layer).
        batch_size: Images per step.
        learning_rate: Adam's rate on the weights and biases of the layers being tuned.
        feature_weight: Weight of the layer-output term (MSE against the teacher's layer
            output over its variance) beside the KD loss on the logits; 0: logits only.
        feature_target: Whose clean layer outputs that term targets: ``"start"`` (the
            start model's own, before fine-tuning; the default, measured best on MNIST
            LeNet-5, docs/work5.md) or ``"teacher"`` (the FP32 teacher's: it pulls the KD
            student's layers toward a representation the weight clip moved them from).
        correction: After programming each layer, measure its outputs and correct its
            digital output stage (:func:`xbar.mapping.recovery.techniques.iokd.correct_bias`):
            ``"bias"`` (the mean per-channel error), ``"affine"`` (a least-squares gain and
            bias per channel) or ``"none"``.
        start: ``"student"`` (the KD student) or ``"teacher"``.
    """

    SECTION = "io-kd"
    images: int = param(1024, unit="images", range=(1, 10**7),
                        doc="Training images measured on chip per stage.")
    steps: int = param(150, unit="steps", range=(1, 10**7), doc="Optimiser steps per stage.")
    batch_size: int = param(64, unit="images", range=(1, 10**6), doc="Images per step.")
    learning_rate: float = param(1e-3, range=(0, 1e3, True, False), doc="Adam's rate.")
    feature_weight: float = param(1.0, range=(0, 1e6), doc="Weight of the layer-output term.")
    feature_target: str = param("start", choices=FEATURE_TARGETS,
                                doc="Whose layer outputs the layer-output term targets.")
    correction: str = param("bias", choices=CORRECTIONS,
                            doc="Digital correction of each layer from its measured outputs "
                                "after it is programmed.")
    start: str = param("student", choices=STARTS, doc="The network programmed first.")


def _start(ctx: MethodContext, start: str, name: str) -> torch.nn.Module:
    if start == "teacher":
        return ctx.teacher
    if ctx.student is None:
        raise ConfigError(f"method {name!r} starts from the KD student, but none was "
                          "distilled (run it through compare, or pass start='teacher')")
    return ctx.student


# ------------------------------------------------------------------------------ vat
_VAT_CACHE: list[tuple[tuple[Any, ...], Any, dict[str, Any]]] = []


def run_vat(ctx: MethodContext) -> MethodOutcome:
    """Variation-aware training (one student for all chips of a comparison), one-shot."""
    cfg = options_of(ctx, VATConfig, "vat")
    recipe = dataclasses.replace(ctx.settings.kd, alpha=0.0,
                                 epochs=cfg.epochs or ctx.settings.kd.epochs)
    # the same teacher and data objects (by identity), the same device, arrays and recipe
    key = (ctx.teacher, ctx.dataset, ctx.device, ctx.xbar, recipe, ctx.settings.seed)
    hit = [entry for entry in _VAT_CACHE if entry[0][0] is key[0] and entry[0][1] is key[1]
           and entry[0][2:] == key[2:]]
    if hit:
        model, info = hit[0][1], hit[0][2]
    else:
        model, info = distill(ctx.teacher, ctx.dataset, ctx.device, ctx.xbar, recipe,
                              ctx.settings.seed)
        _VAT_CACHE[:] = [(key, model, info)]
    chip = ctx.program(model)
    return MethodOutcome(chip, costs={"offline_train_s": info["train_s"],
                                      "chip_inferences": 0.0, "rewrite_pulses": 0.0})


# ------------------------------------------------------------------------------ chip-ft
def _add_delta(layer: Any, delta_w: torch.Tensor, delta_b: torch.Tensor) -> Any:
    """A forward hook adding ``inputs @ delta_w.T + delta_b`` (digital) to the layer's
    output: the chip's output as if its weights had moved by ``delta_w``."""
    def hook(mod: Any, args: tuple, out: torch.Tensor) -> torch.Tensor:
        cols = mod.input_columns(args[0])
        corr = cols @ delta_w.T + delta_b
        if out.dim() == 4:   # conv: (N*L, out) -> (N, out, H, W), as AnalogConv2d does
            n = out.shape[0]
            corr = corr.reshape(n, -1, out.shape[1]).transpose(1, 2).reshape(out.shape)
        return out + corr.reshape(out.shape)
    return layer.register_forward_hook(hook)


def run_chip_ft(ctx: MethodContext) -> MethodOutcome:
    """Fine-tuning through the programmed chip, then every layer re-programmed one-shot."""
    cfg = options_of(ctx, ChipFTConfig, "chip-ft")
    model, _ = fold_batchnorm(_start(ctx, cfg.start, "chip-ft"))
    teacher, _ = fold_batchnorm(ctx.teacher)
    chip = ctx.program(model)
    w0 = [layer.weight.detach().reshape(layer.weight.shape[0], -1).clone()
          for _, layer in mapped_layers(model)]
    b0 = [layer.bias.detach().clone() if layer.bias is not None else None
          for layer in chip.layers]
    dw = [torch.zeros_like(w, requires_grad=True) for w in w0]
    db = [torch.zeros(layer.matrix.n_out, requires_grad=True) for layer in chip.layers]
    hooks = [_add_delta(layer, w, b) for layer, w, b in zip(chip.layers, dw, db)]
    x_all = torch.from_numpy(ctx.dataset.x_train)
    y_all = torch.from_numpy(ctx.dataset.y_train).long()
    kd, temp = ctx.settings.kd, ctx.settings.kd.temperature
    chip.reset_reads(stream=30)
    start = time.perf_counter()
    try:
        with seeded_deterministic(ctx.seed, 1):
            opt = torch.optim.Adam(dw + db, lr=cfg.learning_rate)
            gen = torch.Generator().manual_seed(ctx.seed + 31)
            for _ in range(cfg.steps):
                idx = torch.randint(len(x_all), (cfg.batch_size,), generator=gen)
                with torch.no_grad():
                    target = F.softmax(teacher(x_all[idx]) / temp, 1)
                out = chip.module(x_all[idx])
                loss = kd.alpha * temp * temp * F.kl_div(
                    F.log_softmax(out / temp, 1), target, reduction="batchmean") + \
                    (1 - kd.alpha) * F.cross_entropy(out, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        for h in hooks:
            h.remove()
    train_s = time.perf_counter() - start
    reads = serve_reads(chip, ctx.specs, cfg.steps * cfg.batch_size)
    rewrites = []
    for i, layer in enumerate(chip.layers):
        rewrites.append(reprogram_layer(chip, i, (w0[i] + dw[i].detach()).numpy(), round_=0))
        if b0[i] is not None:
            layer.bias = b0[i] + db[i].detach()
    calib = calibration_inputs(ctx.dataset, seed=ctx.seed)
    chip.calibrate(calib)
    serve_reads(chip, ctx.specs, len(calib), reads)
    hw, specs = ctx.hardware, ctx.specs
    zero = [0] * len(specs)
    passes_s = adaptation_time(specs, hw, cfg.steps, cfg.batch_size, zero).total_s
    passes_pj = adaptation_energy(specs, hw, cfg.steps, cfg.batch_size, zero,
                                  layer_conductances(chip, specs), write=False).total_pj
    calib_s = forward_seconds(specs, hw, len(calib), cfg.batch_size)
    calib_pj = len(calib) * inference_energy(specs, hw, layer_conductances(chip, specs)).total_pj
    return _outcome(ctx, chip, rewrites, passes_s + calib_s, passes_pj + calib_pj,
                    cfg.steps * cfg.batch_size + len(calib), calib_s, train_s, reads,
                    forward_passes=cfg.steps)


def _outcome(ctx: MethodContext, chip: Any, rewrites: list[Any], adapt_s: float,
             adapt_pj: float, inferences: int, measure_s: float, train_s: float,
             reads: dict[str, float], **extra: float) -> MethodOutcome:
    rw_s, rw_pj, rw_pulses = rewrite_cost(rewrites, ctx.hardware)
    n_cells = int(sum(layer.matrix.n_cells for layer in chip.layers))
    costs = {"chip_inferences": float(inferences), "rewrite_pulses": float(rw_pulses),
             "rewrite_s": rw_s, "rewrite_pj": rw_pj, "measure_s": measure_s,
             "offline_train_s": train_s,
             "read_pulses_max": float(max(reads.values())) if reads else 0.0,
             **{k: float(v) for k, v in extra.items()}}
    return MethodOutcome(chip, program_s=ctx.one_shot_s + rw_s,
                         program_pj=ctx.one_shot_pj + rw_pj, pulses=n_cells + rw_pulses,
                         adapt_s=adapt_s, adapt_pj=adapt_pj, costs=costs)


# ------------------------------------------------------------------------------ io-kd
def run_io_kd(ctx: MethodContext) -> MethodOutcome:
    """The I/O-guided progressive KD fine-tuning (:mod:`xbar.mapping.recovery.techniques.iokd`)."""
    cfg = options_of(ctx, IOKDConfig, "io-kd")
    res = progressive(ctx, cfg, _start(ctx, cfg.start, "io-kd"))
    chip, hw, specs = res["chip"], ctx.hardware, ctx.specs
    g = layer_conductances(chip, specs)
    measure_s = measure_pj = 0.0
    for images, upto in res["measured"]:
        measure_s += forward_seconds(specs, hw, images, cfg.batch_size, layers=upto)
        measure_pj += images * inference_energy(specs[:upto], hw, g[:upto]).total_pj
    n_cal = res["calibrations"] * res["calibration_images"]
    measure_s += res["calibrations"] * forward_seconds(specs, hw, res["calibration_images"],
                                                       cfg.batch_size)
    measure_pj += n_cal * inference_energy(specs, hw, g).total_pj
    inferences = sum(images for images, _ in res["measured"]) + n_cal
    return _outcome(ctx, chip, res["rewrites"], measure_s, measure_pj, inferences,
                    measure_s, res["train_s"], res["read_pulses"],
                    stages=float(len(res["rewrites"])))


register(Method("vat", "work5", "variation-aware training: the device's programming noise "
                "injected in training, labels only (no teacher), programmed one-shot", run_vat,
                options_type=VATConfig))
register(Method("chip-ft", "work5", "fine-tuning through the programmed chip (forward on "
                "chip, straight-through gradients), then re-programmed one-shot",
                run_chip_ft, needs_student=True, options_type=ChipFTConfig))
register(Method("io-kd", "work5", "I/O-guided KD fine-tuning: layer by layer from the "
                "first, the chip's measured layer inputs (and outputs), the teacher's logits "
                "and clean layer outputs guide each layer, re-programmed one-shot and "
                "measured before the next",
                run_io_kd, needs_student=True, options_type=IOKDConfig))


DEVICE = "lv2024-mlc"
REPRODUCE_METHODS = ("software", "one-shot", "kd", "vat", "chip-ft", "io-kd")
"""What ``xbar reproduce work5`` runs."""
QUICK_REPRODUCE_METHODS = ("software", "one-shot", "kd", "vat", "io-kd")
"""``quick`` leaves chip-ft out: it is the slowest on a CPU and no published figure needs it."""


def run(settings: ReproduceSettings, teacher: Any, say: Callable[[str], None],
        methods: tuple[str, ...] | None = None, images: int | None = None,
        device: Any = None, io_start: str = "student") -> dict[str, Any]:
    """The comparison on ``teacher`` (a :class:`xbar.mapping.data.workflow.Teacher`): the
    :func:`compare` result for work 5's device (or ``device``, a
    :class:`~xbar.devices.Device` on the same hardware), hardware, methods and budget;
    ``io_start``: what io-kd programs first (``"student"`` or ``"teacher"``)."""
    from xbar.config import load_hardware
    from xbar.devices.presets import preset, preset_hardware
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.kd import KDConfig
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    s = settings
    methods = methods or (QUICK_REPRODUCE_METHODS if s.quick else REPRODUCE_METHODS)
    images = images or int(s.extra.get("work5_images", 1024))
    device = device or preset(DEVICE)
    hw = load_hardware(preset_hardware(DEVICE))
    options: dict[str, Any] = {
        "io-kd": IOKDConfig(images=images, steps=s.steps, batch_size=s.batch, start=io_start),
        "chip-ft": ChipFTConfig(steps=s.steps, batch_size=s.batch)}
    cs = CompareSettings(chips=s.chips, seed=s.seed, methods=methods,
                         adapt=AdaptConfig(steps=s.steps, batch_size=s.batch),
                         kd=KDConfig(epochs=s.kd_epochs),
                         options={k: v for k, v in options.items() if k in methods},
                         backend=s.backend)
    say(f"work5: {device.name} on hardware {preset_hardware(DEVICE)!r}: {', '.join(methods)}")
    result = compare(teacher.model, teacher.dataset, device, hw, cs, progress=say)
    result["work5"] = {"device": device.to_dict(), "hardware": preset_hardware(DEVICE),
                       "images": images, "steps": s.steps, "batch": s.batch,
                       "kd_epochs": s.kd_epochs}
    return result


def rows(settings: ReproduceSettings, teacher: Any, say: Callable[[str], None],
         out: dict[str, Any]) -> list[dict[str, Any]]:
    """Work 5's rows (module docstring); the comparison goes to ``out["works"]["work5"]``."""
    s = settings
    result = run(s, teacher, say)
    out.setdefault("works", {})["work5"] = result
    m = result["methods"]
    fp32 = m["software"]["accuracy"]
    where = (f"{s.model} on {s.dataset}, {DEVICE} (16 levels, on/off 10, lognormal 0.3, "
             f"read disturb 1e-9/read), hardware 'one-cell', {s.chips} chips")
    budget = (f"KD/VAT {s.kd_epochs} epochs; io-kd {s.steps} x {s.batch} per layer on "
              f"{result['work5']['images']} measured images")
    others = ", ".join(f"{name} {100 * m[name]['accuracy']:.2f} %" for name in m
                       if name not in ("software", "io-kd"))
    io, vat = np.asarray(m["io-kd"]["accuracies"]), np.asarray(m["vat"]["accuracies"])
    gain = io - vat
    out_rows = [
        row(published("work5", "io-vs-vat"), float(gain.mean()), float(gain.std()),
            f"{where}; {budget}",
            f"io-kd {100 * io.mean():.2f} % - VAT {100 * vat.mean():.2f} % (per-chip "
            f"differences: {', '.join(f'{100 * g:+.2f}' for g in gain)} points). VAT here "
            "injects the chip's exact programming model; against generic VATs (Gaussian "
            "noise matched to the chip's weight error, with a clip: +16.7; lognormal: "
            "+77.7) io-kd leads far more, and against this VAT on other networks less (MLP "
            "+0.5; a small CNN -1.6, +0.2 with 4x images and steps): docs/work5.md"),
        row(published("work5", "recovery"), m["io-kd"]["accuracy"],
            m["io-kd"]["accuracy_std"],
            f"{where}; {budget}; baseline = our FP32 ({100 * fp32:.2f} %)",
            "the paper gives no number ('nearly complete'): io-kd is "
            f"{100 * (m['io-kd']['accuracy'] - fp32):+.2f} points against our FP32 teacher "
            f"({100 * fp32:.2f} %), {100 * m['io-kd']['accuracy'] / fp32:.1f} % of it; {others}",
            our_fp32=fp32),
    ]
    return out_rows


register_work(Work("work5", "Lv, Zhang, Wang, IEEE TCAD 2024", rows))
