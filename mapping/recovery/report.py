"""Results of ``xbar compare``: the table, the HDF5 file and the plots."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbar.files import stamp_hdf5, write_with_pngs

FORMAT = "xbar-sim compare"
FORMAT_VERSION = 1
LABELS = {"software": "software (FP32)", "one-shot": "one-shot", "bias-only": "bias-only",
          "kd": "KD", "rsa": "RSA", "kd+rsa": "KD+RSA", "osa": "OSA", "kd+osa": "KD+OSA",
          "rvw": "R-V-W"}


def _time(s: float) -> str:
    if s == 0:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _energy(j: float) -> str:
    if not j:
        return "-"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9)):
        if j >= scale:
            return f"{j / scale:.3g} {unit}"
    return f"{j * 1e12:.3g} pJ"


def format_table(result: dict[str, Any]) -> str:
    """One row per method, then the speedup and its definition."""
    rows = [f"{'method':<16}{'accuracy':>17}{'program':>11}{'adapt':>11}{'to accuracy':>13}"
            f"{'energy':>11}{'SRAM bits/cell':>16}{'SRAM area':>11}{'pulses':>12}"]
    for name, m in result["methods"].items():
        acc = f"{100 * m['accuracy']:.2f} +- {100 * m['accuracy_std']:.2f}%"
        area = m.get("sram_area_fraction", 0.0)
        rows.append(f"{LABELS.get(name, name):<16}{acc:>17}{_time(m['program_s']):>11}"
                    f"{_time(m['adapt_s']):>11}{_time(m['time_s']):>13}"
                    f"{_energy(m.get('energy_j', 0.0)):>11}"
                    f"{m['sram_bits_per_rram_cell']:>16.4f}"
                    f"{(f'{100 * area:.2f} %' if area else '-'):>11}{m['pulses']:>12.3g}")
    s = result["settings"]
    rows.append(f"({s['chips']} chips from seed {s['seed']}; SRAM {100 * s['sram_ratio']:g}% "
                f"of weights, {s.get('sram_word_bits', s.get('sram_bits'))}-bit words; "
                f"adaptation {s['adapt_steps']} steps "
                f"x batch {s['adapt_batch']}; accuracy mean +- std over chips; energy to program "
                f"and adapt, [energy] section; SRAM area over the chip's, [area] section)")
    if result.get("speedup_rsa_vs_rvw") is not None:
        rows.append(f"speedup of KD+RSA over R-V-W: {result['speedup_rsa_vs_rvw']:.3g}x")
        rows.append(f"  {result['speedup_definition']}")
    rvw = result["methods"].get("rvw")
    if rvw is not None and "stuck_time_share" in rvw:
        rows.append(f"R-V-W stopping rule: {result.get('rvw_stopping_rule')}")
        rows.append(f"  stuck cells ({100 * rvw['stuck_cells']:.1f} % of cells) take "
                    f"{100 * rvw['stuck_pulse_share']:.1f} % of R-V-W's pulses and "
                    f"{100 * rvw['stuck_time_share']:.1f} % of its time (T_rvw with stuck cells "
                    "charged one read each is that much shorter): the speedup hangs on the "
                    "stopping rule ([programming] max_pulses, abort_after)")
    kd = result.get("kd") or {}
    if kd.get("clean_gap", 0.0) > 0.01:  # more than 1 point: say so beside the KD rows
        rows.append(f"KD student without the device: {100 * kd['student_fp32_accuracy']:.2f} %, "
                    f"{100 * kd['clean_gap']:.2f} points below the teacher's "
                    f"{100 * kd['teacher_fp32_accuracy']:.2f} % (trained for this device's "
                    "noise)")
    return "\n".join(rows)


def plots(result: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes: accuracy per method, and time per method (log scale)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(result["methods"])
    labels = [LABELS.get(n, n) for n in names]
    m = result["methods"]
    out = {}
    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    acc = [100 * m[n]["accuracy"] for n in names]
    err = [100 * m[n]["accuracy_std"] for n in names]
    ax.bar(labels, acc, yerr=err, capsize=3, color="tab:blue")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("accuracy per method (mean +- std over chips)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    out["accuracy"] = buf.getvalue()
    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    timed = [n for n in names if m[n]["time_s"] > 0]
    ax.bar([LABELS.get(n, n) for n in timed], [m[n]["program_s"] for n in timed], label="program")
    ax.bar([LABELS.get(n, n) for n in timed], [m[n]["adapt_s"] for n in timed],
           bottom=[m[n]["program_s"] for n in timed], label="adapt")
    ax.set_yscale("log")
    if timed:
        totals = [m[n]["time_s"] for n in timed]
        ax.set_ylim(min(totals) / 5, max(totals) * 3)
    ax.set_ylabel("time on chip (s)")
    ax.set_title("time to reach accuracy per method")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    out["time"] = buf.getvalue()
    return out


def save_compare(path: str | Path, result: dict[str, Any], config: dict[str, Any]) -> list[Path]:
    """HDF5 with every figure, configuration and seeds, plus the plots (also as PNG files
    next to it); all written atomically. Returns the PNG paths."""
    path = Path(path)
    images = plots(result)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            stamp_hdf5(f, FORMAT, FORMAT_VERSION)
            f.attrs["config_json"] = json.dumps(config)
            f.attrs["speedup_definition"] = result["speedup_definition"]
            if result.get("rvw_stopping_rule"):
                f.attrs["rvw_stopping_rule"] = result["rvw_stopping_rule"]
            if result.get("speedup_rsa_vs_rvw") is not None:
                f.attrs["speedup_rsa_vs_rvw"] = result["speedup_rsa_vs_rvw"]
            for k, v in result["settings"].items():
                f.attrs[f"settings.{k}"] = v if not isinstance(v, list) else json.dumps(v)
            g = f.create_group("methods")
            for name, m in result["methods"].items():
                mg = g.create_group(name)
                mg.create_dataset("accuracies", data=np.asarray(m["accuracies"]))
                for k, v in m.items():
                    if k != "accuracies":
                        mg.attrs[k] = v
            p = f.create_group("plots")
            for name, data in images.items():
                p.create_dataset(f"{name}.png", data=np.frombuffer(data, dtype=np.uint8))
            f.attrs["kd_json"] = json.dumps(result.get("kd", {}))

    return write_with_pngs(path, write, images)
