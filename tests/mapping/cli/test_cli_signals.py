"""SIGTERM during a command: exit 143, no half-written output, no temporary file left, and a
last line that says what was written."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = r"""
import os, signal, sys
import xbar.timing.results as results
from xbar.mapping.cli.main import main

real = results.write_with_pngs

def write_then_terminate(path, write, images):
    def wrapped(tmp):
        write(tmp)                       # the temporary file is complete on disk ...
        os.kill(os.getpid(), signal.SIGTERM)   # ... when the signal arrives
    return real(path, wrapped, images)

results.write_with_pngs = write_then_terminate
sys.exit(main(["latency", "--model", "lenet5", "--out", sys.argv[1]]))
"""

# SIGTERM right after the first file of the group (the results file) is moved into place,
# before its plot is: before, the new results sat beside the old run's plot and the command
# said that nothing half-written was left.
SCRIPT_REPLACE_WINDOW = r"""
import os, signal, sys
import xbar.files as files
from xbar.mapping.cli.main import main

real = os.replace
moved = []

def replace_then_terminate(src, dst):
    real(src, dst)
    moved.append(dst)
    if len(moved) == 1:
        os.kill(os.getpid(), signal.SIGTERM)

files.os.replace = replace_then_terminate
sys.exit(main(["latency", "--model", "lenet5", "--out", sys.argv[1]]))
"""


def run(script: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True,
                          text=True, cwd=out.parent, timeout=300)


@pytest.mark.slow
def test_sigterm_mid_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "lat.h5"
    proc = run(SCRIPT, out)
    assert proc.returncode == 143, proc.stderr
    assert "terminated before writing any output; nothing half-written was left" in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Each file's inode (a replaced file has a new one) and bytes."""
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.iterdir()}


def old_run(tmp_path: Path) -> dict[str, tuple[int, bytes]]:
    """A finished earlier run's results file and its energy plot beside it."""
    from xbar.mapping.cli.main import main

    assert main(["latency", "--model", "lenet5", "--out", str(tmp_path / "lat.h5")]) == 0
    before = files(tmp_path)
    assert sorted(before) == ["lat-energy.png", "lat.h5"]
    return before


@pytest.mark.slow
def test_sigterm_mid_write_keeps_the_old_file_and_its_plot(tmp_path: Path) -> None:
    before = old_run(tmp_path)
    proc = run(SCRIPT, tmp_path / "lat.h5")
    assert proc.returncode == 143, proc.stderr
    assert files(tmp_path) == before


@pytest.mark.slow
def test_sigterm_between_replacements_replaces_the_file_and_its_plot_together(
        tmp_path: Path) -> None:
    before = old_run(tmp_path)
    proc = run(SCRIPT_REPLACE_WINDOW, tmp_path / "lat.h5")
    assert proc.returncode == 143, proc.stderr
    after = files(tmp_path)
    assert sorted(after) == sorted(before)  # no temporary file left
    assert all(after[name][0] != before[name][0] for name in before), "old and new mixed"
    last = proc.stderr.strip().splitlines()[-1]
    assert "nothing half-written" not in last
    assert f"terminated after writing {tmp_path / 'lat.h5'}, {tmp_path / 'lat-energy.png'}" \
        in last


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_sweep_workers_exit_quietly_when_the_sweep_is_killed_as_they_start(
        tmp_path: Path) -> None:
    """Before: a worker spawned while ``xbar sweep --workers 2`` was SIGKILLed printed
    ``UnpicklingError: pickle data was truncated`` (the teacher travelled in its start-up
    pickle, more than the pipe holds, so the parent died mid-write), and multiprocessing's
    resource tracker warned of leaked semaphores. Now: not a word, and no process left."""
    import torch
    from torch import nn

    model = tmp_path / "wide.pt"  # about 150 kB of weights: more than a pipe holds (64 kB)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10)),
               model)
    env = {**os.environ, "XBAR_CACHE": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xbar", "sweep", "--param", "sigma", "--values", "0.1,0.2",
         "--model", str(model), "--dataset", "digits", "--methods", "one-shot", "--chips", "2",
         "--test-limit", "20", "--workers", "2", "--threads", "1", "--json", "--out",
         str(tmp_path / "s.h5")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp_path, env=env)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not seen and proc.poll() is None and time.monotonic() < deadline:
            seen.update(children(proc.pid))  # the resource tracker or the first worker
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()[1].decode()
        while len(seen) < 2 and time.monotonic() < deadline:  # ... and a worker starting
            seen.update(children(proc.pid))
            time.sleep(0.005)
        proc.kill()
        _, err = proc.communicate(timeout=240)  # EOF once every child let go of stderr
        time.sleep(1.0)
        left = {pid: running(pid) for pid in seen if running(pid)}
    finally:
        for pid in seen:  # end any child still running (ours): the test fails below
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert err.decode() == ""
    assert not left, left


def running(pid: int) -> str:
    """The command line of process ``pid`` if it runs (not a zombie), else ""."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError):
        return ""
    return "" if state == "Z" else f"{state} {cmd}"
