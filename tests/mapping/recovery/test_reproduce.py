"""``xbar reproduce``: every published figure of the works gets a row beside a simulated
number (or a stated reason why not), in the table, the JSON and the HDF5 file."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from xbar.errors import ConfigError
from xbar.mapping.cli.main import main
from xbar.mapping.recovery.published import KINDS, PUBLISHED, published
from xbar.mapping.recovery.reproduce import WORKS, ReproduceSettings, reproduce
from xbar.mapping.recovery.reproduce_report import format_rows

TINY = ["--quick", "--chips", "1", "--steps", "10", "--adapt-batch", "16", "--kd-epochs", "1",
        "--sram-ratio", "0.03,0.08"]


def test_published_table() -> None:
    ids = [(p.work, p.figure) for p in PUBLISHED]
    assert len(ids) == len(set(ids))
    for p in PUBLISHED:
        assert p.kind in KINDS and p.text and p.setting
        assert p.value is None or p.value > 0 or (p.kind == "power-change" and p.value > -1)
    # every work with a published figure can be reproduced, and each reproducible work has one
    assert {p.work for p in PUBLISHED} == set(WORKS)
    assert published("work2", "collapse-mnist").value == pytest.approx(0.3176)
    assert published("work1", "speedup").high == 150.0
    with pytest.raises(KeyError):
        published("work1", "nope")


@pytest.mark.parametrize("bad, match", [
    (dict(works=("work9",)), "works"), (dict(works=()), "works"),
    (dict(works=("work1", "work1")), "twice"), (dict(fractions=(0.0,)), "fractions"),
    (dict(fractions=(0.05, 1.5)), "fractions"), (dict(cifar_test_limit=0), "cifar_test_limit"),
    (dict(chips=0), "chips"), (dict(steps=True), "steps"),
    (dict(extra={"work4_sigmaa": 2.0}), "unknown key")])
def test_settings_are_validated(bad: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ReproduceSettings(**bad)


@pytest.mark.slow
def test_reproduce_all_rows_json_and_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep.h5"
    assert main(["reproduce", "all", *TINY, "--json", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    result = json.loads(text)
    rows = result["rows"]
    figures = {(r["work"], r["figure"]) for r in rows}
    assert figures == {(p.work, p.figure) for p in PUBLISHED if p.work in WORKS}
    for r in rows:
        assert set(r) >= {"work", "figure", "published", "simulated", "simulated_std",
                          "setting", "difference"}
        if r["simulated"] is None:
            assert r["note"], r  # a figure not simulated says why
        elif r["published"] is not None and r["kind"] != "speedup":
            assert r["difference"] == pytest.approx(r["simulated"] - r["published"])
        # the paper's figure or null: never our own FP32 in its place
        assert r["published"] == published(r["work"], r["figure"]).value, r
        if r["published"] is None:
            assert r["difference"] is None
    for fig in ("kd-osa-mnist", "recovery"):   # the paper's "baseline": against our FP32
        r = next(x for x in rows if x["figure"] == fig)
        assert "baseline = our FP32" in r["setting"] and r["versus_our_fp32"] is not None
    adc = next(r for r in rows if r["figure"] == "adc-power")
    test = result["works"]["work4"]["adc_search"]
    assert test["test_images"] == 360 and 0 < test["test_accuracy"] <= 1   # digits' test set
    assert f"{100 * test['test_accuracy']:.2f} %" in adc["setting"]
    speedups = [r for r in rows if r["figure"] == "speedup"]
    assert {r["setting"].split(" accounting")[0] for r in speedups} == {"full-chip",
                                                                          "cell-by-cell"}
    for r in speedups:
        assert "write" in r["setting"] and r["simulated"] > 0
        assert "stopping rule" in r["setting"] and "of T_rvw" in r["note"]
    assert {r["setting"].split("stopping rule ")[1].split(":")[0] for r in speedups} == \
        {"loop-cap", "abort-8"}
    rules = {r["rule"] for r in result["sensitivity"]}
    assert rules == {"loop-cap", "healthy-median", "abort-8", "abort-32"}
    assert "by stopping rule and write time" in format_rows(result)
    _physics_bands(result)
    collapse = next(r for r in rows if r["figure"] == "collapse-mnist")
    assert 0 <= collapse["simulated"] <= 1 and "charan2020-dac" in collapse["setting"]
    assert result["sensitivity"] and out.exists()
    with h5py.File(out) as f:
        assert f.attrs["format"] == "xbar-sim reproduce"
        assert len(f["rows"]) == len(rows)
        assert "speedup.png" in f["plots"]
    assert (tmp_path / "rep-speedup.png").stat().st_size > 1000


def _physics_bands(result: dict) -> None:
    """What the physics implies of any run, whatever its budget: no hardware beats FP32; the
    DAC 2020 setting collapses; the chip's stuck cells are its fault rates; a pulse cap is
    the most a controller can spend on a cell, so the loop's cap gives the longest R-V-W at
    any write time and accounting, and a cap at the healthy median verifies no more cells."""
    fp32 = result["fp32_accuracy"]
    for r in result["rows"]:
        if r["kind"] == "accuracy" and r["simulated"] is not None:
            assert 0.0 <= r["simulated"] <= fp32 + 0.02, r
        if r["kind"] == "accuracy-loss" and r["simulated"] is not None:
            assert -0.02 <= r["simulated"] <= 1.0, r
        if r["kind"] == "power-change" and r["simulated"] is not None:
            assert -1.0 < r["simulated"] <= 0.0, r
    collapse = next(r for r in result["rows"] if r["figure"] == "collapse-mnist")
    assert collapse["simulated"] < fp32 - 0.3
    sens = [r for r in result["sensitivity"] if r["accounting"] != "drivers"]
    jxcdc = 0.0904 + 0.0175
    for r in sens:
        assert abs(r["stuck_cells"] - jxcdc) < 0.01, r
        assert 0.0 <= r["stuck_time_share"] <= 1.0 and 0.0 <= r["stuck_pulse_share"] <= 1.0
        loop = next(x for x in sens if x["rule"] == "loop-cap" and all(
            x[k] == r[k] for k in ("accounting", "write_time_ns", "steps", "batch")))
        assert r["t_rvw_s"] <= loop["t_rvw_s"] * (1 + 1e-12), (r["rule"], loop["rule"])
        if r["rule"] == "loop-cap":    # about half the stuck cells sit outside their window
            assert r["stuck_pulse_share"] > 0.5
        if r["rule"].startswith("abort-"):
            assert r["stuck_pulse_share"] < loop["stuck_pulse_share"]
        if r["rule"] == "healthy-median":
            assert r["rvw_accuracy"] <= loop["rvw_accuracy"] + 0.02
            assert r["healthy_outside_window"] >= loop["healthy_outside_window"]


def test_reproduce_refuses_bad_options(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "work1", "--quick", "--sram-ratio", "0.05,x"]) == 2
    assert "--sram-ratio '0.05,x': entry 2 ('x') is not a number" in capsys.readouterr().err
    sweep = tmp_path / "s.h5"
    with h5py.File(sweep, "w") as f:
        f.attrs["format"] = "xbar-sim sweep"
    assert main(["reproduce", "work1", "--quick", "--out", str(sweep)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_reproduce_one_work(capsys: pytest.CaptureFixture[str]) -> None:
    result = reproduce(ReproduceSettings(works=("work2",), quick=True, chips=1, steps=5,
                                         batch=16, kd_epochs=1, fractions=(0.05,)))
    assert {r["work"] for r in result["rows"]} == {"work2"}
    assert "work1" not in result["works"] and "sensitivity" not in result
    fp32 = result["fp32_accuracy"]
    rows = {r["figure"]: r for r in result["rows"]}
    kd_osa = rows["kd-osa-mnist"]   # the paper prints "baseline", no number
    assert kd_osa["published"] is None and kd_osa["published_text"] == "baseline"
    assert kd_osa["difference"] is None
    assert kd_osa["versus_our_fp32"] == pytest.approx(kd_osa["simulated"] - fp32)
    assert f"baseline = our FP32 ({fp32:.2%})" in kd_osa["setting"]
    assert f"{100 * (kd_osa['simulated'] - fp32):+.2f} points against our FP32" in kd_osa["note"]
    collapse = rows["collapse-mnist"]   # a published number: compared with it, not FP32
    assert collapse["published"] == pytest.approx(0.3176)
    assert collapse["difference"] == pytest.approx(collapse["simulated"] - 0.3176)
    assert collapse["versus_our_fp32"] is None
    table = format_rows(result).splitlines()
    line = next(x for x in table if x.split()[:2] == ["work2", "kd-osa-mnist"])
    assert f"{100 * kd_osa['versus_our_fp32']:+.2f}*" in line
    assert any(x.startswith("* no published number") for x in table)
    line = next(x for x in table if x.split()[:2] == ["work2", "collapse-mnist"])
    assert f" {100 * collapse['difference']:+.2f}  {collapse['setting']}" in line


def _result(**acc: float) -> dict:
    return {"methods": {k.replace("_", "+").replace("bias+only", "bias-only")
                        .replace("one+shot", "one-shot"): {"accuracy": v, "sram_fraction": 0.05}
                        for k, v in acc.items()}, "kd": {}}


def test_story_says_when_the_proposed_method_loses_to_the_control() -> None:
    from xbar.mapping.recovery.compare import story

    lose = story(_result(software=0.98, one_shot=0.85, bias_only=0.975, kd=0.90, kd_rsa=0.96))
    assert any(s.startswith("KD lifts one-shot") for s in lose)
    line = next(s for s in lose if s.startswith("KD+RSA"))
    assert "does not beat the bias-only control" in line and "offset and gain" in line
    win = story(_result(software=0.98, one_shot=0.5, bias_only=0.7, kd=0.6, kd_rsa=0.95))
    assert any(s.startswith("KD+RSA beats the bias-only control") for s in win)
    tie = story(_result(software=0.98, one_shot=0.3, bias_only=0.6, kd=0.3, kd_osa=0.602))
    line = next(s for s in tie if s.startswith("KD+OSA"))
    assert "does not beat" in line and "CompareSettings.sram_ratio" in line and "--" not in line
    from xbar.mapping.cli.common import name_options
    from xbar.mapping.cli.compare import FLAGS
    assert "(try a larger --sram-ratio or --steps)" in name_options(line, FLAGS)  # the CLI's
    failed = _result(software=0.98, one_shot=0.3, kd=0.31)
    failed["kd"] = {"learned": False, "reason": "the student did not learn (numbers)"}
    assert any("failed to learn" in s for s in story(failed))
