"""Validation checks inside a study: each run's final model (and its weight snapshots over the steps) measured
with training.validation_checks on held-out training crops, never on a test set.

A study turns this on with `checks = true` in its `[study]` table (the v2 fine-tunes do; the seed-claim
studies do not). The crops are those that every variant's config and every config in `checks_with` (e.g.
the recipe of the model being fine-tuned from) hold out, so no compared model has trained on them.
`reference_model` (e.g. the shipped v1) is measured once on the same crops and drawn as the line to beat.

Per run (stored in its JSON under "checks"): `final` = the end-of-schedule weights with BatchNorm
statistics re-estimated, per flip mode in `checks_flip`; `steps` = one entry per snapshot
(`run.snapshot_every`), each BatchNorm-re-estimated the same way, flip mode "both".
Report: a table in results.md and `checks.png` (every check against steps, one line per variant).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("training.study")

# (label, getter) of the checks drawn and tabled; lower is better except the gains (1 is best)
CHECKS = (
    ("score", lambda c: c["score"]),
    ("consensus mean", lambda c: c["consensus"]["mean"]),
    ("human yaw", lambda c: c["human_yaw"]),
    ("eye roll", lambda c: c["eye_roll"]),
    ("roll gain ±75", lambda c: c["roll_sweep"].get("gain_75", math.nan)),
    ("roll gain ±45", lambda c: c["roll_sweep"].get("gain_45", math.nan)),
    ("roll err |roll|≥60", lambda c: c["roll_sweep"].get("err_60", math.nan)),
    ("yaw leak", lambda c: c["roll_sweep"].get("yaw_leak", math.nan)),
    ("yaw slope", lambda c: c["yaw_calibration"].get("all", math.nan)),
)
_SPLIT: dict[str, tuple[Path, list[str]]] = {}


def checks_split(spec, base) -> tuple[Path, list[str]]:
    """The held-out crops shared by every variant's config and `spec.checks_with` (cached per study)."""
    from training.study_spec import run_config
    from training.validation_checks import validation_split

    if spec.name not in _SPLIT:
        configs = [run_config(base, spec, v, spec.seeds[0]) for v in spec.variants] + list(spec.checks_with)
        _SPLIT[spec.name] = validation_split(configs)
        log.info("checks: %d held-out crops shared by %d config(s)", len(_SPLIT[spec.name][1]), len(configs))
    return _SPLIT[spec.name]


def measure(path: str | Path, spec, base, flips: list[str]) -> dict:
    """Checks of one model file per flip mode, as plain dicts."""
    from training.validation_checks import run_checks

    root, names = checks_split(spec, base)
    return {f: dataclasses.asdict(run_checks(str(path), root, names, f)) for f in flips}


def reference_checks(spec, base) -> dict | None:
    """The reference model's checks, measured once and kept in `out/reference_checks.json`."""
    if not spec.reference_model:
        return None
    path = Path(spec.out) / "reference_checks.json"
    if path.is_file():
        return json.loads(path.read_text())
    res = {"model": spec.reference_model, "label": spec.reference_label,
           "checks": measure(spec.reference_model, spec, base, list(spec.checks_flip))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    return res


def run_checks_for(spec, base, run_dir: Path, model, meta, bn_view) -> dict:
    """Checks of a finished run: its final weights (BatchNorm re-estimated, as evaluated) per flip mode and
    every snapshot in run_dir/snapshots/ (re-estimated the same way), flip "both"."""
    from posebridge.models.checkpoint import load_checkpoint, save_checkpoint
    from training.study_run import recalibrate_bn

    final = save_checkpoint(run_dir / "final.pt", model, meta)
    out = {"final": measure(final, spec, base, list(spec.checks_flip)), "steps": []}
    snaps = sorted((run_dir / "snapshots").glob("step_*.pt"))
    with tempfile.TemporaryDirectory() as tmp:
        for snap in snaps:
            m, mt = load_checkpoint(snap)
            recalibrate_bn(m, bn_view, spec.recalibrate_bn)
            path = save_checkpoint(Path(tmp) / snap.name, m, mt)
            out["steps"].append({"step": int(snap.stem.split("_")[1]), **measure(path, spec, base, ["both"])})
    return out


def markdown(spec, results: list[dict]) -> list[str]:
    """The checks table (final weights, per flip mode) with the reference model's row first."""
    ref = reference_checks(spec, None) if (Path(spec.out) / "reference_checks.json").is_file() else None
    rows = [r for r in results if r.get("checks")]
    if not rows:
        return []
    lines = ["## Validation checks (held-out training crops; training.validation_checks)", "",
             "| model | flip | " + " | ".join(n for n, _ in CHECKS) + " |",
             "|---|---|" + "---:|" * len(CHECKS)]
    entries = []
    if ref:
        entries += [(f"**{ref['label']}** (reference)", f, c) for f, c in ref["checks"].items()]
    entries += [(r["label"], f, c) for r in rows for f, c in r["checks"]["final"].items()]
    for label, flip, c in entries:
        lines.append(f"| {label} | {flip} | " + " | ".join(f"{get(c):.3f}" for _, get in CHECKS) + " |")
    lines += ["", "Lower is better except the gains and the yaw slope (1 is exact). Figure: `checks.png` "
              "(each check against steps, flip both; dotted: the reference).", ""]
    return lines


def plot(spec, results: list[dict], path: Path) -> Path | None:
    """Every check against steps for each variant (snapshots, flip both), the reference as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.get("checks", {}).get("steps")]
    if not rows:
        return None
    ref_path = Path(spec.out) / "reference_checks.json"
    ref = json.loads(ref_path.read_text()) if ref_path.is_file() else None
    cols, nrows = 3, math.ceil(len(CHECKS) / 3)
    fig, axes = plt.subplots(nrows, cols, figsize=(15, 3.2 * nrows))
    for ax, (name, get) in zip(np.ravel(axes), CHECKS, strict=False):
        for i, r in enumerate(rows):
            pts = [(s["step"], get(s["both"])) for s in r["checks"]["steps"]]
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, color=f"C{i}", label=r["label"])
        if ref and "both" in ref["checks"]:
            ax.axhline(get(ref["checks"]["both"]), color="0.2", linestyle=":", label=ref["label"])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    np.ravel(axes)[0].legend(fontsize=7)
    fig.suptitle(f"{spec.title}: validation checks over steps")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
