"""The RRAM cell model: validation, programming statistics, faults, presets, device files."""

from __future__ import annotations

import numpy as np
import pytest

from xbar.devices import PRESETS, Device, load_device_file, preset, resolve_device, save_device

N = 100_000


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_cite_a_source(name):
    dev = preset(name)
    assert dev.name == name
    assert dev.source and dev.source != "user"
    assert PRESETS[name].__doc__ and len(PRESETS[name].__doc__) > 40
    g = dev.program(np.arange(dev.n_levels).repeat(10), np.random.default_rng(0))
    assert g.dtype == np.float32 and g.min() >= dev.g_min_us and g.max() <= dev.g_max_us


@pytest.mark.parametrize("name", list(PRESETS))
def test_hdf5_round_trip_is_lossless(name, tmp_path):
    dev = preset(name)
    save_device(dev, tmp_path / "d.h5", provenance={"by": "test"},
                measured={"mean_pulses": np.arange(dev.n_levels, dtype=float)})
    back = load_device_file(tmp_path / "d.h5")
    assert back.device == dev
    assert back.provenance == {"by": "test"}
    np.testing.assert_array_equal(back.measured["mean_pulses"], np.arange(dev.n_levels))
    assert resolve_device(str(tmp_path / "d.h5")) == dev


def test_table_device_round_trip(tmp_path):
    dev = Device(name="meas", g_min_us=5, g_max_us=50, n_levels=3, levels_us=(5, 20, 50),
                 variation="table", level_mean_us=(5.5, 21, 48), level_std_us=(0.5, 2, 3))
    save_device(dev, tmp_path / "m.h5")
    assert load_device_file(tmp_path / "m.h5").device == dev


def test_toml_device(tmp_path):
    (tmp_path / "d.toml").write_text(
        '[device]\nname = "mine"\ng_min_us = 2.0\ng_max_us = 60.0\nn_levels = 8\n'
        'variation = "gaussian"\nsigma = 0.05\nread_noise = 0.01\n'
        '[provenance]\nmeasured_by = "me"\n')
    f = load_device_file(tmp_path / "d.toml")
    assert f.device == Device(name="mine", g_min_us=2, g_max_us=60, n_levels=8,
                              variation="gaussian", sigma=0.05, read_noise=0.01)
    assert f.provenance == {"measured_by": "me"}
    (tmp_path / "bad.toml").write_text('[device]\nsigmaa = 0.1\n')
    with pytest.raises(ValueError, match="unknown device field"):
        load_device_file(tmp_path / "bad.toml")


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_device_file(tmp_path / "none.h5")
    with pytest.raises(ValueError, match="unknown device preset 'nope'"):
        resolve_device("nope")


def _spread(dev: Device, level: int) -> np.ndarray:
    g = dev.program(np.full(N, level), np.random.default_rng(1)).astype(np.float64)
    return g


@pytest.mark.parametrize("reference", ["level", "g_max", "range"])
def test_gaussian_sigma_matches_configuration(reference):
    dev = Device(g_min_us=1, g_max_us=100, n_levels=11, variation="gaussian", sigma=0.05,
                 sigma_reference=reference)
    level = 5  # 50.5 uS: far from the clip limits for all three references
    g = _spread(dev, level)
    expected = dev.sigma_at(dev.levels[level])
    assert g.std() == pytest.approx(expected, rel=0.05)
    assert g.mean() == pytest.approx(dev.levels[level], abs=4 * expected / np.sqrt(N))


def test_lognormal_sigma_matches_configuration():
    dev = Device(g_min_us=1, g_max_us=100, n_levels=11, variation="lognormal", sigma=0.1)
    g = _spread(dev, 5)
    assert np.log(g / dev.levels[5]).std() == pytest.approx(0.1, rel=0.05)
    assert g.std() == pytest.approx(dev.sigma_at(dev.levels[5]), rel=0.05)


def test_table_and_polynomial_sigma_match_configuration():
    tab = Device(g_min_us=1, g_max_us=100, n_levels=3, variation="table",
                 level_mean_us=(2, 40, 95), level_std_us=(0.1, 4, 1))
    g = _spread(tab, 1)
    assert g.mean() == pytest.approx(40, abs=0.05) and g.std() == pytest.approx(4, rel=0.05)
    wan = preset("wan2022")
    for level in (3, 8, 12):
        g = _spread(wan, level)
        assert g.std() == pytest.approx(wan.sigma_at(wan.levels[level]), rel=0.05)


def test_clipping_to_physical_range():
    dev = Device(g_min_us=1, g_max_us=10, n_levels=2, variation="gaussian", sigma=2.0)
    g = dev.program(np.tile([0, 1], N // 2), np.random.default_rng(2))
    assert g.min() == 1.0 and g.max() == 10.0


@pytest.mark.parametrize("sa0,sa1", [(0.0904, 0.0175), (0.2, 0.0), (0.0, 0.01)])
def test_stuck_at_rates_within_three_standard_errors(sa0, sa1):
    dev = Device(g_min_us=1, g_max_us=100, n_levels=4, sa0_rate=sa0, sa1_rate=sa1)
    g, stuck = dev.program_cells(np.full(N, 2, dtype=np.int32), np.random.default_rng(3))
    for rate, code, value in ((sa0, 1, 1.0), (sa1, 2, 100.0)):
        frac = np.mean(stuck == code)
        se = np.sqrt(max(rate * (1 - rate), 1e-12) / N)
        assert abs(frac - rate) <= 3 * se
        assert np.all(g[stuck == code] == value)
    assert np.all(g[stuck == 0] == dev.levels[2])


def test_same_seed_same_cells():
    dev = preset("charan2020-jxcdc")
    lv = np.random.default_rng(0).integers(0, 16, 1000)
    a = dev.program(lv, np.random.default_rng(5))
    np.testing.assert_array_equal(a, dev.program(lv, np.random.default_rng(5)))
    assert not np.array_equal(a, dev.program(lv, np.random.default_rng(6)))


def test_resistance_constructor_and_levels():
    dev = Device.from_resistance(6e3, 900e3, n_levels=4)
    assert dev.g_max_us == pytest.approx(1e6 / 6e3) and dev.on_off_ratio == pytest.approx(150)
    assert np.allclose(np.diff(dev.levels), np.diff(dev.levels)[0])
    explicit = Device(g_min_us=1, g_max_us=10, n_levels=3, levels_us=(1, 2, 10))
    assert list(explicit.nearest_level(np.array([1.4, 1.6, 5.9, 6.1]))) == [0, 1, 1, 2]


@pytest.mark.parametrize("field,value", [
    ("g_min_us", 0.0), ("g_min_us", -1.0), ("g_min_us", float("nan")), ("g_max_us", 0.5),
    ("n_levels", 1), ("n_levels", 2.5), ("levels_us", (1.0, 2.0)),
    ("levels_us", tuple(np.linspace(100, 1, 16))), ("variation", "uniform"), ("sigma", -0.1),
    ("sigma", 50.0), ("sigma_reference", "mean"), ("read_noise", -0.01), ("read_noise", 5.0),
    ("sa0_rate", -0.1), ("sa0_rate", 9.04), ("sa1_rate", 1.5), ("name", ""),
])
def test_invalid_values_name_field_value_and_range(field, value):
    with pytest.raises(ValueError) as err:
        Device(**{field: value})
    msg = str(err.value)
    assert f"Device.{field}" in msg and "allowed" in msg


def test_invalid_combinations():
    with pytest.raises(ValueError, match="sa1_rate"):
        Device(sa0_rate=0.7, sa1_rate=0.5)
    with pytest.raises(ValueError, match="level_mean_us"):
        Device(n_levels=3, variation="table")
    with pytest.raises(ValueError, match="poly_g_ref_us"):
        Device(variation="polynomial", sigma_poly_us=(1.0,))
    with pytest.raises(ValueError, match="levels must lie"):
        Device().program(np.array([16]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown Device field"):
        Device().replace(sigmaa=1)


def test_stuck_map_does_not_depend_on_the_variation():
    lv = np.random.default_rng(0).integers(0, 16, 5000)
    noisy = preset("charan2020-jxcdc")
    _, with_spread = noisy.program_cells(lv, np.random.default_rng(8))
    _, without = noisy.replace(sigma=0.0).program_cells(lv, np.random.default_rng(8))
    _, none = noisy.replace(variation="none").program_cells(lv, np.random.default_rng(8))
    np.testing.assert_array_equal(with_spread, without)
    np.testing.assert_array_equal(with_spread, none)
