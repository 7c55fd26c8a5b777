"""SIGTERM during a command: exit 143, no half-written output, no temporary file left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import os, signal, sys
import xbar.timing.results as results
from xbar.mapping.cli.main import main

real = results.write_atomically

def write_then_terminate(path, write):
    def wrapped(tmp):
        write(tmp)                       # the temporary file is complete on disk ...
        os.kill(os.getpid(), signal.SIGTERM)   # ... when the signal arrives
    return real(path, wrapped)

results.write_atomically = write_then_terminate
sys.exit(main(["latency", "--model", "lenet5", "--out", sys.argv[1]]))
"""


def test_sigterm_mid_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "lat.h5"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 143, proc.stderr
    assert "terminated" in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
