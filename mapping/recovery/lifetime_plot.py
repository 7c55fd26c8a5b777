"""The plot of a lifetime run (:func:`xbar.mapping.recovery.lifetime.lifetime`'s result):
accuracy against log time per method, with its refreshes and thresholds."""

from __future__ import annotations

from typing import Any


def plot_png(result: dict[str, Any]) -> bytes:
    """Accuracy against log time per method (chip 0's schedule checks as the chip lived
    them, the look-aheads that a refresh made moot hollow, refreshes as dotted lines, each
    method's threshold dashed; the ages' unrefreshed accuracy as crosses), as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, sch) in enumerate(result["schedule"].items()):
        color = f"C{i}"
        checks = sch["per_chip"]["checks"][0]
        # the chip as it lived: a check followed by an earlier one was a look-ahead the
        # refresh before it made moot (drawn hollow)
        moot = [i + 1 < len(checks) and checks[i + 1][0] < t
                for i, (t, _) in enumerate(checks)]
        lived = [c for c, m in zip(checks, moot) if not m]
        ax.plot([t for t, _ in lived], [100 * a for _, a in lived], ".-", color=color,
                lw=0.8, ms=3, label=f"{name} ({sch['refreshes']:g} refreshes"
                + ("" if sch["complete"] else ", stopped at the cap") + ")")
        ax.plot([t for (t, _), m in zip(checks, moot) if m],
                [100 * a for (_, a), m in zip(checks, moot) if m], "o", color=color, ms=4,
                mfc="none")
        for t in sch["per_chip"]["times_s"][0]:
            ax.axvline(t, color=color, lw=0.6, ls=":")
        ax.plot(result["ages_s"], [100 * a for a in result["methods"][name]["accuracy"]],
                "x", color=color, ms=7)
        ax.axhline(100 * (result["methods"][name]["accuracy_at_programming"]
                          - result["tolerance"]), color=color, lw=0.5, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['device']}: accuracy over the lifetime (x: at --ages without "
                 "refresh; dotted: refreshes; dashed: thresholds)", fontsize=8)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
