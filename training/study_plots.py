"""A study's figures: `curves_{yaw,pitch,roll}.png` (training loss, training MAE and validation MAE
against steps per variant, mean over seeds with their range) and `summary.png` (test MAE per variant and
angle, one dot per seed). The per-run loss curves of a single training run are training/plots.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebridge.inference.meta import ANGLES
from training.study_spec import COLUMNS, StudySpec


def _curve(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps and the mean/min/max over runs of `key` at each step every run has."""
    series = []
    for r in runs:
        pts = {h["step"]: h.get(key) for h in r["history"] if h.get(key) is not None}
        series.append(pts)
    common = sorted(set.intersection(*(set(s) for s in series))) if series else []
    if not common:
        return (np.array([]),) * 4
    ys = np.array([[s[x] for x in common] for s in series], dtype=float)
    return np.array(common), ys.mean(0), ys.min(0), ys.max(0)


def plot_curves(spec: StudySpec, results: list[dict], out: Path) -> list[Path]:
    """One figure per angle (the seed's per-angle training figures): training loss, training MAE and
    validation MAE against steps for every variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    paths = []
    for angle in ANGLES:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
        baselines = []
        for i, v in enumerate(spec.variants):
            runs = [r for r in results if r["key"] == v.key]
            if not runs:
                continue
            c = colors[i % len(colors)]
            for ax, key in zip(axes, (f"train_loss_{angle}", f"train_mae_{angle}", f"val_mae_{angle}"),
                               strict=True):
                x, mean, lo, hi = _curve(runs, key)
                if x.size == 0:
                    continue
                ax.plot(x, mean, color=c, label=f"{v.label} (n={len(runs)})")
                if len(runs) > 1:
                    ax.fill_between(x, lo, hi, color=c, alpha=0.18, linewidth=0)
            final = [r["eval"]["validation"]["mae"][angle] for r in runs if "validation" in r["eval"]]
            if final:
                axes[2].plot([max(r["steps"] for r in runs)], [float(np.mean(final))], marker="*", ms=12,
                             color=c, linestyle="none")
            baselines += [r["baseline"]["validation"]["mae"][angle] for r in runs
                          if "validation" in r["baseline"]]
        if baselines:
            axes[2].axhline(float(np.mean(baselines)), color="0.3", linestyle=":", label="predict the mean")
            axes[1].axhline(float(np.mean(baselines)), color="0.3", linestyle=":")
        axes[0].set_yscale("log")
        for ax, title in zip(axes, ("training loss (own loss, log scale)", "training MAE (degrees)",
                                    "validation MAE (degrees, eval mode)"), strict=True):
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[2].set_ylim(bottom=0)
        axes[1].set_ylim(bottom=0)
        axes[2].legend(fontsize=7)
        fig.suptitle(f"{spec.title}: {angle}")
        fig.tight_layout()
        path = out / f"curves_{angle}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_summary(spec: StudySpec, summary: dict, results: list[dict], path: Path) -> Path:
    """Test-set (else validation) MAE per variant and angle: one dot per seed, bar = mean, line = baseline.
    `summary` is study_report.summarize's table of `results` (the study's finished runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = [d for d in summary["datasets"] if d != "validation"]
    panels = tests + (["validation"] if "validation" in summary["datasets"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1, 4.2), squeeze=False)
    width = 0.8 / len(COLUMNS)
    for ax, d in zip(axes[0], panels, strict=True):
        labels = []
        for i, v in enumerate(summary["variants"]):
            labels.append(v["label"])
            for j, a in enumerate(COLUMNS):
                vals = [r["eval"][d]["mae"][a] for r in results if r["key"] == v["key"] and d in r["eval"]]
                x = i + (j - (len(COLUMNS) - 1) / 2) * width
                ax.bar(x, np.mean(vals), width * 0.9, color=f"C{j}", alpha=0.55, label=a if i == 0 else None)
                ax.plot([x] * len(vals), vals, "k.", ms=4, label="one seed" if i == j == 0 else None)
                base = v["datasets"][d]["baseline"][a][0]
                ax.plot([x], [base], marker="_", ms=16, mew=2, color="0.25", linestyle="none",
                        label="predict the training mean" if i == j == 0 else None)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("MAE (degrees)")
        ax.set_title(d if d != "validation" else "validation split", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    fig.suptitle(spec.title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
