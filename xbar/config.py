"""Frozen configuration of the analog array and its converters.

Grouped as CrossSim groups ``XbarParameters(device, array, adc, dac)``: one dataclass per
concept, validated on construction, round-tripping through a TOML hardware file (sections
``[array]``, ``[dac]``, ``[adc]``) and written as HDF5 attributes into result files.
The device itself lives in :mod:`devices`; the timing parameters in :mod:`xbar.timing`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from xbar.errors import ConfigError, MissingFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WEIGHT_MAPPINGS = ("differential", "offset")
ADC_RANGES = ("full-scale", "calibrated")


def _check_int(owner: str, name: str, value: Any, lo: int, hi: int, why: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name} = {value!r} is invalid; allowed: an integer in "
                         f"[{lo}, {hi}]{why}")


@dataclass(frozen=True)
class ArrayConfig:
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
    """

    rows: int = 128
    cols: int = 128
    weight_mapping: str = "differential"
    read_voltage_v: float = 0.5

    def __post_init__(self) -> None:
        _check_int("ArrayConfig", "rows", self.rows, 1, 65536)
        lo = 2 if self.weight_mapping == "offset" else 1
        _check_int("ArrayConfig", "cols", self.cols, lo, 65536,
                   " (offset mapping needs a reference column)" if lo == 2 else "")
        if self.weight_mapping not in WEIGHT_MAPPINGS:
            raise ConfigError(f"ArrayConfig.weight_mapping = {self.weight_mapping!r} is invalid;"
                             f" allowed: one of {WEIGHT_MAPPINGS}")
        if not isinstance(self.read_voltage_v, (int, float)) or not 0 < self.read_voltage_v <= 5:
            raise ConfigError(f"ArrayConfig.read_voltage_v = {self.read_voltage_v!r} is invalid;"
                             " allowed: (0, 5] volts")

    @property
    def weight_cols(self) -> int:
        """Weight columns per array (one fewer in the offset scheme: the reference)."""
        return self.cols - 1 if self.weight_mapping == "offset" else self.cols


@dataclass(frozen=True)
class DACConfig:
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

    input_bits: int = 8
    bits_per_read: int = 1

    def __post_init__(self) -> None:
        _check_int("DACConfig", "input_bits", self.input_bits, 1, 16)
        _check_int("DACConfig", "bits_per_read", self.bits_per_read, 1, self.input_bits,
                   " (at most input_bits)")

    @property
    def n_slices(self) -> int:
        """Array reads per input pass."""
        return -(-self.input_bits // self.bits_per_read)


@dataclass(frozen=True)
class ADCConfig:
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
    """

    bits: int = 8
    range_mode: str = "calibrated"
    cols_per_adc: int = 8

    def __post_init__(self) -> None:
        _check_int("ADCConfig", "bits", self.bits, 1, 16)
        if self.range_mode not in ADC_RANGES:
            raise ConfigError(f"ADCConfig.range_mode = {self.range_mode!r} is invalid; "
                             f"allowed: one of {ADC_RANGES}")
        _check_int("ADCConfig", "cols_per_adc", self.cols_per_adc, 1, 65536)


@dataclass(frozen=True)
class XbarConfig:
    """The analog array and its converters."""

    array: ArrayConfig = field(default_factory=ArrayConfig)
    dac: DACConfig = field(default_factory=DACConfig)
    adc: ADCConfig = field(default_factory=ADCConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"array": asdict(self.array), "dac": asdict(self.dac), "adc": asdict(self.adc)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str = "hardware config") -> "XbarConfig":
        """Build from ``{"array": {...}, "dac": {...}, "adc": {...}}``; other keys ignored."""
        parts: dict[str, Any] = {}
        for section, klass in (("array", ArrayConfig), ("dac", DACConfig), ("adc", ADCConfig)):
            values = dict(doc.get(section, {}))
            known = {f.name for f in fields(klass)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ConfigError(f"{where}: unknown field(s) {unknown} in [{section}]; valid "
                                 f"fields: {sorted(known)}")
            parts[section] = klass(**values)
        return cls(**parts)

    @classmethod
    def from_toml(cls, path: str | Path) -> "XbarConfig":
        return cls.from_dict(read_toml(path), str(path))

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


HARDWARE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # 128 x 128 differential arrays, 8-bit bit-serial DAC, 8-bit calibrated ADC.
    "default": {},
    # One cell per signed weight against a reference column: the mapping of a multi-level
    # cell used alone (DAC 2020's 10-level student), everything else as "default".
    "one-cell": {"array": {"weight_mapping": "offset"}},
}


def hardware_document(spec: str | Path | None) -> tuple[dict[str, Any], str]:
    """The sections of a hardware preset name or TOML file, and a label for messages."""
    if spec is None:
        return {}, "default"
    if str(spec) in HARDWARE_PRESETS:
        return HARDWARE_PRESETS[str(spec)], str(spec)
    if not str(spec).endswith(".toml") and not Path(spec).exists():
        raise ConfigError(f"--hw {str(spec)!r} is neither a hardware preset "
                         f"({', '.join(HARDWARE_PRESETS)}) nor an existing .toml file")
    return read_toml(spec), str(spec)


def resolve_xbar_config(spec: str | Path | None) -> XbarConfig:
    """XbarConfig from a hardware preset name, a TOML file, or None (the defaults)."""
    doc, label = hardware_document(spec)
    return XbarConfig.from_dict(doc, label)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file with a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"hardware file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
