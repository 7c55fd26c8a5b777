"""The hardware configuration root: one loader for presets and TOML files, the parameter base
(validation, dicts, TOML, tables from field metadata) and the hardware-file cases a user hits."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import (ADCConfig, AdaptationConfig, ArrayConfig, DACConfig, HARDWARE_SECTIONS,
                         HardwareConfig, ProgrammingConfig, TimingConfig, XbarConfig, load_hardware,
                         parameter_sections, parameters_markdown)
from xbar.devices import Device, preset, save_device
from xbar.errors import ConfigError, FileFormatError, MissingFileError
from xbar.mapping.cli.main import main
from xbar.params import ParamSpec, check_float, check_int, param_rows
from xbar.timing import LayerSpec, simulate

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str, name: str = "hw.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- the root and loader
def test_presets_and_defaults() -> None:
    assert load_hardware(None) == HardwareConfig() == load_hardware("default")
    one = load_hardware("one-cell")
    assert one.array.weight_mapping == "offset" and one.timing == TimingConfig()
    assert one.xbar == XbarConfig(ArrayConfig(weight_mapping="offset"))
    with pytest.raises(ConfigError, match=r"^load_hardware\(spec='two-cell'\): 'two-cell' is "
                                          r"neither a hardware preset \(default, one-cell"):
        load_hardware("two-cell")


def test_every_section_round_trips_through_toml(tmp_path: Path) -> None:
    hw = HardwareConfig(ArrayConfig(rows=64, cols=32, weight_mapping="offset"),
                        DACConfig(6, 2), ADCConfig(bits=5, range_mode="full-scale"),
                        TimingConfig(clock_ghz=1.28, duplicate_layers=("a", "b")),
                        ProgrammingConfig(t_pulse_ns=4.5e6, driver_sync="independent"),
                        AdaptationConfig(sram_word_bits=4, overlap_updates=False))
    path = _write(tmp_path, hw.to_toml())
    assert load_hardware(path) == hw
    assert HardwareConfig.from_dict(hw.to_dict()) == hw
    assert [line for line in hw.to_toml().splitlines() if line.startswith("[")] == [
        f"[{s}]" for s in HARDWARE_SECTIONS]


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"^load_hardware\(spec='.*none.toml'\): "
                                               r"hardware file '.*none.toml' does not exist"):
        load_hardware(tmp_path / "none.toml")
    with pytest.raises(FileFormatError, match=r"bad.toml: not valid TOML"):
        load_hardware(_write(tmp_path, "[array\n", "bad.toml"))
    with pytest.raises(FileFormatError, match="is a directory"):
        load_hardware(tmp_path)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError, match="bin.toml: not a text file"):
        load_hardware(tmp_path / "bin.toml")


# ---------------------------------------------------------------------- hardware-file cases
@pytest.mark.parametrize("text, says", [
    # a section that is not a table
    ("array = 5\n", r"hw.toml'\): \[array\] = 5 is not a table; write it as a section"),
    # a misspelled section (was silently ignored)
    ("[arary]\nrows = 64\n", r"hw.toml'\): unknown section \[arary\] \(did you mean \[array\]\?\); "
                             r"valid sections: \[array\], \[dac\], \[adc\], \[timing\], "
                             r"\[programming\], \[adaptation\]"),
    ("[bogus]\nx = 1\n", r"unknown section \[bogus\]; valid sections: \[array\]"),
    ("rows = 64\n", r"unknown top-level key 'rows' = 64 \(every field belongs in a section\)"),
    # an unknown field
    ("[adc]\nbitz = 4\n", r"hw.toml'\): unknown field\(s\) \['bitz'\] in \[adc\]; valid fields: "
                          r"\['bits', 'calibration_headroom', 'cols_per_adc', 'range_mode'\]"),
    # booleans where numbers belong, and the reverse
    ("[array]\nrows = true\n", r"hw.toml'\), section \[array\]: ArrayConfig.rows = True is "
                               r"invalid; allowed: an integer in \[1, 65536\]"),
    ("[timing]\nclock_ghz = false\n", r"section \[timing\]: TimingConfig.clock_ghz = False is "
                                      r"invalid; allowed: \(0, 100\] GHz"),
    ("[timing]\noverlap_read_convert = 1\n", r"TimingConfig.overlap_read_convert = 1 is "
                                             r"invalid; allowed: true or false"),
    ("[dac]\ninput_bits = 8.0\n", r"DACConfig.input_bits = 8.0 is invalid; allowed: an integer"),
    ("[programming]\nt_pulse_ns = nan\n", r"section \[programming\]: ProgrammingConfig."
                                          r"t_pulse_ns = nan is invalid"),
    ("[timing]\nt_read_ns = inf\n", r"TimingConfig.t_read_ns = inf is invalid"),
    ("[adaptation]\nsram_word_bits = 1\n", r"section \[adaptation\]: AdaptationConfig."
                                           r"sram_word_bits = 1 is invalid; allowed: an integer "
                                           r"in \[2, 16\] \(signed words\)"),
    ("[timing]\nduplicate_layers = [1]\n", r"TimingConfig.duplicate_layers = \[1\] is invalid; "
                                           r"allowed: a list of non-empty strings"),
])
def test_bad_hardware_files_name_file_section_field_value_and_range(
        tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        load_hardware(_write(tmp_path, text))
    assert str(refused.value).startswith("load_hardware(spec='")  # the argument, and the file


def test_a_device_file_given_as_hardware_says_what_reads_it(tmp_path: Path) -> None:
    toml = _write(tmp_path, '[device]\nname = "mine"\ng_min_us = 2.0\ng_max_us = 60.0\n',
                  "dev.toml")
    with pytest.raises(FileFormatError, match=r"^load_hardware\(spec='.*dev.toml'\) has a "
                                              r"\[device\] section: this is a device file, not "
                                              r"a hardware file \(which holds \[array\], .*\); "
                                              r"resolve_device\(spec=...\) reads it$"):
        load_hardware(toml)
    h5 = tmp_path / "dev.h5"
    save_device(preset("charan2020-jxcdc"), h5)
    with pytest.raises(FileFormatError, match=r"^load_hardware\(spec='.*dev.h5'\): .*dev.h5 is "
                                              r"a device file \(HDF5\), not a hardware file "
                                              r"\(.*\); resolve_device\(spec=...\) reads it$"):
        load_hardware(h5)
    assert "--" not in str(pytest.raises(FileFormatError, load_hardware, h5).value)
    other = tmp_path / "other.h5"
    import h5py
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "xbar-sim sweep"
    with pytest.raises(FileFormatError, match=r"other.h5 is an HDF5 file \(of kind 'xbar-sim "
                                              r"sweep'\), not a hardware file"):
        load_hardware(other)


@pytest.mark.parametrize("command", [
    ["mvm", "--shape", "4x4", "--batch", "2"],
    ["latency", "--model", "lenet5"],
])
def test_cli_refuses_bad_hardware_files_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    device = command[0] == "mvm"  # takes --device: the CLI names where a device goes
    for text, says in (("[arary]\nrows = 64\n", "unknown section [arary]"),
                       ('[device]\nname = "x"\n', "resolve_device(spec=...) reads it")):
        path = _write(tmp_path, text)
        assert main([*command, "--hw", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and says in err and "Traceback" not in err
        flags = ("(options --hw for load_hardware(spec), --device for resolve_device(spec))"
                 if device and "resolve_device" in says else "(option --hw)")
        assert err.strip().endswith(flags), err


def test_unknown_duplicate_layers_are_refused_when_the_network_is_known(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conv = LayerSpec("c1", "conv", 9, 4, (1, 8, 8), (8, 8), (3, 3), padding=(1, 1))
    fc = LayerSpec("fc", "linear", 256, 10, (256, 1, 1), (1, 1))
    simulate([conv, fc], HardwareConfig(timing=TimingConfig(duplication=2, duplicate_layers=("c1",
                                                                                             ))))
    with pytest.raises(ConfigError, match=r"'conv9' is not a conv layer of it; allowed: names "
                                          r"of its conv layers, 'c1'"):
        simulate([conv, fc], HardwareConfig(timing=TimingConfig(duplication=2,
                                                                duplicate_layers=("conv9",))))
    with pytest.raises(ConfigError, match=r"'fc' is not a conv layer of it \('fc': not conv\)"):
        simulate([conv, fc], HardwareConfig(timing=TimingConfig(duplication=2,
                                                                duplicate_layers=("fc",))))
    path = _write(tmp_path, '[timing]\nduplication = 2\nduplicate_layers = ["0", "conv9"]\n')
    assert main(["latency", "--model", "lenet5", "--hw", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--hw {path}, section [timing]" in err
    assert "'conv9' is not a conv layer" in err and "'0', '3'" in err


# ---------------------------------------------------------------------- sram_word_bits
def _tiny_chip(device: Device) -> object:
    from xbar.mapping.chip import Chip

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    chip = Chip.program(model, device, XbarConfig(), seed=0, input_shape=(1, 4, 4))
    chip.calibrate(np.random.default_rng(0).random((16, 1, 4, 4), dtype=np.float32))
    return chip


def test_sram_word_bits_sets_the_words_the_functional_model_uses() -> None:
    from xbar.mapping.recovery.techniques.sram import attach_sram

    chip = _tiny_chip(preset("ideal"))
    attach_sram(chip, 0.5, AdaptationConfig(sram_word_bits=3).sram_word_bits, seed=0)
    for layer in chip.layers:
        assert layer.sram_word_bits == 3
        layer.sram_code.data.fill_(100.0)          # far beyond what 3 bits hold
        codes = layer.sram_weights().detach() / layer.sram_step
        assert float(codes.abs().max()) == pytest.approx(3.0)   # 2**(3-1) - 1
        assert layer.sram_step == pytest.approx(float(layer.matrix.w_max.max()) / 3)
    with pytest.raises(ConfigError, match=r"sram_word_bits = 1 is invalid; allowed: an "
                                          r"integer in \[2, 16\]"):
        attach_sram(chip, 0.5, 1)


def test_hardware_file_sram_word_bits_drives_compare(tmp_path: Path) -> None:
    from xbar.mapping.data.datasets import load_dataset
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    digits = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    hw = load_hardware(_write(tmp_path, "[adaptation]\nsram_word_bits = 4\n"))
    settings = CompareSettings(chips=1, methods=("rsa",), adapt=AdaptConfig(steps=2,
                                                                            batch_size=8))
    out = compare(model, digits, preset("charan2020-jxcdc"), hw, settings)
    rsa = out["methods"]["rsa"]
    assert out["settings"]["sram_word_bits"] == 4
    assert rsa["sram_words"] > 0 and rsa["sram_bits"] == 4 * rsa["sram_words"]


# ---------------------------------------------------------------------- the parameter base
def test_validation_helpers_refuse_booleans_nan_and_non_integers() -> None:
    assert check_int("X", "n", np.int64(3), 1, 5) == 3
    for bad in (True, 2.0, "3", 9):
        with pytest.raises(ConfigError, match=r"X.n = .* is invalid; allowed: an integer in "
                                              r"\[1, 5\]"):
            check_int("X", "n", bad, 1, 5)
    assert check_float("X", "t", 2, 0, 10, "ns") == 2.0
    for bad in (False, math.nan, math.inf, 0.0, 11.0, "1"):
        with pytest.raises(ConfigError, match=r"allowed: \(0, 10\] ns"):
            check_float("X", "t", bad, 0, 10, "ns")
    spec = ParamSpec(str, choices=("a", "b"))
    assert spec.check("X", "c", "a") == "a"
    with pytest.raises(ConfigError, match=r"X.c = 'z' is invalid; allowed: one of \('a', 'b'\)"):
        spec.check("X", "c", "z")


def test_device_fields_are_declared_and_validated_from_metadata() -> None:
    with pytest.raises(ConfigError, match=r"Device.n_levels = True is invalid"):
        Device(n_levels=True)
    with pytest.raises(ConfigError, match=r"Device.levels_us = 5.0 is invalid; allowed: a "
                                          r"list of finite numbers in uS"):
        Device(n_levels=2, levels_us=5.0)
    with pytest.raises(ConfigError, match=r"Device.read_noise = nan is invalid"):
        Device(read_noise=float("nan"))
    assert Device(levels_us=np.linspace(1, 100, 16)).levels_us[-1] == 100.0


def test_every_field_has_unit_range_and_description() -> None:
    rows = param_rows(parameter_sections())
    declared = {(s, f.name) for s, k in parameter_sections() for f in dataclasses.fields(k)
                if f.init}
    assert {(r.section, r.name) for r in rows} == declared
    for r in rows:
        assert r.description and r.allowed and r.unit, r


def test_docs_parameter_table_is_generated_from_the_metadata() -> None:
    text = (REPO / "docs" / "parameters.md").read_text()
    assert text == parameters_markdown(), (
        "docs/parameters.md is stale: regenerate it with the command at its top")
    assert "| `sram_word_bits` | int | bits | `8` | an integer in [2, 16] (signed words) |" \
        in text
