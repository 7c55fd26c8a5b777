"""The ``xbar`` command line.

Each subcommand lives in its own module under :mod:`mapping.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code). Modules are discovered, so adding a command touches no
other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import mapping.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xbar",
        description="xbar-sim: accuracy, cycle-level latency and programming cost of neural "
                    "networks on RRAM (1T1R) crossbars.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(mapping.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mapping.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"xbar {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
