"""``xbar device list|show|fit``: the device presets, one device, or a device fitted to
measured programming data.

    xbar device list [--json]
    xbar device show PRESET|FILE [--json]
    xbar device fit --data FILE --format radar --out DEVICE.h5 [--json] [--seed N]

``list`` prints every preset with its key figures, the weight mapping its source fixes (and
so the hardware used without ``--hw``) and its source; ``show`` the same for one preset or
device file (``.h5`` or ``.toml``). ``fit`` reads a write-verify measurement (``radar``:
the RADAR release's TSV format, see :mod:`xbar.devices.radar`), fits the write-verify loop's
parameters per level, writes a device file holding the device (levels and measured
programming variation), the write-verify parameters and the measured and simulated per-level
statistics, and prints measured against simulated statistics per level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xbar.errors import ConfigError
from xbar.mapping.cli.common import check_output, dumps_json, seed_arg

COMMANDS = {"device": "device presets and files: list, show one, fit one to measured data"}
FORMATS = ("radar",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("device", help=COMMANDS["device"],
                       description="List the device presets, describe one preset or device "
                                   "file, or fit a device model to measured data.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="every device preset: key figures, weight mapping, "
                                         "source",
                            description="List the device presets with their key figures, the "
                                        "weight mapping their source fixes and their source.")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list, device=None)
    show = actions.add_parser("show", help="one preset or device file (.h5, .toml)",
                              description="Describe one device preset or device file: key "
                                          "figures, weight mapping and source.")
    show.add_argument("device", metavar="PRESET|FILE",
                      help="a preset name (`xbar device list`) or a .h5/.toml device file")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_list)
    f = actions.add_parser(
        "fit", help="fit a device and its write-verify model to a write-verify measurement",
        description="Fit the write-verify (read-verify-write) programming model to measured "
                    "per-cell pulse counts, per level, so that the simulated mean, median and "
                    "90th percentile of pulses and the success rate match the data; write a "
                    "device file and print measured against simulated statistics.")
    f.add_argument("--data", required=True, metavar="FILE", help="the measurement file")
    f.add_argument("--format", default="radar", metavar="FORMAT",
                   help=f"format of the data file: {', '.join(FORMATS)} (default radar: "
                        "tab-separated per-cell rows of the RADAR data release)")
    f.add_argument("--out", required=True, metavar="DEVICE.h5",
                   help="device file to write (HDF5, written atomically)")
    f.add_argument("--seed", type=seed_arg, default=0, metavar="N",
                   help="seed of the fit's simulations (0 to 2**32 - 1; default 0)")
    f.add_argument("--name", metavar="NAME", help="device name (default: the data file's stem)")
    f.add_argument("--json", action="store_true",
                   help="print the comparison as JSON (levels: measured and simulated per level)")
    f.set_defaults(func=run_fit)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_list(args: argparse.Namespace) -> int:
    """``list`` (``args.device`` None) or ``show`` one device."""
    from xbar.devices import PRESETS, preset, resolve_device
    from xbar.devices.presets import implied_hardware

    devs = ([resolve_device(args.device)] if args.device is not None
            else [preset(n) for n in PRESETS])
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


def run_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from xbar.devices.files import FORMAT as DEVICE_FORMAT, save_device
    from xbar.devices.fit import fit_radar

    if args.format not in FORMATS:
        raise ConfigError(f"unknown --format {args.format!r}; supported formats: "
                         f"{', '.join(FORMATS)}")
    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"--out {args.out!r} must end in .h5 or .hdf5 (an HDF5 device file)")
    check_output(out, "--out", DEVICE_FORMAT)
    fit = fit_radar(args.data, seed=args.seed, name=args.name)
    by_dev = sorted(zip(fit.levels, fit.simulated), key=lambda p: p[0].device_level)
    measured: dict[str, np.ndarray] = {}
    for key in ("n_cells", "mean_pulses", "median_pulses", "p90_pulses", "success_rate",
                "g_mean_us", "g_std_us"):
        measured[key] = np.array([getattr(lv.measured, key) for lv, _ in by_dev], float)
        measured[f"simulated_{key}"] = np.array([getattr(s, key) for _, s in by_dev], float)
    measured["window_r_lo_ohm"] = np.array([lv.r_lo_ohm for lv, _ in by_dev])
    measured["window_r_hi_ohm"] = np.array([lv.r_hi_ohm for lv, _ in by_dev])
    provenance = {"data": str(Path(args.data).resolve()), "format": args.format,
                  "fit": "per-level Nelder-Mead after a coarse grid (xbar.devices.fit.fit_radar)",
                  "seed": str(args.seed), "n_fit_cells": str(fit.n_fit_cells),
                  "source": "Le, Levy et al., RADAR, IEEE TED 2021, doi 10.1109/TED.2021.3097975",
                  "per_level_order": "ascending conductance (device levels)"}
    save_device(fit.device, out, provenance=provenance, measured=measured,
                write_verify=fit.write_verify)
    if args.json:
        print(dumps_json({**fit.to_json(), "out": str(out)}))
        return 0
    print(f"{Path(args.data).name}: {len(fit.levels)} levels, "
          f"{sum(lv.measured.n_cells for lv in fit.levels)} cells; fit in {fit.seconds:.1f} s "
          f"(seed {fit.seed}); simulated with {fit.simulated[0].n_cells} cells per level")
    print(fit.table())
    print(f"wrote {out}  (device {fit.device.name!r}: {fit.device.summary()})")
    return 0
