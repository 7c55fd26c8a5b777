"""The API reference builds from the docstrings (python docs/build_api.py) without a pdoc
warning, with a page for every module."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAIN_PAGES = ("xbar.html", "xbar/devices/cell.html", "xbar/devices/fit.html",
              "xbar/analog.html", "xbar/config.html", "xbar/timing/engine.html",
              "xbar/timing/energy.html", "xbar/mapping/chip.html",
              "xbar/mapping/recovery/compare.html", "xbar/mapping/sweep/run.html")


def _build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_api_reference_builds(tmp_path: Path) -> None:
    out = tmp_path / "api"
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "build_api.py"), str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the API reference build failed:\n{done.stderr[-4000:]}"
    assert "pdoc:" not in done.stderr, done.stderr
    assert (out / "index.html").is_file()
    for page in MAIN_PAGES:
        assert (out / page).is_file(), page
    missing = [n for n in _build_script().module_names()
               if not (out / (n.replace(".", "/") + ".html")).is_file()]
    assert not missing, f"modules without a page: {missing}"
    chip = (out / "xbar/mapping/chip.html").read_text()
    assert "Fold BatchNorm and program every mappable layer" in chip  # docstrings rendered
