"""What ``xbar sweep`` can sweep: every scalar Device field, every array/converter field, and
the SRAM fraction, with units and allowed ranges read off the dataclasses themselves.

Nothing here is a hand-typed list of ranges: the description of a field is its entry in the
owning dataclass's ``Attributes:`` docstring section, its type is the field's annotation, its
unit comes from the field name's suffix (``_us``, ``_v``) or the docstring ("a fraction"), and
its allowed range is the ``allowed: ...`` part of the ``ValueError`` its own ``__post_init__``
raises for an out-of-range probe value. A swept value is accepted only if the Device or
XbarConfig (or CompareSettings) built with it validates.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from xbar.devices import Device
from xbar.mapping.recovery.compare import CompareSettings
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.errors import ConfigError

# Device fields that are not physical parameters (labels) or hold a whole table per value.
_DEVICE_SKIP = ("name", "source")
_HARDWARE_SECTIONS: tuple[tuple[str, type], ...] = (
    ("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig))
_UNIT_SUFFIXES = (("_us", "uS"), ("_ua", "uA"), ("_v", "V"), ("_ohm", "Ohm"), ("_ns", "ns"),
                  ("_s", "s"))
# Only these variation models read the field; sweeping it on another device changes nothing.
_NEEDS_VARIATION = {"sigma": ("gaussian", "lognormal"), "sigma_reference": ("gaussian",),
                    "poly_g_ref_us": ("polynomial",), "sigma_poly_us": ("polynomial",)}

SRAM_RATIO = "sram_ratio"


@dataclass(frozen=True)
class SweepParam:
    """One sweepable parameter.

    Attributes:
        name: The name ``--param`` takes: a Device field (``sigma``), ``section.field`` for the
            hardware (``adc.bits``) or ``sram_ratio``.
        target: ``"device"``, ``"hardware"`` or ``"settings"``.
        type_name: ``"float"``, ``"int"`` or ``"str"``.
        unit: Unit, or ``"-"`` for a dimensionless number, ``"choice"`` for a string.
        allowed: The allowed range as the validation states it.
        description: The field's documentation, first sentence.
    """

    name: str
    target: str
    type_name: str
    unit: str
    allowed: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _attribute_docs(klass: type) -> dict[str, str]:
    """``name -> text`` from a Google-style ``Attributes:`` docstring section."""
    doc = inspect.getdoc(klass) or ""
    out: dict[str, str] = {}
    current: str | None = None
    in_section = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line.startswith(" "):
            break  # the section ended
        m = re.match(r"^ {4}([A-Za-z_][\w, ]*):\s*(.*)$", line)
        if m:
            current = m.group(1)
            for name in current.split(","):  # "n_out, n_in: ..." documents two fields
                out[name.strip()] = m.group(2).strip()
        elif current is not None and line.strip():
            for name in current.split(","):
                out[name.strip()] += " " + line.strip()
    return out


def _describe(text: str, owner: str, name: str) -> str:
    """The first sentence of a field's documentation, short enough for one line."""
    m = re.match(r"(.+?\.)(\s|$)", text)
    sentence = (m.group(1) if m else text).strip()
    sentence = sentence.split(": ``", 1)[0]  # a list of choices follows
    if not sentence or sentence.startswith("``"):
        return f"one of the choices; each is described in {owner}.{name}'s docstring"
    return sentence if len(sentence) <= 110 else sentence[:107].rstrip() + "..."


def _unit(name: str, type_name: str, doc: str) -> str:
    if type_name == "str":
        return "choice"
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    if "fraction" in doc.lower():
        return "fraction"
    if "bits" in name:
        return "bits"
    return "-"


def _allowed(name: str, type_name: str, build: Callable[[Any], Any]) -> str:
    """The ``allowed: ...`` texts validation gives for probe values; none -> any value."""
    probes: tuple[Any, ...] = ("\x00?",) if type_name == "str" else (-1, 10 ** 9) \
        if type_name == "int" else (-1.0, 1e300)
    found: list[str] = []
    leaf = name.rpartition(".")[2]
    for probe in probes:
        try:
            build(probe)
        except ValueError as exc:
            msg = str(exc)
            if re.match(rf"^(\w+\.)?{re.escape(leaf)} = ", msg) and "allowed: " in msg:
                text = msg.split("allowed: ", 1)[1].strip()
                if text not in found:
                    found.append(text)
    if found:
        return "; ".join(found)
    return "any string" if type_name == "str" else f"any finite {type_name}"


def sweep_params(device: Device | None = None, xbar: XbarConfig | None = None
                 ) -> dict[str, SweepParam]:
    """Every sweepable parameter, by name; ranges relative to ``device`` and ``xbar``.

    Ranges that depend on another field (``g_max_us > g_min_us``, ``dac.bits_per_read <=
    dac.input_bits``) are stated for the given base configuration (the defaults when None).
    """
    device = device if device is not None else Device()
    xbar = xbar if xbar is not None else XbarConfig()
    params: dict[str, SweepParam] = {}
    docs = _attribute_docs(Device)
    for f in dataclasses.fields(Device):
        if not f.init or f.name in _DEVICE_SKIP or str(f.type) not in ("float", "int", "str"):
            continue  # tuple fields hold a whole table, not one value
        type_name = str(f.type)
        doc = docs.get(f.name, "")
        params[f.name] = SweepParam(
            f.name, "device", type_name, _unit(f.name, type_name, doc),
            _allowed(f.name, type_name, lambda v, n=f.name: device.replace(**{n: v})),
            _describe(doc, "Device", f.name))
    for section, klass in _HARDWARE_SECTIONS:
        docs = _attribute_docs(klass)
        for f in dataclasses.fields(klass):
            name = f"{section}.{f.name}"
            type_name = str(f.type)
            doc = docs.get(f.name, "")
            params[name] = SweepParam(
                name, "hardware", type_name, _unit(f.name, type_name, doc),
                _allowed(name, type_name, lambda v, n=name: xbar.replace(**{n: v})),
                _describe(doc, klass.__name__, f.name))
    params[SRAM_RATIO] = SweepParam(
        SRAM_RATIO, "settings", "float", "fraction",
        _allowed(SRAM_RATIO, "float", lambda v: CompareSettings(sram_ratio=v)),
        "Fraction of each layer's weights given an SRAM word (RSA, OSA and their KD forms).")
    return params


def _canonical(name: str, params: dict[str, SweepParam]) -> str:
    if name in params:
        return name
    for section, _ in _HARDWARE_SECTIONS:  # XbarConfig.replace also takes adc_bits
        if name.startswith(section + "_") and f"{section}.{name[len(section) + 1:]}" in params:
            return f"{section}.{name[len(section) + 1:]}"
    raise ConfigError(f"unknown sweep parameter {name!r}; valid names: {', '.join(params)} "
                     "(`xbar sweep --list-params` shows units and ranges)")


def parse_values(text: str | list[Any] | tuple[Any, ...], param: SweepParam) -> tuple[Any, ...]:
    """``"0,0.1,0.2"`` (or a list) to typed values; refuses empties, duplicates, bad numbers."""
    raw = [v.strip() for v in text.split(",")] if isinstance(text, str) else list(text)
    raw = [v for v in raw if not (isinstance(v, str) and v == "")]
    if not raw:
        raise ConfigError(f"--values is empty; give comma-separated values of {param.name}, "
                         "e.g. --values 0,0.1,0.2")
    values: list[Any] = []
    for v in raw:
        try:
            if param.type_name == "int":
                f = float(v)
                if not f.is_integer():
                    raise ValueError
                values.append(int(f))
            elif param.type_name == "float":
                f = float(v)
                if not math.isfinite(f):
                    raise ValueError
                values.append(f)
            else:
                values.append(str(v))
        except (TypeError, ValueError):
            kind = "an integer" if param.type_name == "int" else "a finite number"
            raise ConfigError(f"--values: {v!r} is not {kind}, as {param.name} needs "
                             f"(allowed: {param.allowed})") from None
    dup = sorted({str(v) for v in values if values.count(v) > 1})
    if dup:
        raise ConfigError(f"--values repeats {', '.join(dup)}; give each value once")
    return tuple(values)


@dataclass(frozen=True)
class SweepPoint:
    """The configuration one swept value gives."""

    value: Any
    device: Device
    xbar: XbarConfig
    sram_ratio: float


def resolve_points(name: str, values: Any, device: Device, xbar: XbarConfig,
                   sram_ratio: float) -> tuple[SweepParam, tuple[SweepPoint, ...]]:
    """Validate the parameter name and build (and so validate) the configuration of every value.

    Raises:
        ValueError: Unknown name (with the valid names), a value of the wrong type, a value
            the Device/XbarConfig/CompareSettings validation refuses (naming the value and the
            allowed range), or a parameter the base device never reads.
    """
    params = sweep_params(device, xbar)
    param = params[_canonical(name, params)]
    needs = _NEEDS_VARIATION.get(param.name)
    if needs and device.variation not in needs:
        raise ConfigError(f"device {device.name!r} has variation {device.variation!r}, which "
                         f"does not read {param.name} (only {' / '.join(needs)} do): sweeping it "
                         "would change nothing; pick another --device or --param")
    points = []
    for v in parse_values(values, param):
        try:
            if param.target == "device":
                point = SweepPoint(v, device.replace(**{param.name: v}), xbar, sram_ratio)
            elif param.target == "hardware":
                point = SweepPoint(v, device, xbar.replace(**{param.name: v}), sram_ratio)
            else:
                CompareSettings(sram_ratio=v)
                point = SweepPoint(v, device, xbar, v)
        except ValueError as exc:
            raise ConfigError(f"--values: {param.name} = {v!r} is refused: {exc}") from None
        points.append(point)
    return param, tuple(points)


def format_params(params: dict[str, SweepParam]) -> str:
    """The ``--list-params`` table."""
    rows = [f"{'name':<22}{'type':<7}{'unit':<10}allowed",
            f"{'':<22}{'':<7}{'':<10}description"]
    for p in params.values():
        rows.append(f"{p.name:<22}{p.type_name:<7}{p.unit:<10}{p.allowed}")
        if p.description:
            rows.append(f"{'':<39}{p.description}")
    return "\n".join(rows)
