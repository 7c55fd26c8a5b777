"""A lifetime run's progress kept beside its output, so that a rerun resumes.

:func:`xbar.mapping.recovery.lifetime.lifetime` works in units: one method on one chip (its
accuracy at programming, at every age with and without a refresh, and its refresh schedule
to the horizon). With a :class:`LifetimeProgress`, each unit is written as it finishes to
``<out>.partial/progress.json`` (atomically: a kill mid-write leaves the previous state), and
the KD student, once distilled, to ``<out>.partial/student.pt``. A rerun with the same inputs
reads them and computes only what is missing; its result is the uninterrupted run's, value
for value (every unit draws from its own seeds, and JSON keeps floats exactly). The folder
is removed once the results file is written.

The inputs are fingerprinted: the teacher's weights, the data set (name and contents, test
images used), the device (every field), the hardware (every section), the write-verify loop
R-V-W uses, and the settings. Progress of other inputs is refused with an error naming the
folder, never mixed in or silently discarded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from xbar.errors import ConfigError, FileFormatError
from xbar.files import write_atomically, write_json

PROGRESS_VERSION = 1
"""Version of ``progress.json``; a folder of another version is refused."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def lifetime_fingerprint(teacher: nn.Module, dataset: Any, device_file: Any, hw: Any,
                         settings: Any, n_test: int) -> str:
    """24 hex digits over everything a lifetime run's numbers depend on (module docstring)."""
    h = hashlib.sha256()
    for name, t in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    wv = device_file.write_verify
    doc = {"dataset": dataset.fingerprint, "n_test": int(n_test),
           "device": device_file.device.to_dict(), "hardware": hw.to_dict(),
           "write_verify": wv.to_dict() if wv is not None else None,
           "settings": dataclasses.asdict(settings), "version": PROGRESS_VERSION}
    h.update(json.dumps(doc, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


class LifetimeProgress:
    """The progress folder of one lifetime run (module docstring).

    Args:
        folder: ``<out>.partial`` beside the results file (:meth:`beside`).
        fingerprint: :func:`lifetime_fingerprint` of this run's inputs.

    Raises:
        ConfigError: The folder holds progress of other inputs (it names the folder and
            what to do).
        FileFormatError: ``progress.json`` is not a progress file of this version.
    """

    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.units: dict[str, dict[str, Any]] = {}
        path = self.folder / "progress.json"
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
                version, found, units = doc["version"], doc["fingerprint"], doc["units"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise FileFormatError(f"{path}: not a lifetime progress file ({exc}); delete "
                                      f"the folder {self.folder} to start over") from None
            if version != PROGRESS_VERSION:
                raise FileFormatError(f"{path}: progress version {version!r}; allowed: "
                                      f"{PROGRESS_VERSION} (delete the folder to start over)")
            if found != fingerprint:
                raise ConfigError(
                    f"{self.folder} holds the progress of a lifetime run with other inputs "
                    f"(fingerprint {found}, this run {fingerprint}: another model, data set, "
                    "device, hardware or setting); rerun with those inputs to finish it, or "
                    "delete the folder (or choose another --out) to start this one")
            self.units = dict(units)

    @classmethod
    def beside(cls, out: str | Path, fingerprint: str) -> "LifetimeProgress":
        out = Path(out)
        return cls(out.with_name(out.name + ".partial"), fingerprint)

    @property
    def started(self) -> bool:
        """Whether an earlier run left anything to resume from (a unit or the student)."""
        return bool(self.units) or (self.folder / "student.pt").is_file()

    def unit(self, key: str) -> dict[str, Any] | None:
        """A finished unit's values, or None."""
        return self.units.get(key)

    def save_unit(self, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Keep a finished unit; returns its values as a resumed run will read them back
        (through JSON: lists for tuples, Python numbers), for this run to go on with."""
        values = json.loads(json.dumps(values, default=_json_default))
        self.units[key] = values
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "progress.json",
                   {"version": PROGRESS_VERSION, "fingerprint": self.fingerprint,
                    "units": self.units}, default=_json_default)
        return values

    def student(self, template: nn.Module) -> nn.Module | None:
        """The distilled student saved by an earlier run, loaded into ``template`` (the
        BN-folded teacher, the student's architecture), or None."""
        import torch

        path = self.folder / "student.pt"
        if not path.is_file():
            return None
        template.load_state_dict(torch.load(path, weights_only=True))
        return template.eval()

    def save_student(self, student: nn.Module) -> None:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / "student.pt",
                         lambda tmp: torch.save(student.state_dict(), tmp))

    def remove(self) -> None:
        """Delete the folder (the results file holds everything now)."""
        shutil.rmtree(self.folder, ignore_errors=True)
