"""The parameter base: every configuration field declared once with its unit, range and meaning.

A field is declared with :func:`param`, which stores a :class:`ParamSpec` in the dataclass
field's metadata. That one declaration is read by

* validation (:func:`validate`, called from :meth:`Params.__post_init__`): the type (booleans
  are refused where numbers belong, integers required where the field is an integer), NaN and
  infinities, the range or the choices; a bad value raises :class:`xbar.errors.ConfigError`
  ``"Owner.field = value is invalid; allowed: ..."``;
* conversion to and from dicts (:meth:`Params.to_dict`, :meth:`Params.from_dict`; an unknown
  key is an error naming the valid ones) and TOML text (:func:`toml_table`);
* the parameter table (:func:`param_rows`) that ``xbar sweep --list-params`` prints and
  ``docs/parameters.md`` renders (:func:`markdown_table`);
* the class docstring: :func:`documented` writes its ``Attributes:`` section from the same
  declarations (the one-line ``doc``, then unit, default and allowed values, then the longer
  ``details``: sources, rationale, what a value does), so a field is described once.

Rules that tie two fields together (the offset mapping needs ``cols >= 2``, ``bits_per_read <=
input_bits``) stay as small explicit checks in each class's :meth:`Params.check`, after the
generic ones. The functions :func:`check_int`, :func:`check_float`, :func:`check_choice` and
:func:`fail` are the same checks for values that are not dataclass fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, TypeVar

import numpy as np

from xbar.errors import ConfigError

__all__ = ["ParamRow", "ParamSpec", "Params", "check_choice", "check_float", "check_int",
           "documented", "fail", "field_docs", "markdown_table", "param", "param_rows",
           "spec_of", "toml_table", "toml_value", "validate"]

INF = math.inf
# Units that are not printed after a number's interval (they say what it is, not its scale).
_SILENT_UNITS = ("-", "fraction", "bits", "choice")
_P = TypeVar("_P", bound="Params")


def fail(owner: str, name: str, value: Any, allowed: str) -> NoReturn:
    """Raise the one error of a bad value: ``Owner.name = value is invalid; allowed: ...``."""
    raise ConfigError(f"{owner}.{name} = {value!r} is invalid; allowed: {allowed}")


def _number(x: float, integer: bool) -> str:
    return str(int(x)) if integer else f"{x:g}"


@dataclass(frozen=True)
class ParamSpec:
    """What one parameter is and what values it takes.

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``str`` or ``tuple``.
        unit: Unit of a number (``"uS"``, ``"ns"``), or ``"-"`` (dimensionless),
            ``"fraction"``, ``"bits"``; for a tuple, the unit of its items.
        range: ``(lo, hi, lo_open, hi_open)`` for a number; ``math.inf`` for no bound.
        choices: The allowed strings of a ``str`` parameter.
        doc: One line: what the parameter means.
        note: Appended to the allowed range in messages, e.g. ``"0: no limit"``.
        item: Item type of a ``tuple`` parameter (``str`` or ``float``).
        nonempty: A ``str`` (or the strings of a tuple) must not be empty.
        details: What ``doc`` leaves out, for the class docstring: the source of the default,
            the model behind the value, how other fields interact with it. It never states
            the default's value (the docstring prints it from the declaration).
    """

    kind: type
    unit: str = "-"
    range: tuple[float, float, bool, bool] | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""
    note: str = ""
    item: type | None = None
    nonempty: bool = True
    details: str = ""

    def interval(self) -> str:
        """The range as ``[lo, hi]``, ``(lo, hi]``, ``> lo`` or ``>= lo``."""
        if self.range is None:
            return ""
        lo, hi, lo_open, hi_open = self.range
        integer = self.kind is int
        if hi == INF:
            return f"{'>' if lo_open else '>='} {_number(lo, integer)}"
        return (f"{'(' if lo_open else '['}{_number(lo, integer)}, {_number(hi, integer)}"
                f"{')' if hi_open else ']'}")

    def allowed(self) -> str:
        """The allowed values in words, as validation messages and the tables state them."""
        unit = "" if self.unit in _SILENT_UNITS else f" {self.unit}"
        if self.kind is bool:
            text = "true or false"
        elif self.kind is int:
            text = f"an integer {'in ' if self.range and self.range[1] != INF else ''}" \
                   f"{self.interval()}".rstrip()
        elif self.kind is float:
            text = (self.interval() + unit).strip() or "a finite number"
        elif self.kind is str:
            text = f"one of {self.choices}" if self.choices else (
                "a non-empty string" if self.nonempty else "a string")
        else:
            items = "non-empty strings" if self.item is str else \
                f"finite numbers{' in' + unit if unit else ''}"
            text = f"a list of {items}"
        return f"{text} ({self.note})" if self.note else text

    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str`` or ``list`` (a tuple field, a list in TOML)."""
        return "list" if self.kind is tuple else self.kind.__name__

    def check(self, owner: str, name: str, value: Any) -> Any:
        """``value`` in its canonical type (int, float, str, bool or tuple), or raise
        :class:`ConfigError` naming ``owner.name``, the value and what is allowed."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                fail(owner, name, value, self.allowed())
            return bool(value)
        if kind is int:
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                fail(owner, name, value, self.allowed())
            value = int(value)
            self._check_range(owner, name, value)
            return value
        if kind is float:
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
                    value, (bool, np.bool_)) or not math.isfinite(value):
                fail(owner, name, value, self.allowed())
            value = float(value)
            self._check_range(owner, name, value)
            return value
        if kind is str:
            if not isinstance(value, str) or (self.nonempty and not value) or (
                    self.choices is not None and value not in self.choices):
                fail(owner, name, value, self.allowed())
            return str(value)
        return self._check_tuple(owner, name, value)

    def _check_range(self, owner: str, name: str, value: float) -> None:
        if self.range is None:
            return
        lo, hi, lo_open, hi_open = self.range
        if (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi):
            fail(owner, name, value, self.allowed())

    def _check_tuple(self, owner: str, name: str, value: Any) -> tuple[Any, ...]:
        if self.item is str:
            items = (value,) if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(
                    isinstance(v, str) and (v or not self.nonempty) for v in items):
                fail(owner, name, value, self.allowed())
            return tuple(str(v) for v in items)
        if not (isinstance(value, (list, tuple))
                or isinstance(value, np.ndarray) and value.ndim == 1):
            fail(owner, name, value, self.allowed())
        out = []
        for v in value:
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(
                    v, (bool, np.bool_)) or not math.isfinite(v):
                fail(owner, name, value, self.allowed())
            out.append(float(v))
        return tuple(out)


def param(default: Any = dataclasses.MISSING, *, kind: type | None = None, unit: str = "-",
          range: tuple[float, ...] | None = None, choices: Sequence[str] | None = None,
          doc: str = "", note: str = "", item: type | None = None, nonempty: bool = True,
          details: str = "", default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying its :class:`ParamSpec`.

    Args:
        default: The default value (its type gives ``kind`` when ``kind`` is not given).
        kind: ``int``, ``float``, ``bool``, ``str`` or ``tuple``.
        unit: Unit (``"uS"``, ``"ns"``, ``"V"``), ``"-"``, ``"fraction"`` or ``"bits"``.
        range: ``(lo, hi)`` closed, or ``(lo, hi, lo_open, hi_open)``.
        choices: Allowed strings.
        doc: One-line meaning (for ``--list-params`` and the docs).
        note: A hint appended to the allowed range (``"0: no limit"``).
        item: Item type of a tuple (``str`` or ``float``).
        nonempty: Refuse empty strings.
        details: The longer description for the class docstring (:func:`documented`).
        default_factory: As :func:`dataclasses.field`.
    """
    if kind is None:
        kind = type(default) if default is not dataclasses.MISSING else None
        if kind is list:
            kind = tuple
    if kind not in (int, float, bool, str, tuple):
        raise TypeError(f"param kind must be int, float, bool, str or tuple, not {kind!r}")
    if range is not None:
        range = (tuple(range) + (False, False))[:4] if len(range) == 2 else tuple(range)
    spec = ParamSpec(kind, unit, range,  # type: ignore[arg-type]
                     tuple(choices) if choices is not None else None, doc, note,
                     item if kind is tuple else None, nonempty, " ".join(details.split()))
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"param": spec})


def spec_of(cls_or_obj: Any, name: str) -> ParamSpec | None:
    """The :class:`ParamSpec` of field ``name``, or None when it has none."""
    for f in dataclasses.fields(cls_or_obj):
        if f.name == name:
            return f.metadata.get("param")
    raise KeyError(name)


def validate(obj: Any, owner: str | None = None) -> None:
    """Check every declared field of a (frozen) dataclass instance and store it in its
    canonical type. Raises :class:`ConfigError` on the first bad field."""
    owner = owner or type(obj).__name__
    for f in dataclasses.fields(obj):
        spec = f.metadata.get("param")
        if spec is not None:
            object.__setattr__(obj, f.name, spec.check(owner, f.name, getattr(obj, f.name)))


def check_int(owner: str, name: str, value: Any, lo: float, hi: float = INF,
              note: str = "") -> int:
    """``value`` as an int in [lo, hi], or :func:`fail` (``note``: a hint such as
    ``"0: no limit"``, shown in parentheses)."""
    note = note.strip()
    if note.startswith("(") and note.endswith(")"):
        note = note[1:-1]
    return ParamSpec(int, range=(lo, hi, False, False), note=note).check(owner, name, value)


def check_float(owner: str, name: str, value: Any, lo: float, hi: float = INF, unit: str = "-",
                lo_open: bool = True, hi_open: bool = False, note: str = "") -> float:
    """``value`` as a finite float in (lo, hi] (or as the flags say), or :func:`fail`."""
    return ParamSpec(float, unit or "-", (lo, hi, lo_open, hi_open), note=note).check(
        owner, name, value)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, or :func:`fail`."""
    return ParamSpec(str, choices=tuple(choices)).check(owner, name, value)


# ----------------------------------------------------------------------------- TOML
def toml_value(value: Any) -> str:
    """One TOML value: booleans, numbers, strings, lists of them."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ConfigError(f"cannot write {value!r} to TOML: not a finite number")
        return repr(float(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


def toml_table(section: str, values: dict[str, Any]) -> str:
    """A ``[section]`` table of ``key = value`` lines, ending with a newline."""
    lines = [f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the base
class Params:
    """Base of the frozen configuration dataclasses: validation from field metadata, dicts,
    TOML. A subclass sets ``SECTION`` (its TOML table) and may override :meth:`check` for
    rules that tie fields together."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate(self)
        self.check()

    def check(self) -> None:
        """Cross-field rules, run after every field passed its own checks."""

    def to_dict(self) -> dict[str, Any]:
        """Every field by name (tuples as lists), ready for JSON, TOML or HDF5 attributes."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.init:
                v = getattr(self, f.name)
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[_P], values: Any, where: str = "") -> _P:
        """Build from the fields of one TOML table or dict.

        Raises:
            ConfigError: ``values`` is not a table, has an unknown field (the message lists
                the valid ones), or a value is invalid; each names ``where`` (the file) and
                the section.
        """
        section = cls.SECTION or cls.__name__
        prefix = f"{where}: " if where else ""
        if not isinstance(values, dict):
            raise ConfigError(f"{prefix}[{section}] = {values!r} is not a table; write it as "
                              f"a section: [{section}] followed by 'field = value' lines")
        known = cls.field_names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{prefix}unknown field(s) {unknown} in [{section}]; valid fields: "
                              f"{sorted(known)}")
        try:
            return cls(**values)
        except ConfigError as exc:
            if not where:
                raise
            raise ConfigError(f"{where}, section [{section}]: {exc}") from None

    def replace(self: _P, **changes: Any) -> _P:
        """A copy with some fields changed (validated again; unknown names refused)."""
        doc = self.to_dict()
        doc.update(changes)
        return type(self).from_dict(doc)

    def to_toml(self) -> str:
        """This section as a TOML table."""
        return toml_table(self.SECTION, self.to_dict())


# ----------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class ParamRow:
    """One line of the parameter table."""

    section: str
    name: str
    type_name: str
    unit: str
    allowed: str
    default: Any
    description: str


def param_rows(sections: Iterable[tuple[str, type]]) -> list[ParamRow]:
    """(section, field, type, unit, allowed, default, description) of every declared field
    of the given ``(section, dataclass)`` pairs, in declaration order."""
    rows = []
    for section, klass in sections:
        for f in dataclasses.fields(klass):
            spec = f.metadata.get("param")
            if spec is None:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            unit = "choice" if spec.choices else spec.unit
            rows.append(ParamRow(section, f.name, spec.type_name(), unit, spec.allowed(),
                                 default, spec.doc))
    return rows


def markdown_table(rows: Sequence[ParamRow]) -> str:
    """The rows as Markdown, one table per section."""
    out: list[str] = []
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            out += ["", f"### `[{section}]`", "",
                    "| field | type | unit | default | allowed | meaning |",
                    "|---|---|---|---|---|---|"]
        default = toml_value(r.default) if r.default not in (None, "") else '""' \
            if r.default == "" else "-"
        cells = [f"`{r.name}`", r.type_name, r.unit, f"`{default}`", r.allowed, r.description]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out).lstrip("\n") + "\n"


# ----------------------------------------------------------------------------- docstrings
def _default(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def field_docs(cls: type) -> str:
    """The ``Attributes:`` section of a parameter class, one entry per declared field:
    ``name: doc (unit; default value; allowed: values). details``, from the field's
    :class:`ParamSpec` alone."""
    lines = ["Attributes:"]
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("param")
        if spec is None or not f.init:
            continue
        unit = "" if spec.unit in _SILENT_UNITS else f"{spec.unit}; "
        text = (f"{f.name}: {spec.doc} ({unit}default ``{toml_value(_default(f))}``; "
                f"allowed: {spec.allowed()}).")
        if spec.details:
            text += " " + spec.details
        lines += textwrap.wrap(text, width=92, initial_indent="    ",
                               subsequent_indent="        ", break_long_words=False,
                               break_on_hyphens=False)
    return "\n".join(lines)


def documented(cls: type[_P]) -> type[_P]:
    """Class decorator, above ``@dataclass``: the class docstring becomes its own text (what
    the section is) followed by :func:`field_docs`. A hand-written ``Attributes:`` section is
    refused: the fields' declarations are the one place they are described.

    Raises:
        TypeError: The class docstring has an ``Attributes:`` section of its own.
    """
    own = inspect.cleandoc(cls.__doc__ or "")
    if "Attributes:" in own:
        raise TypeError(f"{cls.__name__}: its docstring has an Attributes section of its own; "
                        "describe each field in its param(doc=..., details=...) instead")
    cls.__doc__ = f"{own}\n\n{field_docs(cls)}\n"
    return cls

