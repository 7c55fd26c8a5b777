"""A trainable analog model: a network whose forward runs through a programmed chip, for
hardware-aware training in a user's own loop.

:class:`AnalogModel` holds the network in mapped form (:func:`xbar.mapping.convert.
fold_batchnorm`: BatchNorm folded, every weight matrix an ``nn.Linear`` or groups = 1
``nn.Conv2d``) with ordinary float weights, which the user's optimiser trains, and a chip
programmed from them (:class:`xbar.mapping.chip.Chip`). Each mapped layer's output is the
chip's: its inputs through the DAC, the programmed cells (level quantisation, programming
variation, stuck-at faults), read noise and the ADC, plus the digital bias. Everything between
the mapped layers (activations, pooling, attention's softmax ...) is the network's own code.

The gradient (straight-through): a mapped layer returns ``y_sw + (y_chip - y_sw).detach()``
with ``y_sw`` the float layer on the same input. The forward value is the chip's; the backward
pass is the float layer's, ``dL/dW = (dL/dy) x^T`` and ``dL/dx = W^T (dL/dy)`` at the inputs
``x`` the chip produced, as if the arrays computed ``W x`` exactly. The hardware's errors thus
shape the loss and every later layer's inputs, but are not differentiated themselves (no
gradient through quantisation, noise, clipping or faults). This is the estimator of noise-
injection hardware-aware training (aihwkit's analog training presets with forward noise; Joshi
et al., Nat. Commun. 2020) with the noise drawn by the full chip model instead of a Gaussian.

Re-programming: the chip holds the weights it was programmed with. In training mode the
model programs and calibrates a new chip from the current weights every ``program_every``
forward passes (and before the first): with ``chip_draws = "fresh"`` (default) from a new
seed each time, so training sees many chips' programming errors and faults (robustness to any
chip); with ``"fixed"`` always from ``seed``, the same cells, faults and variation draws (the
weights adapt to that one chip). In eval mode the current chip runs as it is.

The trained result programs onto a chip like any network: ``Chip.program(analog.model,
device, config, seed)`` (the model is already in mapped form), or :meth:`AnalogModel.to_chip`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xbar.config import HardwareConfig, XbarConfig
from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.convert import fold_batchnorm, mapped_layers

CHIP_DRAWS = ("fresh", "fixed")


def _xbar_config(hw: HardwareConfig | XbarConfig | None) -> XbarConfig:
    if hw is None:
        return XbarConfig()
    if isinstance(hw, HardwareConfig):
        return hw.xbar
    if isinstance(hw, XbarConfig):
        return hw
    raise ConfigError(f"hw = {type(hw).__name__} is invalid; allowed: a HardwareConfig, an "
                      "XbarConfig or None (the defaults)")


class AnalogModel(nn.Module):
    """``model`` running through a chip of ``device`` (module docstring).

    Args:
        model: Any mappable PyTorch network (it is copied; BatchNorm is folded).
        device: The cell.
        hw: Array and converter settings (a :class:`HardwareConfig` or :class:`XbarConfig`;
            default the defaults).
        calibration: Inputs (N, ...) that set each chip's DAC and ADC ranges, as
            :meth:`Chip.calibrate` uses them (a few hundred training inputs).
        seed: The chip seed (``"fixed"``), or the root of the per-chip seeds (``"fresh"``).
        program_every: Forward passes in training mode between re-programmings (>= 1).
        chip_draws: ``"fresh"`` or ``"fixed"``.
        scale: Weight-to-conductance scale, ``"column"`` or ``"layer"``.

    Raises:
        ConfigError: An invalid setting. ModelError: a layer that cannot be mapped.
    """

    def __init__(self, model: nn.Module, device: Device, hw: HardwareConfig | XbarConfig |
                 None = None, calibration: Any = None, seed: int = 0, program_every: int = 1,
                 chip_draws: str = "fresh", scale: str = "column") -> None:
        super().__init__()
        if calibration is None:
            raise ConfigError("AnalogModel needs calibration inputs (a few hundred training "
                              "inputs) to set each chip's DAC and ADC ranges")
        if not isinstance(program_every, int) or isinstance(program_every, bool) \
                or program_every < 1:
            raise ConfigError(f"program_every = {program_every!r} is invalid; allowed: an "
                              "integer >= 1")
        if chip_draws not in CHIP_DRAWS:
            raise ConfigError(f"chip_draws = {chip_draws!r} is invalid; allowed: one of "
                              f"{CHIP_DRAWS}")
        self.model, _ = fold_batchnorm(model)
        self.model.train(model.training)
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.device, self.config = device, _xbar_config(hw)
        self.seed, self.scale = int(seed), scale
        self.program_every, self.chip_draws = program_every, chip_draws
        self.calibration = torch.as_tensor(np.asarray(calibration, dtype=np.float32))
        self.chip: Chip | None = None
        self.programmings = 0
        self._passes = 0
        self._layers = [m for _, m in mapped_layers(self.model)]
        for i, layer in enumerate(self._layers):
            layer.register_forward_hook(self._hook(i))
        self.program()

    def _hook(self, i: int):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            analog = self.chip.layers[i]  # type: ignore[union-attr]
            with torch.no_grad():
                y = analog(args[0].detach())
            return out + (y - out).detach()     # the chip's value, the float layer's gradient
        return hook

    def chip_seed(self) -> int:
        """The seed of the next chip: ``seed`` (fixed), or one per programming (fresh)."""
        if self.chip_draws == "fixed":
            return self.seed
        state = np.random.SeedSequence([self.seed, 23, self.programmings]).generate_state(1)
        return int(state[0])

    def to_chip(self, seed: int | None = None) -> Chip:
        """A chip programmed from the current weights and calibrated (seed: default
        :meth:`chip_seed`)."""
        chip = Chip.program(self.model, self.device, self.config,
                            self.chip_seed() if seed is None else seed, self.scale)
        chip.calibrate(self.calibration)
        chip.reset_reads()
        return chip

    def program(self) -> Chip:
        """Program and calibrate a chip from the current weights; it runs from now on."""
        self.chip = self.to_chip()
        self.programmings += 1
        return self.chip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            if self._passes and self._passes % self.program_every == 0:
                self.program()
            self._passes += 1
        return self.model(x)


def to_analog(model: nn.Module, device: Device, hw: HardwareConfig | XbarConfig | None = None,
              calibration: Any = None, **options: Any) -> AnalogModel:
    """``model`` as a trainable :class:`AnalogModel` on ``device`` and ``hw`` (``options``:
    seed, program_every, chip_draws, scale); the counterpart of aihwkit's
    ``convert_to_analog``. ``xbar.analog_model`` is the same function (its earlier name)."""
    return AnalogModel(model, device, hw, calibration, **options)
