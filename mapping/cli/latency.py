"""``xbar latency``: cycle-level latency, throughput and utilisation of a mapped network, and
its energy, power and area (:mod:`xbar.timing.energy`).

A model is a zoo name (see ``xbar.mapping.data.zoo``) or a FILE holding a whole ``nn.Module``
saved with ``torch.save(model, FILE)``. Loading a file unpickles it, which runs code from the file:
only load files you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xbar.errors import ConfigError, ModelError
from xbar.mapping.cli.common import (add_hw_arg, add_model_arg, check_image_output, check_output,
                                     count_arg, dumps_json)

if TYPE_CHECKING:
    from xbar.config import TimingConfig, XbarConfig
    from xbar.timing import LatencyResult
    from xbar.timing.area import AreaReport
    from xbar.timing.energy import InferenceEnergy
    from xbar.timing.network import LayerSpec

COMMANDS = {"latency": "cycle-level latency and throughput of a network on crossbars"}

# Memory of the event engine per row event (the event, its callbacks and list slot) and per
# recorded tile burst (a tuple of four ints), from the peak RSS of lenet5 at --batch 1 and
# 3000 on CPython 3.11 / SimPy 4 (about 51 kB per inference, 58 kB with the timeline).
_EVENT_BYTES = 300
_BURST_BYTES = 130


def register(sub: argparse._SubParsersAction) -> None:
    from xbar.config.timing import SCHEDULES

    p = sub.add_parser(
        "latency", help=COMMANDS["latency"],
        description="Simulate a network mapped onto RRAM crossbars with the SimPy cycle-level "
                    "engine: total latency, per-layer latency and tiles, steady-state "
                    "throughput and tile/ADC utilisation; energy per inference (per layer and "
                    "component), TOPS/W, power and chip area (docs/energy.md).",
        epilog="A model FILE is unpickled with torch.load(weights_only=False), which runs "
               "code from the file: only use files you trust.")
    add_model_arg(p, required=True)
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="input shape of one sample: 1 to 3 positive integers (required for a "
                        "model file; known for zoo models)")
    add_hw_arg(p, implied=False)
    p.add_argument("--batch", type=count_arg, default=1, metavar="N",
                   help="inputs (inferences) run together, for the throughput (default 1: "
                        "throughput = 1 / latency)")
    p.add_argument("--schedule", choices=SCHEDULES, default="layer",
                   help="layer: one layer and one inference at a time; pipelined: layers "
                        "overlap through line buffers (default layer)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--timeline", metavar="FILE.png", help="draw a Gantt chart of the tiles")
    p.add_argument("--out", metavar="FILE.h5",
                   help="write the results to an HDF5 file (and the energy/area breakdown "
                        "chart beside it as FILE-energy.png)")
    p.add_argument("--energy-plot", metavar="FILE.png",
                   help="draw the energy (per layer and component) and area breakdown chart")
    p.set_defaults(func=run)


def load_model(spec: str, input_shape: str | None) -> tuple[object, tuple[int, ...], str]:
    """Resolve ``--model`` and ``--input-shape`` into (module, shape, label).

    (``--input-shape -1,8,8`` reaches here as a value: :func:`xbar.mapping.cli.main.main`
    joins a dash-led list to its option, which argparse would otherwise refuse as missing.)
    """
    from xbar.mapping.data.workflow import load_model_spec
    from xbar.mapping.geometry import parse_input_shape

    try:
        shape_given = parse_input_shape(input_shape) if input_shape is not None else None
    except ModelError as exc:
        raise ConfigError(f"--input-shape: {exc}") from None
    model, shape, label = load_model_spec(spec, shape_given)
    if not shape:
        raise ConfigError(f"--input-shape C,H,W is required for the model file {spec!r}")
    return model, shape, label


def run(args: argparse.Namespace) -> int:
    from xbar.config import load_hardware
    from xbar.mapping.geometry import layer_specs
    from xbar.timing import simulate
    from xbar.timing.area import chip_area
    from xbar.timing.energy import inference_energy

    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch} is invalid; allowed: an integer >= 1")
    from xbar.files import check_distinct
    from xbar.timing.results import FORMAT as LATENCY_FORMAT

    check_distinct(**{"--out": args.out, "--timeline": args.timeline,
                      "--energy-plot": args.energy_plot})
    if args.out:
        check_output(args.out, "--out", LATENCY_FORMAT)
        if not args.energy_plot:
            out = Path(args.out)
            check_image_output(out.with_name(f"{out.stem}-energy.png"), "--out's energy plot")
    for option, path in (("--timeline", args.timeline), ("--energy-plot", args.energy_plot)):
        if path:
            check_image_output(path, option)
    hw = load_hardware(args.hw)
    xbar, timing = hw.xbar, hw.timing
    model, shape, label = load_model(args.model, args.input_shape)
    specs = layer_specs(model, shape)  # type: ignore[arg-type]
    try:  # names in [timing] duplicate_layers must be conv layers of this network
        timing.check_layer_names(specs)
    except ConfigError as exc:
        raise ConfigError(f"--hw {args.hw}, section [timing]: {exc}" if args.hw else str(exc)
                          ) from None
    check_engine_memory(specs, xbar, timing, args.batch, bool(args.timeline or args.out))
    result = simulate(specs, hw, schedule=args.schedule, batch=args.batch,
                      timeline=bool(args.timeline or args.out))
    energy, area = inference_energy(specs, hw), chip_area(specs, hw)
    costs = energy_summary(energy, area, result)
    written: list[tuple[str, str]] = []
    images: dict[str, bytes] = {}
    if args.energy_plot or args.out:
        from xbar.timing.energy_plot import energy_png

        png = energy_png(energy, area, f"{label}, {result.schedule} schedule: "
                         f"{energy.total_pj * 1e-6:.4g} uJ per inference, "
                         f"{energy.tops_per_w:.3g} TOPS/W, {area.total_mm2:.4g} mm^2")
        if args.energy_plot:
            from xbar.files import write_atomically
            write_atomically(args.energy_plot, lambda tmp: open(tmp, "wb").write(png))
            written.append(("energy plot", args.energy_plot))
        else:
            images["energy"] = png  # beside --out, written together with it
    if args.out:
        from xbar.timing.results import save_latency
        pngs = save_latency(result, args.out, model=label, input_shape=shape, extra=costs,
                            images=images)
        written += [("results", args.out)] + [("energy plot", str(p)) for p in pngs]
    if args.timeline:
        from xbar.timing.gantt import plot_timeline
        plot_timeline(result, args.timeline)
        written.append(("timeline", args.timeline))
    if args.json:
        doc = {"model": label, "input_shape": list(shape), **result.to_dict(), **costs}
        print(dumps_json(doc))
    else:
        print(format_report(result, label, shape))
        print(format_energy(energy, area, costs))
        for what, where in written:
            print(f"{what} written to {where}")
    return 0


def energy_summary(energy: InferenceEnergy, area: AreaReport, result: LatencyResult
                   ) -> dict[str, Any]:
    """The energy, power and area figures of ``--json`` and the results file."""
    rate = result.throughput_inferences_per_s
    return {**energy.to_dict(), **area.to_dict(), "power_w": energy.power_w(rate),
            "energy_batch_pj": energy.total_pj * result.batch}


def format_energy(energy: InferenceEnergy, area: AreaReport, costs: dict[str, Any]) -> str:
    """Energy per inference (per layer, per component), power and area, as text."""
    comps = energy.by_component
    lines = ["", f"{'layer':<14}{'energy (nJ)':>13}{'share':>8}{'area (mm^2)':>13}"]
    totals = energy.layer_totals
    layer_area = {n: sum(c.values()) for n, c in area.per_layer.items()}
    for name, pj in totals.items():
        lines.append(f"{name[:13]:<14}{pj * 1e-3:>13,.2f}{100 * pj / energy.total_pj:>7.1f}%"
                     f"{layer_area[name] * 1e-6:>13.4f}")
    g = ("nominal conductance (every cell at [energy] g_nominal_us; weights not programmed)"
         if energy.conductance == "nominal" else "programmed conductances")
    lines += [
        "",
        f"energy: {energy.total_pj * 1e-6:,.4f} uJ per inference ({energy.inferences_per_j:,.0f}"
        f" inferences/J, {energy.tops_per_w:.3f} TOPS/W at 2 ops per MAC); array reads at {g}",
        "  by component: " + ", ".join(f"{k} {100 * v / energy.total_pj:.1f}%"
                                       for k, v in comps.items() if v > 0),
        f"power: {costs['power_w']:.4g} W (energy per inference x the throughput above; no "
        "leakage modelled)",
        f"area: {area.total_mm2:.4f} mm^2 (" + ", ".join(
            f"{k} {100 * v / area.total_um2:.1f}%" for k, v in area.by_component.items()
            if v > 0) + ")",
    ]
    return "\n".join(lines)


def check_engine_memory(specs: list[LayerSpec], xbar: XbarConfig, timing: TimingConfig,
                        batch: int, timeline: bool) -> None:
    """Refuse a ``--batch`` whose event engine would not fit in this machine's memory.

    The engine allocates, per inference, about four events per output row of every layer,
    and with a timeline (``--timeline``/``--out``) one record per tile burst.
    """
    from xbar.resources import check_memory
    from xbar.timing.closed_form import plan_network

    plans = plan_network(specs, xbar, timing)
    rows = sum(p.rows for p in plans)
    bursts = sum(p.rows * p.n_tiles for p in plans) if timeline else 0
    per_inference = rows * 4 * _EVENT_BYTES + bursts * _BURST_BYTES + 400 * len(plans)
    check_memory(per_inference * (batch + 1), f"--batch {batch}",
                 f"{per_inference:,} bytes of engine state per inference"
                 + (" with the timeline that --out/--timeline record" if timeline else ""))


def format_report(result: LatencyResult, label: str, shape: tuple[int, ...]) -> str:
    """The human-readable report."""
    x, t = result.xbar, result.timing
    lines = [
        f"model {label}, input {','.join(map(str, shape))}, schedule {result.schedule}, "
        f"batch {result.batch}",
        f"hardware: {x.array.rows}x{x.array.cols} {x.array.weight_mapping} arrays, "
        f"{x.dac.input_bits}-bit inputs ({x.dac.bits_per_read} bit/read), {x.adc.bits}-bit ADC "
        f"({x.adc.cols_per_adc} columns/ADC), clock {t.clock_ghz:g} GHz, read "
        f"{t.read_cycles()} cycles, conversion {t.adc_cycles(x.adc.bits)} cycles",
        "",
        f"{'layer':<14}{'kind':<7}{'tiles':>7}{'copies':>7}{'positions':>10}{'start':>12}"
        f"{'end':>12}{'cycles':>12}",
    ]
    for lt in result.layers:
        lines.append(f"{lt.name[:13]:<14}{lt.kind:<7}{lt.tiles:>7}{lt.copies:>7}"
                     f"{lt.positions:>10}{lt.start_cycle:>12}{lt.end_cycle:>12}{lt.cycles:>12}")
    rate = result.throughput_inferences_per_s
    lines += [
        "",
        f"total latency: {result.total_cycles} cycles = {result.latency_ns:,.1f} ns "
        f"({result.latency_ns / 1e3:,.2f} us)",
        f"throughput: {rate:,.1f} inferences/s "
        + (f"(steady state over a batch of {result.batch}; batch makespan "
           f"{result.makespan_cycles} cycles)" if result.batch > 1
           else "(batch of 1: 1 / latency; use --batch N for the steady state)"),
        f"utilisation: tiles {100 * result.tile_utilisation:.2f}% of {result.n_tiles}, ADCs "
        f"{100 * result.adc_utilisation:.2f}% of {result.n_adcs}, interconnect "
        f"{100 * result.interconnect_utilisation:.2f}%",
        f"engine: {result.events_processed} events in {result.wall_s:.3f} s",
    ]
    return "\n".join(lines)
