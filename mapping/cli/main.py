"""The ``xbar`` command line.

Each subcommand lives in its own module under :mod:`xbar.mapping.cli`, with its formatting,
and exposes ``COMMANDS`` (its command names and one-line help) and ``register(subparsers)``,
which adds its parsers and sets ``func`` (called with the parsed arguments, returning an exit
code). Modules are discovered, so adding a command touches no other file. A command module
imports at its top only what its name and help need; torch, Numba and the recovery plug-ins
load when its ``register`` (for the command being run) or ``run`` does, so ``xbar --help``
lists the commands, and ``xbar --version`` prints :data:`xbar.__version__`, without loading
them.

Exit status: 0 success; 2 a user error (an :class:`~xbar.errors.XbarError`, an unreadable or
unwritable path, a bad option), printed as one line; 1 anything else, which is a bug in
xbar-sim: its traceback is printed with a line saying so. The library's errors name
parameters (``AdaptConfig.steps``, ``ProgrammingConfig.max_pulses``); a command sets
``flags`` (parameter -> option) and the line adds the option that set each one
(:func:`xbar.mapping.cli.common.with_flags`).

One vocabulary: an option means the same in every command (``--batch`` the inputs run
together, ``--adapt-batch`` the adaptation batch, ``--sram-ratio`` the SRAM fraction,
``--hw PRESET|FILE``, ``--device`` with one default), and its default is the settings
dataclass's. Old spellings still work and print one warning line
(:func:`xbar.mapping.cli.common.add_deprecated`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

import xbar.mapping.cli
from xbar import __version__
from xbar.errors import XbarError
from xbar.files import written_files
from xbar.mapping.cli.common import command_flags, with_flags
from xbar.threads import configure_threads


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``xbar`` parser. With ``argv``, only the command it names gets its options (the
    others their name and help, enough for ``xbar --help`` and for refusing an unknown
    command); without, every command gets them."""
    parser = argparse.ArgumentParser(
        prog="xbar",
        description="xbar-sim: accuracy, cycle-level latency and programming cost of neural "
                    "networks on RRAM (1T1R) crossbars.")
    parser.add_argument("--version", action="version", version=f"xbar-sim {__version__}",
                        help="print the xbar-sim version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for info in sorted(pkgutil.iter_modules(xbar.mapping.cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"xbar.mapping.cli.{info.name}")
        commands: dict[str, str] = getattr(module, "COMMANDS", {})
        if not commands:  # a helper module (common)
            continue
        if wanted is None or wanted in commands:
            module.register(sub)
        else:
            for name, text in commands.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


_NEGATIVE_LIST = re.compile(r"-\.?\d[\w.+-]*,[\w.,+-]*")


def _negative_lists_joined(argv: Sequence[str]) -> list[str]:
    """``--option -1,8,8`` as ``--option=-1,8,8``: argparse takes a word that starts with a
    dash and is not a plain negative number for an option, and would refuse the option as
    missing its value; joined, the option's own check says what is wrong with the value."""
    out: list[str] = []
    for word in argv:
        if (out and out[-1].startswith("--") and "=" not in out[-1]
                and _NEGATIVE_LIST.fullmatch(word)):
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
    return out


def _terminated_message(command: str, written: Sequence[object]) -> str:
    """What SIGTERM left: nothing written, or the files written (each whole) before it."""
    if not written:
        return (f"xbar {command}: terminated before writing any output; nothing half-written "
                "was left")
    names = list(dict.fromkeys(str(p) for p in written))
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (f"xbar {command}: terminated after writing {shown}: each is complete (a file "
            "and the plots beside it are replaced together); the run's other outputs were "
            "not written")


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writers clean up (see :func:`main`)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The option strings of ``xbar COMMAND`` (``--hw``, ``--device`` ...)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 user error, 1 bug, 143 SIGTERM).

    SIGTERM is turned into an exception in the main thread, so that an atomic write in
    progress removes its temporary file and a sweep releases its lock before the process
    ends (SIGKILL cannot be caught: a sweep's next run takes over what it leaves).
    """
    argv = _negative_lists_joined(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_threads()
    first_write = len(written_files())
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except _Terminated:
        print(_terminated_message(args.command, written_files()[first_write:]),
              file=sys.stderr)
        return 143
    except (XbarError, OSError) as exc:
        flags = command_flags(args, _options(parser, args.command))
        print(f"xbar {args.command}: error: {with_flags(str(exc), flags)}", file=sys.stderr)
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
