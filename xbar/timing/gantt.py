"""Gantt chart of tile activity (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xbar.timing.engine import LatencyResult


def plot_timeline(result: LatencyResult, path: str | Path, title: str = "") -> None:
    """Draw one row per tile, a bar per burst of MVMs, coloured by layer, and save it.

    Uses a private Agg canvas, so it neither needs a display nor changes pyplot's backend.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    tl = result.timeline
    counts = np.asarray(tl.tiles_per_layer, dtype=float)
    # every layer gets a band of at least 1/40 of the chart, so one-tile layers stay visible
    band = np.maximum(counts, counts.sum() / 40.0)
    edges = np.concatenate([[0.0], np.cumsum(band)])
    fig = Figure(figsize=(11, 3.0 + 0.25 * len(counts)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    scale = 1e3 / result.clock_ghz  # cycles per microsecond
    if len(tl.start):
        pitch = (band / counts)[tl.layer]
        y = edges[tl.layer] + tl.tile * pitch
        x0 = tl.start / scale
        x1 = (tl.start + tl.cycles) / scale
        h = 0.9 * pitch
        verts = np.stack([np.stack([x0, y], 1), np.stack([x1, y], 1),
                          np.stack([x1, y + h], 1), np.stack([x0, y + h], 1)], 1)
        colours = matplotlib.colormaps["tab20"](tl.layer % 20)
        ax.add_collection(PolyCollection(verts, facecolors=colours, edgecolors="none"))
    ax.set_xlim(0, result.makespan_cycles / scale)
    ax.set_ylim(edges[-1], 0)
    ax.set_yticks((edges[:-1] + edges[1:]) / 2)
    ax.set_yticklabels([f"{name} ({n} tiles)" for name, n in
                        zip(tl.layer_names, tl.tiles_per_layer)], fontsize=7)
    for edge in edges[1:-1]:
        ax.axhline(edge, color="0.85", linewidth=0.5)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("layer: one row per tile")
    ax.set_title(title or f"tile activity, {result.schedule} schedule, batch {result.batch}: "
                 f"latency {result.latency_ns / 1e3:.4g} us, tile utilisation "
                 f"{100 * result.tile_utilisation:.3g}%", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
