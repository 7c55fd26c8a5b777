"""Work 3 (ITT-RNA): accuracy against the stuck-at rate (0-20 %) and the lognormal sigma.

For each model (MNIST LeNet-5 and the 784-300-100-10 MLP by default), each stuck-at rate
(SA0:SA1 = 9.04:1.75, the JxCDC chip's split; our SA0 = stuck at g_min, the HRS) on the
``work3-saf`` cell and each lognormal sigma on the ``work3-lognormal`` cell
(:func:`xbar.mapping.recovery.itt_rna.stuck_device`, :func:`~xbar.mapping.recovery.itt_rna.
variation_device`), every method of ``--methods`` runs on ``--chips`` chips through
:func:`xbar.mapping.recovery.compare.compare`. It prints one table per sweep, writes every
point to ``OUT/work3_sweep.json`` as it completes (a re-run skips finished points) and draws
``OUT/work3_sweep.png``: accuracy against the rate / sigma, one line per method, the spread
over chips as error bars, FP32 dashed; below each, the loss against FP32 in points, zoomed,
with the paper's claims drawn (ITT-RNA: loss < 1 % at a 20 % stuck-at rate, a star; < 1.1 %
under variation, sigma not public: a line at every sigma).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/work3_sweep.py \\
        --models lenet5,mlp --chips 2 --out results/work3
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any


from xbar.config import load_hardware
from xbar.files import write_atomically, write_json
from xbar.mapping.data.workflow import load_teacher
from xbar.mapping.recovery.compare import CompareSettings, compare
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.mapping.recovery.itt_rna import stuck_device, variation_device

METHODS = "one-shot,rvw,kd+rsa,fault-aware-map,fault-aware-train,fault-aware+on-chip"
PAPER_SAF = (0.20, 0.01)      # (stuck-at rate, largest loss claimed)
PAPER_VARIATION_LOSS = 0.011


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="lenet5,mlp")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--saf", default="0,0.05,0.1,0.15,0.2", help="stuck-at rates")
    p.add_argument("--sigmas", default="0.1,0.3,0.5,0.7", help="lognormal sigmas")
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--chips", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200, help="KD+RSA adaptation steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--kd-epochs", type=int, default=5)
    p.add_argument("--sram-ratio", type=float, default=0.05)
    p.add_argument("--out", default="results/work3")
    p.add_argument("--merge", default="", help="other runs' work3_sweep.json files "
                   "(comma-separated) whose models are added to this run's before the "
                   "table and the plot (models run in separate processes)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "work3_sweep.json"
    done: dict[str, Any] = json.loads(store.read_text()) if store.exists() else {}
    for other in filter(None, args.merge.split(",")):
        for model, d in json.loads(Path(other).read_text()).items():
            done.setdefault(model, d)
    hw = load_hardware("default")
    methods = tuple(m for m in args.methods.split(",") if m)
    sweeps = [("saf", v, stuck_device(v)) for v in _floats(args.saf)] + \
             [("sigma", v, variation_device(v)) for v in _floats(args.sigmas)]
    for model in filter(None, args.models.split(",")):
        teacher = load_teacher(model, args.dataset, args.data_dir)
        done.setdefault(model, {"fp32": teacher.software_accuracy, "points": {}})
        for kind, value, device in sweeps:
            key = f"{kind}={value:g}"
            if key in done[model]["points"]:
                continue
            start = time.perf_counter()
            cs = CompareSettings(sram_ratio=args.sram_ratio, chips=args.chips, seed=args.seed,
                                 methods=methods, adapt=AdaptConfig(steps=args.steps,
                                                                    batch_size=args.batch),
                                 kd=KDConfig(epochs=args.kd_epochs))
            res = compare(teacher.model, teacher.dataset, device, hw, cs)
            done[model]["points"][key] = {
                "kind": kind, "value": value, "device": device.to_dict(),
                "wall_s": time.perf_counter() - start,
                "methods": {m: {k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                            | {"accuracies": r["accuracies"]}
                            for m, r in res["methods"].items()}}
            write_json(store, done)
            accs = "  ".join(f"{m} {r['accuracy']:.2%}" for m, r in res["methods"].items())
            print(f"{model} {key}: {accs}  ({time.perf_counter() - start:.0f} s)", flush=True)
    _table(done, methods)
    _plot(done, methods, out / "work3_sweep.png")
    return 0


def _table(done: dict[str, Any], methods: tuple[str, ...]) -> None:
    for model, d in done.items():
        for kind in ("saf", "sigma"):
            pts = sorted((p for p in d["points"].values() if p["kind"] == kind),
                         key=lambda p: p["value"])
            if not pts:
                continue
            print(f"\n{model} (FP32 {d['fp32']:.2%}), {kind}")
            print(f"{kind:>6} " + " ".join(f"{m:>20}" for m in methods))
            for pt in pts:
                cells = []
                for m in methods:
                    r = pt["methods"].get(m)
                    cells.append(f"{r['accuracy']:>12.2%} ±{r['accuracy_std']:5.2%}" if r
                                 else f"{'-':>20}")
                print(f"{pt['value']:>6g} " + " ".join(cells))


def _plot(done: dict[str, Any], methods: tuple[str, ...], path: Path) -> None:
    """Per model two rows: accuracy (full range) and loss against FP32 (zoomed to 0-3 points,
    the paper's bound drawn), each for the stuck-at rate and for sigma."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = list(done)
    fig = Figure(figsize=(11, 7.6 * len(models)))
    FigureCanvasAgg(fig)
    sweeps = (("saf", "stuck-at rate (SA0:SA1 = 9.04:1.75)", PAPER_SAF[1]),
              ("sigma", "lognormal sigma (ln units)", PAPER_VARIATION_LOSS))
    for r, model in enumerate(models):
        d = done[model]
        fp32 = d["fp32"]
        for c, (kind, label, bound) in enumerate(sweeps):
            pts = sorted((p for p in d["points"].values() if p["kind"] == kind),
                         key=lambda p: p["value"])
            for zoom in (False, True):
                ax = fig.add_subplot(2 * len(models), 2, 4 * r + 2 * zoom + c + 1)
                for m in methods:
                    sel = [p for p in pts if m in p["methods"]]
                    if not sel:
                        continue
                    xs = [p["value"] for p in sel]
                    ys = [p["methods"][m]["accuracy"] for p in sel]
                    es = [p["methods"][m]["accuracy_std"] for p in sel]
                    if zoom:
                        ys = [100 * (fp32 - y) for y in ys]
                        es = [100 * e for e in es]
                    ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=m)
                where = "at 20 %" if kind == "saf" else "(sigma not public)"
                if zoom:
                    ax.axhline(100 * bound, color="red", ls=":", lw=1.2,
                               label=f"ITT-RNA: loss < {100 * bound:g} % {where}")
                    if kind == "saf":
                        ax.plot([PAPER_SAF[0]], [100 * bound], marker="*", ms=14,
                                color="red", ls="none")
                    ax.set_ylim(-0.5, 3.0)
                    ax.set_ylabel("loss against FP32 (points)")
                else:
                    ax.axhline(fp32, color="k", ls="--", lw=0.8, label=f"FP32 {fp32:.2%}")
                    ax.set_ylim(0.5, 1.0)
                    ax.set_ylabel("test accuracy")
                ax.set_xlabel(label)
                ax.set_title(f"{model} on MNIST" + (": loss, zoomed" if zoom else ""))
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7, loc="upper left" if zoom else "lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
