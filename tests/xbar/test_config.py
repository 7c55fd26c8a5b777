"""Array and converter configuration: validation and TOML round trip."""

from __future__ import annotations

import pytest

from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig


@pytest.mark.parametrize("klass,field,value", [
    (ArrayConfig, "rows", 0), (ArrayConfig, "rows", 1.5), (ArrayConfig, "cols", -1),
    (ArrayConfig, "weight_mapping", "single"), (ArrayConfig, "read_voltage_v", 0.0),
    (ArrayConfig, "read_voltage_v", 9.0), (DACConfig, "input_bits", 0),
    (DACConfig, "input_bits", 17), (DACConfig, "bits_per_read", 9), (ADCConfig, "bits", 0),
    (ADCConfig, "bits", 20), (ADCConfig, "range_mode", "auto"), (ADCConfig, "cols_per_adc", 0),
])
def test_invalid_field_names_field_and_value(klass, field, value):
    with pytest.raises(ValueError) as err:
        klass(**{field: value})
    assert f"{klass.__name__}.{field} = {value!r}" in str(err.value)
    assert "allowed" in str(err.value)


def test_offset_mapping_needs_two_columns():
    with pytest.raises(ValueError, match="reference column"):
        ArrayConfig(cols=1, weight_mapping="offset")
    assert ArrayConfig(weight_mapping="offset").weight_cols == 127


def test_toml_round_trip(tmp_path):
    cfg = XbarConfig(ArrayConfig(rows=64, weight_mapping="offset"), DACConfig(6, 2),
                     ADCConfig(bits=5, range_mode="full-scale", cols_per_adc=4))
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
    (tmp_path / "hw.toml").write_text("\n".join(lines))
    assert XbarConfig.from_toml(tmp_path / "hw.toml") == cfg


def test_unknown_toml_field_is_refused(tmp_path):
    (tmp_path / "hw.toml").write_text("[adc]\nbitz = 4\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bitz'\] in \[adc\]"):
        XbarConfig.from_toml(tmp_path / "hw.toml")


def test_replace_by_dotted_name():
    cfg = XbarConfig().replace(**{"adc.bits": 4, "dac.input_bits": 6})
    assert cfg.adc.bits == 4 and cfg.dac.input_bits == 6
    with pytest.raises(ValueError, match="unknown hardware field"):
        XbarConfig().replace(**{"adc.bitz": 4})
