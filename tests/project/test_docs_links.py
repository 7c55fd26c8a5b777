"""The user's documents hold together: every relative link in README.md, CHANGELOG.md and
docs/*.md names a file of the repository (and, with ``#anchor``, one of its headings), no
document sends the user to a file outside the repository (../shared/REFERENCE.md), and the
README stays a README (at most 300 lines, the set-up commands CI runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target), not inside code spans or fenced blocks
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
# Links into results/ name figures a command writes there (results/ is not committed).
GENERATED = ("results/",)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {slug(m[1]) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", path.read_text()))
    return [m[1] for m in _LINK.finditer(text)]


def test_slug_follows_github() -> None:
    assert slug("`xbar simulate`: accuracy on real data") == "xbar-simulate-accuracy-on-real-data"
    assert slug("The cell (`xbar.devices`)") == "the-cell-xbardevices"
    assert slug("`xbar device list|show|fit`: one") == "xbar-device-listshowfit-one"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if path and file.relative_to(ROOT).as_posix().startswith(GENERATED):
            continue
        if not file.exists():
            broken.append(f"{target} (no file {file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_points_outside_the_repository(doc: Path) -> None:
    found = "REFERENCE.md" in doc.read_text()
    assert not found, (
        f"{doc.name} sends users to ../shared/REFERENCE.md, which they do not have: "
        "point at docs/references.md")


def test_readme_is_short_and_its_test_command_is_the_ci_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && python -m pytest -q" in ci
    assert "pip install -e '.[test]' && python -m pytest -q" in readme
    assert 'python -m pytest -q -m "not slow"' in readme
    assert "pip install -e . && xbar demo" in readme


_PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippet_names(text: str) -> list[tuple[str, str]]:
    """(module, name) pairs a document's Python snippets use: ``from M import N``,
    ``import M``, and ``xbar.N`` attribute reads (the public API)."""
    import ast

    out: list[tuple[str, str]] = []
    for block in _PYTHON.findall(text):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                out += [(node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                out += [(a.name, "") for a in node.names]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "xbar"):
                out.append(("xbar", node.attr))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_snippets_name_what_the_code_has(doc: Path) -> None:
    """Every module, name and ``xbar.NAME`` a document's Python snippets use exists (modules
    move; a snippet must move with them)."""
    import importlib

    missing = []
    for module, name in snippet_names(doc.read_text()):
        if module.split(".")[0] not in ("xbar",):
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
            continue
        if name and not hasattr(mod, name):
            missing.append(f"{module}.{name}")
    assert not missing, f"{doc.name}: " + "; ".join(missing)
