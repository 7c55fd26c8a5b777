"""``xbar devices``: list the device presets with their key figures."""

from __future__ import annotations

import argparse

from xbar.devices import PRESETS, load_device_file, preset
from xbar.devices.presets import preset_hardware
from xbar.mapping.cli.common import dumps_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list device presets (or describe a device file)",
                       description="List the device presets with their key figures and sources,"
                                   " or describe one device file.")
    p.add_argument("file", nargs="?", help="a .h5 or .toml device file to describe")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    devs = [load_device_file(args.file).device] if args.file else [preset(n) for n in PRESETS]
    # The hardware preset a preset's paper fixes (used when --hw is not given); a file: none.
    hws = ["default"] if args.file else [preset_hardware(n) for n in PRESETS]
    if args.json:
        print(dumps_json([{**d.to_dict(), "hardware": hw} for d, hw in zip(devs, hws)]))
        return 0
    for d, hw in zip(devs, hws):
        print(f"{d.name:18s} {d.summary()}")
        print(f"{'':18s} R_on {d.r_on_ohm / 1e3:.3g} kOhm, R_off {d.r_off_ohm / 1e3:.4g} kOhm,"
              f" on/off {d.on_off_ratio:.3g}; hardware {hw}"
              f"{' (implied when --hw is not given)' if hw != 'default' else ''}; "
              f"source: {d.source}")
    return 0
