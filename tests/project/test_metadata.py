"""What a user or a citation tool reads about the package: the version (written once, printed
by ``xbar --version`` without loading torch), LICENSE, CITATION.cff and CHANGELOG.md."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import yaml

import xbar
from xbar.files import package_version

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_version_is_written_once() -> None:
    """setup.cfg reads the version from ``xbar.__version__`` (the wheel's metadata then says
    the same: tests/project/test_packaging.py); CITATION.cff repeats it, checked below."""
    assert _setup_cfg()["metadata"]["version"] == "attr: xbar.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", xbar.__version__), \
        xbar.__version__
    assert package_version() == xbar.__version__  # what result files record


def test_xbar_version_loads_no_command(tmp_path: Path) -> None:
    """``xbar --version`` prints the version and exits 0 without loading torch, Numba, SciPy,
    h5py or the recovery plug-ins, like ``xbar --help``."""
    code = ("import sys\nfrom xbar.mapping.cli.main import main\ntry:\n    main(['--version'])\n"
            "except SystemExit as exc:\n    print('exit', exc.code)\nprint(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('torch', 'numba', 'scipy', 'h5py') or "
            "m.startswith('xbar.mapping.recovery')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed, status, loaded = done.stdout.strip().split("\n")
    assert printed == f"xbar-sim {xbar.__version__}"
    assert status in ("exit 0", "exit None"), status
    assert loaded == "[]", f"xbar --version loaded {loaded}"


def test_license_is_the_one_setup_cfg_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert _setup_cfg()["metadata"]["license"] == "MIT"
    assert text.startswith("MIT License\n")
    assert re.search(r"Copyright \(c\) \d{4} xbar-sim authors", text)


def test_citation_cff_is_valid() -> None:
    """CITATION.cff parses as YAML and holds what CFF 1.2.0 requires (cff-version, message,
    title, authors), each reference with its required type, title and authors; its version
    and licence are the package's."""
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title"):
        assert isinstance(cff[key], str) and cff[key].strip(), key
    assert cff["authors"] and all(isinstance(a, dict) and (a.get("name") or a.get(
        "family-names")) for a in cff["authors"])
    assert str(cff["version"]) == xbar.__version__
    assert cff["license"] == _setup_cfg()["metadata"]["license"]
    assert cff.get("type", "software") == "software"
    refs = cff.get("references", [])
    assert len(refs) == 5, "the five works the simulator reproduces"
    for ref in refs:
        assert ref["type"] in ("article", "conference-paper"), ref
        assert isinstance(ref["title"], str) and ref["title"].strip(), ref
        assert ref["authors"] and all(a.get("family-names") for a in ref["authors"]), ref
        assert isinstance(ref["year"], int), ref


def test_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings and headings[0] == "Unreleased", headings
    assert xbar.__version__ in headings, (f"CHANGELOG.md has no section for version "
                                          f"{xbar.__version__}: {headings}")
