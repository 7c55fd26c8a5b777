"""The shape of the code base: module sizes, private names, layering, import-time work, packaging.

Parsed with :mod:`ast`, never imported, except where the test is about importing (a fresh
subprocess). Each exemption names the file and why; :func:`test_exemptions_are_still_needed`
fails once an exemption is no longer needed, so the list only shrinks.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {"xbar": "xbar", "devices": "xbar.devices", "mapping": "xbar.mapping"}
"""Source folder -> the package it installs as (setup.cfg's package_dir)."""

MAX_LINES = 450
LINE_EXEMPT: dict[str, str] = {}
"""Modules allowed over :data:`MAX_LINES`, with the reason."""

PRIVATE_IMPORT_EXEMPT: dict[tuple[str, str], str] = {}
"""(module, private name) pairs allowed to cross a module boundary, with the reason."""

DEVICES_MAY_IMPORT = ("xbar.errors", "xbar.files", "xbar.rng", "xbar.threads", "xbar.params",
                      "xbar.devices")
"""What ``devices/`` may import from the project: one cell's physics, no arrays or networks."""

MAPPING_IMPORT_EXEMPT = {
    "xbar/__main__.py": "`python -m xbar` runs the command line, which is xbar.mapping.cli",
}
"""Modules outside mapping/ allowed to import xbar.mapping, with the reason."""

NUMBA_CONFIG_EXEMPT: dict[str, str] = {}
"""Modules allowed to set ``numba.config`` on import, with the reason."""


def _modules() -> dict[str, Path]:
    """Every source module, by its path relative to the repository root."""
    out = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[path.relative_to(ROOT).as_posix()] = path
    return out


MODULES = _modules()


def _dotted(rel: str) -> str:
    """``devices/fit.py`` -> ``xbar.devices.fit``; ``mapping/cli/__init__.py`` ->
    ``xbar.mapping.cli``."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE_DIRS[parts[0]]] + parts[1:])


def _tree(rel: str) -> ast.Module:
    return ast.parse(MODULES[rel].read_text(encoding="utf-8"), filename=rel)


def _imports(rel: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import in the module, function bodies too;
    names is empty for ``import x``."""
    package = _dotted(rel) if rel.endswith("__init__.py") else _dotted(rel).rpartition(".")[0]
    out = []
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            out.append((node.lineno, module, [a.name for a in node.names]))
    return out


def _targets(rel: str) -> list[tuple[int, str]]:
    """(line, project module) pairs imported, ``from xbar import errors`` as ``xbar.errors``."""
    out = []
    for line, module, names in _imports(rel):
        if module != "xbar" and not module.startswith("xbar."):
            continue
        if module == "xbar" and names:
            out.extend((line, f"xbar.{n}") for n in names)
        else:
            out.append((line, module))
    return out


# --------------------------------------------------------------------------- (a) sizes
def _lines(rel: str) -> int:
    return len(MODULES[rel].read_text(encoding="utf-8").splitlines())


def test_modules_are_small() -> None:
    big = {rel: _lines(rel) for rel in MODULES
           if rel not in LINE_EXEMPT and _lines(rel) > MAX_LINES}
    assert not big, (f"modules over {MAX_LINES} lines (split by concept): "
                     f"{', '.join(f'{k} ({v})' for k, v in sorted(big.items()))}")


# --------------------------------------------------------------------------- (b) private names
def _private_imports() -> set[tuple[str, str, int]]:
    found = set()
    for rel in MODULES:
        for line, module, names in _imports(rel):
            if module != "xbar" and not module.startswith("xbar."):
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    found.add((rel, name, line))
    return found


def test_no_private_name_crosses_a_module() -> None:
    bad = sorted((rel, name, line) for rel, name, line in _private_imports()
                 if (rel, name) not in PRIVATE_IMPORT_EXEMPT)
    assert not bad, ("private names imported from another module (make them public or move "
                     f"the code): {', '.join(f'{r}:{ln} {n}' for r, n, ln in bad)}")


def test_the_private_name_check_sees_relative_and_aliased_imports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: relative imports, ``from xbar import _y`` and imports in functions."""
    path = tmp_path / "a.py"
    path.write_text("from . import _hidden\nfrom xbar import _y as z\n"
                    "def f():\n    from ..chip import _inner, public\n")
    monkeypatch.setitem(MODULES, "mapping/pkg/a.py", path)
    assert [m for _, m, _ in _imports("mapping/pkg/a.py")] == [
        "xbar.mapping.pkg", "xbar", "xbar.mapping.chip"]
    found = {n for r, n, _ in _private_imports() if r == "mapping/pkg/a.py"}
    assert found == {"_hidden", "_y", "_inner"}


# --------------------------------------------------------------------------- (c) layering
def test_devices_import_only_cell_level_modules() -> None:
    bad = []
    for rel in MODULES:
        if not rel.startswith("devices/"):
            continue
        for line, module in _targets(rel):
            if not any(module == ok or module.startswith(ok + ".") for ok in DEVICES_MAY_IMPORT):
                bad.append(f"{rel}:{line} imports {module}")
    assert not bad, ("devices/ knows one cell and nothing about arrays or networks; it may "
                     f"import only {', '.join(DEVICES_MAY_IMPORT)}: {'; '.join(bad)}")


def test_nothing_outside_mapping_imports_mapping() -> None:
    bad = []
    for rel in MODULES:
        if rel.startswith("mapping/") or rel in MAPPING_IMPORT_EXEMPT:
            continue
        for line, module in _targets(rel):
            if module == "xbar.mapping" or module.startswith("xbar.mapping."):
                bad.append(f"{rel}:{line} imports {module}")
    assert not bad, f"imports running upward into xbar.mapping: {'; '.join(bad)}"


# --------------------------------------------------------------------------- (d) import-time work
def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run on import: the body and its if/try/with/loop blocks, not defs."""
    out = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        out.append(node)
        for field in ("body", "orelse", "finalbody"):
            out.extend(_module_level(getattr(node, field, []) or []))
        for handler in getattr(node, "handlers", []) or []:
            out.extend(_module_level(handler.body))
    return out


def _sets_numba_config(rel: str) -> list[int]:
    lines = []
    for node in _module_level(_tree(rel).body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
                ast.unparse(node.value.func) == "setattr" and node.value.args:
            targets = [node.value.args[0]]
        for t in targets:
            text = ast.unparse(t)
            if text == "numba.config" or text.startswith("numba.config."):
                lines.append(node.lineno)
    return lines


def test_no_module_sets_numba_config_on_import() -> None:
    bad = [f"{rel}:{ln}" for rel in MODULES if rel not in NUMBA_CONFIG_EXEMPT
           for ln in _sets_numba_config(rel)]
    assert not bad, ("numba.config set at import time (configure threads at entry points, "
                     f"xbar.threads.configure_threads): {', '.join(bad)}")


def test_the_numba_config_check_sees_nested_module_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: an assignment under ``if`` or ``except`` counts, one in a def not."""
    path = tmp_path / "m.py"
    path.write_text("import numba, os\nif 'X' not in os.environ:\n"
                    "    numba.config.THREADING_LAYER = 'tbb'\n"
                    "def f():\n    numba.config.NUMBA_NUM_THREADS = 1\n"
                    "try:\n    pass\nexcept ImportError:\n    setattr(numba.config, 'A', 1)\n")
    monkeypatch.setitem(MODULES, "xbar/m.py", path)
    assert _sets_numba_config("xbar/m.py") == [3, 9]


# --------------------------------------------------------------------------- (e) importing
def _fresh(code: str, tmp_path: Path) -> str:
    """Run ``code`` in a fresh interpreter outside the repository; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_xbar_loads_neither_torch_nor_numba(tmp_path: Path) -> None:
    out = _fresh("import sys, xbar; print(sorted(m for m in ('torch', 'numba') "
                 "if m in sys.modules))", tmp_path)
    assert out == "[]", f"import xbar loaded {out}; import heavy packages where they are used"


def test_xbar_help_loads_no_command(tmp_path: Path) -> None:
    """``xbar --help`` lists every command without loading torch, Numba, SciPy, h5py or the
    recovery plug-ins (issue 22: it took about 4 s); each command loads them when it runs."""
    out = _fresh("import sys\nfrom xbar.mapping.cli.main import main\ntry:\n    main(['--help'])\n"
                 "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if "
                 "m.split('.')[0] in ('torch', 'numba', 'scipy', 'h5py') or "
                 "m.startswith('xbar.mapping.recovery')))", tmp_path)
    help_text, _, loaded = out.rpartition("\n")
    assert loaded == "[]", f"xbar --help loaded {loaded}"
    for command in ("compare", "demo", "device", "devices", "latency", "mvm", "reproduce",
                    "simulate", "sweep"):
        assert f"\n    {command}" in help_text, command


@pytest.mark.slow
def test_one_import_root(tmp_path: Path) -> None:
    out = _fresh("import sys, xbar.mapping.chip, xbar.devices.fit, xbar.mapping.sweep.run; "
                 "print(sorted({m.split('.')[0] for m in sys.modules} & "
                 "{'devices', 'mapping'}))", tmp_path)
    assert out == "[]", f"top-level {out} imported: everything lives under xbar"


SCRIPT_DIRS = ("tests", "benchmarks", "examples", "docs")
"""Folders of scripts that import the package: they name each name's home too."""


def _defined(tree: ast.Module) -> set[str]:
    """Names a module binds itself at module level (def, class, assignment, also under
    if/try/with), not the ones it imports."""
    names: set[str] = set()
    for node in _module_level(tree.body) + [n for n in tree.body if isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        for sub in ast.iter_child_nodes(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    not isinstance(node, ast.ClassDef):
                names.add(sub.name)
    return names


def _indirect_imports(files: dict[str, Path]) -> list[str]:
    """``file:line from M import n`` where M is a module (not a package) that does not
    define ``n`` but imports it from elsewhere: a re-export, so ``n`` has two import paths."""
    by_name = {_dotted(rel): rel for rel in MODULES}
    defined: dict[str, set[str]] = {}
    bad = []
    for rel, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        in_package = rel in MODULES
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = node.module or ""
            if node.level:
                if not in_package:
                    continue
                base = _dotted(rel).split(".")
                if not rel.endswith("__init__.py"):
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            home = by_name.get(module)
            if home is None or home.endswith("__init__.py"):
                continue  # not ours, or a package: its __init__ is the public face
            if home not in defined:
                defined[home] = _defined(_tree(home))
            for alias in node.names:
                if f"{module}.{alias.name}" in by_name or alias.name in defined[home]:
                    continue
                bad.append(f"{rel}:{node.lineno} from {module} import {alias.name}")
    return bad


def _script_files() -> dict[str, Path]:
    return {p.relative_to(ROOT).as_posix(): p for folder in SCRIPT_DIRS
            for p in sorted((ROOT / folder).rglob("*.py"))}


def test_every_name_is_imported_from_its_home() -> None:
    """No re-export shims: a module imports each name from the module that defines it
    (a package's ``__init__`` is the one allowed public face), in the library and in the
    tests, benchmarks, examples and docs scripts alike."""
    bad = _indirect_imports({**MODULES, **_script_files()})
    assert not bad, ("names imported from a module that only imports them (import them from "
                     f"the module that defines them): {'; '.join(bad)}")


def test_no_module_forwards_attributes() -> None:
    """A module-level ``__getattr__`` forwards names to another module (a shim); only the
    root package's lazy public names (``xbar/__init__.py``) may."""
    bad = [rel for rel in MODULES if rel != "xbar/__init__.py" and "__getattr__" in
           {n.name for n in _tree(rel).body if isinstance(n, ast.FunctionDef)}]
    assert not bad, f"module-level __getattr__ (import from the home module instead): {bad}"


def test_the_home_check_sees_re_exports(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: a name a module imports and does not define is refused, through a
    relative import and inside a function; names a module defines under ``if`` or ``try``,
    submodules of a package and the package's own names pass."""
    home = tmp_path / "home.py"
    home.write_text("import os\nfrom xbar.errors import ConfigError\ntry:\n    X = 1\n"
                    "except ImportError:\n    pass\ndef f():\n    pass\nclass C:\n"
                    "    def method(self):\n        pass\n")
    user = tmp_path / "user.py"
    user.write_text("from .home import X, f, C, ConfigError\ndef g():\n"
                    "    from xbar.mapping.pkg.home import os, method\n"
                    "from xbar.mapping import chip\nfrom xbar.devices import Device\n")
    monkeypatch.setitem(MODULES, "mapping/pkg/home.py", home)
    monkeypatch.setitem(MODULES, "mapping/pkg/user.py", user)
    assert _indirect_imports({"mapping/pkg/user.py": user}) == [
        "mapping/pkg/user.py:1 from xbar.mapping.pkg.home import ConfigError",
        "mapping/pkg/user.py:3 from xbar.mapping.pkg.home import os",
        "mapping/pkg/user.py:3 from xbar.mapping.pkg.home import method"]


# --------------------------------------------------------------------------- (f) packaging
def test_setup_cfg_lists_every_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = {p.strip() for p in cfg["options"]["packages"].split("\n") if p.strip()}
    on_disk = {_dotted(rel) for rel in MODULES if rel.endswith("/__init__.py")}
    assert on_disk - listed == set(), (f"setup.cfg [options] packages lacks "
                                       f"{sorted(on_disk - listed)}: the wheel would leave "
                                       "them out")
    assert listed - on_disk == set(), f"setup.cfg lists missing packages {sorted(listed - on_disk)}"


# --------------------------------------------------------------------------- exemptions
def test_exemptions_are_still_needed() -> None:
    stale = [f"LINE_EXEMPT {rel} ({_lines(rel)} lines)" for rel in LINE_EXEMPT
             if rel not in MODULES or _lines(rel) <= MAX_LINES]
    private = {(r, n) for r, n, _ in _private_imports()}
    stale += [f"PRIVATE_IMPORT_EXEMPT {k}" for k in PRIVATE_IMPORT_EXEMPT if k not in private]
    stale += [f"NUMBA_CONFIG_EXEMPT {rel}" for rel in NUMBA_CONFIG_EXEMPT
              if rel not in MODULES or not _sets_numba_config(rel)]
    stale += [f"MAPPING_IMPORT_EXEMPT {rel}" for rel in MAPPING_IMPORT_EXEMPT
              if rel not in MODULES or not any(m.startswith("xbar.mapping")
                                               for _, m in _targets(rel))]
    assert not stale, f"exemptions no longer needed, remove them: {'; '.join(stale)}"
