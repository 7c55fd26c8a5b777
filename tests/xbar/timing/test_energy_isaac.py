"""The ISAAC-like chip of the published comparison (benchmarks/hardware/isaac.toml) and the ADC
energy models: hand-counted energies, ADC energy against resolution under both models, the
ADC-bound read cycle, and energy linear in batch on that chip."""

from __future__ import annotations

from pathlib import Path

import pytest

from xbar.config import EnergyConfig, HardwareConfig, load_hardware
from xbar.config.energy import ADC_ENERGY_MODELS
from xbar.errors import ConfigError
from xbar.timing import LayerSpec, simulate
from xbar.timing.area import chip_area
from xbar.timing.energy import inference_energy
from xbar.timing.events import layer_events

ISAAC_TOML = Path(__file__).resolve().parents[3] / "benchmarks" / "hardware" / "isaac.toml"
# 4 unsigned inputs, 3 outputs: one array (offset mapping: 3 weight columns + 1 reference).
ONE = LayerSpec("fc", "linear", 4, 3, (4, 1, 1), (1, 1))


@pytest.fixture(scope="module")
def isaac() -> HardwareConfig:
    return load_hardware(ISAAC_TOML)


def test_isaac_file_is_the_configuration_it_documents(isaac: HardwareConfig) -> None:
    assert (isaac.array.rows, isaac.array.cols, isaac.array.weight_mapping) == (128, 128,
                                                                                "offset")
    assert (isaac.dac.input_bits, isaac.dac.bits_per_read) == (16, 1)
    assert (isaac.adc.bits, isaac.adc.cols_per_adc) == (8, 128)
    # ISAAC's 8-bit ADC: 16 mW for 8 ADCs at 1.2 GS/s, one sample per conversion
    assert isaac.energy.adc_conversion_pj(8) == pytest.approx(16.0 / 8 / 1.2)
    assert isaac.area.cell_um2 == pytest.approx(4 * 0.032 ** 2)


def test_golden_energy_of_one_layer_on_the_isaac_chip(isaac: HardwareConfig) -> None:
    (ev,) = layer_events([ONE], isaac)
    # 16 one-bit slices; one array; 4 word lines; 3 + 1 bit lines
    assert (ev.slices, ev.array_reads, ev.word_line_drives, ev.conversions) == (16, 16, 64, 64)
    assert ev.cells == 16 and ev.buffer_bytes == 4 * 2 + 4 * 2 and ev.interconnect_bytes == 8
    c = inference_energy([ONE], isaac).per_layer["fc"]
    assert c["array_read"] == pytest.approx(16 * 0.5 * 0.5 ** 2 * 10 * 16 * 50.5 * 1e-3)
    assert c["dac"] == pytest.approx(64 * 0.417)
    assert c["adc"] == pytest.approx(64 * 2.0 / 1.2)
    assert c["shift_add"] == pytest.approx(64 * 0.021)
    assert c["post_op"] == pytest.approx(3 * 0.021)
    assert c["buffer"] == pytest.approx(16 * 0.64)
    assert c["interconnect"] == pytest.approx(8 * 0.65)
    assert sum(c.values()) == pytest.approx(16.16 + 26.688 + 106.6667 + 1.344 + 0.063 + 10.24
                                            + 5.2, rel=1e-6)


def test_adc_energy_models_against_resolution() -> None:
    mnsim = EnergyConfig()
    sample = EnergyConfig(adc_energy_model="per-sample", adc_reference_gsps=1.2)
    assert ADC_ENERGY_MODELS == ("mnsim", "per-sample") and mnsim.adc_energy_model == "mnsim"
    for bits in (4, 6, 8):
        power = mnsim.adc_power_mw(bits)
        assert mnsim.adc_conversion_pj(bits) == pytest.approx(power * (bits + 2))
        assert sample.adc_conversion_pj(bits) == pytest.approx(power / 1.2)
    # per sample, energy rises with resolution as the power table does: 2.0 / 0.7 from 4 to 8
    assert sample.adc_conversion_pj(8) / sample.adc_conversion_pj(4) == pytest.approx(2 / 0.7)
    series = [sample.adc_conversion_pj(b) for b in range(1, 17)]
    assert all(b > a for a, b in zip(series, series[1:]))
    with pytest.raises(ConfigError, match="adc_energy_model.*'flash'.*mnsim"):
        EnergyConfig(adc_energy_model="flash")


def test_adc_energy_model_in_a_hardware_file(tmp_path: Path) -> None:
    f = tmp_path / "hw.toml"
    f.write_text('[energy]\nadc_energy_model = "per-sample"\nadc_reference_gsps = 2.0\n')
    hw = load_hardware(f)
    assert hw.energy.adc_conversion_pj(8) == pytest.approx(1.0)
    e = inference_energy([ONE], hw)
    assert e.per_layer["fc"]["adc"] == pytest.approx(8 * 2 * 3 * 1.0)
    f.write_text('[energy]\nadc_energy_model = "sar"\n')
    with pytest.raises(ConfigError, match="adc_energy_model"):
        load_hardware(f)


def test_one_busy_array_reads_at_the_adc_rate(isaac: HardwareConfig) -> None:
    """One ADC per 128 columns at 1.2 GS/s: a 16-bit MVM takes 16 x 128 conversion cycles
    (107 ns per bit, ISAAC's 100 ns read cycle), plus a little pipeline fill per row."""
    spec = LayerSpec("peak", "conv", 128, 127, (128, 8, 8), (8, 8))
    r = simulate([spec], isaac, timeline=False)
    per_position = r.total_cycles / 64
    assert 16 * 128 <= per_position < 16 * 128 * 1.01
    area = chip_area([spec], isaac).per_layer["peak"]
    assert area["adc"] == pytest.approx(1200.0) and area["cells"] == pytest.approx(
        128 * 128 * 4 * 0.032 ** 2)


@pytest.mark.parametrize("batch", [2, 5])
def test_energy_linear_in_batch_on_the_isaac_chip(isaac: HardwareConfig, batch: int) -> None:
    """The engine converts batch x the conversions the energy model charges one inference."""
    specs = [LayerSpec("c1", "conv", 27, 16, (3, 8, 8), (6, 6), kernel=(3, 3),
                       signed_inputs=True),
             LayerSpec("fc", "linear", 576, 10, (576, 1, 1), (1, 1))]
    one = sum(e.conversions for e in layer_events(specs, isaac))
    for b in (1, batch):
        r = simulate(specs, isaac, schedule="pipelined", batch=b, timeline=False)
        t_adc = isaac.timing.adc_cycles(isaac.adc.bits)
        converted = r.adc_utilisation * r.n_adcs * r.makespan_cycles / t_adc
        assert converted == pytest.approx(b * one, rel=1e-12)
