"""The write-verify loop: Numba kernel against a slow reference, determinism, validation, files."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from xbar.devices import PRESETS, load_device_file, save_device
from xbar.devices.cell import Device
from xbar.devices.presets import WRITE_VERIFY_PRESETS, preset, preset_write_verify
from xbar.devices.write_verify import WriteVerifyParams, program_write_verify
from xbar.rng import Z_MAX, cell_draws, seed_key

M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN, MIX1, MIX2, CELL = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB,
                            0xD6E8FEB86659FD93)
ACKLAM_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
            1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
ACKLAM_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
            6.680131188771972e+01, -1.328068155288572e+01)
ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
            -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
            3.754408661907416e+00)


# --------------------------------------------------------------------------- the reference
def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * MIX1) & M64
    z = ((z ^ (z >> 27)) * MIX2) & M64
    return z ^ (z >> 31)


def uniform(cell_key: int, counter: int) -> float:
    h = mix64((cell_key + (counter + 1) * GOLDEN) & M64)
    return ((h >> 32) + 0.5) * (1.0 / 4294967296.0)


def normal(cell_key: int, counter: int) -> float:
    """Acklam's inverse normal CDF of the uniform, written out as in the paper."""
    p = uniform(cell_key, counter)
    a, b, c, d = ACKLAM_A, ACKLAM_B, ACKLAM_C, ACKLAM_D
    if p < 0.02425 or p > 1 - 0.02425:
        q = math.sqrt(-2 * math.log(p if p < 0.5 else 1 - p))
        x = ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
             / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1))


def naive_write_verify(params: WriteVerifyParams, levels: np.ndarray, seed: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The loop cell by cell, every read drawn, no shortcuts (the module docstring's words)."""
    key = int(seed_key(seed))
    g_out, pulses_out, reads_out, ok_out = [], [], [], []
    for i, lv in enumerate(levels.tolist()):
        ck = mix64(key ^ ((i * CELL) & M64))
        lo, hi, target = params.window_lo_us[lv], params.window_hi_us[lv], params.target_us[lv]
        stuck = uniform(ck, 0) < params.stuck_fraction[lv]
        if stuck:
            g, a = params.stuck_g_us[lv], 0.0
        else:
            g = params.g_start_us
            a = params.step_fraction[lv] * math.exp(params.cell_sigma[lv] * normal(ck, 1))
        pulses, reads, verified = 0, 0, False
        while True:
            r = g * (1.0 + params.read_noise * normal(ck, 2 + 2 * reads))
            reads += 1
            if lo <= r <= hi:
                verified = True
                break
            if pulses == params.max_pulses[lv]:
                break
            pulses += 1
            if stuck:
                continue
            x = a * math.exp(params.step_sigma[lv] * normal(ck, 1 + 2 * pulses))
            step = x * abs(target - g)
            g = g + step if r < lo else g - step  # SET below the window, RESET above
            g = min(max(g, params.g_min_us), params.g_max_us)
        g_out.append(g)
        pulses_out.append(pulses)
        reads_out.append(reads)
        ok_out.append(verified)
    return (np.array(g_out, np.float32), np.array(pulses_out), np.array(reads_out),
            np.array(ok_out))


def random_params(rng: np.random.Generator, read_noise: float) -> WriteVerifyParams:
    """Three levels (open below, closed, open above) on 1-100 uS with random loop settings."""
    mid = rng.uniform(30, 70)
    half = mid * rng.choice([0.003, 0.02, 0.1])
    lo = (0.0, mid - half, 85.0)
    hi = (10.0, mid + half, math.inf)
    target = (rng.uniform(1, 10), mid, rng.uniform(85, 100))
    stuck_g = tuple(float(v) for v in rng.choice(
        [rng.uniform(1, 100), mid * (1 + 0.5 * read_noise), 9.99, 86.0], size=3))
    return WriteVerifyParams(
        window_lo_us=lo, window_hi_us=hi, target_us=target,
        step_fraction=tuple(rng.uniform(0.05, 3, 3)), step_sigma=tuple(rng.uniform(0, 2, 3)),
        cell_sigma=tuple(rng.uniform(0, 1.5, 3)), stuck_fraction=tuple(rng.uniform(0, 0.3, 3)),
        stuck_g_us=stuck_g, max_pulses=tuple(int(v) for v in rng.integers(1, 40, 3)),
        g_start_us=rng.uniform(15, 60), g_min_us=1.0, g_max_us=100.0, read_noise=read_noise)


# --------------------------------------------------------------------------- tests
def test_generator_equals_pure_python():
    key = seed_key(7)
    for cell in (0, 1, 12345):
        got = cell_draws(key, cell, 2000)
        ck = mix64(int(key) ^ ((cell * CELL) & M64))
        np.testing.assert_array_equal(got, [normal(ck, c) for c in range(2000)])


def test_generator_is_standard_normal_and_bounded():
    z = cell_draws(seed_key(1), 3, 200_000)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.mean(np.abs(z) > 3) == pytest.approx(0.0027, abs=0.0006)
    # The uniforms stay 2**-33 from 0 and 1, which bounds |z| below Z_MAX (the read shortcut).
    p_min = 0.5 / 4294967296.0
    q = math.sqrt(-2 * math.log(p_min))
    c, d = ACKLAM_C, ACKLAM_D
    z_min = ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
             / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
    assert 6.3 < -z_min < Z_MAX


@pytest.mark.parametrize("read_noise", [0.0, 0.001, 0.02, 0.1])
@pytest.mark.parametrize("case", range(3))
def test_kernel_equals_reference(read_noise, case):
    rng = np.random.default_rng(100 * case + int(read_noise * 1000))
    params = random_params(rng, read_noise)
    levels = rng.integers(0, 3, 150)
    got = program_write_verify(params, levels, seed=case)
    g, pulses, reads, verified = naive_write_verify(params, levels, seed=case)
    np.testing.assert_array_equal(got.pulses, pulses)
    np.testing.assert_array_equal(got.reads, reads)
    np.testing.assert_array_equal(got.verified, verified)
    np.testing.assert_array_equal(got.g_us, g)


def test_stops_inside_the_window_or_at_the_cap():
    params = preset_write_verify("radar-3bpc")
    levels = np.random.default_rng(0).integers(0, params.n_levels, 20_000)
    res = program_write_verify(params, levels, seed=3)
    cap = np.asarray(params.max_pulses)[levels]
    assert np.all(res.pulses <= cap)
    assert np.all(res.pulses[~res.verified] == cap[~res.verified])
    np.testing.assert_array_equal(res.reads, res.pulses + 1)
    lo = np.asarray(params.window_lo_us)[levels]
    hi = np.asarray(params.window_hi_us)[levels]
    g = res.g_us.astype(np.float64)
    slack = Z_MAX * params.read_noise * g + 1e-3  # a verify read may pass just outside
    ok = res.verified
    assert np.all((g[ok] >= lo[ok] - slack[ok]) & (g[ok] <= hi[ok] + slack[ok]))
    exact = params.replace(read_noise=0.0)
    res0 = program_write_verify(exact, levels, seed=3)
    g0 = res0.g_us.astype(np.float64)
    tol = 1e-6 * g0  # float32 rounding of the returned conductance
    ok0 = res0.verified
    assert np.all((g0[ok0] >= lo[ok0] - tol[ok0]) & (g0[ok0] <= hi[ok0] + tol[ok0]))
    assert np.all((g0[~ok0] <= lo[~ok0] + tol[~ok0]) | (g0[~ok0] >= hi[~ok0] - tol[~ok0]))
    assert ok0.mean() > 0.9


def test_same_seed_same_cells_on_any_thread_count_and_chunking():
    params = preset_write_verify("radar-2bpc")
    levels = np.random.default_rng(1).integers(0, params.n_levels, 60_000)
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            runs.append(program_write_verify(params, levels, seed=11, parallel=True))
    finally:
        numba.set_num_threads(before)
    runs.append(program_write_verify(params, levels, seed=11, parallel=False))
    half = 25_000
    a = program_write_verify(params, levels[:half], seed=11)
    b = program_write_verify(params, levels[half:], seed=11, cell_offset=half)
    for r in runs[1:]:
        for name in ("g_us", "pulses", "reads", "verified"):
            np.testing.assert_array_equal(getattr(r, name), getattr(runs[0], name))
    np.testing.assert_array_equal(np.concatenate([a.pulses, b.pulses]), runs[0].pulses)
    np.testing.assert_array_equal(np.concatenate([a.g_us, b.g_us]), runs[0].g_us)
    other = program_write_verify(params, levels, seed=12)
    assert not np.array_equal(other.pulses, runs[0].pulses)


def test_shape_is_kept():
    params = preset_write_verify("radar-2bpc")
    levels = np.arange(12).reshape(3, 4) % 4
    res = program_write_verify(params, levels, seed=0)
    assert res.g_us.shape == res.pulses.shape == res.reads.shape == res.verified.shape == (3, 4)
    assert res.g_us.dtype == np.float32 and res.pulses.dtype == np.int32
    empty = program_write_verify(params, np.zeros(0, np.int64))
    assert empty.g_us.size == 0


def _valid(**changes) -> WriteVerifyParams:
    values = dict(window_lo_us=(0.0, 40.0), window_hi_us=(10.0, math.inf),
                  target_us=(5.0, 50.0), step_fraction=(0.5, 0.5), step_sigma=(0.3, 0.3),
                  cell_sigma=(0.2, 0.2), stuck_fraction=(0.0, 0.01), stuck_g_us=(20.0, 20.0),
                  max_pulses=(100, 100), g_start_us=20.0, g_min_us=1.0, g_max_us=60.0)
    values.update(changes)
    return WriteVerifyParams(**values)


@pytest.mark.parametrize("changes,message", [
    ({"step_fraction": (0.5, -0.1)}, r"step_fraction\[1\] = -0\.1 is invalid; allowed: \(0, 10\]"),
    ({"step_sigma": (0.3, 7.0)}, r"step_sigma\[1\] = 7\.0 is invalid; allowed: \[0, 5\]"),
    ({"cell_sigma": (-1.0, 0.2)}, r"cell_sigma\[0\] = -1\.0 .*\[0, 5\]"),
    ({"stuck_fraction": (0.0, 1.5)}, r"stuck_fraction\[1\] = 1\.5 .*\[0, 1\]"),
    ({"max_pulses": (0, 100)}, r"max_pulses\[0\] = 0 .*\[1, 10000000\]"),
    ({"max_pulses": (2.5, 100)}, r"max_pulses\[0\] = 2\.5 .*integer"),
    ({"window_hi_us": (10.0, 30.0)}, r"window_hi_us\[1\] = 30\.0 .*> window_lo_us"),
    ({"target_us": (12.0, 50.0)}, r"target_us\[0\] = 12\.0 .*inside the level's window"),
    ({"stuck_g_us": (20.0, 80.0)}, r"stuck_g_us\[1\] = 80\.0 .*\[1\.0, 60\.0\] uS"),
    ({"read_noise": 0.5}, r"read_noise = 0\.5 .*\[0, 0\.1\]"),
    ({"g_start_us": 70.0}, r"g_start_us = 70\.0 .*\[g_min_us, g_max_us\]"),
    ({"g_max_us": 0.5}, r"g_max_us = 0\.5 .*> g_min_us"),
    ({"g_min_us": float("nan")}, r"g_min_us = nan .*finite number"),
    ({"target_us": (5.0,)}, r"target_us = \(5\.0,\) .*2 values"),
    ({"step_sigma": "0.3"}, r"step_sigma = '0\.3' .*one value per level"),
])
def test_parameter_validation_names_field_value_and_range(changes, message):
    with pytest.raises(ValueError, match=r"WriteVerifyParams\." + message):
        _valid(**changes)


def test_program_errors():
    params = _valid()
    with pytest.raises(ValueError, match="integer level indices"):
        program_write_verify(params, np.zeros(3))
    with pytest.raises(ValueError, match=r"levels must lie in \[0, 1\]; got range \[0, 2\]"):
        program_write_verify(params, np.array([0, 2]))
    with pytest.raises(ValueError, match="seed = -1 is invalid"):
        program_write_verify(params, np.array([0]), seed=-1)
    with pytest.raises(ValueError, match="cell_offset"):
        program_write_verify(params, np.array([0]), cell_offset=-5)
    with pytest.raises(ValueError, match="unknown write-verify field"):
        WriteVerifyParams.from_dict({**params.to_dict(), "step": 1})


@pytest.mark.parametrize("name", list(WRITE_VERIFY_PRESETS))
def test_write_verify_presets_fit_their_devices(name):
    dev, wv = preset(name), preset_write_verify(name)
    assert name in PRESETS and wv.n_levels == dev.n_levels
    assert "10.1109/TED.2021.3097975" in wv.source and "10.1109/TED.2021.3097975" in dev.source
    assert WRITE_VERIFY_PRESETS[name].__doc__
    assert np.all(np.asarray(wv.window_lo_us) <= dev.levels)
    assert np.all(dev.levels <= np.asarray(wv.window_hi_us))
    with pytest.raises(ValueError, match="no write-verify parameters"):
        preset_write_verify("ideal")


@pytest.mark.parametrize("name", list(WRITE_VERIFY_PRESETS))
def test_device_file_round_trip_with_write_verify(name, tmp_path):
    dev, wv = preset(name), preset_write_verify(name)
    save_device(dev, tmp_path / "d.h5", write_verify=wv)
    back = load_device_file(tmp_path / "d.h5")
    assert back.device == dev and back.write_verify == wv
    save_device(dev, tmp_path / "plain.h5")
    assert load_device_file(tmp_path / "plain.h5").write_verify is None
    with pytest.raises(ValueError, match="levels"):
        save_device(preset("ideal"), tmp_path / "x.h5", write_verify=wv)


def test_toml_write_verify_table(tmp_path):
    (tmp_path / "d.toml").write_text(
        '[device]\nname = "mine"\ng_min_us = 1.0\ng_max_us = 60.0\nn_levels = 2\n'
        '[write_verify]\nwindow_lo_us = [0.0, 40.0]\nwindow_hi_us = [10.0, inf]\n'
        'target_us = [5.0, 50.0]\nstep_fraction = [0.5, 0.5]\nstep_sigma = [0.3, 0.3]\n'
        'cell_sigma = [0.2, 0.2]\nstuck_fraction = [0.0, 0.01]\nstuck_g_us = [20.0, 20.0]\n'
        'max_pulses = [100, 100]\ng_start_us = 20.0\ng_min_us = 1.0\ng_max_us = 60.0\n')
    f = load_device_file(tmp_path / "d.toml")
    assert f.device == Device(name="mine", g_min_us=1, g_max_us=60, n_levels=2)
    assert f.write_verify == _valid()
