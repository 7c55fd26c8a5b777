"""The ``xbar`` command line.

Each subcommand lives in its own module under :mod:`xbar.mapping.cli`, with its formatting,
and exposes ``register(subparsers)``, which adds its parser and sets ``func`` (called with the
parsed arguments, returning an exit code). Modules are discovered, so adding a command touches
no other file.

Exit status: 0 success; 2 a user error (an :class:`~xbar.errors.XbarError`, an unreadable or
unwritable path, a bad option), printed as one line; 1 anything else, which is a bug in
xbar-sim: its traceback is printed with a line saying so.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading

import traceback

import xbar.mapping.cli
from xbar.errors import XbarError
from xbar.threads import configure_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xbar",
        description="xbar-sim: accuracy, cycle-level latency and programming cost of neural "
                    "networks on RRAM (1T1R) crossbars.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(xbar.mapping.cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"xbar.mapping.cli.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writers clean up (see :func:`main`)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 user error, 1 bug, 143 SIGTERM).

    SIGTERM is turned into an exception in the main thread, so that an atomic write in
    progress removes its temporary file and a sweep releases its lock before the process
    ends (SIGKILL cannot be caught: a sweep's next run takes over what it leaves).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_threads()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except _Terminated:
        print(f"xbar {args.command}: terminated; nothing half-written was left", file=sys.stderr)
        return 143
    except (XbarError, OSError) as exc:
        print(f"xbar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbar {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"xbar {args.command}: internal error: this is a bug in xbar-sim, not a problem "
              "with your input; please report it with the traceback above", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
