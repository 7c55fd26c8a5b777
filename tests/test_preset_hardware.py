"""A device preset whose paper fixes the weight mapping brings it: ``--device charan2020-dac``
alone is the paper's setting, ``--hw`` overrides it, and the output says which was used."""

from __future__ import annotations

import json

import pytest

from xbar.devices.presets import PRESETS, preset_hardware
from xbar.errors import ConfigError
from xbar.mapping.cli.common import hardware_spec
from xbar.mapping.cli.main import main


def test_every_preset_implies_a_known_hardware_preset() -> None:
    from xbar.config import HARDWARE_PRESETS

    for name in PRESETS:
        assert preset_hardware(name) in HARDWARE_PRESETS
    assert preset_hardware("charan2020-dac") == "one-cell"
    with pytest.raises(ConfigError, match="unknown device preset"):
        preset_hardware("nope")


def test_hardware_spec_prefers_the_users_hw() -> None:
    assert hardware_spec("charan2020-dac", None)[0] == "one-cell"
    assert hardware_spec("charan2020-dac", "default") == ("default", "default")
    assert hardware_spec("charan2020-jxcdc", None) == (None, "default")
    assert hardware_spec("my-device.toml", None) == (None, "default")


@pytest.mark.parametrize("hw, mapping", [(None, "offset"), ("default", "differential")])
def test_simulate_reports_the_implied_mapping(hw: str | None, mapping: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--model", "digits-cnn", "--device", "charan2020-dac", "--json",
            "--test-limit", "50"] + (["--hw", hw] if hw else [])
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hardware"]["array"]["weight_mapping"] == mapping
    assert out["hardware_preset"].startswith("one-cell (implied" if hw is None else hw)
