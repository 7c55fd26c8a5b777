"""``--option METHOD.FIELD=VALUE`` of ``xbar compare`` and ``xbar sweep``: plug-in methods'
settings from the command line.

Each error case drives the real command line (``main([...])``: exit status 2 and one line
naming the option text); a valid option reaches the method (the spare rows it adds are
tested and programmed, so the test pass and the pulses grow); a sweep records its options
in the results file, and a resumed sweep with other options is refused (the configuration
hash covers them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbar.errors import ConfigError
from xbar.mapping.cli.options import option_fields, parse_options
from xbar.mapping.cli.main import main
from xbar.mapping.recovery.compare import DEFAULT_METHODS
from xbar.mapping.recovery.lv2024 import ChipFTConfig, IOKDConfig, VATConfig
from xbar.mapping.recovery.registry import method, method_names, options_json
from xbar.mapping.recovery.itt_rna import Work3Options
from xbar.mapping.recovery.correctnet import Work4Options
from xbar.mapping.sweep.store import SweepResults

QUICK = ["--model", "digits-cnn", "--dataset", "digits", "--chips", "1"]
SWEEP = ["sweep", "--param", "sigma", "--values", "0.1", "--model", "digits-cnn",
         "--dataset", "digits", "--methods", "fault-aware-map", "--chips", "1",
         "--test-limit", "100", "--workers", "1", "--threads", "1"]


def fails(args: list[str], capsys: pytest.CaptureFixture[str], *texts: str) -> str:
    """``main(args)`` exits 2 with one error line holding every one of ``texts``."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for text in texts:
        assert text in err, err
    return err


def test_every_plugin_names_its_options_type() -> None:
    expected = {"fault-aware-map": Work3Options, "fault-aware-train": Work3Options,
                "fault-aware+on-chip": Work3Options, "lipschitz": Work4Options,
                "lipschitz+comp": Work4Options, "comp": Work4Options, "vat": VATConfig,
                "chip-ft": ChipFTConfig, "io-kd": IOKDConfig}
    for name in method_names():
        if name in DEFAULT_METHODS:  # works 1-2: the comparison's shared settings only
            assert method(name).options_type is None, name
            continue
        assert method(name).options_type is expected[name], name
        method(name).options_type()  # the defaults build
    assert set(expected) == set(method_names()) - set(DEFAULT_METHODS)


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_errors_name_the_option(command: str, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:
    base = (["compare", *QUICK] if command == "compare" else
            [*SWEEP[:SWEEP.index("--methods")], "--out", str(tmp_path / "s.h5")])
    run = [*base, "--methods", "one-shot,fault-aware-map"]
    fails([*run, "--option", "spare_rows=4"], capsys,
          "--option 'spare_rows=4' is not METHOD.FIELD=VALUE")
    fails([*run, "--option", "nope.spare_rows=4"], capsys,
          "--option 'nope.spare_rows=4': unknown method 'nope'; methods with options: "
          "fault-aware-map, ")
    fails([*run, "--option", "io-kd.steps=3"], capsys,
          "--option 'io-kd.steps=3': method 'io-kd' is not in --methods "
          "(one-shot,fault-aware-map)")
    fails([*run, "--option", "one-shot.steps=3"], capsys,
          "--option 'one-shot.steps=3': method 'one-shot' takes no options")
    fails([*run, "--option", "fault-aware-map.spares=4"], capsys,
          "--option 'fault-aware-map.spares=4': Work3Options has no field 'spares'; allowed "
          "fields: spare_rows, activity, train.epochs,")
    fails([*run, "--option", "fault-aware-map.spare_rows=four"], capsys,
          "--option 'fault-aware-map.spare_rows=four': 'four' is not an integer")
    fails([*run, "--option", "fault-aware-map.activity=maybe"], capsys,
          "'maybe' is not a boolean; allowed: true or false")
    fails([*run, "--option", "fault-aware-map.train.learning_rate=fast"], capsys,
          "'fast' is not a number")
    # The class's own validation: a value of the right type out of its range.
    fails([*run, "--option", "fault-aware-map.spare_rows=-1"], capsys,
          "--option 'fault-aware-map.spare_rows=-1': Work3Options.spare_rows = -1 is "
          "invalid; allowed: an integer >= 0")
    fails([*run, "--option", "fault-aware-map.spare_rows=1", "--option",
           "fault-aware-map.spare_rows=2"], capsys,
          "fault-aware-map.spare_rows is set more than once")


def test_parsed_options_are_the_defaults_with_the_fields_replaced() -> None:
    methods = ("fault-aware-train", "io-kd", "comp", "chip-ft")
    got = parse_options(["fault-aware-train.spare_rows=2", "fault-aware-train.train.epochs=1e1",
                         "fault-aware-train.activity=no", "io-kd.correction=affine",
                         "comp.compensation.learning_rate=2.5e-3", "chip-ft.start=teacher"],
                        methods)
    w3 = Work3Options()
    assert got["fault-aware-train"] == Work3Options(
        spare_rows=2, activity=False, train=w3.train.replace(epochs=10), on_chip=w3.on_chip)
    assert got["io-kd"] == IOKDConfig(correction="affine")
    assert got["comp"].compensation == Work4Options().compensation.replace(learning_rate=2.5e-3)
    assert got["chip-ft"] == ChipFTConfig(start="teacher")
    assert parse_options([], methods) == {}
    # A nested choice field is checked by its own class.
    with pytest.raises(ConfigError, match="IOKDConfig.correction = 'gain' is invalid"):
        parse_options(["io-kd.correction=gain"], methods)
    # A field with no command-line form (a network) is not offered.
    assert "network" not in option_fields(Work4Options)
    assert "network_train_s" in option_fields(Work4Options)
    assert not any(method(n).options_type for n in DEFAULT_METHODS)


@pytest.mark.slow  # 6-22 s on 2 cores (quick subset: -m "not slow")
def test_a_valid_option_reaches_the_method(capsys: pytest.CaptureFixture[str]) -> None:
    """Spare rows are tested and programmed too: more read time and more write pulses."""
    def run(*options: str) -> dict:
        args = ["compare", *QUICK, "--methods", "fault-aware-map", "--json"]
        for o in options:
            args += ["--option", o]
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)

    plain, spare = run(), run("fault-aware-map.spare_rows=4")
    assert plain["options"] == {}
    assert spare["options"]["fault-aware-map"]["spare_rows"] == 4
    a, b = plain["methods"]["fault-aware-map"], spare["methods"]["fault-aware-map"]
    assert b["test_s"] > a["test_s"] and b["pulses"] > a["pulses"]


def test_sweep_records_its_options_and_refuses_to_mix(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    out = tmp_path / "sweep.h5"
    args = [*SWEEP, "--out", str(out), "--json"]
    assert main([*args, "--option", "fault-aware-map.spare_rows=2"]) == 0
    first = json.loads(capsys.readouterr().out)
    saved = SweepResults.load(out)
    assert saved.config["options"] == options_json(
        {"fault-aware-map": Work3Options(spare_rows=2)})
    assert first["options"]["fault-aware-map"]["spare_rows"] == 2
    assert first["config_hash"] == saved.hash and first["points_computed"] == 1
    # The same options: resumed, nothing left to run.
    assert main([*args, "--option", "fault-aware-map.spare_rows=2"]) == 0
    assert json.loads(capsys.readouterr().out)["points_skipped"] == 1
    # Other options (or none) are another sweep: refused, naming the options.
    fails([*args, "--option", "fault-aware-map.spare_rows=3"], capsys,
          "holds a different sweep", "they differ in: options")
    fails(args, capsys, "holds a different sweep", "options")
    # Without options, the hash is the one it was before options existed (no key added).
    plain = tmp_path / "plain.h5"
    assert main([*SWEEP, "--out", str(plain), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config_hash"] != saved.hash
    assert "options" not in SweepResults.load(plain).config
