"""One command-line vocabulary (issue 21 item 5): the defaults are the settings dataclasses',
an option means the same in every command, old spellings still work with one warning line,
and a library error naming a parameter gets the flag that set it."""

from __future__ import annotations

import argparse
import json

import pytest

from xbar.backends import DEFAULT_BACKEND
from xbar.config import HardwareConfig
from xbar.devices import PRESETS
from xbar.devices.presets import DEFAULT_DEVICE
from xbar.mapping.cli.common import with_flags
from xbar.mapping.cli.main import build_parser, main
from xbar.mapping.data.zoo import DEFAULT_MODEL
from xbar.mapping.recovery.compare import CompareSettings
from xbar.mapping.recovery.reproduce import ReproduceSettings
from xbar.mapping.sweep.run import SweepSpec


def parser_of(command: str) -> argparse.ArgumentParser:
    """The parser of ``xbar COMMAND`` (its options registered)."""
    sub = next(a for a in build_parser([command])._actions
               if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def defaults(command: str, *args: str) -> argparse.Namespace:
    return parser_of(command).parse_args(list(args))


def test_compare_defaults_are_compare_settings() -> None:
    s, a = CompareSettings(), defaults("compare")
    assert (a.chips, a.seed, a.sram_ratio, a.steps, a.adapt_batch, a.backend) == (
        s.chips, s.seed, s.sram_ratio, s.adapt.steps, s.adapt.batch_size, s.backend)
    assert (a.kd_epochs, a.kd_lr, a.kd_alpha, a.kd_temperature, a.kd_noise_warmup,
            a.kd_draws) == (s.kd.epochs, s.kd.learning_rate, s.kd.alpha, s.kd.temperature,
                            s.kd.noise_warmup, s.kd.draws)
    assert a.kd_weight_clip == s.kd.weight_clip and tuple(a.methods.split(",")) == s.methods
    assert (a.model, a.device, a.hw, a.dataset, a.out) == (DEFAULT_MODEL, DEFAULT_DEVICE, None,
                                                           None, None)


def test_demo_changes_only_what_defines_it() -> None:
    compare, demo = vars(defaults("compare")), vars(defaults("demo"))
    changed = {k: v for k, v in demo.items() if compare[k] != v}
    assert changed == {"dataset": "digits", "device": "charan2020-dac", "hw": "one-cell",
                       "chips": 2, "out": "results/demo.h5"}


def test_sweep_defaults_are_sweep_spec() -> None:
    a = defaults("sweep")
    assert (a.model, a.device, a.chips, a.seed, a.teacher_seed, a.sram_ratio, a.steps,
            a.adapt_batch, a.kd_epochs) == (
        SweepSpec.model, SweepSpec.device, SweepSpec.chips, SweepSpec.seed,
        SweepSpec.teacher_seed, SweepSpec.sram_ratio, SweepSpec.steps, SweepSpec.batch,
        SweepSpec.kd_epochs)
    assert tuple(a.methods.split(",")) == SweepSpec.methods


def test_reproduce_defaults_are_reproduce_settings() -> None:
    d, a = ReproduceSettings(), defaults("reproduce")
    assert (a.chips, a.seed, a.adapt_batch, a.kd_epochs, a.cifar_test_limit) == (
        d.chips, d.seed, d.batch, d.kd_epochs, d.cifar_test_limit)
    assert a.steps is None and a.sram_ratio is None  # ReproduceSettings' own (or --quick's)


@pytest.mark.parametrize("command", ["simulate", "compare", "mvm", "sweep"])
def test_one_device_default_and_one_hw_option(command: str) -> None:
    p = parser_of(command)
    assert p.get_default("device") == DEFAULT_DEVICE and DEFAULT_DEVICE in PRESETS
    assert p.get_default("backend") == DEFAULT_BACKEND == CompareSettings().backend
    assert SweepSpec.device == DEFAULT_DEVICE
    hw = next(a for a in p._actions if "--hw" in a.option_strings)
    assert hw.metavar == "PRESET|FILE"


def test_latency_takes_a_hardware_preset_as_well_as_a_file(capsys) -> None:
    hw = next(a for a in parser_of("latency")._actions if "--hw" in a.option_strings)
    assert hw.metavar == "PRESET|FILE"
    assert main(["latency", "--model", "digits-cnn", "--hw", "one-cell", "--json"]) == 0
    one_cell = json.loads(capsys.readouterr().out)
    assert main(["latency", "--model", "digits-cnn", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert one_cell["hardware"]["array"]["weight_mapping"] == "offset"
    assert default["hardware"]["array"]["weight_mapping"] == "differential"


@pytest.mark.parametrize("command", ["compare", "sweep", "reproduce"])
def test_batch_is_the_adaptation_batch_only_as_a_deprecated_alias(command: str, capsys) -> None:
    assert defaults(command, "--batch", "7").adapt_batch == 7
    assert capsys.readouterr().err.strip() == (
        "xbar: warning: --batch is deprecated and will be removed; use --adapt-batch")
    assert defaults(command, "--adapt-batch", "7").adapt_batch == 7
    assert capsys.readouterr().err == ""


def test_reproduce_fractions_is_the_sram_ratio(capsys) -> None:
    assert defaults("reproduce", "--fractions", "0.01,0.05").sram_ratio == "0.01,0.05"
    assert "--fractions is deprecated and will be removed; use --sram-ratio" in \
        capsys.readouterr().err
    assert defaults("reproduce", "--sram-ratio", "0.02").sram_ratio == "0.02"


def test_device_list_show_and_the_old_devices(tmp_path, capsys) -> None:
    assert main(["device", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in listed] == list(PRESETS)
    assert main(["devices", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == listed
    assert err.strip() == ("xbar: warning: xbar devices is deprecated and will be removed; "
                           "use xbar device list")
    assert main(["device", "show", "wan2022", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [d for d in listed if d["name"] == "wan2022"]
    path = tmp_path / "mine.toml"
    path.write_text('[device]\nname = "mine"\ng_min_us = 1.0\ng_max_us = 100.0\n'
                    'n_levels = 4\nvariation = "none"\n')
    assert main(["device", "show", str(path)]) == 0
    assert capsys.readouterr().out.startswith("mine ")
    assert main(["devices", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("mine ") and "use xbar device show FILE" in err
    assert main(["device", "show", "no-such-device"]) == 2
    assert "no-such-device" in capsys.readouterr().err


def test_with_flags_adds_the_option_behind_a_named_parameter() -> None:
    flags = {"AdaptConfig.steps": "--steps", "ArrayConfig.*": "--hw"}
    assert with_flags("AdaptConfig.steps = 0 is invalid", flags) == (
        "AdaptConfig.steps = 0 is invalid (option --steps)")
    assert with_flags("x.toml, section [array]: ArrayConfig.rows = 0 is invalid", flags
                      ).endswith("(option --hw)")
    named = "--steps 0: AdaptConfig.steps = 0"
    assert with_flags(named, flags) == named
    assert with_flags("KDConfig.epochs = 0 is invalid", flags) == "KDConfig.epochs = 0 is invalid"


def test_a_hardware_parameter_error_names_hw(tmp_path, capsys) -> None:
    path = tmp_path / "hw.toml"
    path.write_text("[programming]\nmax_pulses = -1\n")
    assert main(["mvm", "--shape", "4x4", "--batch", "2", "--hw", str(path)]) == 2
    line = capsys.readouterr().err.strip()
    assert "ProgrammingConfig.max_pulses = -1 is invalid" in line
    assert line.endswith("(option --hw)"), line
    assert "programming" in {f.name for f in HardwareConfig.__dataclass_fields__.values()}


@pytest.mark.parametrize("args,flag", [
    (["compare", "--steps", "0"], "--steps"), (["compare", "--adapt-batch", "0"], "--adapt-batch"),
    (["compare", "--sram-ratio", "1.5"], "--sram-ratio"),
    (["reproduce", "--quick", "--kd-epochs", "0"], "--kd-epochs"),
])
def test_settings_errors_name_the_flag(args: list[str], flag: str, capsys) -> None:
    assert main(args) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith(f"(option {flag})") and " is invalid" in line, line


def test_with_flags_names_the_option_behind_a_function_argument() -> None:
    flags = {"load_hardware(spec)": "--hw", "resolve_device(spec)": "--device",
             "AdaptConfig.steps": "--steps"}
    text = "load_hardware(spec='x.toml'): unknown section [arary]"
    assert with_flags(text, flags) == text + " (option --hw)"
    two = ("load_hardware(spec='d.h5'): d.h5 is a device file (HDF5), not a hardware file; "
           "resolve_device(spec=...) reads it")
    assert with_flags(two, flags) == two + (" (options --hw for load_hardware(spec), --device "
                                            "for resolve_device(spec))")
    assert with_flags("load_hardware(spec='x')", {}) == "load_hardware(spec='x')"
    assert with_flags("load_model_spec(spec='x')", flags) == "load_model_spec(spec='x')"


def test_command_flags_are_the_options_the_command_takes() -> None:
    from xbar.mapping.cli.common import command_flags

    latency = command_flags(argparse.Namespace(), {"--hw", "--model", "--input-shape"})
    assert latency["load_hardware(spec)"] == latency["ArrayConfig.*"] == "--hw"
    assert latency["layer_specs(input_shape)"] == "--input-shape"
    assert "resolve_device(spec)" not in latency and "load_teacher(dataset_name)" not in latency
    own = command_flags(argparse.Namespace(flags={"SweepSpec.chips": "--chips"}), ())
    assert own == {"SweepSpec.chips": "--chips"}


def test_a_model_file_without_a_data_set_names_dataset(tmp_path, capsys) -> None:
    import torch

    path = tmp_path / "m.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), path)
    assert main(["simulate", "--model", str(path)]) == 2
    line = capsys.readouterr().err.strip()
    assert (f"load_teacher(dataset_name=None) is refused with the model file '{path}': a zoo "
            "model names its own data set, a file does not; give the data set it was trained "
            "on (digits, mnist, cifar10) (option --dataset)") in line, line
    assert main(["simulate", "--model", str(path), "--dataset", "emnist"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.endswith("load_dataset(name='emnist'): unknown data set; valid names: digits, "
                         "mnist, cifar10 (option --dataset)"), line


def test_a_device_file_as_hw_names_both_options(tmp_path, capsys) -> None:
    from xbar.devices import preset, save_device

    path = tmp_path / "dev.h5"
    save_device(preset("wan2022"), path)
    assert main(["simulate", "--hw", str(path), "--test-limit", "10"]) == 2
    line = capsys.readouterr().err.strip()
    assert f"load_hardware(spec='{path}'): {path} is a device file (HDF5)" in line
    assert line.endswith("resolve_device(spec=...) reads it (options --hw for "
                         "load_hardware(spec), --device for resolve_device(spec))"), line


def test_sweep_errors_name_the_options(tmp_path, capsys) -> None:
    out = str(tmp_path / "s.h5")
    assert main(["sweep", "--device", "radar-2bpc", "--param", "sigma", "--values", "0.1",
                 "--out", out]) == 2
    line = capsys.readouterr().err.strip()
    assert "does not read sigma" in line and line.endswith(
        "pick another device (resolve_points(device=...)) or parameter "
        "(resolve_points(name=...)) (options --device for resolve_points(device), --param "
        "for resolve_points(name))"), line
    assert main(["sweep", "--param", "sigma", "--values", "0.1,0.1", "--out", out]) == 2
    line = capsys.readouterr().err.strip()
    assert line.endswith("resolve_points(values=...) repeats 0.1; give each value once "
                         "(option --values)"), line
    assert main(["sweep", "--param", "sigma", "--values", "0.1", "--workers", "0",
                 "--out", out]) == 2
    line = capsys.readouterr().err.strip()
    assert line.endswith("run_sweep(workers=0) is invalid; allowed: an integer >= 1 "
                         "(option --workers)"), line


def test_name_options_puts_the_option_in_a_report_line() -> None:
    from xbar.mapping.cli.common import name_options
    from xbar.mapping.cli.compare import FLAGS
    from xbar.mapping.cli.reproduce import FLAGS as REPRODUCE_FLAGS

    line = ("sparse words cannot undo errors spread over every weight (try a larger "
            "CompareSettings.sram_ratio or AdaptConfig.steps).")
    assert name_options(line, FLAGS) == ("sparse words cannot undo errors spread over every "
                                         "weight (try a larger --sram-ratio or --steps).")
    assert name_options("ArrayConfig.rows = 0", {"ArrayConfig.*": "--hw"}) == \
        "ArrayConfig.rows = 0"
    note = ("CIFAR-10 runs with ReproduceSettings.cifar (VGG-16 where ReproduceSettings.backend "
            "is cuda, a width-reduced VGG-16 otherwise)")
    assert name_options(note, REPRODUCE_FLAGS) == (
        "CIFAR-10 runs with --cifar (VGG-16 where --backend is cuda, a width-reduced VGG-16 "
        "otherwise)")


def test_the_story_names_fields_the_command_names_options() -> None:
    from xbar.mapping.recovery.compare import story

    m = {"software": {"accuracy": 0.98}, "bias-only": {"accuracy": 0.90},
         "rsa": {"accuracy": 0.89, "sram_fraction": 0.05}}
    lines = story({"methods": m, "kd": {}})
    said = [x for x in lines if "try a larger" in x]
    assert said and all("CompareSettings.sram_ratio or AdaptConfig.steps" in x and "--" not in x
                        for x in said), lines
