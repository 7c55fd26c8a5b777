"""The hardware configuration: one frozen root, its sections, presets and the one loader.

Grouped as CrossSim groups ``XbarParameters(device, array, adc, dac)``: one dataclass per
concept, each field declared once with its unit, range and meaning (:mod:`xbar.params`),
validated on construction, round-tripping through a TOML hardware file and written as
attributes into result files.

* :class:`XbarConfig` (``[array]``, ``[dac]``, ``[adc]``): what the analog model computes
  with, the functional part.
* :class:`HardwareConfig`: the root, ``XbarConfig``'s three sections plus the timing sections
  ``[timing]``, ``[programming]`` and ``[adaptation]`` (:mod:`xbar.timing_config`), and
  the cost sections ``[energy]`` and ``[area]`` (:mod:`xbar.energy_config`).
* :func:`load_hardware`: the one reader of presets (``default``, ``one-cell``) and TOML files.

The device itself lives in :mod:`xbar.devices` (a device file is refused here, with a hint to
pass it as ``--device``).
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbar.errors import ConfigError, FileFormatError, MissingFileError
from xbar.params import INF, Params, markdown_table, param, param_rows
from xbar.energy_config import AreaConfig, EnergyConfig
from xbar.timing_config import AdaptationConfig, ProgrammingConfig, TimingConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ADCConfig", "ArrayConfig", "DACConfig", "HARDWARE_PRESETS", "HARDWARE_SECTIONS",
           "HardwareConfig", "XbarConfig", "load_hardware", "parameter_sections",
           "parameters_markdown", "read_toml"]

WEIGHT_MAPPINGS = ("differential", "offset")
ADC_RANGES = ("full-scale", "calibrated")


@dataclass(frozen=True)
class ArrayConfig(Params):
    """One crossbar array (a 1T1R tile).

    Attributes:
        rows: Word lines (inputs) per array; a weight matrix's input dimension is split over
            ceil(n_in / rows) row tiles whose partial sums are added digitally.
        cols: Bit lines (outputs) per array.
        weight_mapping: ``"differential"``: each weight is a pair of cells in two arrays,
            w ~ G+ - G-, each bit line digitised and the pair subtracted digitally (the
            NeuroSim scheme); a tile is that array pair. ``"offset"``: one cell per weight,
            w ~ G - G_ref, where G_ref is the current of a reference bit line of cells at the
            middle level, beside the weights in the same array (so ``cols - 1`` weight
            columns per array), digitised like any column and subtracted digitally.
        read_voltage_v: Word-line read voltage of a full-scale input slice, in volts
            (NeuroSim V1.3: 0.5 V).
        wire_resistance_ohm: Resistance of one cell pitch of word line and of bit line, in
            ohm; 0 (the default) is ideal wires. Above 0 every read is the exact solve of
            the array's resistive network (IR drop; :mod:`xbar.ir_drop`, docs/ir_drop.md).
        access_resistance_ohm: On-resistance of each cell's access transistor, in series
            with the cell, in ohm; 0 (the default) when the cell's conductances already
            include it (a 1T1R cell measured as a whole, as the presets' are).
    """

    SECTION = "array"

    rows: int = param(128, unit="word lines", range=(1, 65536),
                      doc="Word lines (inputs) per array.")
    cols: int = param(128, unit="bit lines", range=(1, 65536),
                      doc="Bit lines (outputs) per array; offset mapping needs >= 2.")
    weight_mapping: str = param("differential", choices=WEIGHT_MAPPINGS,
                                doc="A weight as a cell pair (G+ - G-) or one cell against "
                                    "a reference column.")
    read_voltage_v: float = param(0.5, unit="V", range=(0, 5, True, False),
                                  doc="Word-line read voltage of a full-scale input slice.")
    wire_resistance_ohm: float = param(0.0, unit="ohm", range=(0, 1e6), note="0: ideal wires",
                                       doc="Resistance of one cell pitch of word line and of "
                                           "bit line (IR drop).")
    access_resistance_ohm: float = param(0.0, unit="ohm", range=(0, 1e9),
                                         note="0: included in the cell's conductance",
                                         doc="Access transistor on-resistance in series with "
                                             "each cell.")

    def check(self) -> None:
        if self.weight_mapping == "offset" and self.cols < 2:
            raise ConfigError(f"ArrayConfig.cols = {self.cols!r} is invalid; allowed: an "
                              "integer in [2, 65536] (offset mapping needs a reference column)")

    @property
    def weight_cols(self) -> int:
        """Weight columns per array (one fewer in the offset scheme: the reference)."""
        return self.cols - 1 if self.weight_mapping == "offset" else self.cols


@dataclass(frozen=True)
class DACConfig(Params):
    """Input digital-to-analog conversion.

    Attributes:
        input_bits: Magnitude bits of each input (1-16). Inputs are quantised to
            round(|x| / x_max * (2**input_bits - 1)).
        bits_per_read: Input bits applied per array read. 1 (the default) is bit-serial:
            each read drives a word line at 0 or read_voltage_v. k > 1 is a multi-bit DAC
            driving (slice / (2**k - 1)) * read_voltage_v, with ceil(input_bits / k) reads.
    Signed inputs run as two passes, the positive part then the negative part, each with
    ``input_bits`` bits, subtracted digitally; a layer whose inputs are never negative (after
    a ReLU) runs one pass.
    """

    SECTION = "dac"

    input_bits: int = param(8, unit="bits", range=(1, 16),
                            doc="Magnitude bits of each input.")
    bits_per_read: int = param(1, unit="bits", range=(1, 16), note="at most input_bits",
                               doc="Input bits per array read (1: bit-serial).")

    def check(self) -> None:
        if self.bits_per_read > self.input_bits:
            raise ConfigError(f"DACConfig.bits_per_read = {self.bits_per_read!r} is invalid; "
                              f"allowed: an integer in [1, {self.input_bits}] (at most "
                              "input_bits)")

    @property
    def n_slices(self) -> int:
        """Array reads per input pass."""
        return -(-self.input_bits // self.bits_per_read)


@dataclass(frozen=True)
class ADCConfig(Params):
    """Column analog-to-digital conversion.

    Attributes:
        bits: ADC resolution (1-16). A column current I becomes
            clip(round(I / I_range * (2**bits - 1)), 0, 2**bits - 1).
        range_mode: ``"full-scale"``: I_range is the largest current the array can carry,
            rows_used * read_voltage_v * g_max (every input at full scale, every cell at
            g_max). ``"calibrated"``: I_range is set per tile from data (the largest
            noise-free column current seen on calibration inputs), so the ADC codes span
            what the tile actually produces; currents above it clip.
        cols_per_adc: Bit lines sharing one ADC through a multiplexer (timing only; the
            functional model digitises every column).
        calibration_headroom: The factor a calibrated range is multiplied by (``"calibrated"``
            only): I_range = headroom x the largest noise-free column current on the
            calibration inputs. 1 (the default) leaves no margin: a read-noise excursion, or
            an input stronger than any calibration input, clips at the top code. Above 1
            such currents stay in range at the cost of a coarser step (I_range / (2**bits -
            1)); below 1 the largest currents clip on purpose for a finer step.
    """

    SECTION = "adc"

    bits: int = param(8, unit="bits", range=(1, 16), doc="ADC resolution.")
    range_mode: str = param("calibrated", choices=ADC_RANGES,
                            doc="ADC range: the array's full scale or calibrated per tile.")
    cols_per_adc: int = param(8, unit="bit lines", range=(1, 65536),
                              doc="Bit lines sharing one ADC (timing only).")
    calibration_headroom: float = param(1.0, unit="-", range=(0, INF, True, True),
                                        note="1: the calibrated peak itself",
                                        doc="Calibrated range = this x the largest noise-free "
                                            "current on the calibration inputs.")


_XBAR_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig))
_TIMING_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("timing", TimingConfig), ("programming", ProgrammingConfig),
    ("adaptation", AdaptationConfig))
# What each event costs and each unit occupies (xbar.energy_config).
_COST_SECTIONS: tuple[tuple[str, type[Params]], ...] = (
    ("energy", EnergyConfig), ("area", AreaConfig))
HARDWARE_SECTIONS = tuple(name for name, _ in _XBAR_SECTIONS + _TIMING_SECTIONS
                          + _COST_SECTIONS)
# Sections of a device file (xbar.devices.files): given as --hw, it is refused with a hint.
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
            (:class:`xbar.energy_config.EnergyConfig`, :class:`~xbar.energy_config.AreaConfig`).
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
        _check_parts(self, _XBAR_SECTIONS + _TIMING_SECTIONS + _COST_SECTIONS)

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
            FileFormatError: A device file's sections (``[device]``): pass it as ``--device``.
        """
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: a hardware configuration is a set of sections "
                              f"({_sections_text()}), not {doc!r}")
        device = [k for k in doc if k in _DEVICE_SECTIONS]
        if device:
            raise FileFormatError(
                f"{where} has a [{device[0]}] section: this is a device file; pass it as "
                f"--device, not --hw (a hardware file holds {_sections_text()})")
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
                 for name, klass in _XBAR_SECTIONS + _TIMING_SECTIONS + _COST_SECTIONS}
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
            or HDF5): the message says to pass it as ``--device``.
        ConfigError: Neither a preset nor a file; a section that is not a table; an unknown
            section or field; an invalid value. Every message names the file.
    """
    if spec is None:
        return HardwareConfig()
    if isinstance(spec, HardwareConfig):
        return spec
    text = str(spec)
    if isinstance(spec, str) and text in HARDWARE_PRESETS:
        return HardwareConfig.from_dict(HARDWARE_PRESETS[text], f"hardware preset {text!r}")
    path = Path(spec)
    if not path.exists() and path.suffix.lower() != ".toml":
        raise ConfigError(f"--hw {text!r} is neither a hardware preset "
                          f"({', '.join(HARDWARE_PRESETS)}) nor an existing .toml file")
    return HardwareConfig.from_dict(read_toml(path), text)


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
            raise FileFormatError(f"{path} is a device file (HDF5); pass it as --device, not "
                                  f"as a {what} (a .toml file with {_sections_text()})")
        desc = f"of kind {kind!r}" if kind else "not written by xbar-sim"
        raise FileFormatError(f"{path} is an HDF5 file ({desc}), not a {what}; give a .toml "
                              f"file with {_sections_text()}")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not a text file, so not a TOML {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(f"{path}: not valid TOML: {exc}") from None


# ----------------------------------------------------------------------------- tables
def parameter_sections() -> list[tuple[str, type]]:
    """Every configuration class with declared parameters, as ``(section, class)``: the
    device and the eight hardware sections."""
    from xbar.devices.cell import Device

    return [("device", Device), *_XBAR_SECTIONS, *_TIMING_SECTIONS, *_COST_SECTIONS]


def parameters_markdown() -> str:
    """``docs/parameters.md``: every parameter's type, unit, default, range and meaning, read
    from the same declarations as validation and ``xbar sweep --list-params``."""
    head = ("# Parameters\n\n"
            "Every parameter of a device file (`[device]`) and of a hardware file (`[array]`, "
            "`[dac]`, `[adc]`, `[timing]`, `[programming]`, `[adaptation]`, `[energy]`, "
            "`[area]`), with its unit, default, allowed values and meaning. Generated from the field declarations "
            "(`xbar.params.param`) that validation and `xbar sweep --list-params` read; do "
            "not edit by hand, regenerate with\n\n"
            "```\npython -c \"from xbar.config import parameters_markdown as m; "
            "print(m(), end='')\" > docs/parameters.md\n```\n\n"
            "Rules that tie fields together are checked too: `g_max_us > g_min_us`; "
            "`levels_us`, `level_mean_us`, `level_std_us` hold `n_levels` values inside "
            "[g_min_us, g_max_us]; `sa0_rate + sa1_rate <= 1`; a device's `weight_mapping`, "
            "when set, must equal the hardware's `[array]` `weight_mapping`; the offset "
            "mapping needs `cols >= 2`; `bits_per_read <= input_bits`; "
            "`drivers_per_array <= cols`; "
            "`duplicate_layers` must name conv layers of the simulated network.\n\n")
    return head + markdown_table(param_rows(parameter_sections()))

