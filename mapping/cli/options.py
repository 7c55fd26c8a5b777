"""``--option METHOD.FIELD=VALUE``: one field of a registered recovery method's options
(a registered method's ``options_type``), set from the command line of
``xbar compare`` and ``xbar sweep``, nested fields and tuples included.

Not a command (no ``COMMANDS``): :mod:`xbar.mapping.cli.main` skips it.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Sequence

from xbar.errors import ConfigError
from xbar.mapping.cli.common import integer_arg

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def add_option_arg(p: Any) -> None:
    """``--option METHOD.FIELD=VALUE`` (repeatable): one setting of a registered method's
    options."""
    p.add_argument("--option", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                   help="set one field of a method's options (the methods of works 3-5 have "
                        "them), e.g. fault-aware-map.spare_rows=4 or io-kd.correction=affine; FIELD may "
                        "name a nested field (fault-aware-train.train.epochs=3); a tuple "
                        "field takes comma-separated items; repeat for more fields")


def _field_kind(cls: type, name: str) -> tuple[Any, Any]:
    """The kind of field ``name`` of dataclass ``cls`` and, for a tuple, its item type:
    from its :func:`xbar.params.param` declaration, else from its type hint."""
    import typing

    from xbar.params import spec_of

    spec = spec_of(cls, name)
    if spec is not None:
        return spec.kind, spec.item
    hint = typing.get_type_hints(cls)[name]
    if hint in (int, float, bool, str):
        return hint, None
    if typing.get_origin(hint) is tuple:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(set(args)) == 1 and args[0] in (int, float, bool, str):
            return tuple, args[0]
    if dataclasses.is_dataclass(hint):
        return hint, None
    return None, None


def option_fields(cls: type, prefix: str = "") -> list[str]:
    """The fields of options class ``cls`` that ``--option`` can set (nested dataclasses'
    fields as ``outer.inner``), in declaration order."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind, _ = _field_kind(cls, f.name)
        if dataclasses.is_dataclass(kind):
            out += option_fields(kind, f"{prefix}{f.name}.")
        elif kind is not None:
            out.append(prefix + f.name)
    return out


def _option_value(text: str, kind: Any, item: Any) -> Any:
    """``text`` as a value of ``kind`` (ValueError with what is allowed if it is not)."""
    if kind is tuple:
        return tuple(_option_value(t.strip(), item or str, None) for t in text.split(","))
    if kind is bool:
        low = text.strip().lower()
        if low not in _TRUE + _FALSE:
            raise ValueError(f"{text!r} is not a boolean; allowed: true or false")
        return low in _TRUE
    if kind is int:
        try:
            return integer_arg(text, "an integer")
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number; allowed: a number such as 0.5 or "
                             "1e-3") from None
    return text


def _build(cls: type, changes: dict[tuple[str, ...], Any], default: Any) -> Any:
    """``default`` (an instance of ``cls``) with the fields at ``changes``' paths replaced,
    nested dataclasses rebuilt (so every class's own validation runs)."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in changes.items():
        if len(path) == 1:
            top[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1:]] = value
    for name, sub in nested.items():
        inner = getattr(default, name)
        top[name] = _build(type(inner), sub, inner)
    return dataclasses.replace(default, **top)


def parse_options(texts: Sequence[str], methods: Sequence[str], option: str = "--option"
                  ) -> dict[str, Any]:
    """``--option METHOD.FIELD=VALUE`` texts as ``CompareSettings.options``: per method, its
    ``options_type()`` with the given fields replaced (values parsed to the fields' types;
    the class's own checks run).

    Raises:
        ConfigError: Naming the option text: not METHOD.FIELD=VALUE, an unknown method, a
            method not in ``methods``, a method without options, an unknown field (listing
            the allowed ones), a field given twice, or a value of the wrong type or range.
    """
    from xbar.mapping.recovery.registry import method, method_names

    out: dict[str, Any] = {}
    seen: set[tuple[str, str]] = set()
    for text in texts:
        where = f"{option} {text!r}"
        target, eq, value = text.partition("=")
        name, dot, path = target.strip().partition(".")
        if not eq or not dot or not name or not path:
            raise ConfigError(f"{where} is not METHOD.FIELD=VALUE (e.g. "
                              "fault-aware-map.spare_rows=4)")
        with_options = ", ".join(n for n in method_names() if method(n).options_type)
        if name not in method_names():
            raise ConfigError(f"{where}: unknown method {name!r}; methods with options: "
                              f"{with_options}")
        cls = method(name).options_type if name in method_names() else None
        if cls is None:
            raise ConfigError(f"{where}: method {name!r} takes no options; methods with "
                              f"options: {with_options}")
        if name not in methods:
            raise ConfigError(f"{where}: method {name!r} is not in --methods "
                              f"({','.join(methods)}); add it there or drop the option")
        allowed = option_fields(cls)
        if path not in allowed:
            raise ConfigError(f"{where}: {cls.__name__} has no field {path!r}; allowed "
                              f"fields: {', '.join(allowed)}")
        if (name, path) in seen:
            raise ConfigError(f"{where}: {name}.{path} is set more than once")
        seen.add((name, path))
        key = tuple(path.split("."))
        owner = cls
        for part in key[:-1]:
            owner = _field_kind(owner, part)[0]
        kind, item = _field_kind(owner, key[-1])
        try:
            parsed = _option_value(value, kind, item)
            out[name] = _build(cls, {key: parsed}, out[name] if name in out else cls())
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out
