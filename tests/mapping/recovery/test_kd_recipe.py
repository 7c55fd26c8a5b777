"""The KD student trains (issue 10, section 1): on scikit-learn's digits with the digits CNN,
for every device preset in the registry (with the default hardware and with the hardware its
paper fixes), the student's chip accuracy is above one-shot's and its clean accuracy within
1 point of the teacher's, except where listed with the reason; a device on which no student
learns is said to be one, in the info and in ``xbar compare``'s output; the recipe's knobs
are checked and reach the command line.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from xbar.config import XbarConfig, load_hardware
from xbar.devices import Device
from xbar.devices.presets import PRESETS, preset_hardware
from xbar.errors import ConfigError, DataError
from xbar.mapping.cli.main import main
from xbar.mapping.convert import mapped_layers
from xbar.mapping.data.workflow import load_teacher
from xbar.mapping.recovery.compare import CompareSettings, compare
from xbar.mapping.recovery.techniques.kd import (LEARN_MARGIN, DeviceNoise, KDConfig, distill,
                                                 judge, kd_config)
from xbar.mapping.recovery.report import format_table

# A small recipe: the defaults but 10 epochs (xbar compare's default), 2 chips.
RECIPE = KDConfig(epochs=10)
CHIPS = 2
CASES = sorted({(name, hw) for name in PRESETS for hw in ("default", preset_hardware(name))})
# Where the student's clean accuracy is not within 1 point of the teacher's, and why.
CLEAN_EXCEPTIONS = {
    ("charan2020-dac", "one-cell"):
        "every weight's programming error is comparable to its column's largest weight: the "
        "student gives up clean accuracy (93-96 % against 98.1 %) for robustness (one-shot "
        "24 %, KD 70-80 % on chip)",
    ("lv2024-mlc", "one-cell"):
        "on/off 10 puts the zero weight's cell at 55 uS, where lognormal 0.3 is a large error "
        "against the column's range: the student gives up clean accuracy (95.8 % against "
        "98.1 %) for robustness (one-shot 45 %, KD 91 % on chip)",
}
# One-shot within this of the teacher: nothing to recover, KD only has to keep it.
NOTHING_TO_RECOVER = 0.01
HOPELESS = Device(name="hopeless", g_min_us=1.0, g_max_us=100.0, n_levels=4,
                  variation="gaussian", sigma=3.0, sigma_reference="range")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("digits-cnn", "digits")


@pytest.mark.slow
@pytest.mark.parametrize("name,hw", CASES)
def test_student_beats_one_shot_and_keeps_clean_accuracy(teacher, name: str, hw: str) -> None:
    device, hardware = PRESETS[name](), load_hardware(hw)
    if device.weight_mapping not in ("", hardware.xbar.array.weight_mapping):
        device = device.replace(weight_mapping="")  # the cell on the mapping its source rules out
    result = compare(teacher.model, teacher.dataset, device, hardware,
                     CompareSettings(chips=CHIPS, methods=("software", "one-shot", "kd"),
                                     kd=RECIPE))
    m, info = result["methods"], result["kd"]
    fp32, one_shot, kd = (m[k]["accuracy"] for k in ("software", "one-shot", "kd"))
    assert info["learned"], info["reason"]
    if one_shot < fp32 - NOTHING_TO_RECOVER:
        assert kd > one_shot, (kd, one_shot)
    else:  # the device costs the teacher (almost) nothing: KD must not lose it
        assert kd >= one_shot - 0.005, (kd, one_shot)
    gap = info["teacher_fp32_accuracy"] - info["student_fp32_accuracy"]
    assert info["clean_gap"] == pytest.approx(gap)
    if (name, hw) in CLEAN_EXCEPTIONS:
        assert gap > 0.01  # still an exception: if it is fixed, drop it from the list
    else:
        assert gap <= 0.01, (info["student_fp32_accuracy"], info["teacher_fp32_accuracy"])
    # the table says so beside the KD rows whenever the gap exceeds a point
    assert ("points below the teacher's" in format_table(result)) == (gap > 0.01)


def test_noise_ramp_scales_the_programming_error_and_is_exact_at_full_strength() -> None:
    """strength s returns w + s (programmed(w) - w) on the same draws; at 1 (the default,
    what tests/mapping/recovery/test_kd_noise.py checks against the chip) the programmed weights themselves."""
    device = PRESETS["charan2020-jxcdc"]()
    w = torch.randn(6, 20)
    outs = {}
    for s in (None, 1.0, 0.25, 0.0):
        noise = DeviceNoise(device, "offset", torch.Generator().manual_seed(5))
        if s is not None:
            noise.strength = s
        outs[s] = noise(w).detach()
    assert torch.equal(outs[None], outs[1.0])
    assert not torch.allclose(outs[1.0], w)
    torch.testing.assert_close(outs[0.25] - w, 0.25 * (outs[1.0] - w), rtol=0, atol=1e-6)
    assert torch.equal(outs[0.0], w)


def test_weight_clip_bounds_every_column_of_the_student(teacher) -> None:
    device = PRESETS["charan2020-jxcdc"]()

    def worst(model) -> float:
        ratios = []
        for _, layer in mapped_layers(model):
            flat = layer.weight.detach().reshape(layer.weight.shape[0], -1)
            ratios.append((flat.abs().max(1).values / flat.pow(2).mean(1).sqrt()).max())
        return float(max(ratios))

    clipped, info = distill(teacher.model, teacher.dataset, device, XbarConfig(),
                            KDConfig(epochs=1, weight_clip=1.5), seed=0)
    # the bound is 1.5 x the RMS before the clip, which the clip itself lowers a little
    assert worst(clipped) <= 1.5 * 1.02
    free, _ = distill(teacher.model, teacher.dataset, device, XbarConfig(),
                      KDConfig(epochs=1, weight_clip=None), seed=0)
    assert worst(free) > 2
    assert info["weight_clip"] == 1.5 and info["validation_images"] == 144


def test_student_selection_never_looks_at_the_test_set(teacher) -> None:
    """Scrambling the test labels changes nothing the student is chosen by."""
    device = PRESETS["radar-2bpc"]()
    recipe = KDConfig(epochs=3, selection="best", noise_warmup=0.0)
    data = teacher.dataset
    scrambled = dataclasses.replace(data, y_test=np.roll(data.y_test, 1))
    a, info_a = distill(teacher.model, data, device, XbarConfig(), recipe, seed=0)
    b, info_b = distill(teacher.model, scrambled, device, XbarConfig(), recipe, seed=0)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert info_a["selected_epoch"] == info_b["selected_epoch"] in (1, 2, 3)
    assert len(info_a["val_history"]) == 3
    assert info_a["val_history"][info_a["selected_epoch"] - 1] == max(info_a["val_history"])
    assert info_a["learned"] == info_b["learned"]


def test_a_device_no_student_learns_is_reported_as_such(teacher) -> None:
    _, info = distill(teacher.model, teacher.dataset, HOPELESS, XbarConfig(), KDConfig(epochs=2),
                      seed=0)
    assert info["learned"] is False
    assert info["reason"].startswith("the student did not learn on this device (noisy "
                                     "accuracy ")
    assert "on held-out training data, teacher's" in info["reason"]


def test_compare_says_when_the_student_did_not_learn(tmp_path, capsys) -> None:
    device = tmp_path / "hopeless.toml"
    device.write_text('[device]\nname = "hopeless"\ng_min_us = 1.0\ng_max_us = 100.0\n'
                      'n_levels = 4\nvariation = "gaussian"\nsigma = 3.0\n'
                      'sigma_reference = "range"\n')
    args = ["compare", "--model", "digits-cnn", "--dataset", "digits", "--device", str(device),
            "--methods", "software,one-shot,kd", "--chips", "1", "--kd-epochs", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "KD: the student did not learn on this device (noisy accuracy " in out
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kd"]["learned"] is False
    assert doc["kd"]["reason"].startswith("the student did not learn on this device")


def test_compare_passes_the_recipe_flags(capsys) -> None:
    args = ["compare", "--model", "digits-cnn", "--dataset", "digits", "--device",
            "charan2020-jxcdc", "--methods", "software,kd", "--chips", "1", "--kd-epochs", "1",
            "--kd-lr", "0.002", "--kd-alpha", "0.7", "--kd-temperature", "3",
            "--kd-noise-warmup", "0", "--kd-weight-clip", "0", "--kd-draws", "2", "--json"]
    assert main(args) == 0
    kd = json.loads(capsys.readouterr().out)["kd"]
    assert (kd["learning_rate"], kd["alpha"], kd["temperature"], kd["noise_warmup"],
            kd["weight_clip"], kd["draws"]) == (0.002, 0.7, 3.0, 0.0, None, 2)


@pytest.mark.parametrize("flag,value,message", [
    ("--kd-lr", "-1", "KDConfig.learning_rate = -1.0 is invalid; allowed: > 0"),
    ("--kd-alpha", "1.5", "KDConfig.alpha = 1.5 is invalid; allowed: [0, 1]"),
    ("--kd-temperature", "nan", "KDConfig.temperature = nan is invalid"),
    ("--kd-noise-warmup", "1", "KDConfig.noise_warmup = 1.0 is invalid; "
                               "allowed: [0, 1) (a fraction of the training steps)"),
    ("--kd-weight-clip", "-2", "KDConfig.weight_clip = -2.0 is invalid; "
                               "allowed: > 0 (None, or 0 on the command line, turns it off"),
])
def test_compare_refuses_a_bad_recipe_naming_the_flag(capsys, flag, value, message) -> None:
    """The library names the field; the command line adds the flag that set it."""
    assert main(["compare", "--methods", "kd", flag, value]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in line and line.endswith(f"(option {flag})"), line


@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("batch_size", 1.5), ("draws", True), ("validation_draws", 0),
    ("learning_rate", float("inf")), ("temperature", 0.0), ("alpha", -0.1),
    ("noise_warmup", -0.1), ("weight_clip", 0.0), ("selection", "first"),
    ("validation_fraction", 0.0), ("validation_fraction", 0.6),
])
def test_kd_config_refuses_invalid_values(field: str, value) -> None:
    with pytest.raises(ConfigError, match=rf"KDConfig\.{field}\b.* = {value!r} is invalid; "
                                          "allowed: "):
        KDConfig(**{field: value})


def test_kd_config_from_options() -> None:
    assert kd_config(epochs=4, alpha=None, weight_clip=0) == KDConfig(epochs=4, weight_clip=None)
    assert kd_config() == KDConfig()


@pytest.mark.parametrize("student,teacher_noisy,teacher_clean,learned,words", [
    (0.97, 0.97, 0.98, True, "the device leaves little to recover"),
    (0.90, 0.60, 1.00, True, "the student learned"),
    (0.61, 0.60, 1.00, False, "no better than the teacher programmed as it is"),
    (0.40, 0.20, 1.00, False, "below 55.0 %, halfway from chance"),
])
def test_judge(student, teacher_noisy, teacher_clean, learned, words) -> None:
    verdict, reason = judge(student, teacher_noisy, teacher_clean, 10)
    assert verdict is learned and words in reason
    assert f"noisy accuracy {100 * student:.1f} % on held-out training data" in reason
    assert LEARN_MARGIN == 0.02


def test_distill_refuses_a_training_set_too_small_to_hold_out(teacher) -> None:
    data = teacher.dataset
    tiny = dataclasses.replace(data, x_train=data.x_train[:1], y_train=data.y_train[:1])
    with pytest.raises(DataError, match="knowledge distillation needs at least 2 training "
                                        "images .* data set 'digits' has 1"):
        distill(teacher.model, tiny, PRESETS["ideal"](), XbarConfig(), KDConfig(epochs=1))
