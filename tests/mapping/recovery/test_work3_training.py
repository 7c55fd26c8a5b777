"""Work 3 (ITT-RNA): fault-aware training, on-device retraining and the registered methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import ArrayConfig, HardwareConfig, XbarConfig
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.techniques.fault_aware import (fault_aware_perms, folded_weights,
                                                          program_mapped)
from xbar.mapping.cells import chip_cells
from xbar.mapping.recovery.techniques.fault_map import layer_shapes, run_test_pass
from xbar.mapping.recovery.techniques.fault_train import (FaultTrainConfig, MapForward,
                                                          fault_aware_train, weight_masks)
from xbar.mapping.recovery.registry import method_names
from xbar.mapping.recovery.techniques.on_chip import OnChipConfig, retrain_on_chip
from xbar.mapping.recovery.itt_rna import Work3Options, stuck_device, variation_device
from xbar.timing.programming import LayerCells, programming_time

METHODS = ("fault-aware-map", "fault-aware-train", "fault-aware+on-chip")

XB = XbarConfig(array=ArrayConfig(rows=16, cols=16))
HW = HardwareConfig.from_parts(XB)
SHAPE = (1, 5, 8)


def data(n: int = 256, seed: int = 0) -> Dataset:
    """A learnable toy task: the class is the quadrant of the strongest pixel block."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE), dtype=np.float32) * 0.3
    y = rng.integers(0, 5, n)
    for i, c in enumerate(y):
        x[i, 0, :, c:c + 4] += 0.7
    x = np.clip(x, 0, 1).astype(np.float32)
    return Dataset("toy", x[: n * 3 // 4], y[: n * 3 // 4].astype(np.int64), x[n * 3 // 4:],
                   y[n * 3 // 4:].astype(np.int64), SHAPE, 5)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(40, 12), nn.ReLU(), nn.Linear(12, 5)).eval()


def mapped(model: nn.Module, device, seed: int = 3):
    chip = Chip.program(model, device, XB, seed, input_shape=SHAPE)
    cells = chip_cells(seed, layer_shapes(chip), device, XB)
    fmap = run_test_pass(cells, device, HW, seed)
    perms, _ = fault_aware_perms(folded_weights(model), fmap, device, XB)
    return cells, fmap, perms


def test_stuck_weights_are_held_and_the_rest_retrains() -> None:
    ds, model, dev = data(), mlp(), stuck_device(0.2)
    cells, fmap, perms = mapped(model, dev)
    cfg = FaultTrainConfig(epochs=2, rounds=1, layerwise="off", learning_rate=1e-2)
    trained, info = fault_aware_train(model, ds, dev, XB, fmap, perms, cfg, seed=0)
    assert info["held"] > 0 and info["layerwise"] is False
    for k, ((_, before), (_, after)) in enumerate(zip(
            [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)],
            [(n, m) for n, m in trained.named_modules() if isinstance(m, nn.Linear)])):
        stuck = fmap.layers[k].stuck[perms[k]]
        theta = fmap.layers[k].theta[perms[k]]
        held, _ = weight_masks(stuck, theta, XB, before.weight.shape[0], np.inf)
        given = MapForward(dev, XB, stuck, theta).chip_weights(before.weight).float()
        h = torch.as_tensor(held)
        assert torch.equal(after.weight.detach()[h], given[h])      # what the cells give
        assert not torch.equal(after.weight.detach()[~h], before.weight.detach()[~h])


def test_reduce_and_freeze_in_order_of_sensitivity() -> None:
    ds, model, dev = data(), mlp(), variation_device(0.4)
    cells, fmap, perms = mapped(model, dev)
    cfg = FaultTrainConfig(epochs=1, rounds=2, layerwise="off", reduce_factor=0.0)
    _, info = fault_aware_train(model, ds, dev, XB, fmap, perms, cfg, seed=0)
    assert info["held"] == 0 and 0 < info["reduced"] <= info["abnormal"]
    # the map's theta is the expected device-to-device part: (1 - c2c_fraction) of the read
    assert info["theta_std"] == pytest.approx(0.4 * (1 - dev.c2c_fraction), rel=0.25)


def test_layer_by_layer_adjustment_runs_on_the_programmed_layers() -> None:
    ds, model, dev = data(), mlp(), stuck_device(0.1)
    cells, fmap, perms = mapped(model, dev)
    calls = []

    def program(m: nn.Module) -> Chip:
        chip = program_mapped(m, dev, XB, 3, perms, shape=SHAPE, cells=cells)
        chip.calibrate(ds.x_train[:64])
        calls.append(chip)
        return chip

    cfg = FaultTrainConfig(epochs=1, rounds=1, adjust_epochs=1, adjust_images=50)
    _, info = fault_aware_train(model, ds, dev, XB, fmap, perms, cfg, 0, program=program)
    assert info["layerwise"] is True and info["adjust_images"] == 50 and len(calls) == 1
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 3 * 6, 5))
    with pytest.raises(ConfigError, match="layerwise"):
        fault_aware_train(conv, ds, dev, XB, fmap, perms,
                          FaultTrainConfig(layerwise="on"), 0, program=program)
    with pytest.raises(ConfigError, match="needs program"):
        fault_aware_train(model, ds, dev, XB, fmap, perms, cfg, 0)


@pytest.mark.parametrize("mode", ["one-shot", "write-verify"])
def test_on_chip_rewrites_are_counted(mode: str) -> None:
    from xbar.mapping.recovery.techniques.rvw import rvw_params

    ds, model, dev = data(), mlp(), stuck_device(0.2).replace(variation="lognormal", sigma=0.2)
    cells, fmap, perms = mapped(model, dev)
    chip = program_mapped(model, dev, XB, 3, perms, shape=SHAPE, cells=cells)
    chip.calibrate(ds.x_train[:64])
    known = [lm.stuck[p] for lm, p in zip(fmap.layers, perms)]
    before = [lay.matrix.g_us.copy() for lay in chip.layers]
    cfg = OnChipConfig(iterations=3, batch_size=32, rewrite_fraction=0.05, rewrite_mode=mode)
    res = retrain_on_chip(chip, ds, folded_weights(model), known, cfg, HW,
                          layer_specs(model, SHAPE), 0,
                          rvw_params(dev) if mode == "write-verify" else None)
    writes = sum(int(w.sum()) for w in res.writes_per_cell)
    assert res.rewrites == writes > 0 and len(res.accuracy_per_iteration) == 3
    if mode == "one-shot":
        assert res.pulses == res.rewrites and res.reads == 0
    else:
        assert res.pulses >= res.rewrites and res.reads == res.pulses + res.rewrites
    assert res.rewrite_s > 0 and res.pass_s > 0 and res.rewrite_pj > 0
    for w, k, lay, g0 in zip(res.writes_per_cell, known, chip.layers, before):
        assert not w[k != 0].any()                         # the map's stuck cells: never written
        assert np.array_equal(lay.matrix.g_us[w == 0], g0[w == 0])
        assert torch.equal(lay.w_eff, torch.as_tensor(lay.matrix.effective_weights(),
                                                      dtype=torch.float32))


def test_one_iteration_costs_the_engine_time_of_its_writes() -> None:
    ds, model, dev = data(), mlp(), variation_device(0.3)
    cells, fmap, perms = mapped(model, dev)
    chip = program_mapped(model, dev, XB, 3, perms, shape=SHAPE, cells=cells)
    chip.calibrate(ds.x_train[:64])
    known = [lm.stuck[p] for lm, p in zip(fmap.layers, perms)]
    res = retrain_on_chip(chip, ds, folded_weights(model), known,
                          OnChipConfig(iterations=1, rewrite_fraction=0.1), HW,
                          layer_specs(model, SHAPE), 0)
    counts = [LayerCells(lay.layer_name, lay.matrix.n_in, lay.matrix.n_out,
                         w.astype(np.int64), np.zeros_like(w, dtype=np.int64))
              for lay, w in zip(chip.layers, res.writes_per_cell)]
    assert res.rewrites > 0
    on = HardwareConfig.from_parts(XB, programming=HW.programming, timing=HW.timing)
    assert res.rewrite_s == programming_time(counts, on).total_s


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="spare_rows"):
        Work3Options(spare_rows=-1)
    with pytest.raises(ConfigError, match="activity"):
        Work3Options(activity="yes")
    with pytest.raises(ConfigError, match="FaultTrainConfig"):
        Work3Options(train={"epochs": 1})
    with pytest.raises(ConfigError, match="OnChipConfig"):
        Work3Options(on_chip=None)
    with pytest.raises(ConfigError, match="rewrite_mode"):
        OnChipConfig(rewrite_mode="ispp")
    with pytest.raises(ConfigError, match="rewrite_fraction"):
        OnChipConfig(rewrite_fraction=0.0)
    with pytest.raises(ConfigError, match="layerwise"):
        FaultTrainConfig(layerwise="always")
    with pytest.raises(ConfigError, match="rate"):
        stuck_device(1.5)
    assert method_names("work3") == METHODS


def test_methods_on_digits_beat_one_shot_at_20_percent_stuck() -> None:
    """The three methods through ``compare`` on the bundled digits data (always present)."""
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.compare import CompareSettings, compare

    t = load_teacher("digits-cnn", "digits")
    opts = Work3Options(train=FaultTrainConfig(epochs=1, rounds=1),
                        on_chip=OnChipConfig(iterations=2))
    hw = HardwareConfig()
    cs = CompareSettings(chips=1, seed=0, methods=("one-shot",) + METHODS,
                         options={m: opts for m in METHODS})
    r = compare(t.model, t.dataset, stuck_device(0.2), hw, cs)["methods"]
    assert r["fault-aware-map"]["accuracy"] > r["one-shot"]["accuracy"] + 0.05
    full = r["fault-aware+on-chip"]
    assert full["test_s"] > 0 and full["rewrite_pulses"] > 0 and full["expected_error_ratio"] < 1
    assert full["endurance_cycles_max"] > full["endurance_cycles_mean"] >= 3
    assert full["program_s"] == pytest.approx(r["one-shot"]["program_s"] + full["test_s"])
    with pytest.raises(ConfigError, match="Work3Options"):
        compare(t.model, t.dataset, stuck_device(0.2), hw,
                CompareSettings(chips=1, methods=("fault-aware-map",),
                                options={"fault-aware-map": {"spare_rows": 2}}))
