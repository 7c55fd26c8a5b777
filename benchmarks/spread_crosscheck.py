"""Chip-to-chip accuracy spread of LeNet-5 on MNIST: xbar-sim against a reference of the same
weight noise, with xbar-sim's clip and ADC calibration toggled (docs/variation.md).

Every chip is the zoo LeNet-5 (the cached teacher, FP32 99.19 %) programmed with programming
variation on differential pairs (one scale per layer, as aihwkit maps a tensor's largest
weight; 256 levels on 1.11-166.7 uS, so quantisation is negligible) and scored on the same
test images. Rows (``--variation gaussian``: every cell G = G_level + sigma x (g_max - g_min)
x N(0, 1); ``lognormal``: G = G_level exp(sigma N(0, 1))):

* ``xbar``: xbar-sim's cells as programmed (clipped to [g_min, g_max]), read without
  converters: the chip's effective weights put into the FP32 network.
* ``xbar-noclip``: the same draws with no bound in reach: gaussian, every level lifted
  1000 uS (weights are G+ - G-, so they do not change) with sigma rescaled to the same uS;
  lognormal, g_min and g_max moved out of reach around the same levels.
* ``xbar-matched``: clipped, with sigma raised until the measured weight-error std equals the
  unclipped one (the factor measured on the first chip): what "the same weight-error std"
  means if it is matched on the measured error rather than on sigma.
* ``xbar-floor``: only the clip at g_min acts (g_max out of reach): the idle cell's cut alone.
* ``xbar-column``: as ``xbar`` with xbar-sim's default scale, one per output column (each
  column's largest weight at g_max) instead of one per layer.
* ``reference``: plain PyTorch, each weight plus an independent zero-mean Gaussian of the
  unclipped model's measured per-layer error std (for gaussian variation this is the exact
  unclipped model; for lognormal an additive surrogate of the same std).
* ``aihwkit``, ``aihwkit-clamp0`` (when aihwkit is importable): IBM aihwkit's
  ``StateIndependentNoiseModel`` (programming std c0 = sigma x range per cell, drift and read
  noise off, ideal periphery, the torch inference tile) on its single-pair converter, with
  g_min = 10^4 uS (its clamp at 0 never acts) and with its default g_min = 0 (the clamp at 0
  cuts the idle cell of each pair as xbar-sim's clip at g_min does). Gaussian only.
* ``analog``, ``analog-h2``, ``analog-fixed`` (``--analog-chips`` > 0): the same xbar-sim
  chips through the crossbar kernel with the default hardware (128 x 128 arrays, 8-bit
  bit-serial DAC, 8-bit ADC): ranges calibrated per chip with ``calibration_headroom`` 1 (the
  default) and 2, and the DAC and ADC ranges of the noise-free chip (no per-chip calibration);
  ``analog-cells``: the same chips' cells alone on the same images (ideal converters).
  ``--read-noise`` gives the kernel rows' cells read noise (a noisy read above the noise-free
  calibrated range clips at the top code unless there is headroom).

Per row: mean, median and std (ddof 1, with its 95 % chi-square interval) of the accuracy over
chips, the robust spread (IQR / 1.349: a few collapsed chips pull the std, not this), and the
measured weight error relative to the layer's largest |w| (mean of error x
sign(w), negative = toward zero; std), averaged over the five layers.

aihwkit is optional. Its 1.1.0 wheel installs beside torch 2.13 without changing it
(``python -m venv --system-site-packages /tmp/aihw && /tmp/aihw/bin/pip install --no-deps
aihwkit==1.1.0``, then run this script with ``/tmp/aihw/bin/python``); its C++ tiles do not
work with that torch (``RuntimeError: weights must be a CPU tensor``), its torch inference
tile used here does. Without aihwkit the aihwkit rows are left out and the script says so.

    python benchmarks/spread_crosscheck.py [--variation gaussian|lognormal]
        [--sigmas 0.05,0.1,0.15,0.2] [--chips 30] [--test-limit N] [--analog-chips 10]
        [--analog-test-limit N] [--read-noise R] [--out results/spread_crosscheck.json]
    python benchmarks/spread_crosscheck.py --presets   # the clip at each preset's end levels
    python benchmarks/spread_crosscheck.py --table results/spread_crosscheck.json
        [--compare xbar:xbar-noclip,xbar-noclip:aihwkit]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.threads import configure_threads  # noqa: E402
from xbar.config import ADCConfig, XbarConfig, load_hardware  # noqa: E402
from xbar.devices import Device  # noqa: E402
from xbar.files import write_json  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.convert import fold_batchnorm, mapped_layers  # noqa: E402
from xbar.mapping.data.workflow import calibration_inputs, load_teacher  # noqa: E402

G_MIN, G_MAX = 1e6 / 900e3, 1e6 / 6e3    # the NeuroSim range of the presets, uS
N_LEVELS = 256
LIFT_US = 1000.0                          # xbar-noclip (gaussian): levels lifted this far


def make_device(variation: str, sigma: float, clip: str = "both") -> Device:
    """The cell: 256 levels on 1.11-166.7 uS; ``clip``: "both" (xbar-sim as it is), "floor"
    (g_max out of reach: only the clip at g_min acts) or "none" (no bound in reach)."""
    levels = np.linspace(G_MIN, G_MAX, N_LEVELS)
    if variation == "gaussian":
        if clip == "both":
            return Device(name="xc", g_min_us=G_MIN, g_max_us=G_MAX, n_levels=N_LEVELS,
                          variation="gaussian", sigma=sigma, sigma_reference="range")
        lift = LIFT_US if clip == "none" else 0.0
        lo, hi = (1e-3 if clip == "none" else G_MIN), G_MAX + 2 * LIFT_US
        return Device(name="xc-" + clip, g_min_us=lo, g_max_us=hi, n_levels=N_LEVELS,
                      levels_us=tuple(levels + lift), variation="gaussian",
                      sigma=sigma * (G_MAX - G_MIN) / (hi - lo), sigma_reference="range")
    lo, hi = {"both": (G_MIN, G_MAX), "floor": (G_MIN, 1e9), "none": (1e-9, 1e9)}[clip]
    return Device(name="xc-" + clip, g_min_us=lo, g_max_us=hi, n_levels=N_LEVELS,
                  levels_us=tuple(levels), variation="lognormal", sigma=sigma)


def weight_error(ws: list[np.ndarray], refs: list[np.ndarray]) -> tuple[float, float]:
    """Mean over layers of (mean of error x sign(w), std of error), each over max |w|."""
    m, s = [], []
    for w, r in zip(ws, refs):
        e = (w - r) / np.abs(r).max()
        m.append(float(np.mean(e * np.sign(r))))
        s.append(float(e.std()))
    return float(np.mean(m)), float(np.mean(s))


def layer_stds(ws: list[np.ndarray], refs: list[np.ndarray]) -> list[float]:
    return [float((w - r).std()) for w, r in zip(ws, refs)]


class Net:
    """The folded FP32 network, its weights and a scorer for replaced weights."""

    def __init__(self, model, x: np.ndarray, y: np.ndarray) -> None:
        import torch
        self.torch = torch
        self.model = model
        self.folded, _ = fold_batchnorm(model)
        self.refs = [m.weight.detach().double().numpy().reshape(m.weight.shape[0], -1)
                     for _, m in mapped_layers(self.folded)]
        self.x, self.y = x, y

    def accuracy(self, ws: list[np.ndarray], x: np.ndarray | None = None,
                 y: np.ndarray | None = None) -> float:
        torch = self.torch
        x, y = (self.x, self.y) if x is None else (x, y)
        m = copy.deepcopy(self.folded).eval()
        for (_, mod), w in zip(mapped_layers(m), ws):
            mod.weight.data = torch.as_tensor(w, dtype=torch.float32).reshape(mod.weight.shape)
        right = 0
        with torch.no_grad():
            for lo in range(0, len(y), 2000):
                out = m(torch.as_tensor(x[lo:lo + 2000]))
                right += int((out.argmax(1).numpy() == y[lo:lo + 2000]).sum())
        return right / len(y)


def chip_weights(chip: Chip) -> list[np.ndarray]:
    return [layer.matrix.effective_weights() for layer in chip.layers]


def load_aihwkit():
    """aihwkit's pieces, or the reason it cannot be used."""
    try:
        from aihwkit.inference.converter.conductance import SinglePairConductanceConverter
        from aihwkit.inference.noise.custom import StateIndependentNoiseModel
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.simulator.configs import TorchInferenceRPUConfig
        from aihwkit.simulator.parameters import IOParameters
    except Exception as exc:   # absent, or built against another torch
        return None, f"{type(exc).__name__}: {exc}"
    return (SinglePairConductanceConverter, StateIndependentNoiseModel, convert_to_analog,
            TorchInferenceRPUConfig, IOParameters), ""


def aihwkit_model(parts, folded, sigma: float, g_min: float):
    conv_cls, noise_cls, convert, config_cls, io_cls = parts
    span = G_MAX - G_MIN
    cfg = config_cls()
    cfg.forward = io_cls(is_perfect=True)
    cfg.drift_compensation = None
    cfg.noise_model = noise_cls(
        g_converter=conv_cls(g_max=g_min + span, g_min=g_min), prog_coeff=[sigma * span, 0, 0],
        drift_nu_mean=0.0, drift_nu_std=0.0, drift_scale=0.0, read_noise_scale=0.0)
    return convert(copy.deepcopy(folded), cfg).eval()


def aihwkit_weights(model) -> list[np.ndarray]:
    out = []
    for mod in model.modules():
        if type(mod).__name__ in ("AnalogConv2d", "AnalogLinear"):
            w = mod.get_weights()[0]
            out.append(w.reshape(w.shape[0], -1).double().numpy())
    return out


def summary(acc: list[float], err: list[tuple[float, float]]) -> dict:
    from scipy.stats import chi2
    a = 100 * np.asarray(acc)
    n = len(a)
    std = float(a.std(ddof=1)) if n > 1 else float("nan")
    lo = std * np.sqrt((n - 1) / chi2.ppf(0.975, n - 1)) if n > 1 else float("nan")
    hi = std * np.sqrt((n - 1) / chi2.ppf(0.025, n - 1)) if n > 1 else float("nan")
    e = np.asarray(err)
    return {"chips": n, "mean": float(a.mean()), "median": float(np.median(a)), "std": std,
            "std_95": [float(lo), float(hi)], "w_err_mean": float(e[:, 0].mean()),
            "w_err_std": float(e[:, 1].mean()), "accuracy": a.tolist()}


def preset_clip_table(n: int = 400_000) -> list[dict]:
    """Per preset with a spread: its lowest and highest level's cells drawn as
    :meth:`Device.landed` draws them (centre and spread from ``level_statistics``), with and
    without the clip to [g_min, g_max]; means and stds in uS, shifts in % of g_max - g_min."""
    from xbar.devices import preset
    from xbar.devices.presets import PRESETS
    z = np.random.default_rng(1).standard_normal(n)
    out = []
    for name in PRESETS:
        d = preset(name)
        centre, spread = d.level_statistics()
        if not np.any(spread > 0):
            continue
        for lv in (0, d.n_levels - 1):
            c, sp = float(centre[lv]), float(spread[lv])
            free = c * np.exp(sp * z) if d.variation == "lognormal" else c + sp * z
            cut = np.clip(free, d.g_min_us, d.g_max_us)
            at = np.mean(cut == (d.g_min_us if lv == 0 else d.g_max_us))
            span = d.g_max_us - d.g_min_us
            out.append({"preset": name, "variation": d.variation, "level": lv,
                        "level_us": float(d.levels[lv]), "mean_free": float(free.mean()),
                        "std_free": float(free.std()), "mean_clipped": float(cut.mean()),
                        "std_clipped": float(cut.std()), "at_bound": float(at),
                        "mean_shift_pct_range": float(100 * (cut.mean() - free.mean()) / span),
                        "std_ratio": float(cut.std() / free.std())})
    return out


def robust_spread(acc: list[float]) -> float:
    """IQR / 1.349: the std of a normal with the same interquartile range (not pulled by a
    few collapsed chips the way the std is)."""
    q = np.percentile(acc, [25, 75])
    return float((q[1] - q[0]) / 1.349)


def print_tables(rows: dict[str, dict]) -> None:
    """Every row, then per sigma and variant: median / std (95 % CI) / robust spread, and the
    weight error (mean toward zero / std, over max |w|)."""
    print("\n| sigma | variant | chips | mean % | median % | std (95 % CI) | robust spread | "
          "w-err mean | w-err std |\n|---:|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows.values():
        print(f"| {r['sigma']:g} | {r['variant']} | {r['chips']} | {r['mean']:.2f} | "
              f"{r['median']:.2f} | {r['std']:.2f} ({r['std_95'][0]:.2f}-{r['std_95'][1]:.2f})"
              f" | {robust_spread(r['accuracy']):.2f} | {r['w_err_mean']:+.4f} | "
              f"{r['w_err_std']:.4f} |")
    sigmas = sorted({r["sigma"] for r in rows.values()})
    variants = list(dict.fromkeys(r["variant"] for r in rows.values()))
    for title, cell in (
            ("median % / std (95 % CI) / robust spread, over chips",
             lambda r: f"{r['median']:.1f} / {r['std']:.2f} ({r['std_95'][0]:.1f}-"
                       f"{r['std_95'][1]:.1f}) / {robust_spread(r['accuracy']):.2f}"),
            ("weight error over max |w|: mean toward zero / std",
             lambda r: f"{r['w_err_mean']:+.3f} / {r['w_err_std']:.3f}")):
        print(f"\n{title}\n\n| sigma | " + " | ".join(variants) + " |\n|---:|"
              + "---|" * len(variants))
        for s in sigmas:
            print(f"| {s:g} | " + " | ".join(
                cell(rows[f"{s:g} {v}"]) if f"{s:g} {v}" in rows else "-" for v in variants)
                + " |")


def compare_rows(rows: dict[str, dict], pairs: str, draws: int = 4000) -> None:
    """For each ``A:B`` of ``pairs`` at each sigma: the ratio of A's std (and robust spread) to
    B's with a 95 % bootstrap interval over chips; resampled in pairs when both are xbar-sim
    rows of the same chips (the same draws), independently otherwise."""
    rng = np.random.default_rng(0)
    for s in sorted({r["sigma"] for r in rows.values()}):
        for pair in pairs.split(","):
            va, vb = pair.split(":")
            ra, rb = rows.get(f"{s:g} {va}"), rows.get(f"{s:g} {vb}")
            if ra is None or rb is None:
                continue
            a, b = np.asarray(ra["accuracy"]), np.asarray(rb["accuracy"])
            paired = len(a) == len(b) and all(v.startswith(("xbar", "analog")) for v in (va, vb))
            out = []
            for f in (lambda v: v.std(ddof=1), robust_spread):
                boot = []
                for _ in range(draws):
                    i = rng.integers(0, len(a), len(a))
                    j = i if paired else rng.integers(0, len(b), len(b))
                    fb = f(b[j])
                    boot.append(f(a[i]) / fb if fb > 0 else np.nan)
                lo, hi = np.nanpercentile(boot, [2.5, 97.5])
                out.append(f"{f(a) / f(b):.2f} ({lo:.2f}-{hi:.2f})")
            print(f"sigma {s:g} {va} / {vb}{' (paired)' if paired else ''}: median "
                  f"{ra['median']:.1f} / {rb['median']:.1f}; std ratio {out[0]}; robust "
                  f"spread ratio {out[1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variation", choices=("gaussian", "lognormal"), default="gaussian")
    ap.add_argument("--sigmas", default="0.05,0.1,0.15,0.2")
    ap.add_argument("--chips", type=int, default=30, help="chips per sigma (seeds 0..N-1)")
    ap.add_argument("--test-limit", type=int, default=0,
                    help="score a fixed random subset of N test images (0: all)")
    ap.add_argument("--analog-chips", type=int, default=10,
                    help="chips per sigma through the kernel (0: skip the converter rows)")
    ap.add_argument("--analog-test-limit", type=int, default=0,
                    help="test images for the kernel rows (0: as --test-limit)")
    ap.add_argument("--read-noise", type=float, default=0.0,
                    help="read noise of the cells in the kernel rows (the others read none)")
    ap.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit even if present")
    ap.add_argument("--data-dir", help="MNIST files (default: the project's data search)")
    ap.add_argument("--out", default="results/spread_crosscheck.json")
    ap.add_argument("--presets", action="store_true",
                    help="only print what the clip does to each preset's end levels")
    ap.add_argument("--table", metavar="FILE.json", help="only print the tables of a result")
    ap.add_argument("--compare", metavar="A:B,...",
                    help="with --table: std and robust-spread ratios of row A to row B, with "
                         "bootstrap intervals")
    args = ap.parse_args()
    if args.table:
        import json
        rows = json.loads(Path(args.table).read_text())["rows"]
        if args.compare:
            compare_rows(rows, args.compare)
        else:
            print_tables(rows)
        return
    if args.presets:
        print("| preset | level (uS) | unclipped mean / std (uS) | clipped mean / std (uS) | "
              "at the bound | mean shift (% of range) | std ratio |\n|---|---:|---|---|---:|"
              "---:|---:|")
        for r in preset_clip_table():
            print(f"| {r['preset']} | L{r['level']} ({r['level_us']:.3g}) | "
                  f"{r['mean_free']:.3g} / {r['std_free']:.3g} | {r['mean_clipped']:.3g} / "
                  f"{r['std_clipped']:.3g} | {100 * r['at_bound']:.0f} % | "
                  f"{r['mean_shift_pct_range']:+.2f} | {r['std_ratio']:.2f} |")
        return
    configure_threads()
    import torch

    teacher = load_teacher("lenet5", "mnist", args.data_dir)
    data = teacher.dataset

    def subset(n: int) -> tuple[np.ndarray, np.ndarray]:
        if n <= 0 or n >= len(data.y_test):
            return data.x_test, data.y_test
        idx = np.sort(np.random.default_rng(12345).choice(len(data.y_test), n, replace=False))
        return data.x_test[idx], data.y_test[idx]

    x, y = subset(args.test_limit)
    xa, ya = subset(args.analog_test_limit or args.test_limit)
    net = Net(teacher.model.eval(), x, y)
    calib = calibration_inputs(data, seed=0)        # one calibration set for every chip
    hw = load_hardware("default").xbar
    parts, why = (None, "--no-aihwkit") if args.no_aihwkit else load_aihwkit()
    if args.variation != "gaussian" and parts is not None:
        parts, why = None, "aihwkit rows are gaussian only"
    print(f"LeNet-5 FP32 {100 * teacher.software_accuracy:.2f} %; {len(y)} test images "
          f"({len(ya)} for the kernel rows, read noise {args.read_noise:g}); "
          f"{args.variation} variation, layer scale")
    print("aihwkit: " + ("used (torch inference tile)" if parts else f"not used ({why})"))

    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    for sigma in [float(s) for s in args.sigmas.split(",")]:
        res: dict[str, tuple[list, list]] = {}

        def add(name: str, ws: list[np.ndarray], xy_acc: float | None = None) -> None:
            acc = net.accuracy(ws) if xy_acc is None else xy_acc
            res.setdefault(name, ([], []))[0].append(acc)
            res[name][1].append(weight_error(ws, net.refs))

        clip_dev = make_device(args.variation, sigma)
        free_dev = make_device(args.variation, sigma, "none")
        floor_dev = make_device(args.variation, sigma, "floor")
        free0 = chip_weights(Chip.program(net.model, free_dev, hw, 0, "layer"))
        clip0 = chip_weights(Chip.program(net.model, clip_dev, hw, 0, "layer"))
        factor = weight_error(free0, net.refs)[1] / weight_error(clip0, net.refs)[1]
        matched_dev = make_device(args.variation, sigma * factor)
        aihw = {} if parts is None else {
            "aihwkit": aihwkit_model(parts, net.folded, sigma, 1e4),
            "aihwkit-clamp0": aihwkit_model(parts, net.folded, sigma, 0.0)}
        ideal = None
        if args.analog_chips > 0:
            ideal = Chip.program(net.model, make_device(args.variation, 0.0), hw, 0, "layer")
            ideal.calibrate(calib)
        for seed in range(args.chips):
            add("xbar", chip_weights(Chip.program(net.model, clip_dev, hw, seed, "layer")))
            free = chip_weights(Chip.program(net.model, free_dev, hw, seed, "layer"))
            add("xbar-noclip", free)
            add("xbar-matched",
                chip_weights(Chip.program(net.model, matched_dev, hw, seed, "layer")))
            add("xbar-floor", chip_weights(Chip.program(net.model, floor_dev, hw, seed, "layer")))
            add("xbar-column", chip_weights(Chip.program(net.model, clip_dev, hw, seed)))
            # reference: independent zero-mean Gaussian errors of the unclipped layer stds
            rng = np.random.default_rng(np.random.SeedSequence([seed, 77]))
            add("reference", [r + s * rng.standard_normal(r.shape)
                              for r, s in zip(net.refs, layer_stds(free, net.refs))])
            for name, model in aihw.items():
                torch.manual_seed(seed)
                model.program_analog_weights()
                add(name, aihwkit_weights(model))
            if seed < args.analog_chips:
                _analog_rows(net, clip_dev.replace(read_noise=args.read_noise), hw, seed,
                             calib, ideal, xa, ya, add)
        for name, (acc, err) in res.items():
            rows[f"{sigma:g} {name}"] = {"sigma": sigma, "variant": name,
                                        **summary(acc, err)}
        if args.variation == "gaussian":
            rows[f"{sigma:g} xbar-matched"]["sigma_used"] = sigma * factor
        print(f"sigma {sigma:g} done, {time.perf_counter() - t0:.0f} s", flush=True)

    print_tables(rows)
    write_json(args.out, {"variation": args.variation, "test_images": int(len(y)),
                          "kernel_read_noise": args.read_noise,
                          "kernel_test_images": int(len(ya)),
                          "aihwkit": bool(parts), "aihwkit_note": why, "rows": rows})
    print(f"\nwrote {args.out}")


def _analog_rows(net: Net, dev: Device, hw: XbarConfig, seed: int, calib: np.ndarray,
                 ideal: Chip, x: np.ndarray, y: np.ndarray, add) -> None:
    """The kernel rows of one chip: its cells alone on the kernel rows' images (the pair to
    compare with), per-chip calibration with headroom 1 and 2, and the noise-free chip's DAC
    and ADC ranges."""
    for name, headroom in (("analog", 1.0), ("analog-h2", 2.0)):
        cfg = XbarConfig(hw.array, hw.dac, ADCConfig(bits=hw.adc.bits, range_mode="calibrated",
                                                     calibration_headroom=headroom))
        chip = Chip.program(net.model, dev, cfg, seed, "layer")
        chip.calibrate(calib)
        if name == "analog":
            add("analog-cells", chip_weights(chip), net.accuracy(chip_weights(chip), x, y))
        add(name, chip_weights(chip), chip.evaluate(x, y))
    chip = Chip.program(net.model, dev, hw, seed, "layer")
    for layer, ref in zip(chip.layers, ideal.layers):
        layer.set_input_range(ref.x_max, ref.signed)
        layer.matrix.adc_range_ua = ref.matrix.adc_range_ua.copy()
    add("analog-fixed", chip_weights(chip), chip.evaluate(x, y))


if __name__ == "__main__":
    main()
