"""One import root: the wheel installs ``xbar``, ``xbar.devices`` and ``xbar.mapping`` and no
top-level ``devices`` or ``mapping``; the editable install and pytest import one copy of
each module (class identity holds)."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("xbar", "devices", "mapping", "setup.cfg", "pyproject.toml", "README.md", "LICENSE")


def site_dirs() -> list[str]:
    """Where the running interpreter's installed packages are: its site-packages (a virtual
    environment's own, plus the base interpreter's when it includes them) and the user's."""
    dirs = [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def test_public_api_is_one_import_root() -> None:
    import xbar
    import xbar.devices.cell
    import xbar.mapping.chip
    from xbar.mapping.recovery import compare

    assert xbar.Chip is xbar.mapping.chip.Chip
    assert xbar.Device is xbar.devices.cell.Device
    assert xbar.compare is compare.compare
    for name in xbar.__all__:
        assert getattr(xbar, name) is not None, name
    assert xbar.devices.__file__.startswith(str(ROOT / "devices"))
    assert not {m for m in sys.modules if m.split(".")[0] in ("devices", "mapping")}


@pytest.mark.slow
def test_wheel_installs_one_import_root(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(src)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("xbar_sim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"xbar"}, tops
    assert "xbar/devices/cell.py" in names and "xbar/mapping/chip.py" in names
    assert "xbar/mapping/cli/main.py" in names and "xbar/devices/py.typed" in names
    import xbar
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert f"\nVersion: {xbar.__version__}\n" in zipfile.ZipFile(wheel).read(info).decode()
    assert any(n.endswith("/LICENSE") and ".dist-info/" in n for n in names), names

    # The wheel's dependencies come from the environment running the tests: a .pth file adds
    # its site-packages to the new environment's path, after the wheel's own. (A venv with
    # system_site_packages would see the base interpreter's instead, which lack them when
    # the tests run in a virtual environment: issue 21.) Path entries added by a .pth file
    # are not site directories, so the .pth files inside them (the editable install's
    # finder) do not run: the only xbar there is the wheel's.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_path('purelib'))"], check=True,
                             capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "running_env.pth").write_text("".join(f"{d}\n" for d in site_dirs()))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "-q", str(wheel)], check=True, cwd=tmp_path)
    check = (
        "import importlib.util as u, sys\n"
        "import xbar, xbar.devices, xbar.mapping, xbar.mapping.chip, xbar.devices.cell\n"
        f"assert xbar.__file__.startswith({str(env_dir)!r}), xbar.__file__\n"
        f"assert xbar.devices.__file__.startswith({str(env_dir)!r}), xbar.devices.__file__\n"
        "assert u.find_spec('devices') is None and u.find_spec('mapping') is None\n"
        "assert xbar.Chip is xbar.mapping.chip.Chip and xbar.Device is xbar.devices.cell.Device\n"
        "print('ok')\n")
    out = subprocess.run([str(python), "-c", check], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    version = subprocess.run([str(env_dir / "bin" / "xbar"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert version.stdout.strip() == f"xbar-sim {xbar.__version__}", version
