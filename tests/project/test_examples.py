"""The scripts in examples/ run as a user would run them (a fresh interpreter, from another
directory), with small settings, and print what their docstrings promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_data_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RADAR_FILE = shared_data_dir() / "rram-radar" / "fppv-2bpc-chip1.tsv"


def run_example(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``examples/NAME`` with ``args`` in ``cwd`` on one thread; stdout and stderr."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_every_example_is_tested_and_documented() -> None:
    tested = {"own_network.py", "fit_and_compare.py", "dask_sweep.py",
              "hardware_aware_training.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
    for name in tested:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""') and "Run it" in text and f"examples/{name}" in text, name


@pytest.mark.slow
def test_own_network(tmp_path: Path) -> None:
    done = run_example("own_network.py", ["--epochs", "2", "--seed", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("device:   my-cell", "accuracy: FP32", "on the chip", "latency:",
                     "conv1:", "energy:", "TOPS/W", "area:", "one-shot programming"):
        assert expected in out, (expected, out)


@pytest.mark.slow
def test_hardware_aware_training(tmp_path: Path) -> None:
    done = run_example("hardware_aware_training.py",
                       ["--epochs", "2", "--hwa-epochs", "1", "--chips", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("device:   noisy-cell", "1 through the chip", "plain", "hardware-aware",
                     "on 2 unseen chips"):
        assert expected in out, (expected, out)


@pytest.mark.slow
def test_fit_and_compare(tmp_path: Path) -> None:
    if not RADAR_FILE.is_file():
        pytest.skip(f"RADAR data {RADAR_FILE} is absent (set XBAR_DATA to its folder)")
    done = run_example("fit_and_compare.py",
                       ["--data", str(RADAR_FILE), "--fit-cells", "256", "--chips", "1",
                        "--steps", "5", "--kd-epochs", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("fitted fppv-2bpc-chip1", "window (ohm)", "one-shot", "KD+RSA", "R-V-W",
                     "speedup of KD+RSA over R-V-W"):
        assert expected in out, (expected, out)


@pytest.mark.slow
def test_fit_and_compare_without_data_says_what_to_do(tmp_path: Path) -> None:
    done = run_example("fit_and_compare.py", ["--data", str(tmp_path / "none.tsv")], tmp_path)
    assert done.returncode == 2
    assert "none.tsv not found: pass --data FILE" in done.stderr


@pytest.mark.slow
def test_dask_sweep(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    out = tmp_path / "sweep.h5"
    done = run_example("dask_sweep.py", ["--values", "0,0.3", "--chips", "1", "--steps", "5",
                                         "--kd-epochs", "1", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "6 points computed, 0 read back" in done.stdout, done.stdout
    assert "Dask cluster" in done.stdout and "kd+rsa" in done.stdout
    assert out.is_file() and out.with_suffix(".png").is_file()
