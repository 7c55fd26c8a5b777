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

from xbar.files import stamp_hdf5, write_atomically, write_pngs

__all__ = ["FORMAT", "FORMAT_VERSION", "format_rows", "save_reproduce", "sensitivity_plot"]

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
    """PNG: speedup against RRAM write time, one line per accounting and budget, the
    published band shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    ax, bx = fig.add_subplot(121), fig.add_subplot(122)
    acc_rows = [r for r in rows if r["accounting"] != "drivers"]
    keys = sorted({(r["accounting"], r["steps"], r["batch"]) for r in acc_rows})
    styles = {"full-chip": "-", "cell-by-cell": "--"}
    for acc, steps, batch in keys:
        pts = sorted((r["write_time_ns"], r["speedup"]) for r in acc_rows
                     if (r["accounting"], r["steps"], r["batch"]) == (acc, steps, batch))
        ax.plot([p[0] / 1000 for p in pts], [p[1] for p in pts], marker="o",
                ls=styles.get(acc, "-"), label=f"{acc}; adapt {steps} x {batch}")
    ax.set_xscale("log")
    ax.set_xlabel("RRAM write time per pulse (us)")
    ax.set_title("accounting, write time and adaptation budget", fontsize=9)
    drv = [r for r in rows if r["accounting"] == "drivers"]
    for t_ns in sorted({r["write_time_ns"] for r in drv}):
        pts = sorted((r["drivers"], r["speedup"]) for r in drv if r["write_time_ns"] == t_ns)
        bx.plot([p[0] for p in pts], [p[1] for p in pts], marker="s",
                label=f"write {t_ns / 1000:g} us")
    if drv:
        bx.set_title(f"write parallelism (full-chip otherwise; adapt {drv[0]['steps']} x "
                     f"{drv[0]['batch']})", fontsize=9)
    bx.set_xscale("log", base=2)
    bx.set_xlabel("write drivers per array")
    for a in (ax, bx):
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
                    col = [r[k] for r in sens]
                    s.create_dataset(k, data=np.asarray(col) if not isinstance(col[0], str)
                                     else np.asarray(col, dtype=h5py.string_dtype()))
            p = f.create_group("plots")
            for name, data in images.items():
                p.create_dataset(f"{name}.png", data=np.frombuffer(data, dtype=np.uint8))

    write_atomically(path, write)
    return write_pngs(path, images)


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
    return "\n".join(lines)
