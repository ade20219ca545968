"""Validation MAE against training wall time for several runs of the trainer (their metrics.csv), on one
plot: how recipes compare at equal compute. Prints each run's last row.

    .venv/bin/python benchmarks/plot_training_runs.py LABEL=metrics.csv ... --out runs.png

`LABEL=first.csv+second.csv` chains runs (a run resumed or continued from another's checkpoint): the
second's epochs follow the first's on the time axis.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def read_rows(path: Path) -> list[dict]:
    """The rows of a trainer metrics.csv; a one-line error naming the file if it is not one."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SystemExit(f"plot_training_runs: error: {path}: {exc.strerror or exc}") from None
    if not rows or "val_mae" not in rows[0] or "seconds" not in rows[0]:
        raise SystemExit(f"plot_training_runs: error: {path}: not a trainer metrics.csv (val_mae, seconds)")
    return rows


def read_run(paths: list[Path]) -> tuple[list[float], list[float]]:
    """(cumulative minutes, validation MAE) per epoch of one or more chained trainer metrics.csv."""
    minutes, mae, total = [], [], 0.0
    for path in paths:
        for i, r in enumerate(read_rows(path), start=2):
            try:
                total += float(r["seconds"]) / 60.0
                mae.append(float(r["val_mae"]))
            except (TypeError, ValueError):
                raise SystemExit(f"plot_training_runs: error: {path}: line {i}: seconds or val_mae "
                                 "is not a number") from None
            minutes.append(total)
    return minutes, mae


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=CSV")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for spec in args.runs:  # read every run before drawing, so a bad one fails with no partial output
        label, sep, path = spec.partition("=")
        if not sep:
            print(f"plot_training_runs: error: {spec!r}: expected LABEL=CSV", file=sys.stderr)
            return 2
        runs.append((label, *read_run([Path(p) for p in path.split("+")])))
    fig, ax = plt.subplots(figsize=(7, 4))
    print("| run | epochs | minutes (epochs incl. validation) | last validation MAE |")
    print("|---|---|---|---|")
    for label, minutes, mae in runs:
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
