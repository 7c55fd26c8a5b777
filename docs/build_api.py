"""Build the API reference (HTML) from the docstrings with pdoc.

Usage (pdoc comes with the test extra, ``pip install -e '.[test]'``)::

    python docs/build_api.py            # writes docs/api/index.html (not committed)
    python docs/build_api.py OUT_DIR

Plain ``pdoc xbar`` would document only the names in ``xbar.__all__``: pdoc skips the
submodules a package's ``__all__`` leaves out. This lists every module of the three source
folders (``xbar``, ``xbar.devices``, ``xbar.mapping``: setup.cfg's package_dir) and hands them
all to pdoc, so a new module gets its page without editing anything. The test suite builds it
into a temporary directory (tests/project/test_api_docs.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings
from pathlib import Path

ROOTS = ("xbar", "xbar.devices", "xbar.mapping")
"""The packages whose folders hold the sources (an editable install keeps them apart)."""


def module_names() -> list[str]:
    """Every importable module under :data:`ROOTS`, packages included, ``__main__`` left out
    (importing it runs the command line)."""
    names = set()
    for root in ROOTS:
        package = importlib.import_module(root)
        names.add(root)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                names.add(info.name)
    return sorted(names)


def _hidden(name: str) -> bool:
    """Whether pdoc, walking ``name``'s package, would skip it (a root, or a package whose
    ``__all__`` leaves it out): such a module must be named to pdoc, the rest it finds."""
    parent, _, leaf = name.rpartition(".")
    if not parent:
        return True
    listed = getattr(importlib.import_module(parent), "__all__", None)
    return listed is not None and leaf not in listed


def build(out: Path) -> tuple[list[str], list[str]]:
    """Write the reference into ``out``; the modules documented and pdoc's warnings (a module
    that did not import, a name it could not resolve, ...)."""
    import pdoc
    import pdoc.render

    from xbar import __version__

    names = module_names()
    pdoc.render.configure(docformat="google", footer_text=f"xbar-sim {__version__}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*[n for n in names if _hidden(n)], output_directory=out)
    pdoc_dir = str(Path(pdoc.__file__).parent)
    problems = sorted({str(w.message) for w in caught if w.filename.startswith(pdoc_dir)})
    return names, problems


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "api"
    names, problems = build(out)
    for text in problems:
        print(f"pdoc: {text}", file=sys.stderr)
    print(f"{len(names)} modules documented in {out / 'index.html'}"
          + (f"; {len(problems)} problem(s) above" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
