"""The hardware configuration documents each field once: its declaration (:func:`param`'s
``doc``, unit, default, range and ``details``) writes the class docstring, the parameter table
and the validation messages alike, so they cannot drift apart."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass

import pytest

import xbar.config
from xbar.config import HardwareConfig
from xbar.config.hardware import SECTION_CLASSES
from xbar.params import Params, documented, field_docs, param


def _config_param_classes() -> list[type]:
    """Every :class:`Params` subclass defined in a module of :mod:`xbar.config`."""
    found = []
    for info in pkgutil.iter_modules(xbar.config.__path__, "xbar.config."):
        module = importlib.import_module(info.name)
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, Params) and obj is not Params
                  and obj.__module__ == module.__name__]
    return found


def test_every_section_is_a_documented_class_of_the_package() -> None:
    """The eight sections of a hardware file are exactly the parameter classes of the
    package, and each one's docstring ends with the Attributes section its declarations
    write."""
    classes = _config_param_classes()
    assert sorted(c.__name__ for c in classes) == sorted(
        k.__name__ for _, k in SECTION_CLASSES)
    assert [n for n, _ in SECTION_CLASSES] == [f.name for f in dataclasses.fields(
        HardwareConfig)]
    for cls in classes:
        doc = cls.__doc__ or ""
        assert doc.rstrip().endswith(field_docs(cls)), cls.__name__
        assert doc.count("Attributes:") == 1, cls.__name__


@pytest.mark.parametrize("cls", [k for _, k in SECTION_CLASSES], ids=lambda k: k.__name__)
def test_each_field_has_one_entry_with_its_declared_default(cls: type) -> None:
    """One entry per field, in declaration order, each with a one-line meaning and the
    default the dataclass actually uses."""
    doc = cls.__doc__ or ""
    entries = re.findall(r"^    (\w+): ", doc, flags=re.M)
    names = [f.name for f in dataclasses.fields(cls)]
    assert entries == names
    instance = cls()
    for f in dataclasses.fields(cls):
        spec = f.metadata["param"]
        assert spec.doc.strip(), f"{cls.__name__}.{f.name} has no doc"
        value = getattr(instance, f.name)
        shown = re.escape(repr(list(value)) if isinstance(value, tuple) else (
            '"' + value + '"' if isinstance(value, str) else
            ("true" if value else "false") if isinstance(value, bool) else repr(value)))
        entry = " ".join(re.search(rf"^    {f.name}: (.*?)(?=^    \w+: |\Z)", doc,
                                   flags=re.M | re.S).group(1).split())
        assert re.search(rf"default ``{shown}``", entry), (cls.__name__, f.name, entry)


def test_the_docstrings_state_the_published_defaults() -> None:
    """A few defaults against their sources, read from the generated docstrings: the read
    pulse of DNN+NeuroSim V1.3 (10 ns), the write time of Charan et al. 2020 (6.5 us), the
    MNSIM 2.0 ADC area table (500, 580, 1200 um^2) and 128 x 128 arrays."""
    def text(cls: type) -> str:
        return " ".join((cls.__doc__ or "").split())

    cfg = xbar.config
    assert "t_read_ns: One array read (one input bit-slice), rounded up to cycles. (ns; " \
           "default ``10.0``;" in text(cfg.TimingConfig)
    assert "(ns; default ``6500.0``;" in text(cfg.ProgrammingConfig)
    assert "default ``[500.0, 580.0, 1200.0]``" in text(cfg.AreaConfig)
    assert text(cfg.ArrayConfig).count("default ``128``") == 2


DEFAULT_VALUE = re.compile(r"\b[Dd]efault\b:?\s*[-(\d]|\(default[),:]|\bthe default\)")


@pytest.mark.parametrize("cls", [k for _, k in SECTION_CLASSES], ids=lambda k: k.__name__)
def test_details_never_restate_the_default(cls: type) -> None:
    """The default is stated once, by the generated text; ``details`` name its source
    ("Default: ISAAC's ...") but never its value, so a changed default cannot leave a stale
    number behind."""
    for f in dataclasses.fields(cls):
        details = f.metadata["param"].details
        assert not DEFAULT_VALUE.search(details), (f"{cls.__name__}.{f.name}: details state "
                                                   f"the default: {details!r}")


def test_the_default_check_catches_a_restated_default() -> None:
    for text in ("Default 10 ns, the read pulse.", "Default: 0.5 (project choice).",
                 '``"row"`` (default): the drivers ...', "0 (the default) means one per bit"):
        assert DEFAULT_VALUE.search(text), text
    for text in ("Default: the read pulse of NeuroSim V1.3.", "Default: MNSIM 2.0 ``ADC.py``."):
        assert not DEFAULT_VALUE.search(text), text


def test_documented_writes_the_attributes_and_refuses_hand_written_ones() -> None:
    @documented
    @dataclass(frozen=True)
    class Demo(Params):
        """A made-up section."""

        SECTION = "demo"
        width_nm: float = param(2.5, unit="nm", range=(0, 10, True, False),
                                doc="Width of a thing.", details="Default: a guess.")
        name: str = param("a", choices=("a", "b"), doc="Which thing.")

    assert Demo.__doc__ == ("A made-up section.\n\nAttributes:\n"
                            "    width_nm: Width of a thing. (nm; default ``2.5``; allowed: "
                            "(0, 10] nm). Default: a\n        guess.\n"
                            "    name: Which thing. (default ``\"a\"``; allowed: one of "
                            "('a', 'b')).\n")
    with pytest.raises(TypeError, match="Attributes section of its own"):
        @documented
        @dataclass(frozen=True)
        class Twice(Params):
            """A section.

            Attributes:
                x: Written by hand.
            """

            x: int = param(1, doc="X.")
