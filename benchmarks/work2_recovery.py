"""Work 2 (DAC 2020) recovery, re-measured: what brings KD + OSA to the FP32 baseline?

Charan et al. (DAC 2020) report that KD to a 10-level student plus OSA (on-line sparse
adaptation: SRAM words at importance-sampled weight positions, trained on the chip) at
7.86 % area overhead restores the baseline accuracy on their device (the ``charan2020-dac``
preset: 10 levels, lognormal sigma 0.5, one cell per weight). This runs
:func:`xbar.mapping.recovery.compare.compare` over SRAM fractions with every lever the
project exposes, one configuration per invocation, and appends one JSON line per fraction to
``--out`` (default ``results/work2/runs.jsonl``). docs/work2.md holds the measured table.

Levers (each a flag):

- the adaptation budget and rate: ``--steps``, ``--batch``, ``--lr`` (AdaptConfig; the
  library defaults 200 x 32 at 0.5 word steps);
- the KD recipe: ``--kd-epochs``, ``--kd-noise-warmup``, ``--kd-weight-clip``, ``--kd-draws``
  (KDConfig; the student is cached under ``--cache`` by recipe, so fractions, budgets and
  selections reuse one student);
- which positions get SRAM words (``--selection``):

  ========== ===============================================================================
  fisher     the library's OSA (kd+osa): per layer the same fraction, positions sampled with
             probability ~ Fisher information on the programmed chip (Gumbel top-k)
  random     the library's RSA (kd+rsa): per layer the same fraction, uniform positions
  fisher-top per layer, the k positions of largest Fisher information (no sampling)
  global     one budget over all layers (the same number of words, so the same SRAM area),
             positions sampled ~ Fisher across layers: a layer gets what its importance earns
  error      per layer, the k positions of largest Fisher x (programmed - target weight)^2:
             needs each cell's programmed value read back once (one verify read per cell,
             not counted in ``adapt``); the best a position choice can know
  ========== ===============================================================================

  The non-library selections replace ``attach_sram`` inside ``compare`` for this process
  only (the SRAM words, their training, timing, energy and area accounting are unchanged);
- ``--oracle``: instead of training, each chosen SRAM word is set to cancel its weight's
  programming error exactly (read back), then the chip is evaluated (``--steps`` > 0 with
  ``--oracle-train`` trains on from there): how far a perfect sparse correction goes.

Examples (the commands behind docs/work2.md)::

    python benchmarks/work2_recovery.py --fractions 0.03,0.06,0.08,0.12 --label base
    python benchmarks/work2_recovery.py --fractions 0.06 --steps 1000 --batch 64 --label budget
    python benchmarks/work2_recovery.py --fractions 0.06 --kd-epochs 30 --label kd30
    python benchmarks/work2_recovery.py --fractions 0.06 --selection random --label rsa
    python benchmarks/work2_recovery.py --model mlp --fractions 0.03,0.06 --label mlp

Cost on one core: KD on 60,000 MNIST images about 35-60 s per epoch (once per recipe, then
cached); a KD+OSA run at 200 x 32 about 1 minute per chip (10,000 test images evaluated), a
1000 x 64 run about 5-8 minutes per chip. Run with NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 on a
shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SELECTIONS = ("fisher", "random", "fisher-top", "global", "error")


def _targets(chip: Any, student: Any) -> list[np.ndarray]:
    """The weights each analog layer was asked to hold (the BN-folded student's), as w_eff."""
    from xbar.mapping.convert import fold_batchnorm, mapped_layers

    folded, _ = fold_batchnorm(student)
    ws = [m.weight.detach().double().numpy() for _, m in mapped_layers(folded)]
    return [w.reshape(w.shape[0], -1) for w in ws]


def patched_attach(selection: str, student_of: dict[str, Any]):
    """An ``attach_sram`` that chooses positions by ``selection`` (module docstring)."""
    import torch
    from torch import nn

    from xbar.mapping.recovery.techniques import sram

    def attach(chip: Any, fraction: float, sram_word_bits: int = 8, _sel: str = "random",
               dataset: Any = None, seed: int = 0) -> int:
        if selection in ("fisher", "random"):
            return sram.attach_sram(chip, fraction, sram_word_bits, selection, dataset, seed)
        importance = sram.fisher_importance(chip, dataset, seed=seed)
        layers = chip.layers
        sizes = [layer.w_eff.numel() for layer in layers]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 12]))
        if selection == "error":
            targets = _targets(chip, student_of["model"])
            importance = [f * (layer.w_eff.double().numpy() - t) ** 2
                          for f, layer, t in zip(importance, layers, targets)]
        if selection == "global":
            total = sum(max(1, int(round(fraction * n))) for n in sizes)
            f = np.concatenate([i.reshape(-1) for i in importance]).astype(np.float64)
            keys = np.log(f + 1e-30 * (f.max() + 1e-300)) + rng.gumbel(size=len(f))
            chosen_all = np.argpartition(-keys, total - 1)[:total]
            bounds = np.cumsum([0] + sizes)
            chosen = [chosen_all[(chosen_all >= lo) & (chosen_all < hi)] - lo
                      for lo, hi in zip(bounds[:-1], bounds[1:])]
        else:  # fisher-top, error: the k largest per layer
            chosen = [np.argpartition(-i.reshape(-1), max(1, int(round(fraction * n))) - 1)
                      [:max(1, int(round(fraction * n)))] for i, n in zip(importance, sizes)]
        bits = sram_word_bits
        words = 0
        for layer, c, n in zip(layers, chosen, sizes):
            mask = torch.zeros(n)
            mask[torch.as_tensor(c, dtype=torch.long)] = 1.0
            dev = layer.w_eff.device
            layer.sram_mask = mask.reshape(layer.w_eff.shape).to(dev)
            layer.sram_code = nn.Parameter(torch.zeros(layer.w_eff.shape, device=dev))
            layer.sram_step = float(layer.matrix.w_max.max()) / (2 ** (bits - 1) - 1)
            layer.sram_word_bits = bits
            words += len(c)
        return words

    return attach


def oracle_fill(chip: Any, student: Any) -> None:
    """Set every chosen SRAM word to cancel its weight's programming error (rounded)."""
    import torch

    with torch.no_grad():
        for layer, t in zip(chip.layers, _targets(chip, student)):
            if layer.sram_code is None:
                continue
            err = layer.w_eff.double() - torch.as_tensor(t)
            code = (-err / layer.sram_step).round().float()
            layer.sram_code.copy_(code * layer.sram_mask)


def exact_reference(chip: Any) -> None:
    """Put every reference-column cell exactly at its level (as if written by R-V-W)."""

    for layer in chip.layers:
        m = layer.matrix
        refs = np.unique(m.neg_cols)
        if m.layout.name != "offset" or not len(refs):
            continue
        g = m.g_us.copy()
        g[:, refs] = np.asarray(m.device.levels)[m.target_levels[:, refs]]
        m.g_us = g
        layer.refresh_weights()


def rvw_reference(chip: Any, hw: Any, seed: int) -> tuple[float, float, float]:
    """Write-verify the reference-column cells of a one-shot-programmed chip (the weight
    cells keep their one-shot conductances): the loop ``xbar compare``'s rvw method uses
    (the transfer rule) under the hardware's stopping rule. Returns (T_program with the
    reference verified, T_one_shot, T_rvw of every cell), seconds, from the programming
    engine."""
    import copy

    from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params
    from xbar.timing.programming import LayerCells, programming_time

    verified = copy.deepcopy(chip)
    counts = program_rvw(verified, rvw_params(chip.device), seed,
                         hw.programming.stopping_rule())
    mixed, one = [], []
    for layer, twin, c in zip(chip.layers, verified.layers, counts):
        m = layer.matrix
        refs = np.unique(m.neg_cols)
        g = m.g_us.copy()
        g[:, refs] = twin.matrix.g_us[:, refs]
        m.g_us = g
        layer.refresh_weights()
        is_ref = np.zeros(c.pulses.shape, bool)
        is_ref[:, refs] = True
        mixed.append(LayerCells(c.name, c.n_in, c.n_out, np.where(is_ref, c.pulses, 1),
                                np.where(is_ref, c.reads, 0)))
        one.append(LayerCells(c.name, c.n_in, c.n_out, np.ones_like(c.pulses),
                              np.zeros_like(c.reads)))
    t = lambda cells, how="rvw": programming_time(cells, hw, how).total_s  # noqa: E731
    return t(mixed), t(one, "one-shot"), t(counts)


def exact_reference_in_training() -> Any:
    """Make the offset layout's programming (what KD's noise draws) leave the reference
    column exactly at its level; returns the function that undoes it."""
    from xbar import layout

    original = layout.OffsetLayout.program

    def program(self: Any, weights: Any, device: Any, rng: Any, scale: str = "column") -> Any:
        cells = original(self, weights, device, rng, scale)
        refs = self.columns(len(cells.g_scale)).ref_cols
        g, lv = cells.g_us, cells.target_levels
        if isinstance(g, np.ndarray):
            g[:, refs] = np.asarray(device.levels)[lv[:, refs]]
        else:
            import torch
            table = torch.as_tensor(np.asarray(device.levels), dtype=g.dtype, device=g.device)
            g[:, torch.as_tensor(refs, device=g.device)] = table[
                lv[:, torch.as_tensor(refs, device=lv.device)].long()]
        return cells

    layout.OffsetLayout.program = program
    return lambda: setattr(layout.OffsetLayout, "program", original)


def load_student(args: argparse.Namespace, teacher: Any, ds: Any, device: Any, xbar: Any,
                 kd: Any) -> tuple[Any, dict[str, Any], float]:
    """The KD student for this recipe: from the cache, or distilled (and cached)."""
    import torch

    from xbar.mapping.recovery.techniques.kd import distill

    what = [args.model, args.device, args.seed, asdict(kd)]
    if args.kd_reference != "programmed":
        what.append(args.kd_reference)
    key = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(args.cache) / f"{args.model}-{key}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["student"], saved["info"], 0.0
    start = time.perf_counter()
    undo = exact_reference_in_training() if args.kd_reference == "exact" else (lambda: None)
    try:
        student, info = distill(teacher, ds, device, xbar, kd, args.seed)
    finally:
        undo()
    spent = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"student": student, "info": info}, path)
    return student, info, spent


def table(path: str) -> str:
    """The runs of ``path`` (JSON lines) as a markdown table, in the order measured."""
    head = ("| label | model | method | reference (chip / KD) | F | area | budget | lr | KD "
            "recipe | KD clean | accuracy (2 chips) | - FP32 | adapt |\n"
            "|---|---|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|")
    rows = [head]
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        kd = r.get("kd_recipe") or {}
        recipe = ("-" if not kd else f"{kd['epochs']} ep, clip {kd['weight_clip']}, warmup "
                  f"{kd['noise_warmup']}, draws {kd['draws']}")
        budget = "oracle" if r["oracle"] else f"{r['steps']} x {r['batch']}"
        if r.get("oracle_train"):
            budget += f" + {r['steps']} x {r['batch']}"
        clean = r.get("kd_student_clean")
        adapt = r.get("adapt_s")
        rows.append(
            f"| {r['label']} | {r['model']} | {r['method']} ({r['selection']}) | "
            f"{r.get('reference', 'programmed')} / {r.get('kd_reference', 'programmed')} | "
            f"{100 * r['fraction']:.1f} % | {100 * r['sram_area_fraction']:.2f} % | {budget} | "
            f"{r['lr']:g} | {recipe} | {'-' if clean is None else f'{100 * clean:.2f}'} | "
            f"{100 * r['accuracy']:.2f} +- {100 * r['accuracy_std']:.2f} % | "
            f"{100 * (r['accuracy'] - r['fp32']):+.2f} | "
            f"{'-' if adapt is None else f'{adapt:.1f} s'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--model", default="lenet5", help="zoo model on MNIST (lenet5, mlp)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--device", default="charan2020-dac")
    p.add_argument("--fractions", default="0.03,0.06,0.08,0.12",
                   help="SRAM fractions of each layer's weights, comma-separated")
    p.add_argument("--selection", default="fisher", choices=SELECTIONS)
    p.add_argument("--no-kd", action="store_true",
                   help="adapt the one-shot-programmed teacher (osa/rsa) instead of the student")
    p.add_argument("--chips", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.5, help="adaptation rate, in SRAM word steps")
    p.add_argument("--kd-epochs", type=int, default=10)
    p.add_argument("--kd-noise-warmup", type=float)
    p.add_argument("--kd-weight-clip", type=float)
    p.add_argument("--kd-draws", type=int)
    p.add_argument("--kd-lr", type=float)
    p.add_argument("--reference", default="programmed", choices=("programmed", "exact", "rvw"),
                   help="one-cell mapping: the reference column one-shot programmed like every "
                        "cell (the model), exact (at its level: a diagnosis), or rvw (its "
                        "cells alone written by write-verify; the time is reported)")
    p.add_argument("--kd-reference", default="programmed", choices=("programmed", "exact"),
                   help="the reference column KD's device noise draws (exact: a student for "
                        "--reference exact chips)")
    p.add_argument("--oracle", action="store_true",
                   help="set the SRAM words to cancel the chosen weights' errors; no training")
    p.add_argument("--oracle-train", action="store_true",
                   help="with --oracle: then train --steps x --batch from there")
    p.add_argument("--baselines", action="store_true",
                   help="also run software, one-shot and kd (once, on the first fraction)")
    p.add_argument("--label", default="", help="a name for this configuration in the output")
    p.add_argument("--cache", default="results/work2/students")
    p.add_argument("--out", default="results/work2/runs.jsonl")
    p.add_argument("--table", metavar="FILE.jsonl",
                   help="print the runs of FILE.jsonl as a markdown table and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0

    import torch  # noqa: F401  (loaded before numba, as the CLI does)

    from xbar.config import load_hardware
    from xbar.devices.presets import preset, preset_hardware
    from xbar.mapping.data.workflow import calibration_inputs, load_teacher
    from xbar.mapping.chip import Chip
    from xbar.mapping.geometry import layer_specs
    from xbar.mapping.recovery import compare as cmp
    from xbar.mapping.recovery.techniques.kd import kd_config
    from xbar.mapping.recovery.techniques.sram import AdaptConfig, adapt
    from xbar.timing.area import sram_area_fraction

    wall0 = time.perf_counter()
    fractions = [float(f) for f in args.fractions.split(",")]
    teacher = load_teacher(args.model, args.dataset)
    ds = teacher.dataset
    device = preset(args.device)
    hw = load_hardware(preset_hardware(args.device))
    kd = kd_config(epochs=args.kd_epochs, noise_warmup=args.kd_noise_warmup,
                   weight_clip=args.kd_weight_clip, draws=args.kd_draws,
                   learning_rate=args.kd_lr)
    student, kd_info, kd_s = (None, {}, 0.0) if args.no_kd else load_student(
        args, teacher.model, ds, device, hw.xbar, kd)
    adapt_cfg = AdaptConfig(steps=args.steps, batch_size=args.batch, learning_rate=args.lr)
    holder = {"model": student if student is not None else teacher.model}
    cmp.attach_sram = patched_attach(args.selection, holder)
    if args.reference == "exact":
        class ExactReferenceChip(Chip):
            @classmethod
            def program(cls, *a: Any, **k: Any) -> Chip:
                chip = super().program(*a, **k)
                exact_reference(chip)
                return chip

        cmp.Chip = ExactReferenceChip
    ref_times: list[tuple[float, float, float]] = []
    if args.reference == "rvw":
        class RVWReferenceChip(Chip):
            @classmethod
            def program(cls, *a: Any, **k: Any) -> Chip:
                chip = super().program(*a, **k)
                ref_times.append(rvw_reference(chip, hw, chip.seed))
                return chip

        cmp.Chip = RVWReferenceChip
    specs = layer_specs(teacher.model, tuple(ds.input_shape))
    method = ("" if args.no_kd else "kd+") + ("rsa" if args.selection == "random" else "osa")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(fractions):
        start = time.perf_counter()
        record: dict[str, Any] = {
            "label": args.label, "model": args.model, "device": args.device, "fraction": f,
            "selection": args.selection, "kd": not args.no_kd, "steps": args.steps,
            "batch": args.batch, "lr": args.lr, "oracle": args.oracle,
            "oracle_train": args.oracle_train, "reference": args.reference,
            "kd_reference": args.kd_reference, "chips": args.chips, "seed": args.seed,
            "kd_recipe": asdict(kd) if not args.no_kd else None,
            "kd_student_clean": kd_info.get("student_fp32_accuracy"),
            "kd_train_s": kd_info.get("train_s"), "kd_distilled_now_s": kd_s}
        if args.oracle:
            accs, areas = [], []
            for c in range(args.chips):
                seed = args.seed + c
                chip = cmp.Chip.program(holder["model"], device, hw.xbar, seed, "column", "",
                                    tuple(ds.input_shape))
                chip.use_backend("cpu").calibrate(calibration_inputs(ds, seed=seed))
                cmp.attach_sram(chip, f, hw.adaptation.sram_word_bits, "fisher", ds, seed)
                oracle_fill(chip, holder["model"])
                if args.oracle_train:
                    adapt(chip, ds, "sram", adapt_cfg, seed)
                words = [int(layer.sram_mask.sum()) for layer in chip.layers]
                areas.append(sram_area_fraction(specs, words, hw))
                accs.append(chip.evaluate(ds.x_test, ds.y_test))
            record.update(method=method + "-oracle", accuracies=accs,
                          accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)),
                          sram_area_fraction=float(np.mean(areas)), adapt_s=None)
        else:
            methods = (("software", "one-shot") + (() if args.no_kd else ("kd",))
                       if args.baselines and i == 0 else ("software",)) + (method,)
            settings = cmp.CompareSettings(sram_ratio=f, chips=args.chips, seed=args.seed,
                                           methods=methods, adapt=adapt_cfg, kd=kd)
            res = cmp.compare(teacher.model, ds, device, hw, settings, student=student)
            m = res["methods"]
            r = m[method]
            record.update(method=method, accuracies=r["accuracies"], accuracy=r["accuracy"],
                          accuracy_std=r["accuracy_std"],
                          sram_fraction=r["sram_fraction"],
                          sram_area_fraction=r["sram_area_fraction"], adapt_s=r["adapt_s"],
                          program_s=r["program_s"],
                          others={k: {"accuracy": v["accuracy"],
                                      "accuracy_std": v["accuracy_std"]}
                                  for k, v in m.items() if k != method})
        if ref_times:
            record.update(program_s_reference_rvw=float(np.mean([t[0] for t in ref_times])),
                          one_shot_s=float(np.mean([t[1] for t in ref_times])),
                          rvw_all_s=float(np.mean([t[2] for t in ref_times])))
            ref_times.clear()
        record["fp32"] = teacher.software_accuracy
        record["wall_s"] = time.perf_counter() - start
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"{args.label} {args.model} {record['method']} f={f:.3f} area "
              f"{100 * record['sram_area_fraction']:.2f} % acc {100 * record['accuracy']:.2f} "
              f"+- {100 * record['accuracy_std']:.2f} % ({record['accuracies']}) adapt "
              f"{record['adapt_s']} s; wall {record['wall_s']:.0f} s", flush=True)
    print(f"total wall {time.perf_counter() - wall0:.0f} s (KD {kd_s:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
