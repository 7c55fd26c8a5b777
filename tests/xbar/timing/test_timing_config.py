"""TimingConfig: defaults and their cycle counts, validation, the [timing] TOML section."""

from __future__ import annotations

from pathlib import Path

import pytest

from xbar.config import (ADCConfig, ArrayConfig, HardwareConfig, TimingConfig, XbarConfig,
                         load_hardware)
from xbar.config.timing import ns_to_cycles


def test_defaults_give_the_reference_cycle_counts() -> None:
    t = TimingConfig()
    assert t.clock_ghz == 1.0
    assert t.read_cycles() == 10          # NeuroSim: 10 ns read pulse at 1 GHz
    assert t.adc_cycles(8) == 10          # MNSIM: (8 + 2) / 1 GS/s
    assert t.adc_cycles(4) == 6
    assert t.cycles_to_ns(651) == 651.0


def test_durations_round_up_to_whole_cycles() -> None:
    assert ns_to_cycles(3.16, 1.0) == 4   # MNSIM 2.0's 3.16 ns read
    assert ns_to_cycles(10.0, 1.0) == 10  # no spurious extra cycle from float error
    assert ns_to_cycles(0.1, 1.0) == 1    # never zero
    assert TimingConfig(clock_ghz=2.0).read_cycles() == 20
    assert TimingConfig(clock_ghz=2.0).adc_cycles(8) == 20
    assert TimingConfig(adc_gsps=1.28).adc_cycles(8) == 8   # 7.8 ns


@pytest.mark.parametrize("name,value", [
    ("clock_ghz", 0.0), ("clock_ghz", -1.0), ("clock_ghz", float("nan")),
    ("t_read_ns", 0), ("adc_gsps", 1e9), ("shift_add_cycles", -1),
    ("shift_add_cycles", 1.5), ("overlap_read_convert", 1), ("tiles_per_adc_group", 0),
    ("interconnect_bytes_per_cycle", 0), ("accumulator_values_per_cycle", 0),
    ("accumulator_units", -2), ("post_op_values_per_cycle", True), ("duplication", 0),
    ("duplicate_layers", [""]), ("line_buffer_rows", -1),
])
def test_bad_values_name_field_value_and_range(name: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        TimingConfig(**{name: value})
    msg = str(info.value)
    assert f"TimingConfig.{name}" in msg and "allowed" in msg and repr(value)[:3] in msg


def test_duplicates_apply_to_named_conv_layers_only() -> None:
    t = TimingConfig(duplication=4, duplicate_layers=["c1"])
    assert t.duplicate_layers == ("c1",)
    assert t.duplicates("c1", "conv") == 4
    assert t.duplicates("c2", "conv") == 1
    assert TimingConfig(duplication=4).duplicates("fc", "linear") == 1
    assert TimingConfig(duplication=4).duplicates("any", "conv") == 4


def test_hardware_file_round_trips(tmp_path: Path) -> None:
    xbar = XbarConfig(array=ArrayConfig(rows=64, cols=32, weight_mapping="offset"),
                      adc=ADCConfig(bits=6, cols_per_adc=4))
    timing = TimingConfig(clock_ghz=1.28, t_read_ns=100.0, overlap_read_convert=False,
                          duplication=2, duplicate_layers=("a", "b"), line_buffer_rows=7)
    path = tmp_path / "hw.toml"
    path.write_text(HardwareConfig.from_parts(xbar, timing=timing).to_toml())
    hw = load_hardware(path)
    assert (hw.xbar, hw.timing) == (xbar, timing)


def test_hardware_file_partial_sections_take_defaults(tmp_path: Path) -> None:
    path = tmp_path / "hw.toml"
    path.write_text("[adc]\nbits = 4\n[timing]\nclock_ghz = 0.5\n")
    hw = load_hardware(path)
    xbar, timing = hw.xbar, hw.timing
    assert xbar.adc.bits == 4 and xbar.array == ArrayConfig()
    assert timing == TimingConfig(clock_ghz=0.5)


def test_hardware_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hardware(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[timing]\nclock_mhz = 1000\n")
    with pytest.raises(ValueError, match=r"unknown field.*clock_mhz.*valid fields"):
        load_hardware(bad)
    bad.write_text("[timing]\nt_read_ns = -3\n")
    with pytest.raises(ValueError, match="TimingConfig.t_read_ns = -3"):
        load_hardware(bad)
    bad.write_text("[timing\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_hardware(bad)
