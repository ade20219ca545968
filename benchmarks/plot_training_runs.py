"""Validation MAE against training wall time for several runs of the trainer (their metrics.csv), on one
plot: how recipes compare at equal compute. Prints each run's last row.

    .venv/bin/python benchmarks/plot_training_runs.py LABEL=metrics.csv ... --out runs.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def read_run(path: Path) -> tuple[list[float], list[float]]:
    """(cumulative minutes, validation MAE) per epoch of a trainer metrics.csv."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "val_mae" not in rows[0] or "seconds" not in rows[0]:
        raise SystemExit(f"plot_training_runs: error: {path}: not a trainer metrics.csv (val_mae, seconds)")
    minutes, total = [], 0.0
    for r in rows:
        total += float(r["seconds"]) / 60.0
        minutes.append(total)
    return minutes, [float(r["val_mae"]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=CSV")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    print("| run | epochs | minutes (epochs incl. validation) | last validation MAE |")
    print("|---|---|---|---|")
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            print(f"plot_training_runs: error: {spec!r}: expected LABEL=CSV", file=sys.stderr)
            return 2
        minutes, mae = read_run(Path(path))
        ax.plot(minutes, mae, label=label)
        print(f"| {label} | {len(mae)} | {minutes[-1]:.1f} | {mae[-1]:.3f} |")
    ax.set_ylim(2.5, 6.0)
    ax.set_xlabel("training minutes")
    ax.set_ylabel("validation MAE vs teacher targets (deg)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
