"""Results of ``xbar reproduce``: the printed table, the HDF5 file and the speedup plot.

Layout (``format = "xbar-sim reproduce"``, ``format_version = 1``): root attributes with the
run's settings; ``/rows/<i>`` one group per published figure with every field of the row as
attributes (None stored as NaN, strings as strings); ``/sensitivity`` one dataset per column
of the speedup table; ``/plots/speedup.png`` the sensitivity plot (also written beside the
file as ``<stem>-speedup.png``); ``result_json`` the whole result.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbar.files import stamp_hdf5, write_with_pngs

__all__ = ["FORMAT", "FORMAT_VERSION", "format_rows", "save_reproduce", "sensitivity_plot",
           "speedup_table"]

FORMAT = "xbar-sim reproduce"
FORMAT_VERSION = 1


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def sensitivity_plot(rows: list[dict[str, Any]], band: tuple[float, float] = (15.0, 150.0)
                     ) -> bytes:
    """PNG: speedup against RRAM write time, (a) one line per R-V-W stopping rule and
    accounting at the first adaptation budget, (b) one per accounting and budget under the
    first rule, (c) against write drivers per array; the published band shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6))
    FigureCanvasAgg(fig)
    ax, bx, cx = fig.add_subplot(131), fig.add_subplot(132), fig.add_subplot(133)
    acc_rows = [r for r in rows if r["accounting"] != "drivers"]
    rules = list(dict.fromkeys(r.get("rule", "loop-cap") for r in acc_rows))
    budget = (acc_rows[0]["steps"], acc_rows[0]["batch"]) if acc_rows else None
    styles = {"full-chip": "-", "cell-by-cell": "--"}

    def line(axis: Any, pick: Any, label: str, style: str, x: str = "write_time_ns",
             scale: float = 1000.0, marker: str = "o") -> None:
        pts = sorted((r[x], r["speedup"]) for r in rows if pick(r))
        axis.plot([p[0] / scale for p in pts], [p[1] for p in pts], marker=marker, ls=style,
                  label=label)

    for acc in dict.fromkeys(r["accounting"] for r in acc_rows):
        for rule in rules:
            line(ax, lambda r, a=acc, u=rule: (r["accounting"], r.get("rule", "loop-cap"),
                                               r["steps"], r["batch"]) == (a, u, *budget),
                 f"{acc}; {rule}", styles.get(acc, "-"))
        for steps, batch in dict.fromkeys((r["steps"], r["batch"]) for r in acc_rows):
            line(bx, lambda r, a=acc, b=(steps, batch): (
                r["accounting"], r.get("rule", "loop-cap"), r["steps"], r["batch"]) ==
                (a, rules[0], *b), f"{acc}; adapt {steps} x {batch}", styles.get(acc, "-"))
    if budget:
        ax.set_title(f"R-V-W stopping rule (adapt {budget[0]} x {budget[1]})", fontsize=9)
        bx.set_title(f"accounting and adaptation budget ({rules[0]})", fontsize=9)
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_xlabel("RRAM write time per pulse (us)")
    drv = [r for r in rows if r["accounting"] == "drivers"]
    for t_ns in sorted({r["write_time_ns"] for r in drv}):
        line(cx, lambda r, t=t_ns: r["accounting"] == "drivers" and r["write_time_ns"] == t,
             f"write {t_ns / 1000:g} us", "-", x="drivers", scale=1.0, marker="s")
    if drv:
        cx.set_title(f"write parallelism (full-chip otherwise; {drv[0].get('rule', 'loop-cap')}"
                     f", adapt {drv[0]['steps']} x {drv[0]['batch']})", fontsize=9)
    cx.set_xscale("log", base=2)
    cx.set_xlabel("write drivers per array")
    for a in (ax, bx, cx):
        a.axhspan(band[0], band[1], color="tab:green", alpha=0.15,
                  label=f"published {band[0]:g}-{band[1]:g}x (work 1)")
        a.axhline(1.0, color="grey", lw=0.8, ls=":")
        a.set_yscale("log")
        a.set_ylabel("speedup = T_rvw / (T_one_shot + T_adapt)")
        a.legend(fontsize=6.5, loc="best")
        a.grid(True, which="both", alpha=0.3)
    fig.suptitle("KD+RSA (5 % of weights in SRAM) against R-V-W", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def save_reproduce(path: str | Path, result: dict[str, Any]) -> list[Path]:
    """Write the rows, the sensitivity table and plot, atomically; returns the PNG paths."""
    path = Path(path)
    sens = result.get("sensitivity") or []
    images = {"speedup": sensitivity_plot(sens)} if sens else {}

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            stamp_hdf5(f, FORMAT, FORMAT_VERSION)
            for k in ("model", "dataset", "chips", "seed", "steps", "batch", "kd_epochs",
                      "fp32_accuracy"):
                f.attrs[k] = result[k]
            f.attrs["fractions"] = np.asarray(result["fractions"], dtype=np.float64)
            f.attrs["result_json"] = json.dumps(_json_safe(result))
            g = f.create_group("rows")
            for i, row in enumerate(result["rows"]):
                rg = g.create_group(f"{i:03d}")
                for k, v in row.items():
                    rg.attrs[k] = np.nan if v is None else v
            if sens:
                s = f.create_group("sensitivity")
                for k in sens[0]:
                    col = [np.nan if r[k] is None else r[k] for r in sens]
                    s.create_dataset(k, data=np.asarray(col) if not isinstance(col[0], str)
                                     else np.asarray(col, dtype=h5py.string_dtype()))
            p = f.create_group("plots")
            for name, data in images.items():
                p.create_dataset(f"{name}.png", data=np.frombuffer(data, dtype=np.uint8))

    return write_with_pngs(path, write, images)


def format_rows(result: dict[str, Any]) -> str:
    """The table ``xbar reproduce`` prints. ``diff`` is simulated - published (points, or a
    ratio for speedups); where the paper prints no number but compares with its own FP32
    (``versus_our_fp32`` set), it is simulated - our FP32, marked ``*``."""

    def fmt(kind: str, v: float | None) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        if kind == "speedup":
            return f"{v:.3g}x"
        if kind == "accuracy-gain":  # a difference of two accuracies
            return f"{100 * v:+.2f} pts"
        return f"{100 * v:.2f} %"

    lines = [f"{'work':6} {'figure':20} {'published':>10} {'simulated':>18} {'diff':>9}  setting"]
    starred = False
    sens = result.get("sensitivity") or []
    for r in result["rows"]:
        pub = r["published_text"]
        sim = fmt(r["kind"], r["simulated"])
        if r["simulated_std"]:
            sim += f" +- {100 * r['simulated_std']:.2f}"
        versus = r.get("versus_our_fp32")
        if r["difference"] is None and versus is not None:
            diff = f"{100 * versus:+.2f}*"
            starred = True
        elif r["difference"] is None:
            diff = "-"
        elif r["kind"] == "speedup":
            diff = f"{r['difference']:.2g}x"
        else:
            diff = f"{100 * r['difference']:+.2f}"
        lines.append(f"{r['work']:6} {r['figure']:20} {pub:>10} {sim:>18} {diff:>9}  "
                     f"{r['setting']}")
        if r["note"]:
            lines.append(f"{'':6} {'':20} {'':>10} {'':>18} {'':>9}  note: {r['note']}")
    if starred:
        lines.append("* no published number (the paper compares with its own FP32 baseline): "
                     "simulated - our FP32, in points")
    if sens:
        lines += ["", speedup_table(sens, result.get("steps"), result.get("batch"))]
    return "\n".join(lines)


def speedup_table(sens: list[dict[str, Any]], steps: int | None, batch: int | None) -> str:
    """The speedup by R-V-W stopping rule and write time, one block per accounting, at the
    run's own adaptation budget, with the stuck cells' share of T_rvw and R-V-W's accuracy."""
    rows = [r for r in sens if r["accounting"] != "drivers"
            and (steps is None or (r["steps"], r["batch"]) == (steps, batch))]
    times = sorted({r["write_time_ns"] for r in rows})
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    head = "".join(f"{t / 1000:>10g} us" for t in times)
    out = [f"speedup of KD+RSA over R-V-W by stopping rule and write time per pulse "
           f"(adaptation {steps} x {batch}):"]
    for acc in dict.fromkeys(r["accounting"] for r in rows):
        out.append(f"  {acc:<16}{head}  stuck share of T_rvw  R-V-W accuracy")
        for rule in rules:
            these = {r["write_time_ns"]: r for r in rows
                     if r["accounting"] == acc and r["rule"] == rule}
            if not these:
                continue
            first = these[times[0]]
            acc_text = ("-" if first["rvw_accuracy"] is None
                        or not math.isfinite(first["rvw_accuracy"])
                        else f"{100 * first['rvw_accuracy']:.2f} %")
            out.append(f"  {rule:<16}" + "".join(f"{these[t]['speedup']:>12.3g}x"
                                                 for t in times)
                       + f"  {100 * first['stuck_time_share']:>19.0f} %  {acc_text:>14}")
    return "\n".join(out)
