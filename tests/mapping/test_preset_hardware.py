"""One preset, one chip: the weight mapping a device's source fixes is part of the device
(``Device.weight_mapping``). ``--device charan2020-dac`` alone is the paper's setting, the
Python API and ``xbar simulate`` give the same chip and accuracy for every preset, and
hardware that maps weights otherwise is refused with both mappings named, everywhere a chip
is programmed (``Chip.program``, KD, ``compare``, sweeps, the command line, chip files)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import xbar
from xbar.config import HARDWARE_PRESETS, XbarConfig, load_hardware
from xbar.devices import load_device_file, save_device
from xbar.devices.presets import PRESETS, implied_hardware, preset, preset_hardware
from xbar.errors import ConfigError, FileFormatError
from xbar.mapping.chip import Chip
from xbar.mapping.cli.common import hardware_spec
from xbar.mapping.cli.main import main
from xbar.mapping.data.workflow import calibration_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEED = 3          # not 0: the same seed on both sides, whichever it is
TEST_IMAGES = 90
FIXED = [n for n in PRESETS if PRESETS[n]().weight_mapping]
OTHER = {"offset": "default", "differential": "one-cell"}   # hardware that contradicts


def test_the_mapping_is_part_of_the_preset() -> None:
    assert FIXED == ["charan2020-dac", "lv2024-mlc"]
    for name in PRESETS:
        device = preset(name)
        hw = implied_hardware(device)
        assert hw in HARDWARE_PRESETS and preset_hardware(name) == hw
        mapping = load_hardware(hw).xbar.array.weight_mapping
        assert mapping == (device.weight_mapping or "differential")
    assert preset("charan2020-dac").weight_mapping == "offset"
    assert preset("charan2020-dac").to_dict()["weight_mapping"] == "offset"
    assert xbar.implied_hardware(preset("lv2024-mlc")) == "one-cell"
    with pytest.raises(ConfigError, match="unknown device preset"):
        preset_hardware("nope")
    with pytest.raises(ConfigError, match="weight_mapping"):
        preset("ideal").replace(weight_mapping="one-cell")


@pytest.fixture(scope="module")
def digits():
    data = xbar.load_dataset("digits")
    model, _ = xbar.train_model("digits-cnn", data)   # the CLI's teacher: zoo, seed 0
    return data, model


@pytest.mark.parametrize("name", list(PRESETS))
def test_api_and_cli_give_the_same_chip(name: str, digits,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data, model = digits
    device = xbar.preset(name)
    hw = xbar.load_hardware(xbar.implied_hardware(device))
    chip = xbar.Chip.program(model, device, hw.xbar, seed=SEED)
    chip.calibrate(calibration_inputs(data, seed=SEED))
    api = chip.evaluate(data.x_test[:TEST_IMAGES], data.y_test[:TEST_IMAGES])
    assert main(["simulate", "--model", "digits-cnn", "--dataset", "digits", "--device", name,
                 "--seed", str(SEED), "--test-limit", str(TEST_IMAGES), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hardware"]["array"]["weight_mapping"] == hw.xbar.array.weight_mapping
    assert out["device_parameters"]["weight_mapping"] == device.weight_mapping
    assert out["n_cells"] == chip.n_cells
    assert out["hardware_accuracy"] == api


@pytest.mark.parametrize("name", FIXED)
def test_a_contradiction_is_refused_with_both_mappings_named(
        name: str, digits, capsys: pytest.CaptureFixture[str]) -> None:
    data, model = digits
    device = preset(name)
    fixed, other_hw = device.weight_mapping, OTHER[device.weight_mapping]
    other = load_hardware(other_hw).xbar
    words = (f"'{name}'", f"weight_mapping = '{fixed}'",
             f"array.weight_mapping = '{other.array.weight_mapping}'", "weight_mapping=\"\"")
    with pytest.raises(ConfigError) as err:
        Chip.program(model, device, other, seed=0)
    assert all(w in str(err.value) for w in words), str(err.value)
    with pytest.raises(ConfigError, match="fixes weight_mapping"):   # KD's model of the chip
        xbar.distill(model, data, device, other, xbar.KDConfig(epochs=1))
    with pytest.raises(ConfigError, match="fixes weight_mapping"):   # before any KD work
        xbar.compare(model, data, device, load_hardware(other_hw),
                     xbar.CompareSettings(chips=1, methods=("software", "one-shot", "kd")))
    with pytest.raises(ConfigError, match="fixes weight_mapping"):
        xbar.AnalogMatrix.program(np.ones((3, 4)), device, other, np.random.default_rng(0))
    # the command line: the implied hardware, an agreeing --hw, and a contradicting one
    assert hardware_spec(name, None)[0] == implied_hardware(device)
    assert hardware_spec(name, implied_hardware(device)) == (implied_hardware(device),) * 2
    assert main(["simulate", "--device", name, "--hw", other_hw, "--test-limit", "5"]) == 2
    err_text = capsys.readouterr().err
    assert f"--hw {other_hw} has array.weight_mapping" in err_text
    assert all(w in err_text for w in words) and "Traceback" not in err_text
    # the way out the message gives: a copy of the cell that fixes no mapping
    free = device.replace(weight_mapping="")
    assert Chip.program(model, free, other, seed=0).n_cells > 0
    assert hardware_spec(free, other_hw) == (other_hw, other_hw)


def test_hardware_spec_and_files(tmp_path: Path) -> None:
    assert hardware_spec("charan2020-dac", None)[0] == "one-cell"
    assert hardware_spec("charan2020-dac", None)[1].startswith(
        "one-cell (implied by --device charan2020-dac")
    assert hardware_spec("charan2020-jxcdc", None) == (None, "default")
    assert hardware_spec("charan2020-jxcdc", "one-cell") == ("one-cell", "one-cell")
    toml = tmp_path / "mine.toml"   # a hand-written device file may fix a mapping too
    toml.write_text('[device]\nname = "mine"\ng_min_us = 1.0\ng_max_us = 50.0\n'
                    'n_levels = 8\nweight_mapping = "offset"\n')
    assert hardware_spec(str(toml), None)[0] == "one-cell"
    hw_file = tmp_path / "hw.toml"   # a hardware file that agrees
    hw_file.write_text('[array]\nweight_mapping = "offset"\nrows = 64\n')
    assert hardware_spec(str(toml), str(hw_file)) == (str(hw_file), str(hw_file))
    with pytest.raises(ConfigError, match=f"--hw {hw_file} has array.weight_mapping = 'offset'"):
        hardware_spec(xbar.Device(weight_mapping="differential"), str(hw_file))
    # HDF5 device files carry the field; files older than it load with no mapping fixed
    path = tmp_path / "dac.h5"
    save_device(preset("charan2020-dac"), path)
    assert load_device_file(path).device == preset("charan2020-dac")
    with h5py.File(path, "r+") as f:
        del f["device"].attrs["weight_mapping"]
    with pytest.raises(FileFormatError, match="missing device field.*weight_mapping"):
        load_device_file(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 2
    assert load_device_file(path).device == preset("charan2020-dac").replace(weight_mapping="")


def test_chip_files_keep_the_mapping(tmp_path: Path) -> None:
    from xbar.mapping.data.zoo import build_model

    torch.manual_seed(0)
    model = build_model("digits-cnn")
    chip = Chip.program(model, preset("lv2024-mlc"), load_hardware("one-cell").xbar, 1,
                        "column", "digits-cnn", (1, 8, 8))
    path = tmp_path / "chip.h5"
    chip.save(path)
    assert Chip.load(path, model).device.weight_mapping == "offset"
    with h5py.File(path, "r+") as f:     # a file whose hardware contradicts its device
        f["hardware"].attrs["array.weight_mapping"] = "differential"
    with pytest.raises(FileFormatError, match=f"{path}.*fixes weight_mapping = 'offset'"):
        Chip.load(path, model)
    chip.save(path)
    with h5py.File(path, "r+") as f:     # a version 2 file predates the field
        del f["device"].attrs["weight_mapping"]
        f.attrs["format_version"] = 2
    loaded = Chip.load(path, model)
    assert loaded.device.weight_mapping == ""
    assert np.array_equal(loaded.layers[0].matrix.g_us, chip.layers[0].matrix.g_us)


def test_sweeps_take_the_implied_hardware_and_refuse_contradictions() -> None:
    from xbar.mapping.sweep.params import resolve_points, sweep_params
    from xbar.mapping.sweep.run import SweepSpec, plan_sweep

    plan = plan_sweep(SweepSpec(param="sigma", values="0.3,0.5", device="charan2020-dac",
                                methods=("one-shot",)))
    assert plan.hardware["array"]["weight_mapping"] == "offset"
    device = preset("charan2020-dac")
    with pytest.raises(ConfigError, match="array.weight_mapping = 'differential'.*refused|"
                                          "refused.*array.weight_mapping = 'differential'"):
        resolve_points("array.weight_mapping", "offset,differential", device,
                       load_hardware("one-cell").xbar, 0.05)
    _, points = resolve_points("array.weight_mapping", "offset,differential",
                               device.replace(weight_mapping=""), XbarConfig(), 0.05)
    assert [p.xbar.array.weight_mapping for p in points] == ["offset", "differential"]
    with pytest.raises(ConfigError, match="fixes weight_mapping = 'offset'"):
        resolve_points("sigma", "0.1", device, XbarConfig(), 0.05)
    assert "weight_mapping" not in sweep_params()   # a label of the source, not a knob
