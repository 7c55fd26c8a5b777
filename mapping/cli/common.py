"""Option types and checks shared by the commands: seeds, counts, ``--methods``, output paths,
and JSON output without bare ``NaN``.

Not a command (no ``register``): :mod:`xbar.mapping.cli.main` skips it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

from xbar.errors import ConfigError, OutputError
from xbar.files import check_overwrite, check_writable, hdf5_kind

#: Seeds are integers 0 <= seed <= SEED_MAX (2**32 - 1): what numpy's legacy seeding, torch's
#: ``manual_seed`` and ``SeedSequence`` all accept, with room for the small offsets the
#: commands add (chip c of a run uses seed + c).
SEED_MAX = 2**32 - 1


def _integer(text: str, what: str) -> int:
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
    value = _integer(text, allowed)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: {allowed}")
    return value


def count_arg(text: str) -> int:
    """argparse type of a size or count (``--batch``, ``--chips`` ...): an integer, also in
    e-notation ("1e8"); the command checks its range."""
    return _integer(text, "a whole number such as 1000 or 1e3")


def parse_methods(text: str, allowed: Sequence[str], option: str = "--methods"
                  ) -> tuple[str, ...]:
    """A comma-separated list of recovery methods: no empty entry, no repeat, all known.

    Raises:
        ConfigError: Naming the entry and listing the allowed methods.
    """
    valid = f"a comma-separated list of distinct methods from {','.join(allowed)}"
    if not text.strip():
        raise ConfigError(f"{option} is empty; allowed: {valid}")
    names = [m.strip() for m in text.split(",")]
    if "" in names:
        raise ConfigError(f"{option} {text!r} has an empty entry (entry {names.index('') + 1})"
                          f"; allowed: {valid}")
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


def hardware_spec(device: str, hw: str | None) -> tuple[str | None, str]:
    """The ``--hw`` to use and a label for it: ``--hw`` when given, else the hardware preset
    that a device preset's source implies (``xbar.devices.presets.preset_hardware``: DAC
    2020's cell maps one cell per weight), else the defaults. The label says which, so the
    output never hides an implied mapping."""
    from xbar.devices.presets import PRESETS, preset_hardware

    if hw is not None:
        return hw, hw
    if device in PRESETS:
        implied = preset_hardware(device)
        if implied != "default":
            return implied, f"{implied} (implied by --device {device}; --hw overrides)"
    return None, "default"


def add_backend_arg(p: Any) -> None:
    """``--backend``: where the MVMs run (see :data:`xbar.analog.BACKENDS`)."""
    from xbar.analog import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default="cpu",
                   help="where the MVMs run: cpu (the Numba kernel, the default: the same "
                   "figures on every machine), auto (CUDA when torch sees a GPU, else cpu), "
                   "cuda, or torch-cpu (the CUDA code path on the CPU, for checks)")
