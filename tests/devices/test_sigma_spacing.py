"""sigma_reference = "spacing": a Gaussian spread relative to the spacing of adjacent levels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xbar.devices import Device, load_device_file
from xbar.mapping.cli.main import main

N = 200_000


def _programmed(dev: Device, level: int) -> np.ndarray:
    return dev.program(np.full(N, level), np.random.default_rng(3)).astype(np.float64)


def test_uniform_levels_spread_is_sigma_times_spacing_at_every_level():
    dev = Device(g_min_us=2, g_max_us=101, n_levels=10, variation="gaussian", sigma=0.5,
                 sigma_reference="spacing")
    spacing = 99 / 9  # (g_max - g_min) / (n_levels - 1) = 11 uS
    assert np.allclose(dev.sigma_at(dev.levels), 0.5 * spacing)
    centre, spread = dev.level_statistics()
    assert np.allclose(spread, 0.5 * spacing) and np.allclose(centre, dev.levels)
    for level in (2, 5, 7):   # away from the clip limits
        g = _programmed(dev, level)
        assert g.std() == pytest.approx(0.5 * spacing, rel=0.02)
        assert g.mean() == pytest.approx(dev.levels[level], abs=4 * 5.5 / np.sqrt(N))
    # the same sigma against the range is n_levels - 1 times wider
    wide = dev.replace(sigma_reference="range")
    assert wide.sigma_at(dev.levels[5]) == pytest.approx(9 * dev.sigma_at(dev.levels[5]))


def test_explicit_levels_use_their_mean_spacing_not_the_range():
    levels = (10.0, 12.0, 20.0, 40.0)   # spacings 2, 8, 20: mean 10 uS; range / 3 = 30 uS
    dev = Device(g_min_us=1, g_max_us=91, n_levels=4, levels_us=levels, variation="gaussian",
                 sigma=0.1, sigma_reference="spacing")
    assert np.allclose(dev.sigma_at(np.asarray(levels)), 1.0)
    g = _programmed(dev, 2)
    assert g.std() == pytest.approx(1.0, rel=0.02)


def test_training_time_programming_has_the_same_spread():
    """KD draws its noise through torch; the spacing reference holds there too."""
    dev = Device(g_min_us=1, g_max_us=100, n_levels=12, variation="gaussian", sigma=0.3,
                 sigma_reference="spacing")
    gen = torch.Generator().manual_seed(0)
    g, stuck = dev.program_cells(torch.full((N,), 6, dtype=torch.int64), gen)
    assert isinstance(g, torch.Tensor) and not stuck.any()
    assert g.double().std().item() == pytest.approx(0.3 * 99 / 11, rel=0.02)


def test_invalid_reference_lists_spacing_among_the_allowed():
    with pytest.raises(ValueError) as err:
        Device(variation="gaussian", sigma=0.1, sigma_reference="step")
    msg = str(err.value)
    assert "Device.sigma_reference" in msg and "'spacing'" in msg and "'step'" in msg


def test_device_file_with_spacing_is_read_and_described(tmp_path, capsys):
    path = tmp_path / "dac.toml"
    path.write_text('[device]\nname = "dac-spacing"\ng_min_us = 1.0\ng_max_us = 100.0\n'
                    'n_levels = 10\nvariation = "gaussian"\nsigma = 0.5\n'
                    'sigma_reference = "spacing"\nsource = "test"\n')
    dev = load_device_file(path).device
    assert dev.sigma_reference == "spacing" and dev.sigma_at(50.0) == pytest.approx(5.5)
    assert main(["device", "show", str(path), "--json"]) == 0
    assert "spacing" in json.dumps(json.loads(capsys.readouterr().out))
    assert main(["device", "show", str(path)]) == 0
    assert "gaussian 0.5 x spacing" in capsys.readouterr().out
