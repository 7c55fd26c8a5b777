"""Option types and checks shared by the commands: seeds, counts, ``--methods``, output paths,
JSON output without bare ``NaN``, the options every command spells alike (``--device``,
``--hw``, ``--backend``, ``--model``), old spellings kept as deprecated aliases, and the flag
behind a library parameter named in an error (``--option`` is :mod:`xbar.mapping.cli.options`).

Not a command (no ``COMMANDS``): :mod:`xbar.mapping.cli.main` skips it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from xbar.errors import ConfigError, OutputError
from xbar.files import check_overwrite, check_writable, hdf5_kind

#: Seeds are integers 0 <= seed <= SEED_MAX (2**32 - 1): what numpy's legacy seeding, torch's
#: ``manual_seed`` and ``SeedSequence`` all accept, with room for the small offsets the
#: commands add (chip c of a run uses seed + c).
SEED_MAX = 2**32 - 1


def integer_arg(text: str, what: str) -> int:
    """``text`` as an integer; "1e8" and "2.5e3" (whole numbers in e-notation) are accepted."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {what}"
                                         ) from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; allowed: {what}")
    return int(value)


def seed_arg(text: str) -> int:
    """argparse type of ``--seed`` and ``--teacher-seed``: an integer in [0, SEED_MAX]."""
    allowed = f"an integer 0 <= seed <= {SEED_MAX} (2**32 - 1)"
    value = integer_arg(text, allowed)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: {allowed}")
    return value


def count_arg(text: str) -> int:
    """argparse type of a size or count (``--batch``, ``--chips`` ...): an integer, also in
    e-notation ("1e8"); the command checks its range."""
    return integer_arg(text, "a whole number such as 1000 or 1e3")


def parse_methods(text: str, allowed: Sequence[str], option: str = "--methods"
                  ) -> tuple[str, ...]:
    """A comma-separated list of recovery methods: no empty entry, no repeat, all known; or
    ``all`` alone, every method of ``allowed``.

    Raises:
        ConfigError: Naming the entry and listing the allowed methods.
    """
    valid = (f"a comma-separated list of distinct methods from {','.join(allowed)}, or all "
             "(alone)")
    if not text.strip():
        raise ConfigError(f"{option} is empty; allowed: {valid}")
    names = [m.strip() for m in text.split(",")]
    if names == ["all"]:
        return tuple(allowed)
    if "" in names:
        raise ConfigError(f"{option} {text!r} has an empty entry (entry {names.index('') + 1})"
                          f"; allowed: {valid}")
    if "all" in names:
        raise ConfigError(f"{option} {text!r}: 'all' names every method and cannot be combined "
                          f"with others; give all alone, or {valid.partition(', or')[0]}")
    unknown = [m for m in names if m not in allowed]
    if unknown:
        raise ConfigError(f"{option} {text!r}: unknown method {unknown[0]!r}; allowed: {valid}")
    repeated = sorted({m for m in names if names.count(m) > 1}, key=names.index)
    if repeated:
        raise ConfigError(f"{option} {text!r} names {repeated[0]!r} more than once; allowed: "
                          f"{valid}")
    return tuple(names)


def check_output(path: str | Path, option: str, kind: str) -> Path:
    """Before any work: ``path`` can be written and is not a file of another kind.

    ``kind`` is the ``format`` attribute the command writes (``"xbar-sim chip"`` ...); an
    existing file of that kind is replaced, anything else is refused.
    """
    out = check_writable(path, option)
    check_overwrite(out, kind, option)
    return out


def check_image_output(path: str | Path, option: str) -> Path:
    """Before any work: an image path can be written and is not an HDF5 file (results)."""
    out = check_writable(path, option)
    found = hdf5_kind(out)
    if found not in (None, "not HDF5"):
        desc = f"an HDF5 file of kind {found!r}" if found else "an HDF5 file"
        raise OutputError(f"{option} {str(path)!r} exists and is {desc}, not an image; "
                          "refusing to overwrite it: remove it or choose another path")
    return out


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) as None and numpy scalars and arrays
    as Python values, so that the JSON is standard (no bare ``NaN``/``Infinity``)."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps_json(obj: Any) -> str:
    """Standard JSON for ``--json``: NaN and infinities are written as ``null`` (a figure
    that could not be computed, e.g. a throughput of a single inference), never as the bare
    ``NaN``/``Infinity`` that strict JSON readers reject."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


HW_IMPLIED = ("; without --hw, the hardware the device implies (one-cell for a device "
              "whose source fixes one cell per weight: see `xbar device list`); a --hw must "
              "agree with a mapping the device fixes")
"""The end of every ``--hw`` help text that goes with ``--device``."""


def add_device_arg(p: Any, default: str | None = None) -> None:
    """``--device PRESET|FILE``, default :data:`xbar.devices.presets.DEFAULT_DEVICE` (the same
    for every command; ``default`` only for ``xbar demo``, whose device is its definition)."""
    from xbar.devices.presets import DEFAULT_DEVICE

    p.add_argument("--device", default=default or DEFAULT_DEVICE, metavar="PRESET|FILE",
                   help="device preset (`xbar device list`) or .h5/.toml device file "
                        f"(default %(default)s{'' if default else ', for every command'})")


def add_model_arg(p: Any, default: str | None = None, required: bool = False) -> None:
    """``--model NAME|FILE``: a zoo model (every name of :data:`xbar.mapping.data.zoo.MODELS`,
    listed in the help) or a whole module saved with ``torch.save``; without ``default`` the
    zoo's :data:`~xbar.mapping.data.zoo.DEFAULT_MODEL` (``required`` for ``xbar latency``,
    which has no default)."""
    from xbar.mapping.data.zoo import DEFAULT_MODEL, MODELS

    names = ", ".join(MODELS)
    if required:
        p.add_argument("--model", required=True, metavar="NAME|FILE",
                       help=f"a zoo model ({names}) or a file holding a whole nn.Module saved "
                            "with torch.save")
        return
    p.add_argument("--model", default=default or DEFAULT_MODEL, metavar="NAME|FILE",
                   help=f"zoo model ({names}) or a torch.save'd module (default %(default)s)")


def add_hw_arg(p: Any, default: str | None = None, implied: bool = True) -> None:
    """``--hw PRESET|FILE``: a hardware preset or TOML file, read by
    :func:`xbar.config.load_hardware` (every command that takes hardware takes both)."""
    p.add_argument("--hw", default=default, metavar="PRESET|FILE",
                   help="hardware preset (default = full-chip, one-cell, cell-by-cell) or TOML "
                        "file with any of the sections [array], [dac], [adc], [timing], "
                        "[programming], [adaptation], [energy], [area] (docs/parameters.md)"
                        + (HW_IMPLIED if implied else "; default: the built-in defaults"))


# ------------------------------------------------------------------ old spellings
def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works but is spelled ``new`` now."""
    print(f"xbar: warning: {old} is deprecated and will be removed; use {new}",
          file=sys.stderr)


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new option's destination (after the
    same type check) and prints one warning line naming the new spelling."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        warn_deprecated(option_string or self.option_strings[0], self.new)
        setattr(namespace, self.dest, values)


def add_deprecated(p: Any, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """``old`` as a hidden alias of the option ``new`` (destination ``dest``): it keeps
    working, with a warning; ``kwargs`` are the new option's ``type``/``metavar``."""
    p.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS,
                   default=argparse.SUPPRESS, **kwargs)


# ------------------------------------------------------------------ errors: parameter -> flag
# A settings field (``AdaptConfig.steps``) or a function's argument (``load_hardware(spec=``).
_PARAMETER = re.compile(r"\b([A-Z][A-Za-z0-9]*)\.([a-z_][a-z0-9_]*)\b"
                        r"|\b([a-z_][a-z0-9_]*)\(([a-z_][a-z0-9_]*)=")

ARGUMENT_FLAGS: dict[str, tuple[str, ...]] = {
    "--hw": ("load_hardware(spec)",),
    "--device": ("resolve_device(spec)", "resolve_device_file(spec)"),
    "--model": ("load_model_spec(spec)", "load_teacher(spec)"),
    "--dataset": ("load_teacher(dataset_name)", "load_dataset(name)"),
    "--data-dir": ("load_dataset(data_dir)", "load_mnist(data_dir)", "find_cifar10(data_dir)",
                   "load_cifar10(data_dir)"),
    "--input-shape": ("layer_specs(input_shape)", "load_model_spec(input_shape)"),
}
"""The library's function arguments that an option sets: a command that takes the option
adds them to its ``flags`` (:func:`command_flags`)."""


def hardware_flags() -> dict[str, str]:
    """``{"ArrayConfig.*": "--hw", ...}``: every section of a
    :class:`~xbar.config.HardwareConfig` comes from ``--hw``."""
    from xbar.config import HardwareConfig

    hw = HardwareConfig()
    return {f"{type(getattr(hw, f.name)).__name__}.*": "--hw"
            for f in dataclasses.fields(HardwareConfig)}


def command_flags(args: argparse.Namespace, options: Any = ()) -> dict[str, str]:
    """The parameter -> option table of a parsed command: its own ``flags``, and for each
    option it takes (``options``: its option strings) the function arguments that option
    sets (:data:`ARGUMENT_FLAGS`), every hardware section for ``--hw``."""
    flags = dict(getattr(args, "flags", {}))
    if "--hw" in options:  # every section of the hardware comes from --hw
        flags.update(hardware_flags())
    for option, names in ARGUMENT_FLAGS.items():
        if option in options:
            flags.update(dict.fromkeys(names, option))
    return flags


def with_flags(message: str, flags: dict[str, str]) -> str:
    """A library error as the command line says it: the library names parameters
    (``AdaptConfig.steps = 0 is invalid ...``, ``load_hardware(spec='x'): ...``), never flags;
    this appends the option that set each named parameter (``flags``: ``"Owner.field"``,
    ``"Owner.*"`` or ``"function(argument)"`` -> flag), unless the message names it already:
    ``(option --steps)``, or with several ``(options --hw for load_hardware(spec), --device
    for resolve_device(spec))``."""
    found: dict[str, str] = {}
    for m in _PARAMETER.finditer(message):
        if m[1]:
            name, flag = f"{m[1]}.{m[2]}", flags.get(f"{m[1]}.{m[2]}") or flags.get(f"{m[1]}.*")
        else:
            name = f"{m[3]}({m[4]})"
            flag = flags.get(name)
        if flag and flag not in found and not re.search(rf"{re.escape(flag)}\b", message):
            found[flag] = name
    if not found:
        return message
    if len(found) == 1:
        return f"{message} (option {next(iter(found))})"
    return f"{message} (options {', '.join(f'{f} for {n}' for f, n in found.items())})"


def name_options(text: str, flags: dict[str, str]) -> str:
    """A library's report line (not an error) as the command line says it: each settings
    field an option sets (``CompareSettings.sram_ratio``, exact names in ``flags``) replaced
    by that option (``--sram-ratio``)."""
    return _PARAMETER.sub(lambda m: flags.get(f"{m[1]}.{m[2]}", m[0]) if m[1] else m[0],
                          text)


def hardware_spec(device: Any, hw: str | None) -> tuple[str | None, str]:
    """The ``--hw`` to use and a label for it, for ``--device`` ``device`` (a preset name or
    device file as given, or a resolved :class:`~xbar.devices.Device`).

    ``--hw`` when given, unless its ``array.weight_mapping`` contradicts the mapping the
    device's source fixes (``Device.weight_mapping``: DAC 2020's cell maps one cell per
    weight), which is refused; else the hardware preset that mapping implies
    (:func:`xbar.devices.presets.implied_hardware`); else the defaults. The label says which,
    so the output never hides an implied mapping.

    Raises:
        ConfigError: ``--hw`` maps weights otherwise than the device fixes, naming both and
            how to resolve it (:func:`xbar.layout.check_device_mapping`).
    """
    from xbar.config import load_hardware
    from xbar.devices import Device, resolve_device
    from xbar.devices.presets import implied_hardware
    from xbar.layout import check_device_mapping

    dev = device if isinstance(device, Device) else resolve_device(device)
    name = dev.name if isinstance(device, Device) else device
    if hw is not None:
        check_device_mapping(dev, load_hardware(hw).xbar, f"--hw {hw}")
        return hw, hw
    if dev.weight_mapping:
        implied = implied_hardware(dev)
        return (None if implied == "default" else implied,
                f"{implied} (implied by --device {name}, whose source fixes weight_mapping "
                f"{dev.weight_mapping!r}; a --hw must agree)")
    return None, "default"


def add_backend_arg(p: Any, what: str = "where the MVMs run: ") -> None:
    """``--backend``: where the MVMs run (see :data:`xbar.backends.BACKENDS`); ``what`` starts
    the help text."""
    from xbar.backends import BACKENDS, DEFAULT_BACKEND

    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help=what + "cpu (the Numba kernel, the default: the same "
                   "figures on every machine), auto (CUDA when torch sees a GPU, else cpu), "
                   "cuda, or torch-cpu (the CUDA code path on the CPU, for checks)")
