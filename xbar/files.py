"""File helpers shared by every writer: atomic writes, writability checks, file kinds.

Every result, chip, device or cache file is written through :func:`write_atomically`, so a
crash or a kill mid-write leaves the earlier file untouched and no partial file behind.
Commands call :func:`check_writable` on each output path before any work, so an unwritable
path fails in a second, not after an hour of simulation; :func:`check_overwrite` refuses to
replace an HDF5 file written by another kind of writer (a sweep's results by a chip, say).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from xbar.errors import FileFormatError, MissingFileError, OutputError, XbarError

__all__ = ["check_distinct", "check_overwrite", "check_writable", "hdf5_kind", "hdf5_scalar",
           "open_hdf5", "package_version", "stamp_hdf5", "write_atomically", "write_json",
           "write_pngs"]


def package_version() -> str:
    """The installed xbar-sim version, or "unknown" when run from a checkout."""
    try:
        from importlib.metadata import version
        return version("xbar-sim")
    except Exception:  # not installed (running from a checkout)
        return "unknown"


def write_atomically(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then move the file onto ``path`` in one step.

    A crash mid-write leaves any earlier file at ``path`` untouched and removes the temporary
    file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results should be readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    """``obj`` as indented JSON at ``path``, atomically (:func:`write_atomically`);
    ``default`` as :func:`json.dumps`' (None: an object JSON cannot hold is an error)."""
    import json
    text = json.dumps(obj, indent=1, default=default)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Refuse, before any work, an output path that cannot be written.

    Checks that the path is not a directory, that its nearest existing parent is a writable
    directory, and that an existing file is writable; creates nothing.

    Raises:
        OutputError: naming the option, the path and why.
    """
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise OutputError(f"{what} {str(path)!r} is not a file name")
    if path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{what} {str(path)!r}: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {str(path)!r}: directory {str(probe)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {str(path)!r} exists and is not writable")
    return path


def check_distinct(**paths: str | Path | None) -> None:
    """Refuse two outputs of one command that resolve to the same file."""
    seen: dict[Path, str] = {}
    for option, value in paths.items():
        if value is None:
            continue
        resolved = Path(value).expanduser().resolve()
        if resolved in seen:
            raise OutputError(f"{option} and {seen[resolved]} name the same file "
                              f"{str(value)!r}; give two different files")
        seen[resolved] = option


def hdf5_kind(path: str | Path) -> str | None:
    """The ``format`` attribute of an existing HDF5 file; "" for an HDF5 file without one,
    None when the file does not exist; "not HDF5" for any other existing file."""
    path = Path(path)
    if not path.exists():
        return None
    import h5py
    if not h5py.is_hdf5(path):
        return "not HDF5"
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("format", "")
    except OSError:
        return "not HDF5"
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def check_overwrite(path: str | Path, kind: str, what: str = "output") -> None:
    """Refuse to replace an existing file that is not an xbar-sim file of ``kind``.

    An existing file of the same kind is replaced (the command writes a new one); a file of
    another kind (a sweep's results under ``compare --out``, a chip under ``--save-chip``, or
    any non-HDF5 file) is refused so that no result is lost by a slip of the keyboard.
    """
    found = hdf5_kind(path)
    if found is None or found == kind:
        return
    desc = "a file that is not HDF5" if found == "not HDF5" else (
        f"an HDF5 file of kind {found!r}" if found else "an HDF5 file not written by xbar-sim")
    raise OutputError(f"{what} {str(path)!r} exists and is {desc}, not {kind!r}; refusing to "
                      "overwrite it: remove it or choose another path")


def hdf5_scalar(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes decoded, NumPy scalars unwrapped)."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def stamp_hdf5(f: Any, kind: str, version: int) -> None:
    """Write the attributes every xbar-sim HDF5 file starts with: ``format`` (its kind),
    ``format_version``, ``written_by`` and ``created_utc``."""
    import datetime as _dt

    f.attrs["format"] = kind
    f.attrs["format_version"] = version
    f.attrs["written_by"] = f"xbar-sim {package_version()}"
    f.attrs["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat()


@contextlib.contextmanager
def open_hdf5(path: str | Path, kind: str, max_version: int, what: str,
              hint: str) -> Iterator[Any]:
    """An xbar-sim HDF5 file of ``kind``, open for reading, after checking that it is a
    non-empty HDF5 file (not a directory) whose ``format`` is ``kind`` and whose
    ``format_version`` is an integer in [1, ``max_version``].

    HDF5 read failures inside the block (a truncated dataset, a missing object) become a
    :class:`FileFormatError` naming the file. ``what`` names the file kind in messages
    ("device file"), ``hint`` says what writes one ("written by --save-chip or Chip.save").

    Raises:
        MissingFileError: No such file.
        FileFormatError: Everything else that is wrong with it.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{what} {str(path)!r} is a directory; give an .h5 file {hint}")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path}: the file is empty (0 bytes); expected an xbar-sim "
                              f"{what} ({hint})")
    if not h5py.is_hdf5(path):
        raise FileFormatError(f"{path}: not an HDF5 file; expected an xbar-sim {what} ({hint})")
    try:
        with h5py.File(path, "r") as f:
            found = hdf5_scalar(f.attrs.get("format"))
            if found != kind:
                raise FileFormatError(f"{path}: not an xbar-sim {what} (attribute format = "
                                      f"{found!r}, expected {kind!r})")
            version = hdf5_scalar(f.attrs.get("format_version"))
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise FileFormatError(f"{path}: format_version = {version!r} is invalid; "
                                      f"allowed: an integer from 1 to {max_version} (the "
                                      "versions this xbar-sim reads)")
            if version > max_version:
                raise FileFormatError(f"{path}: {what} format_version {version} is newer than "
                                      f"this xbar-sim reads ({max_version}); upgrade xbar-sim")
            yield f
    except XbarError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise FileFormatError(f"{path}: cannot be read as an xbar-sim {what} (damaged or "
                              f"truncated?): {exc}") from None


def write_pngs(path: str | Path, images: dict[str, bytes]) -> list[Path]:
    """Write each ``name: PNG bytes`` beside ``path`` as ``<stem>-<name>.png``, atomically;
    returns the paths written."""
    path = Path(path)
    written = []
    for name, data in images.items():
        png = path.with_name(f"{path.stem}-{name}.png")
        write_atomically(png, lambda tmp, d=data: Path(tmp).write_bytes(d))
        written.append(png)
    return written
