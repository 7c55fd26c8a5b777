"""Work 5's device side: read disturb (off by default, its closed form), the lv2024-mlc preset,
and the chip operations chip-in-the-loop fine-tuning uses (re-programming, measuring, costs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xbar.config import load_hardware
from xbar.devices import Device, preset
from xbar.devices.presets import preset_hardware
from xbar.devices.read_disturb import disturbed, read_pulses_per_inference, remaining_fraction
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.techniques.chip_loop import (forward_seconds, measure_layer,
                                                        reprogram_layer,
                                             rewrite_cost, serve_reads)
from xbar.timing.engine import simulate
from xbar.timing.programming import programming_time

SHAPE = (1, 8, 8)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(256, 10))


def _chip(device: Device, seed: int = 3) -> Chip:
    chip = Chip.program(_model(), device, load_hardware("one-cell").xbar, seed, "column", "",
                        SHAPE)
    chip.calibrate(np.random.default_rng(0).random((32, *SHAPE), dtype=np.float32))
    return chip


def test_read_disturb_is_off_by_default_and_leaves_cells_bit_identical() -> None:
    assert Device().read_disturb_rate == 0.0
    for name in ("charan2020-dac", "wan2022", "ideal"):
        assert preset(name).read_disturb_rate == 0.0
    device = preset("lv2024-mlc").replace(read_disturb_rate=0.0)
    chip = _chip(device)
    before = [layer.matrix.g_us for layer in chip.layers]
    specs = layer_specs(_model(), SHAPE)
    counts = serve_reads(chip, specs, 10**6)
    for b, layer in zip(before, chip.layers):
        assert layer.matrix.g_us is b   # nothing reassigned, nothing touched
    assert counts["0"] == 10**6 * 64 * 8 and counts["3"] == 10**6 * 1 * 8
    g = np.linspace(10, 100, 7, dtype=np.float32)
    assert np.array_equal(disturbed(device, g, 10**9), g)


@pytest.mark.parametrize("toward", ["g_max", "g_min"])
def test_read_disturb_follows_its_closed_form_and_spares_stuck_cells(toward: str) -> None:
    dev = Device(g_min_us=10.0, g_max_us=100.0, read_disturb_rate=1e-3,
                 read_disturb_toward=toward)
    g0 = np.array([10.0, 40.0, 55.0, 100.0, 70.0], dtype=np.float32)
    stuck = np.array([0, 0, 0, 0, 1], dtype=np.int8)
    target = 100.0 if toward == "g_max" else 10.0
    n = 500
    expected = target + (g0.astype(np.float64) - target) * (1 - 1e-3) ** n
    got = disturbed(dev, g0, n, stuck)
    assert got.dtype == np.float32 and got is not g0
    np.testing.assert_allclose(got[:4], expected[:4], rtol=1e-6)
    assert got[4] == g0[4]                                  # a stuck cell does not move
    step = g0.copy()
    for _ in range(n):                                      # n reads one by one = n at once
        step = disturbed(dev, step, 1, stuck)
    np.testing.assert_allclose(step, got, rtol=1e-4)
    assert np.all((got >= 10.0) & (got <= 100.0))
    assert np.array_equal(g0, [10.0, 40.0, 55.0, 100.0, 70.0])  # input untouched
    np.testing.assert_allclose(remaining_fraction(dev, [0, 1, 2]),
                               [1.0, 1 - 1e-3, (1 - 1e-3) ** 2])


def test_read_disturb_on_a_chip_moves_every_layer_by_its_reads() -> None:
    device = preset("lv2024-mlc").replace(read_disturb_rate=1e-6)
    chip = _chip(device)
    specs = layer_specs(_model(), SHAPE)
    g_before = [layer.matrix.g_us.copy() for layer in chip.layers]
    counts = serve_reads(chip, specs, 100, layers=1)            # only the first layer read
    assert list(counts) == ["0"]
    pulses = 100 * read_pulses_per_inference(64, 8)
    layer0 = chip.layers[0]
    np.testing.assert_allclose(layer0.matrix.g_us, disturbed(device, g_before[0], pulses,
                                                             layer0.matrix.stuck))
    assert np.array_equal(chip.layers[1].matrix.g_us, g_before[1])
    np.testing.assert_allclose(layer0.w_eff.numpy(), layer0.matrix.effective_weights(),
                               rtol=1e-5, atol=1e-6)


def test_bad_read_disturb_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="read_disturb_rate"):
        Device(read_disturb_rate=1.5)
    with pytest.raises(ConfigError, match="read_disturb_toward"):
        Device(read_disturb_toward="middle")
    with pytest.raises(ConfigError, match="n_reads"):
        remaining_fraction(Device(read_disturb_rate=0.1), -1)
    with pytest.raises(ConfigError, match="positions"):
        read_pulses_per_inference(0, 8)
    with pytest.raises(ConfigError, match="stuck"):
        disturbed(Device(read_disturb_rate=0.1), np.ones(3), 1, np.zeros(2, np.int8))
    chip = _chip(preset("lv2024-mlc"))
    with pytest.raises(ConfigError, match="inferences"):
        serve_reads(chip, layer_specs(_model(), SHAPE), -1)


def test_work5_preset_limits_the_on_off_ratio_and_maps_one_cell_per_weight() -> None:
    d = preset("lv2024-mlc")
    assert d.on_off_ratio == pytest.approx(10.0)
    assert d.n_levels == 16 and d.variation == "lognormal" and d.read_disturb_rate > 0
    assert not d.is_ideal and preset_hardware("lv2024-mlc") == "one-cell"
    assert "Lv" in d.source


def test_reprogramming_rewrites_changed_cells_only_and_is_deterministic() -> None:
    device = preset("lv2024-mlc").replace(sa0_rate=0.05)
    results = []
    for _ in range(2):
        chip = _chip(device)
        m = chip.layers[1].matrix
        g_old, lv_old, stuck = m.g_us, m.target_levels.copy(), m.stuck.copy()
        w = m.quantised_weights()
        w[:3] *= -1.0                                       # three output columns change
        rw = reprogram_layer(chip, 1, w, round_=1)
        changed = m.target_levels != lv_old
        assert m.g_us is not g_old                          # a new array, assigned
        assert rw.pulses == int(changed.sum()) > 0
        assert np.array_equal(rw.cells.pulses, changed.astype(np.int8))
        keep = ~changed | (stuck != 0)
        assert np.array_equal(m.g_us[keep], g_old[keep])    # unchanged and stuck cells stay
        assert np.array_equal(m.stuck, stuck)
        assert np.array_equal(m.target_levels[:, 3:10], lv_old[:, 3:10])
        results.append(m.g_us.copy())
    assert np.array_equal(results[0], results[1])
    with pytest.raises(ConfigError, match="shape"):
        reprogram_layer(chip, 1, np.zeros((3, 3)), round_=2)


def test_rewrite_and_forward_costs_come_from_the_engine() -> None:
    hw = load_hardware("one-cell")
    chip = _chip(preset("lv2024-mlc"))
    w = chip.layers[0].matrix.quantised_weights() * 0.5
    rw = reprogram_layer(chip, 0, w, round_=1)
    seconds, pj, pulses = rewrite_cost([rw], hw)
    prog = programming_time([rw.cells], hw)
    assert seconds == prog.total_s and pulses == rw.pulses and pj > 0
    specs = layer_specs(_model(), SHAPE)
    one = simulate(specs[:1], hw, hw.adaptation.forward_schedule, 16,
                   timeline=False).makespan_cycles * 1e-9 / hw.timing.clock_ghz
    rest = simulate(specs[:1], hw, hw.adaptation.forward_schedule, 4,
                    timeline=False).makespan_cycles * 1e-9 / hw.timing.clock_ghz
    assert forward_seconds(specs, hw, 36, 16, layers=1) == pytest.approx(2 * one + rest)
    assert forward_seconds(specs, hw, 0, 16) == 0.0


def test_measuring_a_layer_stops_there_and_matches_the_chip() -> None:
    chip = _chip(preset("lv2024-mlc").replace(read_noise=0.0))
    x = np.random.default_rng(1).random((5, *SHAPE), dtype=np.float32)
    x_in, y = measure_layer(chip, 1, x, outputs=True)
    assert x_in.shape == (5, 256) and y.shape == (5, 10)
    np.testing.assert_allclose(y.numpy(), chip.predict(x), rtol=1e-5, atol=1e-5)
    first, none = measure_layer(chip, 0, x)
    assert none is None and torch.equal(first, torch.from_numpy(x))
    with pytest.raises(ConfigError, match="layer index"):
        measure_layer(chip, 2, x)


def test_a_device_file_written_before_read_disturb_loads_with_it_off(tmp_path) -> None:
    import h5py

    from xbar.devices import load_device_file, save_device
    path = tmp_path / "old.h5"
    save_device(preset("charan2020-dac"), path)
    with h5py.File(path, "r+") as f:      # a version 2 file must hold the two fields
        del f["device"].attrs["read_disturb_rate"]
        del f["device"].attrs["read_disturb_toward"]
    with pytest.raises(Exception, match="missing device field.*read_disturb_rate"):
        load_device_file(path)
    with h5py.File(path, "r+") as f:      # as version 1 files were written, before them
        f.attrs["format_version"] = 1
    loaded = load_device_file(path).device
    assert loaded == preset("charan2020-dac") and loaded.read_disturb_rate == 0.0
    with h5py.File(path, "r+") as f:      # any other field missing is still an error
        del f["device"].attrs["sigma"]
    with pytest.raises(Exception, match="missing device field"):
        load_device_file(path)


def test_a_chip_file_written_before_read_disturb_loads_with_it_off(tmp_path) -> None:
    import h5py

    from xbar.config import load_hardware
    from xbar.mapping.chip import Chip
    from xbar.mapping.data.zoo import build_model as build
    model = build("digits-cnn")
    chip = Chip.program(model, preset("charan2020-dac"), load_hardware("one-cell").xbar, 3,
                        "column", "digits-cnn", (1, 8, 8))
    path = tmp_path / "chip.h5"
    chip.save(path)
    with h5py.File(path, "r+") as f:
        del f["device"].attrs["read_disturb_rate"]
        del f["device"].attrs["read_disturb_toward"]
    with pytest.raises(Exception, match="missing device field.*read_disturb_rate"):
        Chip.load(path, build("digits-cnn"))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1
    loaded = Chip.load(path, build("digits-cnn"))
    assert loaded.device.read_disturb_rate == 0.0
    assert np.array_equal(loaded.layers[0].matrix.g_us, chip.layers[0].matrix.g_us)


@pytest.mark.parametrize("affine", [False, True])
def test_digital_correction_zeroes_each_channels_mean_error(affine: bool) -> None:
    from xbar.mapping.recovery.techniques.iokd import correct_bias
    device = preset("lv2024-mlc")
    model = _model()
    specs = layer_specs(model, SHAPE)
    x = torch.from_numpy(np.random.default_rng(2).random((64, *SHAPE), dtype=np.float32))
    errors = []
    for fit in (False, affine):
        chip = _chip(device)
        x_in, y = measure_layer(chip, 0, x.numpy(), outputs=True, stream=80)
        with torch.no_grad():
            before = ((model[0](x_in) - y) ** 2).mean().item()
        correct_bias(chip, model[0], 0, x, {}, specs, affine=fit)
        x_in, y = measure_layer(chip, 0, x.numpy(), outputs=True, stream=80)  # same reads
        with torch.no_grad():
            err = model[0](x_in) - y
        np.testing.assert_allclose(err.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-4)
        errors.append((err ** 2).mean().item())
        assert errors[-1] < before
    assert errors[1] <= errors[0] + 1e-7   # the affine fit is at least as close as the bias
