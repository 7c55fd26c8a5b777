"""The whole hardware configuration: its root, the presets and the one loader.

* :class:`XbarConfig`: ``[array]``, ``[dac]``, ``[adc]`` (:mod:`xbar.config.array`), what the
  analog model computes with, the functional part.
* :class:`HardwareConfig`: the root, those three sections plus ``[timing]``
  (:mod:`xbar.config.timing`), ``[programming]`` (:mod:`xbar.config.programming`),
  ``[adaptation]`` (:mod:`xbar.config.adaptation`), ``[energy]`` (:mod:`xbar.config.energy`)
  and ``[area]`` (:mod:`xbar.config.area`); frozen, validated on construction, round-tripping
  through a TOML hardware file and written as attributes into result files.
* :func:`load_hardware`: the one reader of presets (:data:`HARDWARE_PRESETS`) and TOML files.

The device itself lives in :mod:`xbar.devices` (a device file is refused here, with a hint that
:func:`xbar.devices.resolve_device` reads it).
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbar.config.adaptation import AdaptationConfig
from xbar.config.area import AreaConfig
from xbar.config.array import ADCConfig, ArrayConfig, DACConfig
from xbar.config.energy import EnergyConfig
from xbar.config.programming import ProgrammingConfig
from xbar.config.timing import TimingConfig
from xbar.errors import ConfigError, FileFormatError, MissingFileError
from xbar.params import Params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["HARDWARE_PRESETS", "HARDWARE_SECTIONS", "HardwareConfig", "SECTION_CLASSES",
           "XbarConfig", "load_hardware", "read_toml"]

_XBAR_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig))
_TIMING_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("timing", TimingConfig), ("programming", ProgrammingConfig),
    ("adaptation", AdaptationConfig))
# What each event costs and each unit occupies.
_COST_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("energy", EnergyConfig), ("area", AreaConfig))
SECTION_CLASSES: tuple[tuple[str, type[Params]], ...] = (
    _XBAR_SECTIONS + _TIMING_SECTIONS + _COST_SECTIONS)
"""Every section of a hardware file as ``(name, class)``, in the file's order."""
HARDWARE_SECTIONS = tuple(name for name, _ in SECTION_CLASSES)
# Sections of a device file (xbar.devices.files): given as hardware, it is refused with a hint.
_DEVICE_SECTIONS = ("device", "provenance", "write_verify", "measured")


@dataclass(frozen=True)
class XbarConfig:
    """The analog array and its converters: what the functional model computes with."""

    array: ArrayConfig = field(default_factory=ArrayConfig)
    dac: DACConfig = field(default_factory=DACConfig)
    adc: ADCConfig = field(default_factory=ADCConfig)

    def __post_init__(self) -> None:
        _check_parts(self, _XBAR_SECTIONS)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"array": self.array.to_dict(), "dac": self.dac.to_dict(),
                "adc": self.adc.to_dict()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str = "hardware config") -> "XbarConfig":
        """Build from ``{"array": {...}, "dac": {...}, "adc": {...}}``; other keys (the
        timing sections of a result file's hardware record) are left to their readers."""
        return cls(**{name: klass.from_dict(doc.get(name, {}), where)
                      for name, klass in _XBAR_SECTIONS})

    @classmethod
    def from_toml(cls, path: str | Path) -> "XbarConfig":
        """The ``[array]``, ``[dac]``, ``[adc]`` of a hardware file (see :func:`load_hardware`)."""
        return load_hardware(Path(path)).xbar

    def replace(self, **changes: Any) -> "XbarConfig":
        """A copy with fields changed, addressed as ``"adc.bits"`` or ``adc_bits``."""
        doc = self.to_dict()
        for key, value in changes.items():
            section, _, name = key.replace(".", "_").partition("_")
            if section not in doc or name not in doc[section]:
                raise ConfigError(f"unknown hardware field {key!r}; valid: " + ", ".join(
                    f"{s}.{n}" for s in doc for n in doc[s]))
            doc[section][name] = value
        return XbarConfig.from_dict(doc)


@dataclass(frozen=True)
class HardwareConfig:
    """The whole chip: the analog array and converters, and when things happen.

    Attributes:
        array, dac, adc: The functional part (:attr:`xbar` gives them as one
            :class:`XbarConfig`, what the analog model takes).
        timing: Clock, read pulse, ADC rate, digital units (:class:`TimingConfig`).
        programming: Programming pulses and write drivers (:class:`ProgrammingConfig`).
        adaptation: SRAM words and the backward pass of on-chip adaptation
            (:class:`AdaptationConfig`).
        energy, area: What each event costs and each unit occupies
            (:class:`EnergyConfig`, :class:`AreaConfig`).
    """

    array: ArrayConfig = field(default_factory=ArrayConfig)
    dac: DACConfig = field(default_factory=DACConfig)
    adc: ADCConfig = field(default_factory=ADCConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    programming: ProgrammingConfig = field(default_factory=ProgrammingConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    area: AreaConfig = field(default_factory=AreaConfig)

    def __post_init__(self) -> None:
        _check_parts(self, SECTION_CLASSES)

    @property
    def xbar(self) -> XbarConfig:
        """The functional part: array, DAC and ADC."""
        return XbarConfig(self.array, self.dac, self.adc)

    @classmethod
    def from_parts(cls, xbar: XbarConfig | None = None, **sections: Any) -> "HardwareConfig":
        """From an :class:`XbarConfig` and any of the other sections (``timing``, ...)."""
        xbar = xbar or XbarConfig()
        return cls(xbar.array, xbar.dac, xbar.adc, **sections)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every section by name, every field by name (JSON-, TOML- and HDF5-ready)."""
        return {name: getattr(self, name).to_dict() for name in HARDWARE_SECTIONS}

    @classmethod
    def from_dict(cls, doc: Any, where: str = "hardware config") -> "HardwareConfig":
        """Build from a dict of sections (a parsed TOML file); missing sections and fields
        take their defaults.

        Raises:
            ConfigError: A section that is not a table, an unknown section (the message lists
                the valid ones), an unknown field, or an invalid value; each names ``where``.
            FileFormatError: A device file's sections (``[device]``): the message says that
                :func:`xbar.devices.resolve_device` reads it.
        """
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: a hardware configuration is a set of sections "
                              f"({_sections_text()}), not {doc!r}")
        device = [k for k in doc if k in _DEVICE_SECTIONS]
        if device:
            raise FileFormatError(
                f"{where} has a [{device[0]}] section: this is a device file, not a hardware "
                f"file (which holds {_sections_text()}); resolve_device(spec=...) reads it")
        for key, value in doc.items():
            if key in HARDWARE_SECTIONS:
                continue
            close = difflib.get_close_matches(str(key), HARDWARE_SECTIONS, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            what = f"section [{key}]" if isinstance(value, dict) else \
                f"top-level key {key!r} = {value!r} (every field belongs in a section)"
            raise ConfigError(f"{where}: unknown {what}{hint}; valid sections: "
                              f"{_sections_text()}")
        parts = {name: klass.from_dict(doc.get(name, {}), where)
                 for name, klass in SECTION_CLASSES}
        return cls(**parts)

    def to_toml(self) -> str:
        """The TOML text of a hardware file that :func:`load_hardware` reads back unchanged."""
        return "\n".join(getattr(self, name).to_toml() for name in HARDWARE_SECTIONS)

    def replace(self, **sections: Any) -> "HardwareConfig":
        """A copy with whole sections replaced: ``hw.replace(timing=TimingConfig(...))``."""
        unknown = sorted(set(sections) - set(HARDWARE_SECTIONS))
        if unknown:
            raise ConfigError(f"unknown hardware section(s) {unknown}; valid sections: "
                              f"{_sections_text()}")
        values = {name: getattr(self, name) for name in HARDWARE_SECTIONS}
        values.update(sections)
        return HardwareConfig(**values)


def _sections_text() -> str:
    return ", ".join(f"[{s}]" for s in HARDWARE_SECTIONS)


def _check_parts(obj: Any, sections: tuple[tuple[str, type], ...]) -> None:
    for name, klass in sections:
        value = getattr(obj, name)
        if not isinstance(value, klass):
            raise ConfigError(f"{type(obj).__name__}.{name} = {value!r} is invalid; allowed: "
                              f"a {klass.__name__}")


HARDWARE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # 128 x 128 differential arrays, 8-bit bit-serial DAC, 8-bit calibrated ADC.
    "default": {},
    # One cell per signed weight against a reference column: the mapping of a multi-level
    # cell used alone (DAC 2020's 10-level student), everything else as "default".
    "one-cell": {"array": {"weight_mapping": "offset"}},
    # The project's full-chip accounting, named: "default" itself. R-V-W with one write
    # driver per bit line (row-synchronous), one array programmed at a time, 10 ns verify;
    # adaptation with on-chip forward and backward passes.
    "full-chip": {},
    # The papers' accounting of R-V-W as "cell-by-cell compensation" (work 1): one cell at a
    # time in each array (every array at once), every pulse followed by a verify read through
    # the column's shared ADC (array read + one conversion); adaptation as "default".
    "cell-by-cell": {"programming": {"drivers_per_array": 1, "arrays_at_once": 0,
                                     "verify_read": "adc"}},
    # IR drop at 65 nm (docs/ir_drop.md): DNN+NeuroSim V1.3's 65 nm copper line (105 nm wide,
    # aspect ratio 1.7, 2.68e-8 ohm m: 1.43 ohm/um) across its 1T1R cell 12 F = 1.26 um wide:
    # 1.8 ohm per cell pitch, used for word and bit lines alike (NeuroSim's bit-line pitch,
    # 4 F, is 0.6 ohm: this overstates the bit lines' drop); the access transistor at
    # NeuroSim's sizing rule, R_on x IR_DROP_TOLERANCE = 6 kohm x 0.25; else as "default".
    "ir-drop-65nm": {"array": {"wire_resistance_ohm": 1.8, "access_resistance_ohm": 1500.0}},
}
"""Hardware presets by name; ``full-chip`` and ``cell-by-cell`` are the two R-V-W
accountings every printed speedup names (docs/programming_time.md)."""

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_hardware(spec: str | Path | HardwareConfig | None = None) -> HardwareConfig:
    """The hardware configuration of a preset name, a TOML file, or None (the defaults).

    A file holds any of the sections ``[array]``, ``[dac]``, ``[adc]``, ``[timing]``,
    ``[programming]``, ``[adaptation]``, ``[energy]``, ``[area]``; missing sections and
    fields take their defaults.

    Raises:
        MissingFileError: A ``.toml`` path that does not exist.
        FileFormatError: Not TOML, a directory, or a device file (TOML with ``[device]``,
            or HDF5): the message says that :func:`xbar.devices.resolve_device` reads it.
        ConfigError: Neither a preset nor a file; a section that is not a table; an unknown
            section or field; an invalid value. Every message names the argument
            (``load_hardware(spec='x.toml')``) and so the file.
    """
    if spec is None:
        return HardwareConfig()
    if isinstance(spec, HardwareConfig):
        return spec
    text = str(spec)
    if isinstance(spec, str) and text in HARDWARE_PRESETS:
        return HardwareConfig.from_dict(HARDWARE_PRESETS[text], f"hardware preset {text!r}")
    path = Path(spec)
    where = f"load_hardware(spec={text!r})"
    if not path.exists() and path.suffix.lower() != ".toml":
        raise ConfigError(f"{where}: {text!r} is neither a hardware preset "
                          f"({', '.join(HARDWARE_PRESETS)}) nor an existing .toml file")
    try:
        doc = read_toml(path)
    except (MissingFileError, FileFormatError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return HardwareConfig.from_dict(doc, where)


def read_toml(path: str | Path, what: str = "hardware file") -> dict[str, Any]:
    """Parse a TOML file, with a clear error when it is missing, a directory, an HDF5 file
    or not valid TOML."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{what} {str(path)!r} is a directory; give a .toml file")
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(_HDF5_SIGNATURE):
        from xbar.files import hdf5_kind
        kind = hdf5_kind(path)
        if kind == "xbar-sim device":
            raise FileFormatError(f"{path} is a device file (HDF5), not a {what} (a .toml "
                                  f"file with {_sections_text()}); resolve_device(spec=...) "
                                  "reads it")
        desc = f"of kind {kind!r}" if kind else "not written by xbar-sim"
        raise FileFormatError(f"{path} is an HDF5 file ({desc}), not a {what}; give a .toml "
                              f"file with {_sections_text()}")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not a text file, so not a TOML {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(f"{path}: not valid TOML: {exc}") from None
