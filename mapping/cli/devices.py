"""``xbar devices [FILE]``: the old spelling of ``xbar device list`` (``xbar device show
FILE`` with a file); it still works and prints one warning line naming the new one."""

from __future__ import annotations

import argparse

from xbar.mapping.cli.common import warn_deprecated

COMMANDS = {"devices": "deprecated alias of `xbar device list` / `xbar device show FILE`"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help=COMMANDS["devices"],
                       description="Deprecated: use `xbar device list`, or `xbar device show "
                                   "FILE` for one device file.")
    p.add_argument("file", nargs="?", help="a .h5 or .toml device file to describe")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xbar.mapping.cli.device import run_list

    warn_deprecated("xbar devices" + (" FILE" if args.file else ""),
                    "xbar device show FILE" if args.file else "xbar device list")
    return run_list(argparse.Namespace(device=args.file, json=args.json))
