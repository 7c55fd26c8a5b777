"""I/O-guided KD fine-tuning, progressively from the first layer (work 5; Lv, Zhang, Wang,
IEEE TCAD 2024, after NeuRRAM's chip-in-the-loop progressive fine-tuning, Wan et al.,
Nature 2022).

The network (the KD student by default, or the teacher) is programmed one-shot. Then, for
each mapped layer n = 1, ..., L-1 in turn:

1. **Measured on chip**: ``images`` training images run through the chip up to layer n; what
   arrives at layer n (the outputs of the programmed layers 0..n-1, their programming
   errors, read noise and converters included, after the digital activations and pooling)
   is recorded (:func:`xbar.mapping.recovery.techniques.chip_loop.measure_layer`). The chip's
   cells are never read out one by one: only layer inputs and outputs are seen.
2. **Trained off chip (host)**: a copy of layers n..L-1 (weights and digital biases) is
   fine-tuned on those measured inputs, with every not-yet-reprogrammed layer's weights
   passed through the device's programming model
   (:class:`xbar.mapping.recovery.techniques.kd.DeviceNoise`, fresh draws each step:
   variation-aware for the cells still to be written), and each
   layer's weights kept inside the column range it was programmed with. The loss is the
   KD loss on the logits against the FP32 teacher's (``alpha * T^2 * KL + (1 - alpha) *
   CE``, ``alpha`` and ``T`` from the KD recipe) plus ``feature_weight`` times the mean
   squared error of layer n's output against a guide's layer-n output for the same (clean)
   image, over the variance of the guide's (``feature_target``: by default the start
   model's own, as it was before any fine-tuning, or the FP32 teacher's): the guide's
   layer outputs steer the layer that has to undo the errors upstream, the teacher's
   logits the network's output.
3. **Re-programmed**: layer n's new weights are written one-shot in its programmed column
   scale; only cells whose target level changed are pulsed, each with a fresh programming
   error (:func:`xbar.mapping.recovery.techniques.chip_loop.reprogram_layer`); its digital bias is
   written; the chip's converter ranges are recalibrated on the calibration images.
4. **Measured again, corrected digitally** (``correction``: ``"bias"`` by default, also for
   layer 0 before the first stage): the same images run through layer n, and its measured
   outputs (inputs and outputs in one pass) are compared with what the fine-tuned layer
   computes from those inputs with its intended weights; the mean difference per output
   channel is added to its digital bias (``"affine"``: a least-squares digital gain and
   bias per channel). This undoes the layer's own new programming error as far as an
   offset (and gain) per channel can; no cell is touched.

Layer 0 keeps its first programming (nothing upstream to undo). Read disturb
(:mod:`xbar.devices.read_disturb`) acts on every read the method makes: after each
measurement and calibration the layers read move
(:func:`xbar.mapping.recovery.techniques.chip_loop.serve_reads`).

Chip cost: the measurements and calibrations (inferences through the layers they read, the
engine's forward time), the rewrites (pulses, time and energy of the engine's programming
model); host cost: the training wall time, reported as ``offline_train_s``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from xbar.mapping.chip import Chip
from xbar.mapping.convert import fold_batchnorm, mapped_layers
from xbar.mapping.data.train import seeded_deterministic, step_batches
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.recovery.techniques.kd import DeviceNoise
from xbar.mapping.recovery.techniques.chip_loop import measure_layer, reprogram_layer, serve_reads
from xbar.errors import ModelError

__all__ = ["correct_bias", "layer_outputs", "progressive"]


def layer_outputs(model: nn.Module, index: int, x: torch.Tensor,
                  batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(output of mapped layer ``index``, logits) of ``model`` on ``x``, without gradients."""
    layer = mapped_layers(model)[index][1]
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _a, out: seen.append(out.detach()))
    logits = []
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                logits.append(model(x[lo:lo + batch_size]).detach())
    finally:
        handle.remove()
    return torch.cat(seen), torch.cat(logits)


def correct_bias(chip: Chip, layer: nn.Module, n: int, images: torch.Tensor,
                 reads: dict[str, float], specs: Any, affine: bool = False) -> torch.Tensor:
    """Measure chip layer ``n``'s inputs and outputs on ``images``; correct its digital
    output stage towards what ``layer`` (the intended weights and bias) computes from those
    inputs: the bias moves by the mean difference per output channel or, with ``affine``,
    each channel's digital gain and bias are the least-squares fit of the intended output
    on the chip's MVM result. Returns the bias change."""
    x_in, y_chip = measure_layer(chip, n, images.numpy(), outputs=True, stream=80 + n)
    serve_reads(chip, specs, len(images), reads, layers=n + 1)
    analog = chip.layers[n]
    with torch.no_grad():
        want = layer(x_in)
        old = analog.bias if analog.bias is not None else torch.zeros(want.shape[1])
        if not affine:
            dims = [d for d in range(want.dim()) if d != 1]
            delta = (want - y_chip).mean(dim=dims)
            analog.bias = old + delta
            return delta
        gain = analog.col_gain.detach() if analog.col_gain is not None else \
            torch.ones(want.shape[1])
        shape = [1, -1] + [1] * (want.dim() - 2)
        mvm = (y_chip - old.view(shape)) / gain.view(shape)   # the arrays' own result
        m = mvm.transpose(0, 1).reshape(want.shape[1], -1).double()
        t = want.transpose(0, 1).reshape(want.shape[1], -1).double()
        m_c, t_c = m - m.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
        var = (m_c * m_c).mean(1)
        a = torch.where(var > 0, (m_c * t_c).mean(1) / var.clamp_min(1e-30), 1.0)
        bias = t.mean(1) - a * m.mean(1)
        analog.col_gain = a.float()
        analog.bias = bias.float()
        return analog.bias - old


def _clamp_to_columns(layers: list[nn.Module], w_max: list[torch.Tensor]) -> None:
    """Keep each output column's weights inside the range it was programmed for."""
    with torch.no_grad():
        for layer, bound in zip(layers, w_max):
            w = layer.parametrizations.weight.original
            flat = w.reshape(w.shape[0], -1)
            flat.copy_(torch.maximum(torch.minimum(flat, bound[:, None]), -bound[:, None]))


def _train_stage(model: nn.Module, n: int, x_in: torch.Tensor, images: torch.Tensor,
                 labels: torch.Tensor, t_out: torch.Tensor, t_logits: torch.Tensor,
                 chip: Chip, config: Any, kd: Any, seed: int) -> list[float]:
    """Fine-tune layers n.. of ``model`` on measured layer-n inputs ``x_in``; returns the
    losses. Layers before n are frozen and their output is replaced by ``x_in``."""
    layers = [layer for _, layer in mapped_layers(model)]
    tail = layers[n:]
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    noises = []
    for layer in tail:
        noises.append(DeviceNoise(chip.device, chip.config.array, gen))
        parametrize.register_parametrization(layer, "weight", noises[-1])
    params = [p for layer in tail for p in (layer.parametrizations.weight.original,
                                            layer.bias) if p is not None]
    for p in params:
        p.requires_grad_(True)
    w_max = [torch.as_tensor(c.matrix.w_max, dtype=torch.float32) for c in chip.layers[n:]]
    feed: dict[str, torch.Tensor] = {}
    got: dict[str, torch.Tensor] = {}
    h_in = layers[n].register_forward_pre_hook(lambda _m, _a: (feed["x"],))
    h_out = layers[n].register_forward_hook(lambda _m, _a, out: got.__setitem__("y", out))
    t_var = t_out.var().clamp_min(1e-12)
    temp = kd.temperature
    losses = []
    try:
        opt = torch.optim.Adam(params, lr=config.learning_rate)
        order_gen = torch.Generator().manual_seed(seed + 1)
        model.train()
        for idx in step_batches(len(x_in), config.batch_size, config.steps, order_gen):
            feed["x"] = x_in[idx]
            out = model(images[idx])
            loss_kd = F.kl_div(F.log_softmax(out / temp, 1), F.softmax(t_logits[idx] / temp, 1),
                               reduction="batchmean") * temp * temp
            loss = kd.alpha * loss_kd + (1 - kd.alpha) * F.cross_entropy(out, labels[idx])
            if config.feature_weight:
                loss = loss + config.feature_weight * F.mse_loss(got["y"], t_out[idx]) / t_var
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _clamp_to_columns(tail, w_max)
            losses.append(float(loss.detach()))
    finally:
        h_in.remove()
        h_out.remove()
        model.eval()
        for layer in tail:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        for p in model.parameters():
            p.requires_grad_(False)
    return losses


def _check_chain(model: nn.Module) -> None:
    """Refuse a mapped model whose weight layers are not a chain of one call each.

    io-kd trains layer n on the measured outputs of layer n - 1 and corrects each output
    channel of an (N, C) or (N, C, H, W) result. A recurrent matrix is called once per time
    step on its own previous output, attention's q/k/v projections read one input side by
    side and produce (N, T, C) token outputs, and a transposed convolution's columns are
    summed into overlapping patches: none of them is such a chain.

    Raises:
        ModelError: The model has a recurrent, attention or transposed-convolution layer.
    """
    from xbar.mapping.attention import MappedMultiheadAttention
    from xbar.mapping.conv_forms import TransposedConv2d
    from xbar.mapping.recurrent import MappedRNN

    kinds = {MappedRNN: "a recurrent layer (RNN/GRU/LSTM)",
             MappedMultiheadAttention: "multi-head attention",
             TransposedConv2d: "a transposed convolution"}
    for name, module in model.named_modules():
        for klass, what in kinds.items():
            if isinstance(module, klass):
                raise ModelError(
                    f"io-kd cannot run on this network: layer {name!r} is {what}, and io-kd "
                    "fine-tunes a chain of layers, each called once on the measured output of "
                    "the one before (a recurrent matrix runs once per time step on its own "
                    "output; attention's projections read one input side by side; a "
                    "transposed convolution's outputs overlap); the other methods run on it")


def progressive(ctx: Any, config: Any, start: nn.Module) -> dict[str, Any]:
    """Run the progressive I/O-guided fine-tuning on one chip (the module docstring).

    Returns a dict: ``chip`` (the fine-tuned chip), ``rewrites`` (one
    :class:`~xbar.mapping.recovery.techniques.chip_loop.Rewrite` per re-programmed layer),
    ``measured`` (images run per stage, with the number of layers each ran through),
    ``calibrations``
    (calibration passes over the whole chip), ``train_s`` (host wall time), ``losses``
    (first and last loss of each stage) and ``read_pulses`` (by layer).
    """
    model, _ = fold_batchnorm(start)
    _check_chain(model)
    model = copy.deepcopy(model).eval()
    teacher, _ = fold_batchnorm(ctx.teacher)
    teacher = teacher.eval()
    # whose layer outputs guide each layer: the teacher's, or the start model's own (clean)
    guide = teacher if config.feature_target == "teacher" else copy.deepcopy(model).eval()
    chip = ctx.program(model)
    calib = calibration_inputs(ctx.dataset, seed=ctx.seed)
    n_layers = len(chip.layers)
    rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, 51]))
    n_train = len(ctx.dataset.x_train)
    idx = np.sort(rng.choice(n_train, min(config.images, n_train), replace=False))
    images = torch.from_numpy(ctx.dataset.x_train[idx])
    labels = torch.from_numpy(ctx.dataset.y_train[idx]).long()
    reads: dict[str, float] = {}
    rewrites, measured, stage_losses = [], [], []
    calibrations = 0
    train_s = 0.0
    if config.correction != "none":
        correct_bias(chip, mapped_layers(model)[0][1], 0, images, reads, ctx.specs,
                     config.correction == "affine")
        measured.append((len(images), 1))
    for n in range(1, n_layers):
        x_in, _ = measure_layer(chip, n, images.numpy(), stream=40 + n)
        serve_reads(chip, ctx.specs, len(images), reads, layers=n)
        measured.append((len(images), n))
        _, t_logits = layer_outputs(teacher, n, images)
        t_out = layer_outputs(guide, n, images)[0]
        start_t = time.perf_counter()
        with seeded_deterministic(ctx.seed + 100 * n, 1):
            losses = _train_stage(model, n, x_in, images, labels, t_out, t_logits, chip,
                                  config, ctx.settings.kd, ctx.seed * 1000 + 7 * n)
        train_s += time.perf_counter() - start_t
        stage_losses.append((losses[0], losses[-1]) if losses else (float("nan"),) * 2)
        layer = mapped_layers(model)[n][1]
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).numpy()
        rewrites.append(reprogram_layer(chip, n, w, round_=n))
        if layer.bias is not None:   # the digital bias is written as it is
            chip.layers[n].bias = layer.bias.detach().clone()
        chip.calibrate(calib)
        serve_reads(chip, ctx.specs, len(calib), reads)
        calibrations += 1
        if config.correction != "none":
            correct_bias(chip, layer, n, images, reads, ctx.specs,
                         config.correction == "affine")
            measured.append((len(images), n + 1))
    return {"chip": chip, "rewrites": rewrites, "measured": measured,
            "calibrations": calibrations, "calibration_images": len(calib),
            "train_s": train_s, "losses": stage_losses, "read_pulses": reads}
