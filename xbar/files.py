"""File helpers shared by every writer: atomic writes, writability checks, file kinds.

Every result, chip, device or cache file is written through :func:`write_atomically`, so a
crash or a kill mid-write leaves the earlier file untouched and no partial file behind.
Commands call :func:`check_writable` on each output path before any work, so an unwritable
path fails in a second, not after an hour of simulation; :func:`check_overwrite` refuses to
replace an HDF5 file written by another kind of writer (a sweep's results by a chip, say).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from xbar.errors import OutputError

__all__ = ["check_distinct", "check_overwrite", "check_writable", "hdf5_kind",
           "package_version", "write_atomically"]


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
