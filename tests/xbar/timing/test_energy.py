"""Energy and area (xbar.timing.energy): golden hand counts, the engine's counts against the
closed forms, linearity in batch, ADC energy against resolution, area closed forms, the SRAM
area overhead, the [energy]/[area] sections and ``xbar latency``'s outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import (AdaptationConfig, AreaConfig, EnergyConfig, HardwareConfig,
                         ProgrammingConfig, TimingConfig, load_hardware)
from xbar.config.adc_tables import interpolate_table
from xbar.errors import ConfigError
from xbar.mapping.cli.main import main
from xbar.mapping.geometry import layer_specs
from xbar.timing import LayerSpec, simulate
from xbar.timing.area import chip_area, sram_area, sram_area_fraction
from xbar.timing.energy import (COMPONENTS, adaptation_energy, conductance_sums,
                                inference_energy, one_shot_energy, programming_energy,
                                verify_read_pj)
from xbar.timing.events import layer_events
from xbar.timing.programming import LayerCells, cells_one_shot, programming_time

# One Linear layer, 4 inputs (unsigned, 8 bits, bit-serial: S = 8), 3 outputs, one
# differential tile (2 arrays of 128 x 128): every event countable by hand.
ONE = LayerSpec("fc", "linear", 4, 3, (4, 1, 1), (1, 1))


def test_golden_one_layer_one_tile() -> None:
    e = inference_energy([ONE])
    c = e.per_layer["fc"]
    # cells 2 arrays x 4 rows x 3 columns = 24 at 50.5 uS; 8 slices x activity 0.5 x
    # (0.5 V)^2 x 10 ns x 1212 uS = 12.12 pJ
    assert c["array_read"] == pytest.approx(8 * 0.5 * 0.25 * 10 * 24 * 50.5 * 1e-3)
    assert c["array_read"] == pytest.approx(12.12)
    assert c["dac"] == pytest.approx(8 * 2 * 4 * 0.417)          # 64 word-line drives
    assert c["adc"] == pytest.approx(8 * 2 * 3 * 20.0)           # 48 conversions x 20 pJ
    assert c["shift_add"] == pytest.approx(48 * 0.021)
    assert c["accumulate"] == 0.0                                  # one row tile
    assert c["post_op"] == pytest.approx(3 * 0.021)
    assert c["buffer"] == pytest.approx((4 + 4) * 0.64)           # 4 bytes in, 4 read
    assert c["interconnect"] == pytest.approx(4 * 0.65)
    assert c["sram"] == 0.0 and c["digital_mac"] == 0.0
    assert e.total_pj == pytest.approx(1007.599)
    assert e.macs == 12
    assert e.tops_per_w == pytest.approx(24 / 1007.599)
    assert e.inferences_per_j == pytest.approx(1e12 / 1007.599)
    assert set(c) == set(COMPONENTS) and e.conductance == "nominal"


def test_golden_row_tiles_signed_inputs_and_sram() -> None:
    spec = LayerSpec("fc", "linear", 200, 3, (200, 1, 1), (1, 1), signed_inputs=True)
    (ev,) = layer_events([spec], sram_words=[7])
    assert ev.slices == 16                                   # two passes x 8 bits
    assert ev.cells == 2 * 200 * 3
    assert ev.array_reads == 16 * 2 * 2                      # 2 row tiles x 2 arrays
    assert ev.word_line_drives == 16 * 2 * (128 + 72)
    assert ev.conversions == 16 * 2 * 3 * 2
    assert ev.accumulations == 1 * (2 - 1) * 3
    assert ev.sram_word_reads == 7
    e = inference_energy([spec], g_sum_us=[300.0], sram_words=[7])
    c = e.per_layer["fc"]
    assert c["array_read"] == pytest.approx(16 * 0.5 * 0.25 * 10 * 300.0 * 1e-3)
    assert c["accumulate"] == pytest.approx(3 * 0.021)
    assert c["sram"] == pytest.approx(7 * 8 * 0.156)
    assert c["digital_mac"] == pytest.approx(7 * 0.23)
    assert e.conductance == "programmed"


def test_offset_mapping_counts_the_reference_column() -> None:
    hw = load_hardware("one-cell")
    (ev,) = layer_events([ONE], hw)
    assert ev.cells == 4 * (3 + 1) and ev.conversions == 8 * (3 + 1)


def conv_net() -> list[LayerSpec]:
    return [LayerSpec("c1", "conv", 9, 6, (1, 8, 8), (6, 6), kernel=(3, 3)),
            LayerSpec("c2", "conv", 54, 130, (6, 6, 6), (4, 4), kernel=(3, 3)),
            LayerSpec("fc", "linear", 2080, 10, (2080, 1, 1), (1, 1), signed_inputs=True)]


@pytest.mark.parametrize("schedule", ["layer", "pipelined"])
@pytest.mark.parametrize("batch", [1, 3])
def test_engine_counts_match_the_closed_forms(schedule: str, batch: int) -> None:
    """The engine's converting ADC-cycles and interconnect cycles (1 byte per cycle) are
    batch x the conversions and bytes the energy model charges."""
    hw = HardwareConfig(timing=TimingConfig(interconnect_bytes_per_cycle=1))
    specs = conv_net()
    events = layer_events(specs, hw)
    r = simulate(specs, hw, schedule=schedule, batch=batch, timeline=False)
    t_adc = hw.timing.adc_cycles(hw.adc.bits)
    conversions = r.adc_utilisation * r.n_adcs * r.makespan_cycles / t_adc
    assert conversions == pytest.approx(batch * sum(e.conversions for e in events), rel=1e-12)
    bus_bytes = r.interconnect_utilisation * r.makespan_cycles
    assert bus_bytes == pytest.approx(batch * sum(e.interconnect_bytes for e in events),
                                      rel=1e-12)


def test_energy_is_linear_in_batch_and_blind_to_schedule_and_duplication() -> None:
    specs = conv_net()
    base = inference_energy(specs)
    dup = inference_energy(specs, HardwareConfig(timing=TimingConfig(duplication=3)))
    assert dup.total_pj == pytest.approx(base.total_pj)
    for batch in (1, 4):
        r = simulate(specs, schedule="pipelined", batch=batch, timeline=False)
        power = base.power_w(r.throughput_inferences_per_s)
        # power x the time per inference = energy per inference, at any batch
        assert power / r.throughput_inferences_per_s == pytest.approx(base.total_pj * 1e-12)


def test_adc_energy_rises_with_resolution_as_the_table_says() -> None:
    en = EnergyConfig()
    assert [en.adc_conversion_pj(b) for b in (4, 6, 8)] == pytest.approx([4.2, 10.08, 20.0])
    series = [en.adc_conversion_pj(b) for b in range(1, 17)]
    assert all(b > a for a, b in zip(series, series[1:]))
    # between table points: log-linear in power, times (bits + 2) / rate
    assert en.adc_power_mw(7) == pytest.approx(np.sqrt(1.26 * 2.0))
    assert en.adc_conversion_pj(7) == pytest.approx(np.sqrt(1.26 * 2.0) * 9)
    e6 = inference_energy([ONE], HardwareConfig.from_dict({"adc": {"bits": 6}}))
    assert e6.per_layer["fc"]["adc"] == pytest.approx(48 * 10.08)
    assert interpolate_table(3, (4.0,), (2.5,)) == 2.5


def test_area_closed_forms() -> None:
    a = chip_area([ONE])
    c = a.per_layer["fc"]
    assert c["cells"] == pytest.approx(2 * 128 * 128 * 48 * 0.04 ** 2)
    assert c["dac"] == pytest.approx(2 * 128 * 0.166)
    assert c["periphery"] == pytest.approx(2 * 5.0)
    assert c["adc"] == pytest.approx(2 * 16 * 1200.0)            # 128 / 8 ADCs per array
    assert c["shift_add"] == pytest.approx(2 * 16 * 60.0)
    assert c["accumulator"] == 0.0
    assert c["post_op"] == pytest.approx(128 * 60.0)
    assert c["buffer"] == pytest.approx(4 * 1.27)
    assert a.chip_um2["interconnect"] == pytest.approx(32 * 234.0)
    assert a.total_mm2 == pytest.approx((sum(c.values()) + 32 * 234.0) * 1e-6)
    assert AreaConfig().adc_um2(6) == pytest.approx(580.0)
    # a line buffer of 2 rows holds 2 input rows, not the whole map
    lb = chip_area(conv_net(), HardwareConfig(timing=TimingConfig(line_buffer_rows=2)))
    assert lb.per_layer["c2"]["buffer"] == pytest.approx(2 * 6 * 6 * 1.27)
    shared = chip_area(conv_net(), HardwareConfig(timing=TimingConfig(accumulator_units=2)))
    assert shared.chip_um2["shared_accumulators"] == pytest.approx(2 * 128 * 60.0)
    assert shared.per_layer["fc"]["accumulator"] == 0.0


def test_sram_area_fraction() -> None:
    parts = sram_area([ONE], [10])
    assert parts["sram_bits"] == pytest.approx(10 * 8 * 280 * 0.04 ** 2 * 1.5)
    assert parts["gradient_units"] == pytest.approx(128 * 318.0)
    total = chip_area([ONE]).total_um2
    assert sram_area_fraction([ONE], [10]) == pytest.approx(parts["sram_bits"] / total)
    assert sram_area_fraction([ONE], [10], units=True) == pytest.approx(
        sum(parts.values()) / total)
    assert sram_area_fraction([ONE], 0) == 0.0
    hw = HardwareConfig(adaptation=AdaptationConfig(sram_word_bits=4))
    assert sram_area([ONE], 10, hw)["sram_bits"] == pytest.approx(parts["sram_bits"] / 2)
    with pytest.raises(ConfigError, match=r"sram_words of layer 'fc' = 13 is invalid; "
                                          r"allowed: an integer in \[0, 12\]"):
        sram_area([ONE], [13])
    with pytest.raises(ConfigError, match=r"sram_words: 2 values for 1 layers"):
        sram_area([ONE], [1, 2])


def test_programming_energy_rvw_against_one_shot() -> None:
    hw = HardwareConfig()
    pulses = np.array([[3, 1, 0, 2, 5, 1]] * 4)
    reads = np.array([[4, 2, 1, 3, 6, 2]] * 4)
    cells = [LayerCells("fc", 4, 3, pulses, reads)]
    e = programming_energy(cells, hw)
    assert (e.pulses, e.reads) == (48, 72)
    assert verify_read_pj(hw) == pytest.approx(0.25 * 50.5 * 10 * 1e-3 + 0.0016)
    assert e.total_pj == pytest.approx(48 * 4.0 + 72 * verify_read_pj(hw))
    # the same from the programming engine's totals
    res = programming_time(cells, hw)
    assert programming_energy(res, hw).total_pj == pytest.approx(e.total_pj)
    one = one_shot_energy([ONE], hw)
    assert one.pulses == 24 and one.total_pj == pytest.approx(24 * 4.0)
    assert programming_energy(cells_one_shot([ONE], hw.xbar), hw).total_pj == \
        pytest.approx(one.total_pj)
    adc = HardwareConfig(programming=ProgrammingConfig(verify_read="adc"))
    assert verify_read_pj(adc) == pytest.approx(0.25 * 50.5 * 10 * 1e-3 + 20.0)


def test_adaptation_energy_hand_count() -> None:
    a = adaptation_energy([ONE], steps=2, batch=3, sram_words=[2])
    per_inf = 1007.599 + 2 * 8 * 0.156 + 2 * 0.23
    assert a.forward_pj == pytest.approx(2 * 3 * per_inf)
    assert a.gradient_pj == pytest.approx(2 * 3 * 1 * 2 * 0.23)
    assert a.propagate_pj == 0.0                                 # the first layer: none
    assert a.sram_update_pj == pytest.approx(2 * 2 * 8 * (0.156 + 0.156))
    assert a.total_pj == pytest.approx(a.forward_pj + a.backward_pj + a.sram_update_pj)
    assert adaptation_energy([ONE], steps=2, batch=3, sram_words=[2],
                             write=False).sram_update_pj == 0.0
    two = [ONE, LayerSpec("fc2", "linear", 3, 2, (3, 1, 1), (1, 1))]
    b = adaptation_energy(two, steps=1, batch=1, sram_words=[0, 0])
    signed = inference_energy([replace(two[1], signed_inputs=True)])
    assert b.propagate_pj == pytest.approx(signed.total_pj)
    digital = HardwareConfig(adaptation=AdaptationConfig(backward="digital"))
    assert adaptation_energy(two, digital, 1, 5, [0, 0]).propagate_pj == \
        pytest.approx(5 * 6 * 0.23)
    with pytest.raises(ConfigError, match=r"steps = 0 is invalid"):
        adaptation_energy([ONE], steps=0)


def test_conductance_sums_of_a_programmed_chip() -> None:
    from xbar.devices import Device
    from xbar.mapping.chip import Chip

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    chip = Chip.program(model, Device(), HardwareConfig().xbar, 0, "column", "", (1, 2, 2))
    sums = conductance_sums(chip)
    (layer,) = chip.layers
    assert sums == {layer.layer_name: pytest.approx(float(layer.matrix.g_us.sum()))}
    specs = layer_specs(model, (1, 2, 2))
    e = inference_energy(specs, g_sum_us=sums)
    assert e.per_layer[specs[0].name]["array_read"] == pytest.approx(
        8 * 0.5 * 0.25 * 10 * sums[layer.layer_name] * 1e-3)
    with pytest.raises(ConfigError, match=r"g_sum_us: unknown layer name\(s\) \['nope'\]"):
        inference_energy(specs, g_sum_us={"nope": 1.0})


def test_energy_and_area_sections_in_a_hardware_file(tmp_path: Path) -> None:
    path = tmp_path / "hw.toml"
    path.write_text("[energy]\nprogram_pulse_pj = 2.5\n[area]\nfeature_size_nm = 22\n")
    hw = load_hardware(path)
    assert hw.energy.program_pulse_pj == 2.5 and hw.area.cell_um2 == pytest.approx(
        48 * 0.022 ** 2)
    assert load_hardware(path).to_toml() == hw.to_toml()
    path.write_text("[energy]\nadc_table_power_mw = [2.0, 1.0, 0.5]\n")
    with pytest.raises(ConfigError, match=r"section \[energy\]: EnergyConfig.adc_table_power_mw"
                                          r" = \[2.0, 1.0, 0.5\] is invalid; allowed: positive "
                                          r"numbers that do not fall"):
        load_hardware(path)
    path.write_text("[area]\nadc_table_bits = [8, 6]\nadc_table_area_um2 = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"AreaConfig.adc_table_bits = \[8.0, 6.0\] is invalid"
                                          r"; allowed: resolutions >= 1 in strictly"):
        load_hardware(path)
    path.write_text("[area]\nadc_table_area_um2 = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"one value per entry of adc_table_bits"):
        load_hardware(path)
    path.write_text("[energy]\ninput_activity = 1.5\n")
    with pytest.raises(ConfigError, match=r"EnergyConfig.input_activity = 1.5 is invalid; "
                                          r"allowed: \[0, 1\]"):
        load_hardware(path)
    path.write_text("[enrgy]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"did you mean \[energy\]"):
        load_hardware(path)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def test_latency_cli_energy_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "small.pt"
    torch.save(small_model(), model)
    args = ["latency", "--model", str(model), "--input-shape", "1,8,8"]
    assert main(args + ["--json", "--batch", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    specs = layer_specs(small_model(), (1, 8, 8))
    expected = inference_energy(specs)
    assert doc["energy_pj"] == pytest.approx(expected.total_pj)
    assert [d["name"] for d in doc["energy_per_layer"]] == [s.name for s in specs]
    assert doc["area_mm2"] == pytest.approx(chip_area(specs).total_mm2)
    assert doc["tops_per_w"] == pytest.approx(expected.tops_per_w)
    assert doc["power_w"] == pytest.approx(expected.total_pj * 1e-12
                                           * doc["throughput_inferences_per_s"])
    out = tmp_path / "r.h5"
    plot = tmp_path / "e.png"
    assert main(args + ["--out", str(out), "--energy-plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "TOPS/W" in text and "area:" in text and f"energy plot written to {plot}" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with h5py.File(out, "r") as f:
        assert f["energy"].attrs["energy_pj"] == pytest.approx(expected.total_pj)
        assert json.loads(f["energy"].attrs["json"])["area_mm2"] == pytest.approx(
            doc["area_mm2"])
    out2 = tmp_path / "s.h5"
    assert main(args + ["--out", str(out2)]) == 0
    assert (tmp_path / "s-energy.png").exists()
    # the chart path must differ from the other outputs
    assert main(args + ["--timeline", str(plot), "--energy-plot", str(plot)]) == 2
    assert "--timeline" in capsys.readouterr().err


def test_compare_reports_energy_and_sram_area_per_method() -> None:
    from xbar.devices import preset
    from xbar.mapping.data.datasets import load_dataset
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    digits = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    hw = HardwareConfig()
    settings = CompareSettings(chips=1, methods=("one-shot", "rsa", "rvw"),
                               adapt=AdaptConfig(steps=2, batch_size=8))
    energy = EnergyConfig(program_pulse_pj=3.0)
    hw = hw.replace(energy=energy)
    out = compare(model, digits, preset("charan2020-jxcdc"), hw, settings)
    m = out["methods"]
    specs = layer_specs(model, (1, 8, 8))
    one = one_shot_energy(specs, hw).total_pj * 1e-12
    assert m["one-shot"]["program_energy_j"] == pytest.approx(one)
    assert m["one-shot"]["adapt_energy_j"] == 0.0 and m["one-shot"]["sram_area_fraction"] == 0.0
    assert m["rsa"]["program_energy_j"] == pytest.approx(one)
    assert m["rsa"]["adapt_energy_j"] > 0
    assert m["rsa"]["energy_j"] == pytest.approx(m["rsa"]["program_energy_j"]
                                                 + m["rsa"]["adapt_energy_j"])
    # RSA's SRAM words spread over both layers: the fraction of sram_area_fraction
    assert 0 < m["rsa"]["sram_area_fraction"] < 1
    # R-V-W: its pulses at 3 pJ plus its verify reads, more than one pulse per cell
    rvw = m["rvw"]
    assert rvw["program_energy_j"] > 3.0e-12 * rvw["pulses"] >= one
    for name in m:
        assert m[name]["inference_energy_pj"] > 0
