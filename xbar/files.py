"""File helpers shared by every writer: atomic writes, writability checks, file kinds.

Every result, chip, device or cache file is written through :func:`write_atomically` (or,
for a results file and its plots, :func:`write_together`), so a crash or a kill mid-write
leaves the earlier files untouched and no partial file behind; the hidden temporary file a
SIGKILL leaves (``.NAME.PID@HOST.XXXXXXXX.tmp``) is removed by the next write beside it.
Commands call :func:`check_writable` on each output path before any work (it creates and
removes a file there), so an unwritable path fails in a second, not after an hour of
simulation; :func:`check_overwrite` refuses to replace an HDF5 file written by another kind
of writer (a sweep's results by a chip, say).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

from xbar import __version__
from xbar.errors import FileFormatError, MissingFileError, OutputError, XbarError

__all__ = ["STALE_TEMP_S", "check_distinct", "check_overwrite", "check_writable", "hdf5_kind",
           "hdf5_scalar", "open_hdf5", "package_version", "remove_stale_temps", "stamp_hdf5",
           "temp_files", "write_atomically", "write_json", "write_pngs", "write_together",
           "write_with_pngs", "written_files"]


def package_version() -> str:
    """The xbar-sim version (:data:`xbar.__version__`, also when run from a checkout)."""
    return __version__


#: A temporary file whose name does not say which process writes it (an older xbar-sim's,
#: or one from another host) is left alone until it has not changed for this long.
STALE_TEMP_S = 3600.0

_WRITTEN: list[Path] = []  # every file this process moved into place, in order
_RANDOM = "[a-z0-9_]{8}"  # tempfile.mkstemp's random part


def _host_tag() -> str:
    """This host's name as it goes into a temporary file's name (letters, digits, -, _)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "host"


def _temp_prefix(path: Path) -> str:
    """``.NAME.PID@HOST.``: hidden, beside ``path``, naming the process that writes it."""
    return f".{path.name}.{os.getpid()}@{_host_tag()}."


def temp_files(path: str | Path) -> list[Path]:
    """Temporary files of :func:`write_atomically` (any process, any version) for ``path``:
    the hidden ``.NAME.*.tmp`` beside it."""
    path = Path(path)
    pattern = f".{glob.escape(path.name)}.*.tmp"
    return sorted(p for p in path.parent.glob(pattern) if p.is_file())


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process, or no way to tell: keep its file
        return False
    return False


def _is_stale(tmp: Path, path: Path) -> bool:
    """Whether temporary file ``tmp`` of ``path`` was left by a writer that is gone: its name
    names a process of this host that no longer runs, or (older naming, another host) it
    has not changed for :data:`STALE_TEMP_S`."""
    rest = tmp.name[len(path.name) + 2:-len(".tmp")]
    m = re.fullmatch(rf"(\d+)@([A-Za-z0-9_-]+)\.{_RANDOM}", rest)
    if m and m.group(2) == _host_tag():
        return int(m.group(1)) != os.getpid() and _process_gone(int(m.group(1)))
    try:
        return time.time() - tmp.stat().st_mtime > STALE_TEMP_S
    except OSError:
        return False


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary files a killed writer left beside ``path`` (see
    :func:`_is_stale`; a live writer's file is kept); returns those removed."""
    path = Path(path)
    removed = []
    for tmp in temp_files(path):
        if _is_stale(tmp, path):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def written_files() -> tuple[Path, ...]:
    """Every file :func:`write_atomically` or :func:`write_together` moved into place in this
    process, in order (the command line names them when it is terminated)."""
    return tuple(_WRITTEN)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait until the body is done (main thread only; elsewhere Python
    delivers no signal anyway), so that a group of files is replaced all or not at all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, Any]] = []
    # (a handler installed outside Python reads as None and cannot be put back: left alone)
    held = [s for s in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(s) is not None]
    previous = {s: signal.signal(s, lambda signum, frame: pending.append((signum, frame)))
                for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum, frame in pending[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def write_together(writes: Mapping[str | Path, Callable[[str], Any]]) -> list[Path]:
    """Write several files as one: each ``write(tmp_path)`` fills a temporary file beside its
    path, then all are moved into place in one step that SIGTERM and Ctrl-C do not split.

    A failure or a signal while the temporary files are written leaves every earlier file
    untouched and removes the temporary files; temporary files a killed run left beside
    these paths are removed first (:func:`remove_stale_temps`). Returns the paths written.

    Raises:
        OutputError: A temporary file cannot be created or moved into place (naming the
            path, not the temporary file).
    """
    paths = [Path(p) for p in writes]
    temps: dict[Path, str] = {}
    try:
        for path, write in zip(paths, writes.values()):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temps(path)
                fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp",
                                           dir=path.parent)
            except OSError as exc:
                raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}"
                                  ) from None
            os.close(fd)
            temps[path] = tmp
            try:
                write(tmp)
            except OSError as exc:  # disk full, quota ...: name the path, not the temporary
                raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}"
                                  ) from None
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results should be readable
        with _signals_held():
            for path, tmp in temps.items():
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}"
                                      ) from None
                _WRITTEN.append(path)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
    return paths


def write_atomically(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then move the file onto ``path`` in one step.

    A crash mid-write leaves any earlier file at ``path`` untouched and removes the temporary
    file; one that a killed run left is removed on the next write (:func:`write_together`).
    """
    write_together({path: write})


def write_json(path: str | Path, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    """``obj`` as indented JSON at ``path``, atomically (:func:`write_atomically`);
    ``default`` as :func:`json.dumps`' (None: an object JSON cannot hold is an error)."""
    import json
    text = json.dumps(obj, indent=1, default=default)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Refuse, before any work, an output path that cannot be written.

    Checks that the path is not a directory and that a file can be created and removed in
    its directory (a directory in the nearest existing parent, when its directory does not
    exist yet): permission bits alone do not tell, on special or read-only file systems or
    for root. An existing file must be writable (a read-only file is not replaced).

    Raises:
        OutputError: naming the option ``what``, the path and why (never the probe's name).
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
    try:
        if probe == parent:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=parent)
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):  # a sweep's lock holder took it
                os.unlink(tmp)
        else:  # the directories write_atomically would create
            os.rmdir(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=probe))
    except OSError as exc:
        kind = "file" if probe == parent else "directory"
        raise OutputError(f"{what} {str(path)!r}: cannot create a {kind} in {str(probe)!r} "
                          f"({exc.strerror or exc}); choose a writable directory") from None
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


def _png_writes(path: Path, images: dict[str, bytes]) -> dict[Path, Callable[[str], Any]]:
    return {path.with_name(f"{path.stem}-{name}.png"):
            (lambda tmp, d=data: Path(tmp).write_bytes(d)) for name, data in images.items()}


def write_pngs(path: str | Path, images: dict[str, bytes]) -> list[Path]:
    """Write each ``name: PNG bytes`` beside ``path`` as ``<stem>-<name>.png``, atomically
    and all together (:func:`write_together`); returns the paths written."""
    return write_together(_png_writes(Path(path), images))


def write_with_pngs(path: str | Path, write: Callable[[str], Any], images: dict[str, bytes]
                    ) -> list[Path]:
    """A results file (``write(tmp_path)``) and its plots beside it (:func:`write_pngs`), as
    one :func:`write_together`: a kill or a failure leaves the old file and the old plots, or
    the new ones, never a mix. Returns the PNG paths."""
    path = Path(path)
    pngs = _png_writes(path, images)
    write_together({path: write, **pngs})
    return list(pngs)
