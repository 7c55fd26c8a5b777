"""RADAR reader, measured statistics, the write-verify fit on chip1, and ``xbar device fit``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from xbar.devices import load_device_file
from xbar.devices.presets import preset, preset_write_verify
from xbar.devices.fit import FITTED, RadarFit, fit_radar
from xbar.devices.radar import measured_levels, read_radar
from xbar.mapping.cli.main import main

FILES = {"radar-2bpc": "fppv-2bpc-chip1.tsv", "radar-3bpc": "fppv-3bpc-chip1.tsv"}

# Tolerances the fit is held to (simulation with a fresh seed, 20,000 cells per level).
MEDIAN_TOL = 0.10  # relative, or 1 pulse, whichever is larger
SUCCESS_TOL = 0.006  # absolute
MEAN_TOL = 0.15  # relative
P90_TOL = 0.25  # relative


def _row(addr, nsets, nresets, r_final, r_lo, r_hi, success) -> str:
    values = [addr, nsets + nresets - 1, nsets, nresets, r_final, 0, r_lo, r_hi, success, 0, 0]
    return "\t".join(f"{float(v):.3f}" for v in values)


def write_synthetic(path: Path, n_per_level: int = 120, seed: int = 0) -> Path:
    """A RADAR-format file: 3 windows, geometric pulse counts, a few failures at a cap of 50."""
    rng = np.random.default_rng(seed)
    windows = [(0.0, 5000.0), (8000.0, 9000.0), (80000.0, 1e10)]
    lines = []
    for lo, hi in windows:
        for k in range(n_per_level):
            fail = rng.random() < 0.05
            pulses = 50 if fail else int(rng.geometric(0.3))
            r_top = hi if hi < 1e10 else 2e5
            r_final = (hi * 1.2 if hi < 1e10 else lo * 0.5) if fail else rng.uniform(
                max(lo, 3000.0), r_top)
            # SET-only below, RESET-only above, a mix in the middle (an initial RESET each)
            nsets = pulses if lo == 0 else (0 if hi >= 1e10 else pulses // 2)
            nresets = pulses + 1 - nsets
            lines.append(_row(1000 + k, nsets, nresets, r_final, lo, hi, 0 if fail else 1))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
    return path


# --------------------------------------------------------------------------- reader
def test_reader_parses_crlf_rows(tmp_path):
    f = tmp_path / "small.tsv"
    f.write_bytes(("30000.000\t0.000\t0.000\t1.000\t0.000\t0.000\t0.000\t5000.000\t1.000\t0.000"
                   "\t0.000\r\n"
                   "30001.000\t2.000\t1.000\t2.000\t5791.234\t0.000\t5770.000\t6010.000\t1.000"
                   "\t0.000\t0.000\r\n"
                   "30002.000\t10.000\t0.000\t11.000\t40000.000\t0.000\t80000.000"
                   "\t10000000000.000\t0.000\t0.000\t0.000\r\n"
                   "30003.000\t1.000\t0.000\t2.000\t311205.970\t0.000\t80000.000"
                   "\t10000000000.000\t1.000\t0.000\t0.000\r\n").encode())
    d = read_radar(f)
    np.testing.assert_array_equal(d.addr, [30000, 30001, 30002, 30003])
    np.testing.assert_array_equal(d.pulses, [0, 2, 10, 1])
    np.testing.assert_array_equal(d.success, [True, True, False, True])
    assert d.windows_ohm == [(0.0, 5000.0), (5770.0, 6010.0), (80000.0, 1e10)]
    np.testing.assert_array_equal(d.level_of_rows(), [0, 1, 2, 2])
    levels = measured_levels(d)
    assert [lv.name for lv in levels] == ["L0", "L1", "L2"]
    assert [lv.device_level for lv in levels] == [2, 1, 0]
    top = levels[2]
    assert top.g_lo_us == 0.0 and top.g_hi_us == pytest.approx(12.5)
    assert levels[0].g_hi_us == math.inf and levels[0].g_lo_us == pytest.approx(200.0)
    assert top.measured.mean_pulses == 5.5 and top.measured.median_pulses == 5.5
    assert top.measured.success_rate == 0.5 and top.max_pulses == 10
    assert top.measured.g_mean_us == pytest.approx((25.0 + 1e6 / 311205.97) / 2)
    assert math.isnan(levels[0].measured.g_mean_us)  # r_final = 0: no reading, left out


@pytest.mark.parametrize("text,message", [
    ("1\t2\t3\r\n", r"bad\.tsv:1: expected 11 tab-separated columns .* found 3"),
    ("1\t1\t1\t1\t5000\t0\t0\t6000\t1\t0\t0\r\n1\t1\t1\t1\tabc\t0\t0\t6000\t1\t0\t0\r\n",
     r"bad\.tsv:2: column 5 \(r_final_ohm\) = 'abc' is not a number"),
    ("1\t1\t1\t1\t5000\t0\t0\t6000\t2\t0\t0\r\n",
     r"bad\.tsv:1: success = 2 is invalid; allowed: 0 or 1"),
    ("1\t1\t1\t1\t5000\t0\t7000\t6000\t1\t0\t0\r\n", r"bad\.tsv:1: r_hi_ohm = 6000 .*> r_lo"),
    ("1\t1\t-1\t1\t5000\t0\t0\t6000\t1\t0\t0\r\n", r"bad\.tsv:1: nsets = -1 .*integer >= 0"),
    ("1\t1\t0\t0\t5000\t0\t0\t6000\t1\t0\t0\r\n", r"bad\.tsv:1: nresets = 0 .*nsets \+ nresets"),
    ("1\t1\t1\t1\tnan\t0\t0\t6000\t1\t0\t0\r\n", r"bad\.tsv:1: column 5 .* not a finite number"),
    ("", r"bad\.tsv: empty file"),
])
def test_reader_rejects_malformed_files(tmp_path, text, message):
    f = tmp_path / "bad.tsv"
    f.write_bytes(text.encode())
    with pytest.raises(ValueError, match=message):
        read_radar(f)


def test_reader_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_radar(tmp_path / "none.tsv")


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def fits() -> dict[str, RadarFit]:
    from conftest import shared_data_dir

    d = shared_data_dir() / "rram-radar"
    if not all((d / f).exists() for f in FILES.values()):
        pytest.skip(f"RADAR chip1 files are absent from {d}")
    return {name: fit_radar(d / f, seed=0, name=name) for name, f in FILES.items()}


def test_measured_statistics_match_the_data_readme(data_dir):
    f = data_dir / "rram-radar" / FILES["radar-2bpc"]
    if not f.exists():
        pytest.skip(f"{f} is absent")
    levels = measured_levels(read_radar(f))
    got = [(round(lv.measured.mean_pulses, 1), lv.measured.median_pulses,
            round(lv.measured.success_rate, 3)) for lv in levels]
    assert got == [(7.1, 1, 1.0), (22.0, 11, 0.998), (21.8, 13, 0.998), (2.5, 1, 0.85)]
    assert sum(lv.measured.n_cells for lv in levels) == 32_772


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FILES))
def test_fit_reproduces_per_level_statistics(fits, name):
    fit = fits[name]
    for lvl, sim in zip(fit.levels, fit.simulated):
        m = lvl.measured
        where = f"{name} {lvl.name}: measured {m.pulse_dict()}, simulated {sim.pulse_dict()}"
        assert abs(sim.median_pulses - m.median_pulses) <= max(1, MEDIAN_TOL
                                                               * m.median_pulses), where
        assert abs(sim.success_rate - m.success_rate) <= SUCCESS_TOL, where
        assert abs(sim.mean_pulses / m.mean_pulses - 1) <= MEAN_TOL, where
        assert abs(sim.p90_pulses / m.p90_pulses - 1) <= P90_TOL, where
    assert fit.seconds < 120


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FILES))
def test_fit_matches_the_embedded_preset(fits, name):
    fit = fits[name]
    dev, wv = preset(name), preset_write_verify(name)
    assert fit.device.replace(source=dev.source) == dev
    got = fit.write_verify.replace(source=wv.source)
    for field_name in FITTED:  # optimiser output: equal to the digits embedded
        np.testing.assert_allclose(getattr(got, field_name), getattr(wv, field_name),
                                   rtol=1e-4, err_msg=field_name)
    fixed = {k: v for k, v in got.to_dict().items() if k not in FITTED}
    assert fixed == {k: v for k, v in wv.to_dict().items() if k not in FITTED}


# --------------------------------------------------------------------------- CLI
def test_cli_device_fit_json(tmp_path, capsys):
    data = write_synthetic(tmp_path / "synthetic.tsv")
    out = tmp_path / "dev.h5"
    rc = main(["device", "fit", "--data", str(data), "--format", "radar", "--out", str(out),
               "--json", "--seed", "3"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == 3 and len(doc["levels"]) == 3
    for lvl in doc["levels"]:
        for side in ("measured", "simulated"):
            for key in ("mean_pulses", "median_pulses", "p90_pulses", "success_rate"):
                assert isinstance(lvl[side][key], float), (side, key)
            assert 0 <= lvl[side]["success_rate"] <= 1
    assert [lvl["name"] for lvl in doc["levels"]] == ["L0", "L1", "L2"]
    stored = load_device_file(out)
    assert stored.device.n_levels == 3 and stored.write_verify is not None
    assert stored.write_verify.to_dict()["step_fraction"] == doc["write_verify"]["step_fraction"]
    np.testing.assert_allclose(stored.measured["mean_pulses"][::-1],
                               [lvl["measured"]["mean_pulses"] for lvl in doc["levels"]])
    rc = main(["device", "fit", "--data", str(data), "--out", str(tmp_path / "t.h5")])
    text = capsys.readouterr().out
    assert rc == 0 and "L2" in text and "wrote" in text


@pytest.mark.parametrize("args,message", [
    (["--format", "csv"], "unknown --format 'csv'; supported formats: radar"),
    (["--data", "MISSING"], "does not exist"),
    (["--data", "BAD"], r"bad.tsv:1: expected 11 tab-separated columns"),
    (["--out", "x.txt"], "must end in .h5"),
])
def test_cli_device_fit_errors(tmp_path, capsys, args, message):
    good = write_synthetic(tmp_path / "good.tsv", n_per_level=20)
    (tmp_path / "bad.tsv").write_bytes(b"1\t2\r\n")
    argv = ["device", "fit", "--data", str(good), "--out", str(tmp_path / "d.h5")]
    for flag, value in zip(args[::2], args[1::2]):
        value = {"MISSING": str(tmp_path / "none.tsv"), "BAD": str(tmp_path / "bad.tsv"),
                 "x.txt": str(tmp_path / "x.txt")}.get(value, value)
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xbar device: error:")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "d.h5").exists()
