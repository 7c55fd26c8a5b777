"""Energy, TOPS/W, power and area of LeNet-5 and VGG-16, both schedules; R-V-W vs RSA energy.

LeNet-5 (MNIST) and VGG-16 (CIFAR-10) on the default chip and on an ISAAC-like chip, each
under both schedules, and the energy of R-V-W programming against one-shot + RSA adaptation
for LeNet-5. The comparison with ISAAC's published figures: benchmarks/energy_published.py.

Default hardware (``HardwareConfig()``): 128x128 differential arrays, 8-bit bit-serial inputs,
an 8-bit ADC per 8 columns, 1 GHz; the ``[energy]``/``[area]`` defaults (docs/energy.md).
Weights are the zoo's untrained initialisation (seeded): every figure but the array-read
energy depends on shapes alone; the array read is given twice, at the nominal conductance
(every cell at ``g_nominal_us``) and at the conductances of the untrained network programmed
on the default device (an untrained network's conductances, not a trained one's).

The ISAAC-like rows use benchmarks/hardware/isaac.toml: 16-bit bit-serial inputs, one cell
per weight against a reference column, one 8-bit ADC per 128 columns at 1.2 GS/s and ISAAC's
per-action energies (ISCA 2016 Table 1, 32 nm, as the CiMLoop/hwcomponents ISAAC library
derives them): an 8-bit conversion at 1.67 pJ (16 mW for 8 ADCs at 1.2 GS/s, one sample per
conversion) instead of MNSIM 2.0's power x (bits + 2) / rate = 20 pJ.

R-V-W against RSA (LeNet-5, device ``charan2020-jxcdc``, its write-verify loop): programming
energy from the per-cell pulse and verify-read counts of the write-verify loop on one chip
(seed 0), one-shot = one pulse per cell, RSA = 5 % of each layer's weights in SRAM, 200 steps
of 32 (``AdaptConfig`` defaults): forward, backward and SRAM updates.

    python benchmarks/energy.py [--batch N] [--out results/energy.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from xbar.config import HardwareConfig, load_hardware  # noqa: E402
from xbar.devices import Device, preset  # noqa: E402
from xbar.files import write_json  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.data.zoo import INPUT_SHAPES, build_model  # noqa: E402
from xbar.mapping.geometry import layer_specs  # noqa: E402
from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params  # noqa: E402
from xbar.mapping.recovery.techniques.sram import AdaptConfig  # noqa: E402
from xbar.timing import simulate  # noqa: E402
from xbar.timing.adaptation import adaptation_time, sram_words_per_layer  # noqa: E402
from xbar.timing.area import chip_area, sram_area_fraction  # noqa: E402
from xbar.timing.energy import (adaptation_energy, conductance_sums,  # noqa: E402
                                inference_energy, one_shot_energy, programming_energy)
from xbar.timing.programming import one_shot_time, programming_time  # noqa: E402

MODELS = ("lenet5", "vgg16")
ISAAC_HW = load_hardware(Path(__file__).resolve().parent / "hardware" / "isaac.toml")


def inference_rows(batch: int) -> list[dict]:
    rows = []
    for model_name in MODELS:
        torch.manual_seed(0)
        model = build_model(model_name)
        shape = INPUT_SHAPES[model_name]
        specs = layer_specs(model, shape)
        for label, hw in (("default", HardwareConfig()), ("ISAAC-like", ISAAC_HW)):
            # the chip's own mapping (differential pairs or one cell + reference column)
            t0 = time.perf_counter()
            chip = Chip.program(model, Device(), hw.xbar, 0, "column", model_name, shape)
            g_prog = conductance_sums(chip)
            program_s = time.perf_counter() - t0
            del chip
            nominal = inference_energy(specs, hw)
            programmed = inference_energy(specs, hw, g_prog)
            area = chip_area(specs, hw)
            for schedule in ("layer", "pipelined"):
                r = simulate(specs, hw, schedule=schedule, batch=batch, timeline=False)
                rate = r.throughput_inferences_per_s
                rows.append({
                    "model": model_name, "hardware": label, "schedule": schedule,
                    "macs": nominal.macs, "energy_uj": nominal.total_pj * 1e-6,
                    "energy_uj_programmed": programmed.total_pj * 1e-6,
                    "tops_per_w": nominal.tops_per_w,
                    "tops_per_w_programmed": programmed.tops_per_w,
                    "inferences_per_j": nominal.inferences_per_j,
                    "latency_us": r.latency_ns / 1e3, "throughput_inferences_per_s": rate,
                    "power_w": nominal.power_w(rate), "area_mm2": area.total_mm2,
                    "energy_by_component_uj": {k: v * 1e-6 for k, v in
                                               nominal.by_component.items()},
                    "energy_per_layer_uj": {k: v * 1e-6 for k, v in
                                            nominal.layer_totals.items()},
                    "array_read_uj_nominal": nominal.by_component["array_read"] * 1e-6,
                    "array_read_uj_programmed": programmed.by_component["array_read"] * 1e-6,
                    "area_by_component_mm2": {k: v * 1e-6 for k, v in
                                              area.by_component.items()},
                    "chip_program_wall_s": program_s})
    return rows


def rvw_vs_rsa() -> dict:
    torch.manual_seed(0)
    model = build_model("lenet5")
    shape = INPUT_SHAPES["lenet5"]
    specs = layer_specs(model, shape)
    hw = HardwareConfig()
    device = preset("charan2020-jxcdc")
    chip = Chip.program(model, device, hw.xbar, 0, "column", "lenet5", shape)
    counts = program_rvw(chip, rvw_params(device), 0)
    rvw = programming_energy(counts, hw)
    rvw_s = programming_time(counts, hw).total_s
    one = one_shot_energy(specs, hw)
    one_s = one_shot_time(specs, hw).total_s
    cfg = AdaptConfig()
    words = sram_words_per_layer(specs, 0.05)
    g = conductance_sums(chip)
    adapt = adaptation_energy(specs, hw, cfg.steps, cfg.batch_size, words, g)
    adapt_s = adaptation_time(specs, hw, cfg.steps, cfg.batch_size, words).total_s
    rsa_pj = one.total_pj + adapt.total_pj
    # The pulse energy decides the comparison. The default charges V^2 G t over a 10 ns pulse
    # (4 pJ); if the whole 6.5 us write time of work 1 dissipated V^2 G in the cell, a pulse
    # would cost 2 V^2 x 100 uS x 6.5 us = 2,600 pJ.
    sensitivity = []
    for pulse_pj in (hw.energy.program_pulse_pj, 100.0, 2600.0):
        h = hw.replace(energy=hw.energy.replace(program_pulse_pj=pulse_pj))
        e_rvw = programming_energy(counts, h).total_pj
        e_rsa = one_shot_energy(specs, h).total_pj + adapt.total_pj
        sensitivity.append({"program_pulse_pj": pulse_pj, "rvw_pj": e_rvw, "rsa_pj": e_rsa,
                            "ratio_rvw_over_rsa": e_rvw / e_rsa})
    return {"device": device.name, "rvw_loop": rvw_params(device).source,
            "pulse_energy_sensitivity": sensitivity,
            "sram_area_fraction_with_units": sram_area_fraction(specs, words, hw, units=True),
            "vgg16_sram_area_fraction_5pct": vgg_fraction(),
            "rvw": rvw.to_dict(), "rvw_s": rvw_s, "one_shot": one.to_dict(),
            "one_shot_s": one_s, "rsa_adaptation": adapt.to_dict(), "rsa_adapt_s": adapt_s,
            "sram_words": sum(words), "sram_area_fraction": sram_area_fraction(specs, words, hw),
            "rsa_total_pj": rsa_pj, "energy_ratio_rvw_over_rsa": rvw.total_pj / rsa_pj,
            "time_ratio_rvw_over_rsa": rvw_s / (one_s + adapt_s),
            "adapt_steps": cfg.steps, "adapt_batch": cfg.batch_size}


def vgg_fraction() -> float:
    specs = layer_specs(build_model("vgg16"), INPUT_SHAPES["vgg16"])
    return sram_area_fraction(specs, sram_words_per_layer(specs, 0.05), HardwareConfig())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", default="results/energy.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = inference_rows(args.batch)
    print(f"{'model':<7}{'hardware':<11}{'schedule':<10}{'uJ/inf':>10}{'uJ prog.G':>11}"
          f"{'TOPS/W':>8}{'power W':>9}{'inf/s':>10}{'mm^2':>8}  top components")
    for r in rows:
        comps = sorted(r["energy_by_component_uj"].items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{k} {100 * v / r['energy_uj']:.0f}%" for k, v in comps)
        print(f"{r['model']:<7}{r['hardware']:<11}{r['schedule']:<10}{r['energy_uj']:>10.4g}"
              f"{r['energy_uj_programmed']:>11.4g}{r['tops_per_w']:>8.3f}{r['power_w']:>9.3g}"
              f"{r['throughput_inferences_per_s']:>10,.0f}{r['area_mm2']:>8.3g}  {top}")
    rr = rvw_vs_rsa()
    print(f"\nLeNet-5 programming and adaptation energy ({rr['device']}, R-V-W loop "
          f"{rr['rvw_loop']}):")
    print(f"  R-V-W: {rr['rvw']['pulses']:,} pulses + {rr['rvw']['reads']:,} verify reads = "
          f"{rr['rvw']['total_pj'] * 1e-6:.4g} uJ ({rr['rvw_s']:.4g} s)")
    a = rr["rsa_adaptation"]
    print(f"  one-shot: {rr['one_shot']['pulses']:,} pulses = "
          f"{rr['one_shot']['total_pj'] * 1e-6:.4g} uJ ({rr['one_shot_s']:.4g} s); RSA "
          f"{rr['adapt_steps']} x {rr['adapt_batch']}: forward {a['forward_pj'] * 1e-6:.4g} uJ,"
          f" backward {a['backward_pj'] * 1e-6:.4g} uJ, SRAM updates "
          f"{a['sram_update_pj'] * 1e-6:.4g} uJ ({rr['rsa_adapt_s']:.4g} s)")
    print(f"  R-V-W / (one-shot + RSA): energy {rr['energy_ratio_rvw_over_rsa']:.3g}x, time "
          f"{rr['time_ratio_rvw_over_rsa']:.3g}x")
    for row in rr["pulse_energy_sensitivity"]:
        print(f"    at {row['program_pulse_pj']:g} pJ per pulse: R-V-W "
              f"{row['rvw_pj'] * 1e-6:.4g} uJ, one-shot + RSA {row['rsa_pj'] * 1e-6:.4g} uJ, "
              f"ratio {row['ratio_rvw_over_rsa']:.3g}x")
    print(f"  SRAM area overhead at 5 %: LeNet-5 {100 * rr['sram_area_fraction']:.2f}% "
          f"({rr['sram_words']:,} words; {100 * rr['sram_area_fraction_with_units']:.1f}% with "
          f"the gradient units), VGG-16 {100 * rr['vgg16_sram_area_fraction_5pct']:.2f}%; "
          "work 2 reports 7.86% for OSA")
    doc = {"benchmark": "energy", "batch": args.batch, "inference": rows,
           "rvw_vs_rsa": rr, "hardware_default": HardwareConfig().to_dict(),
           "hardware_isaac_like": ISAAC_HW.to_dict(), "weights": "untrained (seed 0)",
           "wall_s": time.perf_counter() - t0}
    out = Path(args.out)
    write_json(out, doc)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
