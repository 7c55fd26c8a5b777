"""One sweep per results file: a lock file beside it, holding the owner's pid and host.

``exclusive(out)`` takes an OS lock (``flock``) on ``OUT.lock`` and writes ``pid host`` into
it; it removes the lock file when the run ends, however it ends short of a kill. A lock file
left by a killed run is recognised by its pid (that process no longer exists on this host):
it is taken over, and so are the temporary files the killed run left beside the results
file, and the run says so. A lock held by a live process is refused naming that process.
Where the file system has no locks (some network file systems) or Python has no ``fcntl``
(Windows), the pid in the file alone decides.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path
from typing import Iterator

from xbar.errors import ConfigError, OutputError
from xbar.files import temp_files

__all__ = ["exclusive", "lock_path"]

_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def lock_path(out: str | Path) -> Path:
    """The lock file of the results file ``out``."""
    return Path(f"{out}.lock")


def _holder(lock: Path) -> tuple[int, str] | None:
    """(pid, host) written in a lock file; None when unreadable or empty."""
    try:
        pid, host = lock.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int, host: str) -> bool | None:
    """Whether process ``pid`` runs; None when it is on another host (cannot tell)."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return None
    return True


def _busy(out: Path, lock: Path, holder: tuple[int, str] | None) -> ConfigError:
    who = f"process {holder[0]} on {holder[1]}" if holder else "another process"
    return ConfigError(f"another sweep ({who}) is writing {out}: its lock file {lock} is held; "
                       "wait for it to finish, or write elsewhere (run_sweep(out=...))")


def _own(lock: Path, fd: int) -> bool:
    """Whether ``fd`` is still the file at ``lock`` (a releasing owner may have removed it)."""
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def exclusive(out: str | Path) -> Iterator[list[str]]:
    """Hold the lock of results file ``out`` for the body; yields notes for the user (a stale
    lock or temporary files taken over).

    Raises:
        ConfigError: Another live process holds the lock (names its pid and host).
    """
    try:
        import fcntl
    except ImportError:  # Windows: the pid in the file decides
        fcntl = None  # type: ignore[assignment]
    out = Path(out)
    lock = lock_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    me = (os.getpid(), socket.gethostname())
    notes: list[str] = []
    broken = False
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"results file {str(out)!r}: cannot create its lock beside it "
                              f"({exc.strerror or exc}); choose a writable directory"
                              ) from None
        holder = _holder(lock)
        try:
            if fcntl is None:
                raise OSError(errno.ENOLCK, "no fcntl")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:  # held by a live file description
                stale = holder and _alive(*holder) is False and not broken
                if stale and _own(lock, fd):
                    # Its owner died; a leftover child process still has the file open.
                    lock.unlink(missing_ok=True)
                os.close(fd)
                if stale:
                    broken = True
                    notes.append(f"removed the lock file {lock} of process {holder[0]}, which "
                                 "is no longer running (a leftover worker of it kept the lock)")
                    continue
                raise _busy(out, lock, holder) from None
            # No locks on this file system: the pid alone decides.
            if holder and holder != me and _alive(*holder) is not False:
                os.close(fd)
                raise _busy(out, lock, holder) from None
        if not _own(lock, fd):  # removed by its releasing owner meanwhile: lock the new one
            os.close(fd)
            continue
        break
    try:
        if holder and holder != me:
            notes.append(f"took over the stale lock file {lock} of process {holder[0]} on "
                         f"{holder[1]}, which is no longer running")
        os.ftruncate(fd, 0)
        os.write(fd, f"{me[0]} {me[1]}\n".encode())
        temps = temp_files(out)  # the lock's holder owns every one of them
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        if temps:
            notes.append(f"removed {len(temps)} temporary file(s) an interrupted run left "
                         f"beside {out}")
        yield notes
    finally:
        if _own(lock, fd):
            lock.unlink(missing_ok=True)
        os.close(fd)  # releases the flock
