"""The trainable analog model (issue 23 item 4): forward values are the chip's, gradients the
float layers' (straight-through), re-programming as configured, and training through it in a
plain PyTorch loop gives weights that program onto a chip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xbar
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.trainable import AnalogModel

HI_RES = XbarConfig(array=ArrayConfig(rows=32, cols=16), dac=DACConfig(input_bits=14),
                    adc=ADCConfig(bits=14))
FINE = Device(name="fine", g_min_us=1.0, g_max_us=100.0, n_levels=65536)
NOISY = Device(name="noisy", g_min_us=2.0, g_max_us=60.0, n_levels=8, variation="gaussian",
               sigma=0.5, sigma_reference="spacing", read_noise=0.02, sa0_rate=0.01,
               sa1_rate=0.002)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 16), nn.ReLU(),
                         nn.Linear(16, 10)).eval()


def _x(n: int = 16) -> torch.Tensor:
    return torch.rand((n, 1, 8, 8), generator=torch.Generator().manual_seed(3))


def test_forward_is_the_chips_and_the_gradient_the_float_layers():
    x = _x()
    am = AnalogModel(_net(), NOISY, calibration=x, seed=5, chip_draws="fixed").eval()
    chip = Chip.program(am.model, NOISY, XbarConfig(), seed=5)
    chip.calibrate(x)
    chip.reset_reads()
    am.chip.reset_reads()
    np.testing.assert_array_equal(am(x).detach().numpy(), chip.predict(x))
    # straight-through: the gradient is the float network's, evaluated at the chip's
    # activations; on a near-ideal chip those are the float ones, so the gradients agree
    fine = AnalogModel(_net(), FINE, HI_RES, calibration=x)
    ref = fine.model
    soft = [p.detach().clone().requires_grad_(True) for p in ref.parameters()]
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    F.cross_entropy(fine(x), y).backward()
    copy = _net()
    copy_mapped = xbar.fold_batchnorm(copy)[0]
    with torch.no_grad():
        for p, q in zip(copy_mapped.parameters(), soft):
            p.copy_(q)
    F.cross_entropy(copy_mapped(x), y).backward()
    for p, q in zip(fine.model.parameters(), copy_mapped.parameters()):
        # (max-pooling ties between near-equal values may pick another element: compare
        # whole gradients, not single entries)
        assert float((p.grad - q.grad).norm() / q.grad.norm()) < 0.05
    # on the noisy chip the values differ from the float network's, and so do the gradients
    am.zero_grad()
    F.cross_entropy(am(x), y).backward()
    assert not torch.allclose(am.model[-1].weight.grad, copy_mapped[-1].weight.grad,
                              rtol=0.05)


def test_reprogramming_fresh_and_fixed_chips():
    x = _x()
    fresh = AnalogModel(_net(), NOISY, calibration=x, program_every=2)
    fixed = AnalogModel(_net(), NOISY, calibration=x, chip_draws="fixed", seed=9)
    first = fresh.chip.layers[0].matrix.g_us.copy()
    fresh.train()
    for _ in range(3):   # passes 1 and 3 re-program (every 2nd after the first)
        fresh(x)
    assert fresh.programmings == 2
    assert not np.array_equal(first, fresh.chip.layers[0].matrix.g_us)
    fixed.train()
    before = fixed.chip.layers[0].matrix.g_us.copy()
    fixed(x)
    fixed(x)  # same weights, same seed: the same cells
    np.testing.assert_array_equal(before, fixed.chip.layers[0].matrix.g_us)
    fixed.eval()
    fixed(x)
    assert fixed.programmings == 2   # eval mode never re-programs
    with pytest.raises(ConfigError, match="chip_draws"):
        AnalogModel(_net(), NOISY, calibration=x, chip_draws="every")
    with pytest.raises(ConfigError, match="program_every"):
        AnalogModel(_net(), NOISY, calibration=x, program_every=0)
    with pytest.raises(ConfigError, match="calibration"):
        AnalogModel(_net(), NOISY)


def test_training_through_the_chip_in_a_plain_loop_learns_and_programs():
    data = xbar.load_dataset("digits")
    torch.manual_seed(0)
    untrained = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    am = xbar.to_analog(untrained, NOISY, xbar.HardwareConfig(),
                        calibration=data.x_train[:200], seed=1, program_every=4)
    assert xbar.analog_model is xbar.to_analog   # the earlier name, one function
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    opt = torch.optim.Adam(am.parameters(), lr=3e-3)
    am.train()
    gen = torch.Generator().manual_seed(0)
    for idx in torch.randperm(len(x), generator=gen).split(64):
        opt.zero_grad()
        F.cross_entropy(am(x[idx]), y[idx]).backward()
        opt.step()
    chip = am.to_chip(seed=123)  # a chip the training never saw
    acc = chip.evaluate(data.x_test, data.y_test)
    assert acc > 0.6   # one epoch from scratch, through 8-level noisy cells (chance: 0.1)
    with pytest.raises(xbar.ModelError, match="cannot be mapped"):
        AnalogModel(nn.Sequential(nn.Conv3d(1, 1, 1)), NOISY, calibration=x[:2])
