"""Energy and area breakdown chart (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

import io

import numpy as np

from xbar.timing.area import AREA_COMPONENTS, AreaReport
from xbar.timing.energy import COMPONENTS, InferenceEnergy


def energy_png(energy: InferenceEnergy, area: AreaReport, title: str = "") -> bytes:
    """Three panels as PNG bytes: energy per inference by layer, stacked by component; the
    chip's energy by component; the chip's area by component."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(energy.per_layer)
    fig = Figure(figsize=(13, 4.2))
    FigureCanvasAgg(fig)
    colours = matplotlib.colormaps["tab20"]
    # one colour per name in all three panels (a unit's energy and its area alike)
    names_all = list(COMPONENTS) + [c for c in AREA_COMPONENTS if c not in COMPONENTS]
    palette = {c: i for i, c in enumerate(names_all)}
    palette.update({"adc": COMPONENTS.index("adc"), "shift_add": COMPONENTS.index("shift_add"),
                    "cells": COMPONENTS.index("array_read"), "accumulator":
                    COMPONENTS.index("accumulate"), "interconnect":
                    COMPONENTS.index("interconnect"), "shared_accumulators":
                    COMPONENTS.index("accumulate")})
    ax = fig.add_subplot(1, 3, 1)
    bottom = np.zeros(len(names))
    for comp in COMPONENTS:
        vals = np.array([energy.per_layer[n][comp] for n in names]) * 1e-6
        if vals.any():
            ax.bar(range(len(names)), vals, bottom=bottom, color=colours(palette[comp]),
                   label=comp)
            bottom += vals
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("energy per inference (uJ)")
    ax.set_title("per layer", fontsize=9)
    ax.legend(fontsize=7)
    for pos, (data, unit, label) in enumerate(
            ((energy.by_component, 1e-6, "energy per inference (uJ)"),
             (area.by_component, 1e-6, "area (mm^2)")), start=2):
        ax = fig.add_subplot(1, 3, pos)
        keys = [k for k, v in data.items() if v > 0]
        ax.barh(range(len(keys)), [data[k] * unit for k in keys],
                color=[colours(palette.get(k, 19)) for k in keys])
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels(keys, fontsize=8)
        ax.set_xlabel(label)
        ax.set_title("energy by component" if pos == 2 else "area by component", fontsize=9)
    fig.suptitle(title or f"{energy.total_pj * 1e-6:.4g} uJ per inference, "
                 f"{energy.tops_per_w:.3g} TOPS/W, {area.total_mm2:.4g} mm^2", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
