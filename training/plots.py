"""Loss-curve figures (the seed's per-model training plots) from a run's metrics rows."""

from __future__ import annotations

import math
from pathlib import Path

from posebridge.inference.meta import ANGLES

COLORS = {"yaw": "tab:blue", "pitch": "tab:orange", "roll": "tab:green"}


def _series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v is not None and v != "" and not (isinstance(v, float) and math.isnan(v)):
            xs.append(float(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Two panels: per-angle loss and per-angle MAE, training (solid) and validation (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "mae", "MAE (degrees)")):
        for a in ANGLES:
            for split, style in (("train", "-"), ("val", "--")):
                xs, ys = _series(rows, f"{split}_{metric}_{a}")
                if xs:
                    ax.plot(xs, ys, style, color=COLORS[a], marker="." if len(xs) < 30 else None,
                            label=f"{split} {a}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
