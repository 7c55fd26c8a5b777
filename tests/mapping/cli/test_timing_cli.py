"""``xbar latency``: outputs (text, JSON, HDF5, Gantt chart) and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from xbar.mapping.cli.main import main
from xbar.timing import network_cycles_layer_schedule
from xbar.config import HardwareConfig, TimingConfig, XbarConfig
from xbar.mapping.geometry import layer_specs


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.pt"
    torch.save(small_model(), path)
    return path


def test_json_output_for_a_model_file(model_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["latency", "--model", str(model_file), "--input-shape", "1,8,8",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = network_cycles_layer_schedule(layer_specs(small_model(), (1, 8, 8)))
    assert doc["total_cycles"] == sum(expected)
    assert doc["latency_ns"] == pytest.approx(sum(expected))
    assert doc["throughput_inferences_per_s"] == pytest.approx(1e9 / sum(expected))
    assert [(lay["name"], lay["cycles"], lay["tiles"]) for lay in doc["layers"]] == \
        [("0", expected[0], 1), ("4", expected[1], 1)]
    assert doc["hardware"]["timing"] == TimingConfig().to_dict()


def test_text_report_hdf5_and_timeline(model_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    h5py = pytest.importorskip("h5py")
    from xbar.timing.results import load_latency_summary
    hw = tmp_path / "hw.toml"
    hw.write_text(HardwareConfig.from_parts(XbarConfig().replace(adc_bits=6),
                                            timing=TimingConfig(clock_ghz=2.0)).to_toml())
    out, png = tmp_path / "res" / "lat.h5", tmp_path / "gantt.png"
    assert main(["latency", "--model", str(model_file), "--input-shape", "1,8,8", "--hw",
                 str(hw), "--batch", "3", "--schedule", "pipelined", "--out", str(out),
                 "--timeline", str(png)]) == 0
    text = capsys.readouterr().out
    for needle in ("total latency:", "cycles", "ns", "throughput:", "inferences/s",
                   "utilisation: tiles", "ADCs", "6-bit ADC", "clock 2 GHz"):
        assert needle in text
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    doc = load_latency_summary(out)
    assert doc["schedule"] == "pipelined" and doc["batch"] == 3
    assert doc["layers"]["name"] == ["0", "4"]
    assert doc["hardware"]["adc"]["bits"] == 6 and doc["hardware"]["timing"]["clock_ghz"] == 2.0
    assert doc["latency_ns"] == pytest.approx(doc["total_cycles"] / 2.0)
    with h5py.File(out) as f:
        assert len(f["timeline/start"]) == 3 * (8 + 1)   # 8 conv rows + 1 linear, 3 inferences
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_zoo_model_by_name(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("xbar.mapping.data.zoo")
    assert main(["latency", "--model", "lenet5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input_shape"] == [1, 28, 28] and len(doc["layers"]) == 5


@pytest.mark.parametrize("argv,message,option", [
    (["--model", "missing.pt", "--input-shape", "1,8,8"],
     "load_model_spec(spec='missing.pt'): model file 'missing.pt' does not", "--model"),
    (["--model", "MODEL", "--input-shape", "1,8"], "fails on an input of shape (1, 1, 8)",
     "--input-shape"),
    (["--model", "MODEL", "--input-shape", "1,x,8"], "input shape '1,x,8' is invalid", None),
    (["--model", "MODEL"], "--input-shape C,H,W is required", None),
    (["--model", "MODEL", "--input-shape", "1,8,8", "--batch", "0"], "--batch 0 is invalid",
     None),
    (["--model", "MODEL", "--input-shape", "1,8,8", "--hw", "nope.toml"],
     "load_hardware(spec='nope.toml'): hardware file 'nope.toml' does not exist", "--hw"),
    (["--model", "STATE", "--input-shape", "1,8,8"], "not an nn.Module", "--model"),
])
def test_errors_are_clear(argv: list[str], message: str, option: str | None, model_file: Path,
                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The library's message, and the option behind the argument it names."""
    state = tmp_path / "state.pt"
    torch.save(small_model().state_dict(), state)
    argv = [str(model_file) if a == "MODEL" else str(state) if a == "STATE" else a
            for a in argv]
    assert main(["latency", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xbar latency: error:") and message in err
    if option:
        assert err.strip().endswith(f"(option {option})"), err
    else:
        assert "(option" not in err


def test_unknown_schedule_is_an_argparse_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["latency", "--model", "lenet5", "--schedule", "fastest"])
    assert info.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err
