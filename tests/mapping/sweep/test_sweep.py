"""``xbar sweep``: parameters and validation, results file, resume after a kill, Dask = local.

One tiny sweep (digits CNN on the embedded digits data, sigma at 2 values x one-shot and KD
x 2 chips, tiny budgets, one thread) is the reference the other runs are checked against.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from xbar.devices import Device
from xbar.mapping.cli.main import main
from xbar.mapping.sweep.run import SweepSpec, plan_sweep, run_sweep
from xbar.mapping.sweep.params import sweep_params
from xbar.mapping.sweep.store import RESULT_METRICS, SweepResults
from xbar.config import ADCConfig, ArrayConfig, DACConfig, HardwareConfig

REPO = Path(__file__).resolve().parents[3]
TINY = SweepSpec(param="sigma", values="0.1,0.3", model="digits-cnn", dataset="digits",
                 device="charan2020-jxcdc", methods=("one-shot", "kd"), chips=2, seed=3,
                 kd_epochs=1, steps=5)
TINY_ARGS = ["sweep", "--param", "sigma", "--values", "0.1,0.3", "--model", "digits-cnn",
             "--dataset", "digits", "--device", "charan2020-jxcdc", "--methods", "one-shot,kd",
             "--chips", "2", "--seed", "3", "--kd-epochs", "1", "--steps", "5"]


def same_points(a: SweepResults, b: SweepResults) -> None:
    """Every finished point of ``a`` and ``b`` holds the same results (wall times aside)."""
    assert a.hash == b.hash
    np.testing.assert_array_equal(a.done, b.done)
    for m in RESULT_METRICS:
        np.testing.assert_array_equal(a.metrics[m], b.metrics[m], err_msg=m)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SweepResults:
    """The tiny sweep, run in this process (one worker, one thread)."""
    out = tmp_path_factory.mktemp("sweep") / "reference.h5"
    run = run_sweep(TINY, out, workers=1, threads=1)
    assert run.computed == 8 and run.skipped == 0 and run.where == "this process"
    return SweepResults.load(out)


# ---------------------------------------------------------------------- parameters

def test_every_scalar_field_is_sweepable_with_a_range() -> None:
    params = sweep_params()
    device_fields = {f.name for f in dataclasses.fields(Device) if f.init
                     and str(f.type) in ("float", "int", "str")} - {"name", "source",
                                                                     "weight_mapping"}
    sections = (("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig))
    hw_fields = {f"{s}.{f.name}" for s, k in sections for f in dataclasses.fields(k)}
    assert set(params) == device_fields | hw_fields | {"sram_ratio"}
    assert params["sigma"].allowed.startswith("[0, 10]")
    assert params["adc.bits"].allowed == "an integer in [1, 16]"
    assert params["sram_ratio"].allowed.startswith("(0, 1]")
    assert params["g_min_us"].unit == "uS" and params["array.read_voltage_v"].unit == "V"
    assert params["read_noise"].unit == "fraction" and params["adc.bits"].unit == "bits"
    assert all(p.description for p in params.values())


def test_list_params_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--list-params", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert {"sigma", "n_levels", "sa0_rate", "read_noise", "array.rows", "adc.bits",
            "dac.input_bits", "sram_ratio"} <= set(listed)
    assert listed["n_levels"]["allowed"] == "an integer in [2, 65536]"


@pytest.mark.parametrize("param, values, says", [
    ("sigmaa", "0.1", "valid names: g_min_us"),
    ("sigma", "0.1,11", "sigma = 11.0 is refused"),
    ("sigma", "0.1,-0.1", "[0, 10]"),
    ("n_levels", "4,2.5", "not an integer"),
    ("adc.bits", "4,0", "[1, 16]"),
    ("adc_bits", "17", "[1, 16]"),
    ("sa0_rate", "0.5,0.99", "sa1_rate"),
    ("sram_ratio", "0.05,0", "(0, 1]"),
    ("sigma", "0.1,0.1", "repeats"),
    ("sigma", "", "empty"),
    ("variation", "gaussian,bogus", "one of"),
])
def test_bad_sweeps_are_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, param: str, values: str,
        says: str) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before validation")
    monkeypatch.setattr("xbar.mapping.data.workflow.load_teacher", no_work)
    out = tmp_path / "never.h5"
    with pytest.raises(ValueError) as err:
        run_sweep(dataclasses.replace(TINY, param=param, values=values), out)
    assert says in str(err.value)
    assert str(err.value).startswith("resolve_points("), err.value  # the argument, no flag
    assert not out.exists()


def test_sweeping_a_field_the_device_ignores_is_refused() -> None:
    with pytest.raises(ValueError, match=r"does not read sigma .*pick another device "
                                         r"\(resolve_points\(device=...\)\) or parameter "
                                         r"\(resolve_points\(name=...\)\)$"):
        plan_sweep(dataclasses.replace(TINY, device="radar-2bpc"))


def test_cli_error_names_the_valid_parameters(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.h5"
    assert main(["sweep", "--param", "levels", "--values", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "resolve_points(name='levels'): unknown sweep parameter" in err and "n_levels" in err
    assert err.strip().endswith("(sweep_params() gives their units and ranges) (option --param)")
    assert not out.exists()


# ---------------------------------------------------------------------- results

@pytest.mark.slow
def test_file_layout_and_attributes(reference: SweepResults, tmp_path: Path) -> None:
    r = reference
    assert r.done.all() and r.shape == (2, 2, 2)
    assert r.values == [0.1, 0.3] and r.methods == ["one-shot", "kd"]
    assert set(r.versions) >= {"xbar-sim", "numpy", "torch", "numba"}
    assert set(r.kd) == {"0", "1"}  # one student per sigma
    assert np.all((r.metrics["accuracy"] > 0.5) & (r.metrics["accuracy"] <= 1))
    # The two chips differ; chip seeds are seed + c for every value and method.
    assert not np.array_equal(r.metrics["accuracy"][..., 0], r.metrics["accuracy"][..., 1])
    summary = r.summary()
    assert summary["kd"]["chips"] == [2, 2]


@pytest.mark.slow
def test_a_point_is_one_chip_of_compare(reference: SweepResults) -> None:
    """sigma 0.3, KD, chip 1 equals compare() on that device with chip seed 3 + 1."""
    from xbar.devices import preset
    from xbar.mapping.recovery.techniques.sram import AdaptConfig
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.kd import KDConfig, distill
    from xbar.mapping.data.workflow import load_teacher
    from xbar.config import XbarConfig

    teacher = load_teacher("digits-cnn", "digits")
    device = preset("charan2020-jxcdc").replace(sigma=0.3)
    kd = KDConfig(epochs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # only for speed on a busy machine: results do not depend on it
    try:
        student, _ = distill(teacher.model, teacher.dataset, device, XbarConfig(), kd, 3)
        got = compare(teacher.model, teacher.dataset, device, HardwareConfig(),
                      CompareSettings(chips=1, seed=4, methods=("kd",), kd=kd,
                                      adapt=AdaptConfig(steps=5)), student=student)
    finally:
        torch.set_num_threads(threads)
    assert got["methods"]["kd"]["accuracy"] == reference.metrics["accuracy"][1, 1, 1]


@pytest.mark.slow
def test_rerun_skips_and_other_config_is_refused(reference: SweepResults,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    with h5py.File(out, "w"):
        pass
    with pytest.raises(ValueError, match=r"not an xbar-sim sweep results file \(format None\); "
                                         r"write the sweep elsewhere \(run_sweep\(out=...\)\)"):
        run_sweep(TINY, out)
    out.unlink()
    reference.save(out)
    again = run_sweep(TINY, out, workers=1, threads=1)
    assert again.computed == 0 and again.skipped == 8
    with pytest.raises(ValueError, match="differ in: chips"):
        run_sweep(dataclasses.replace(TINY, chips=3), out)
    with pytest.raises(ValueError, match="differ in: values"):
        run_sweep(dataclasses.replace(TINY, values="0.1,0.2"), out)


def test_a_failed_point_keeps_the_finished_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xbar.mapping.sweep.schedule

    real = xbar.mapping.sweep.schedule.point_task

    def flaky(ctx, teacher, i, method, chip, student, threads):  # type: ignore[no-untyped-def]
        if i == 1:
            raise FileNotFoundError("no data here")
        return real(ctx, teacher, i, method, chip, student, threads)

    spec = dataclasses.replace(TINY, methods=("one-shot",), chips=1)
    out = tmp_path / "f.h5"
    monkeypatch.setattr(xbar.mapping.sweep.schedule, "point_task", flaky)
    says = r"point sigma = 0.3, one-shot, chip 0 failed .* FileNotFoundError: no data here"
    with pytest.raises(ValueError, match=says + r". The 1 finished points are saved"):
        run_sweep(spec, out, workers=1, threads=1)
    assert SweepResults.load(out).done.sum() == 1
    monkeypatch.setattr(xbar.mapping.sweep.schedule, "point_task", real)
    again = run_sweep(spec, out, workers=1, threads=1)
    assert (again.skipped, again.computed) == (1, 1)


@pytest.mark.slow
def test_plot_marks_the_published_point(reference: SweepResults, tmp_path: Path) -> None:
    from xbar.mapping.sweep.plot import published_points, save_plot

    assert published_points(reference) == []  # digits: no paper figure applies
    r = reference
    dac = dataclasses.replace(r, config={**r.config, "model": "lenet5", "dataset": "mnist",
                                         "device": {**r.config["device"], "n_levels": 10},
                                         "param": "sigma"}, values=[0.1, 0.5])
    (point, index), = published_points(dac)
    assert (point.source, point.accuracy, index) == ("DAC 2020", 0.3176, 1)
    png = save_plot(dac, tmp_path / "p.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- where it runs

@pytest.mark.slow
def test_dask_local_cluster_equals_the_local_run(reference: SweepResults,
                                                 tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        run = run_sweep(TINY, tmp_path / "dask.h5", scheduler=cluster.scheduler_address)
    assert run.computed == 8 and "Dask cluster" in run.where
    got = SweepResults.load(tmp_path / "dask.h5")
    same_points(got, reference)
    assert "distributed" in got.versions


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(reference: SweepResults,
                                                tmp_path: Path) -> None:
    """Kill a 2-worker run (driver and workers) after its first points, rerun, compare."""
    out = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "xbar", *TINY_ARGS, "--out", str(out),
           "--workers", "2", "--threads", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                done = int(SweepResults.load(out).done.sum())  # readable at every instant
                if done >= 1:
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert 1 <= done < 8, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    killed = SweepResults.load(out)
    before = killed.done.copy()
    assert 1 <= before.sum() < 8

    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["points_skipped"] == before.sum()
    assert report["points_computed"] == 8 - before.sum()
    final = SweepResults.load(out)
    same_points(final, reference)
    # The points finished before the kill were kept as they were, not computed again.
    assert np.all(final.run[before] == 0) and np.all(final.run[~before] == 1)
    np.testing.assert_array_equal(final.metrics["wall_s"][before],
                                  killed.metrics["wall_s"][before])
