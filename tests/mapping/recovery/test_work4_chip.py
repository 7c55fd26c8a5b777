"""Work 4 on programmed chips: per-layer ADC bits, the ADC search's floor, compensation layers
(identity when fresh, trained on the chip, their closed-form costs) and the methods."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from xbar.config import HardwareConfig, XbarConfig
from xbar.devices.presets import preset
from xbar.errors import ConfigError, ModelError
from xbar.mapping.chip import Chip
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.data.train import train_model
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.techniques.adc_search import (ADCSearchConfig, adc_energy_table,
                                                         held_out_accuracy, search_adc_bits,
                                                         set_adc_bits)
from xbar.mapping.recovery.techniques.compensation import (CompensationConfig, CompensationLayer,
                                                           attach_compensation, compensation_costs,
                                                           compensations, place_compensation,
                                                           train_compensation)
from xbar.mapping.recovery.correctnet import device_at
from xbar.mapping.recovery.correctnet import Work4Options


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    model, info = train_model("digits-cnn", ds)
    return ds, model, info.test_accuracy


def _chip(model, ds, sigma: float, seed: int = 0, xbar: XbarConfig | None = None) -> Chip:
    chip = Chip.program(model, device_at(sigma), xbar or XbarConfig(), seed, "column", "",
                        tuple(ds.input_shape))
    chip.calibrate(calibration_inputs(ds, seed=seed))
    return chip


def _logits(chip: Chip, x: np.ndarray) -> np.ndarray:
    chip.reset_reads()
    return chip.predict(x)


def test_per_layer_adc_bits_are_the_chips_resolution(digits) -> None:
    ds, model, _ = digits
    x = ds.x_test[:64]
    eight = _chip(model, ds, 0.3)
    ranges = [layer.matrix.adc_range_ua.copy() for layer in eight.layers]
    four = _chip(model, ds, 0.3, xbar=XbarConfig().replace(adc_bits=4))
    set_adc_bits(eight, [4] * len(eight.layers))
    # the same cells read at 4 bits: exactly what a chip built at 4 bits computes
    assert np.array_equal(_logits(eight, x), _logits(four, x))
    assert all(layer.matrix.config.adc.bits == 4 for layer in eight.layers)
    # calibrated ranges are peak currents, the same at any resolution: no recalibration
    eight.calibrate(calibration_inputs(ds, seed=0))
    for r, layer in zip(ranges, eight.layers):
        assert np.array_equal(r, layer.matrix.adc_range_ua)
    first = eight.layers[0].layer_name
    before = _logits(eight, x)
    set_adc_bits(eight, {first: 2})
    assert eight.layers[0].matrix.config.adc.bits == 2
    assert eight.layers[1].matrix.config.adc.bits == 4
    assert not np.array_equal(before, _logits(eight, x))


def test_set_adc_bits_refuses_bad_values(digits) -> None:
    ds, model, _ = digits
    chip = _chip(model, ds, 0.3)
    with pytest.raises(ConfigError, match="per layer"):
        set_adc_bits(chip, [4])
    with pytest.raises(ConfigError, match="in \\[1, 16\\]"):
        set_adc_bits(chip, [0] * len(chip.layers))
    with pytest.raises(ConfigError, match="unknown layer"):
        set_adc_bits(chip, {"nope": 4})
    with pytest.raises(ConfigError, match="min_bits"):
        ADCSearchConfig(min_bits=9, max_bits=8)
    with pytest.raises(ConfigError, match="levels"):
        ADCSearchConfig(levels=(1.0,))


def test_adc_search_respects_the_floor(digits) -> None:
    ds, model, _ = digits
    config = ADCSearchConfig(chips=1, images=120, min_bits=3, max_drop=0.02)
    hw = HardwareConfig()
    result = search_adc_bits(model, ds, device_at(0.3), hw, config, seed=0)
    assert result.accuracy >= result.floor
    assert result.floor == pytest.approx(result.reference_accuracy - 0.02)
    assert all(3 <= b <= 8 for b in result.bits.values())
    assert result.power_change < 0 and result.latency_ns < result.reference_latency_ns
    specs = layer_specs(model, tuple(ds.input_shape))
    table = adc_energy_table(specs, hw, [3, 8])
    assert result.reference_adc_pj == pytest.approx(sum(table[8]))
    assert result.adc_pj == pytest.approx(sum(
        adc_energy_table(specs, hw, [b])[b][i] for i, b in enumerate(result.bits.values())))
    # re-measured independently, the chosen bits stay above the floor
    chip = _chip(model, ds, 0.3)
    set_adc_bits(chip, result.bits)
    idx = np.sort(np.random.default_rng(np.random.SeedSequence([0, 41])).choice(
        len(ds.x_train), 120, replace=False))
    assert chip.evaluate(ds.x_train[idx], ds.y_train[idx]) == pytest.approx(result.accuracy)
    for entry in result.history:
        assert entry["accepted"] == (entry["accuracy"] >= result.floor)
    # what the row reports: the test set at the chosen bits and at uniform 8-bit, on the
    # search's chips, measured apart from the search (which never saw a test image)
    assert result.test_accuracy is None
    held = held_out_accuracy(model, ds, device_at(0.3), hw, result, config, seed=0)
    assert held.bits == result.bits and held.accuracy == result.accuracy
    assert held.test_images == len(ds.y_test)
    assert held.test_accuracy == pytest.approx(chip.evaluate(ds.x_test, ds.y_test))
    assert held.reference_test_accuracy == pytest.approx(
        _chip(model, ds, 0.3).evaluate(ds.x_test, ds.y_test))
    assert held.to_dict()["test_accuracy"] == held.test_accuracy


def test_fresh_compensation_is_the_identity(digits) -> None:
    ds, model, _ = digits
    chip = _chip(model, ds, 1.0)
    x = ds.x_test[:50]
    before = _logits(chip, x)
    names = [layer.layer_name for layer in chip.layers]
    attach_compensation(chip, names[:2], rank=0)
    attach_compensation(chip, names[2:3], rank=3)
    assert set(compensations(chip)) == set(names[:3])
    assert np.array_equal(before, _logits(chip, x))
    layer = CompensationLayer(6, rank=2)
    y = torch.randn(3, 6, 4, 4)
    assert torch.equal(layer(y), y) and layer.words == 6 + 6 + 2 * 6 + 6 * 2
    with pytest.raises(ConfigError, match="already"):
        attach_compensation(chip, names[:1])
    with pytest.raises(ConfigError, match="no analog layer"):
        attach_compensation(chip, ["nope"])


@pytest.mark.slow  # 6-22 s on 2 cores (quick subset: -m "not slow")
def test_a_compensated_chip_is_not_saved_as_a_chip_file_it_cannot_load(digits, tmp_path) -> None:
    """Chip.load rebuilds the programmed network only: a chip with compensation layers used
    to be written, then refused on loading; now saving says why and writes nothing."""
    ds, model, _ = digits
    chip = _chip(model, ds, 1.0)
    chip.save(tmp_path / "plain.h5")  # the programmed chip itself saves and loads
    Chip.load(tmp_path / "plain.h5", model)
    attach_compensation(chip, [chip.layers[0].layer_name], rank=0)
    with pytest.raises(ModelError, match="added to it after programming.*compensation"):
        chip.save(tmp_path / "comp.h5")
    assert not (tmp_path / "comp.h5").exists()


@pytest.mark.slow  # 6-22 s on 2 cores (quick subset: -m "not slow")
def test_compensation_trained_on_the_chip_recovers_accuracy(digits) -> None:
    ds, model, fp32 = digits
    chip = _chip(model, ds, 1.5)
    x, y = ds.x_test, ds.y_test
    before = chip.evaluate(x, y)
    config = CompensationConfig(layers=2, steps=60, batch_size=32, learning_rate=1e-2)
    names, rounds = place_compensation(chip, model, ds, config, seed=0)
    assert 1 <= len(names) <= 2 and rounds[0]["base"] - rounds[0][names[0]] > config.min_gain
    attach_compensation(chip, names, config.rank)
    info = train_compensation(chip, model, ds, config, seed=0)
    after = chip.evaluate(x, y)
    assert before < 0.85 * fp32 and after > before + 0.1, (before, after, info)
    hw = HardwareConfig()
    specs = layer_specs(model, tuple(ds.input_shape))
    costs = compensation_costs(chip, specs, hw, config)
    by = {s.name: s for s in specs}
    words = sum(c.words for c in compensations(chip).values())
    macs = sum(by[n].positions * c.channels ** 2 for n, c in compensations(chip).items())
    assert costs["sram_words"] == words and costs["digital_macs"] == macs
    cycles = sum(-(-by[n].positions * c.channels ** 2 // hw.adaptation.digital_macs_per_cycle)
                 for n, c in compensations(chip).items())
    assert costs["latency_ns"] == pytest.approx(cycles / hw.timing.clock_ghz)
    assert costs["adapt_s"] > 0 and costs["adapt_pj"] > 0 and costs["inference_pj"] > 0


@pytest.mark.slow  # 6-22 s on 2 cores (quick subset: -m "not slow")
def test_methods_run_in_compare_and_refuse_bad_options(digits) -> None:
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    ds, model, _ = digits
    opts = Work4Options(fine_tune_epochs=1, compensation=CompensationConfig(steps=5))
    methods = ("one-shot", "lipschitz", "comp", "lipschitz+comp")
    settings = CompareSettings(chips=1, methods=methods, adapt=AdaptConfig(steps=5),
                               options={m: opts for m in methods[1:]})
    result = compare(model, ds, device_at(1.0), HardwareConfig(), settings)["methods"]
    for m in methods:
        assert 0.0 <= result[m]["accuracy"] <= 1.0
    assert result["lipschitz"]["offline_train_s"] > 0
    assert result["comp"]["adapt_s"] > 0 and result["comp"]["comp_sram_words"] > 0
    # the compensation layers' SRAM is the method's SRAM area, as compare reports it
    assert result["comp"]["sram_area_fraction"] == result["comp"]["comp_sram_area_fraction"] > 0
    assert result["one-shot"]["sram_area_fraction"] == 0
    bad = CompareSettings(chips=1, methods=("comp",), options={"comp": {"steps": 5}})
    with pytest.raises(ConfigError, match="Work4Options"):
        compare(model, ds, device_at(1.0), HardwareConfig(), bad)
    with pytest.raises(ConfigError, match="fine_tune_epochs"):
        Work4Options(fine_tune_epochs=0)
    with pytest.raises(ConfigError, match="compensation"):
        Work4Options(compensation=dataclasses.replace)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="layers"):
        CompensationConfig(layers=0)


@pytest.mark.slow  # 6-22 s on 2 cores (quick subset: -m "not slow")
def test_adc_search_over_level_counts(digits) -> None:
    ds, model, _ = digits
    config = ADCSearchConfig(chips=1, images=60, min_bits=6, max_drop=0.05, levels=(8.0, 4.0))
    result = search_adc_bits(model, ds, device_at(0.3), HardwareConfig(), config, seed=1)
    assert result.levels in (8, 4) and result.accuracy >= result.floor
    assert {h["levels"] for h in result.history} <= {8, 4}
    table = dataclasses.replace(preset("charan2020-jxcdc"), variation="table",
                                level_mean_us=tuple(preset("charan2020-jxcdc").levels),
                                level_std_us=(0.1,) * 16)
    with pytest.raises(ConfigError, match="level count"):
        search_adc_bits(model, ds, table, HardwareConfig(),
                        ADCSearchConfig(chips=1, images=20, levels=(8.0,)), seed=0)
