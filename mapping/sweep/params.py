"""What ``xbar sweep`` can sweep: every scalar Device field, every array/converter field, and
the SRAM fraction, with units, allowed ranges and descriptions read from their declarations.

Each field's unit, range and one-line meaning is declared once with
:func:`xbar.params.param` (the same declaration validation reads); nothing here parses
docstrings or error messages. A swept value is accepted only if the Device or XbarConfig (or
CompareSettings) built with it validates, so rules that tie fields together
(``g_max_us > g_min_us``, ``dac.bits_per_read <= dac.input_bits``) are enforced too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from xbar.devices import Device
from xbar.mapping.recovery.compare import CompareSettings
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.errors import ConfigError
from xbar.layout import check_device_mapping
from xbar.params import ParamSpec, param_rows

# Device fields that are labels, not physical parameters (tuple fields hold a whole table
# per value and are not sweepable either). weight_mapping states what the device's source
# fixes; the mapping itself is the hardware's array.weight_mapping, which is sweepable.
_DEVICE_SKIP = ("name", "source", "weight_mapping")
_HARDWARE_SECTIONS: tuple[tuple[str, type], ...] = (
    ("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig))
# Only these variation models read the field; sweeping it on another device changes nothing.
_NEEDS_VARIATION = {"sigma": ("gaussian", "lognormal"), "sigma_reference": ("gaussian",),
                    "poly_g_ref_us": ("polynomial",), "sigma_poly_us": ("polynomial",)}

SRAM_RATIO = "sram_ratio"
# CompareSettings.sram_ratio (a recovery setting, not a hardware field), declared here.
SRAM_RATIO_SPEC = ParamSpec(
    float, unit="fraction", range=(0, 1, True, False),
    note="a fraction: 0.05 = 5 % of each layer's weights",
    doc="Fraction of each layer's weights given an SRAM word (RSA, OSA and their KD forms).")


@dataclass(frozen=True)
class SweepParam:
    """One sweepable parameter.

    Attributes:
        name: The name ``--param`` takes: a Device field (``sigma``), ``section.field`` for the
            hardware (``adc.bits``) or ``sram_ratio``.
        target: ``"device"``, ``"hardware"`` or ``"settings"``.
        type_name: ``"float"``, ``"int"`` or ``"str"``.
        unit: Unit, or ``"-"`` for a dimensionless number, ``"choice"`` for a string.
        allowed: The allowed values, as validation states them.
        description: The field's one-line meaning.
    """

    name: str
    target: str
    type_name: str
    unit: str
    allowed: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def sweep_params(device: Device | None = None, xbar: XbarConfig | None = None
                 ) -> dict[str, SweepParam]:
    """Every sweepable parameter, by name, from the field declarations.

    ``device`` and ``xbar`` are accepted for the callers that state the base configuration;
    the ranges are those of the declarations (rules tying two fields together are noted in
    the allowed text and enforced when a value is built).
    """
    params: dict[str, SweepParam] = {}
    for row in param_rows([("device", Device)]):
        if row.name in _DEVICE_SKIP or row.type_name not in ("float", "int", "str"):
            continue
        params[row.name] = SweepParam(row.name, "device", row.type_name, row.unit,
                                      row.allowed, row.description)
    for row in param_rows(_HARDWARE_SECTIONS):
        name = f"{row.section}.{row.name}"
        params[name] = SweepParam(name, "hardware", row.type_name, row.unit, row.allowed,
                                  row.description)
    params[SRAM_RATIO] = SweepParam(SRAM_RATIO, "settings", "float", SRAM_RATIO_SPEC.unit,
                                    SRAM_RATIO_SPEC.allowed(), SRAM_RATIO_SPEC.doc)
    return params


def _canonical(name: str, params: dict[str, SweepParam]) -> str:
    if name in params:
        return name
    for section, _ in _HARDWARE_SECTIONS:  # XbarConfig.replace also takes adc_bits
        if name.startswith(section + "_") and f"{section}.{name[len(section) + 1:]}" in params:
            return f"{section}.{name[len(section) + 1:]}"
    raise ConfigError(f"resolve_points(name={name!r}): unknown sweep parameter; valid names: "
                      f"{', '.join(params)} (sweep_params() gives their units and ranges)")


def parse_values(text: str | list[Any] | tuple[Any, ...], param: SweepParam) -> tuple[Any, ...]:
    """``"0,0.1,0.2"`` (or a list) to typed values; refuses empties, duplicates, bad numbers."""
    raw = [v.strip() for v in text.split(",")] if isinstance(text, str) else list(text)
    if not raw or raw == [""]:
        raise ConfigError(f"resolve_points(values={text!r}) is empty; give comma-separated "
                          f"values of {param.name}, e.g. '0,0.1,0.2'")
    empty = [i for i, v in enumerate(raw, 1) if isinstance(v, str) and v == ""]
    if empty:
        raise ConfigError(f"resolve_points(values={text!r}) has an empty entry (entry "
                          f"{empty[0]}); allowed: comma-separated values of {param.name}, "
                          "e.g. '0,0.1,0.2'")
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
            raise ConfigError(f"resolve_points(values=...): {v!r} is not {kind}, as "
                              f"{param.name} needs (allowed: {param.allowed})") from None
    dup = sorted({str(v) for v in values if values.count(v) > 1})
    if dup:
        raise ConfigError(f"resolve_points(values=...) repeats {', '.join(dup)}; give each "
                          "value once")
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
            allowed range), a parameter the base device never reads, or a point whose
            hardware maps weights otherwise than its device fixes (``weight_mapping``: sweep
            ``array.weight_mapping`` on a device that fixes none).
    """
    params = sweep_params(device, xbar)
    param = params[_canonical(name, params)]
    needs = _NEEDS_VARIATION.get(param.name)
    if needs and device.variation not in needs:
        raise ConfigError(f"device {device.name!r} has variation {device.variation!r}, which "
                         f"does not read {param.name} (only {' / '.join(needs)} do): sweeping it "
                         "would change nothing; pick another device (resolve_points(device=...))"
                         " or parameter (resolve_points(name=...))")
    if param.name != "array.weight_mapping":  # else each swept value is checked below
        check_device_mapping(device, xbar, "the sweep's hardware (resolve_points(xbar=...))")
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
            check_device_mapping(point.device, point.xbar,
                                 f"the hardware at {param.name} = {v!r}")
        except ValueError as exc:
            raise ConfigError(f"resolve_points(values=...): {param.name} = {v!r} is refused: "
                              f"{exc}") from None
        points.append(point)
    return param, tuple(points)


def format_params(params: dict[str, SweepParam]) -> str:
    """The ``--list-params`` table: name, type, unit and allowed values, then the meaning."""
    wn = max([len("name")] + [len(p.name) for p in params.values()]) + 2
    wu = max([len("unit")] + [len(p.unit) for p in params.values()]) + 2
    rows = [f"{'name':<{wn}}{'type':<7}{'unit':<{wu}}allowed",
            f"{'':<{wn + 7 + wu}}description"]
    for p in params.values():
        rows.append(f"{p.name:<{wn}}{p.type_name:<7}{p.unit:<{wu}}{p.allowed}")
        if p.description:
            rows.append(f"{'':<{wn + 7 + wu}}{p.description}")
    return "\n".join(rows)
