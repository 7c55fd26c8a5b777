"""``xbar devices``: list the device presets with their key figures."""

from __future__ import annotations

import argparse

from xbar.mapping.cli.common import dumps_json

COMMANDS = {"devices": "list device presets (or describe a device file)"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help=COMMANDS["devices"],
                       description="List the device presets with their key figures and sources,"
                                   " or describe one device file.")
    p.add_argument("file", nargs="?", help="a .h5 or .toml device file to describe")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xbar.devices import PRESETS, load_device_file, preset
    from xbar.devices.presets import implied_hardware

    devs = [load_device_file(args.file).device] if args.file else [preset(n) for n in PRESETS]
    if args.json:  # weight_mapping is a Device field; "hardware" the preset it implies
        print(dumps_json([{**d.to_dict(), "hardware": implied_hardware(d)} for d in devs]))
        return 0
    for d in devs:
        if d.weight_mapping:
            mapping = (f"weight mapping {d.weight_mapping}, fixed by its source (hardware "
                       f"{implied_hardware(d)} without --hw; a --hw must agree)")
        else:
            mapping = "weight mapping not fixed (hardware default without --hw)"
        print(f"{d.name:18s} {d.summary()}")
        print(f"{'':18s} R_on {d.r_on_ohm / 1e3:.3g} kOhm, R_off {d.r_off_ohm / 1e3:.4g} kOhm,"
              f" on/off {d.on_off_ratio:.3g}; {mapping}; source: {d.source}")
    return 0
