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


@pytest.mark.parametrize("c2c", [0.0, 0.5, 1.0])
def test_variation_splits_into_a_fixed_and_a_fresh_part(c2c: float) -> None:
    """Two writes of the same cells to the same levels: their log deviations correlate by
    1 - c2c_fraction (the device-to-device share) and each keeps the total spread; two
    networks programmed on one seed share only the device-to-device part as well."""
    from xbar.analog import AnalogMatrix
    from xbar.config import ArrayConfig, XbarConfig

    dev = Device(name="split", g_min_us=1.0, g_max_us=100.0, n_levels=16,
                 variation="lognormal", sigma=0.1, c2c_fraction=c2c)
    cfg = XbarConfig(array=ArrayConfig(weight_mapping="offset"))
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (120, 300))
    m = AnalogMatrix.program(w, dev, cfg, np.random.default_rng(7))
    level = dev.levels[m.target_levels]
    first = np.log(m.g_us / level)
    assert m.write(m.target_levels, np.random.default_rng(8),
                   cells=np.ones(m.g_us.shape, bool)) == m.g_us.size
    second = np.log(m.g_us / level)
    # no cell reaches the clip at sigma 0.1 on levels 2..15 (and the offset layout's
    # zero weight sits mid-range), so the log deviations are the Gaussian draws times sigma
    inner = (m.target_levels > 0) & (m.target_levels < 15)
    assert first[inner].std() == pytest.approx(0.1, rel=0.03)
    assert second[inner].std() == pytest.approx(0.1, rel=0.03)
    r = np.corrcoef(first[inner], second[inner])[0, 1]
    assert r == pytest.approx(1 - c2c, abs=0.02)
    if c2c == 0:
        np.testing.assert_array_equal(first, second)   # a per-cell constant: the oracle case
    other = AnalogMatrix.program(rng.uniform(-1, 1, (120, 300)), dev, cfg,
                                 np.random.default_rng(7))
    both = inner & (other.target_levels > 0) & (other.target_levels < 15)
    dev_other = np.log(other.g_us / dev.levels[other.target_levels])
    assert np.corrcoef(first[both], dev_other[both])[0, 1] == pytest.approx(1 - c2c, abs=0.03)


def test_a_rewrite_leaves_stuck_cells_and_the_rest_alone() -> None:
    from xbar.analog import AnalogMatrix
    from xbar.config import XbarConfig

    dev = Device(name="s", g_min_us=1.0, g_max_us=100.0, n_levels=8, variation="gaussian",
                 sigma=0.05, sa0_rate=0.1, sa1_rate=0.1)
    m = AnalogMatrix.program(np.random.default_rng(0).normal(size=(20, 50)), dev, XbarConfig(),
                             np.random.default_rng(1))
    g0, old = m.g_us.copy(), m.target_levels.copy()
    new = np.where(old < 7, old + 1, old).astype(np.int32)
    changed = new != old
    assert m.write(new, np.random.default_rng(2)) == int(changed.sum()) > 0
    np.testing.assert_array_equal(m.target_levels, new)
    np.testing.assert_array_equal(m.g_us[~changed], g0[~changed])     # not written: as it was
    assert np.all(m.g_us[m.stuck == 1] == dev.g_min_us)                # stuck: stays stuck
    assert np.all(m.g_us[m.stuck == 2] == dev.g_max_us)
    healthy = changed & (m.stuck == 0)
    assert np.all(m.g_us[healthy] != g0[healthy])                      # written: moved
