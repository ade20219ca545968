"""A study's report from its finished runs (`<out>/runs/<variant>_s<seed>.json`): the summary over seeds
(mean ± sd per angle, the predict-the-mean baseline, paired differences against the reference variant),
`results.md`, `results.csv`, `results.json` and, through training/study_plots.py and
training/study_checks.py, the figures. `python -m training.study --report` rebuilds it without training."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.study_checks import markdown as checks_markdown
from training.study_checks import plot as plot_checks
from training.study_plots import plot_curves, plot_summary
from training.study_spec import COLUMNS, StudySpec, run_name

log = logging.getLogger("training.study")


def load_results(spec: StudySpec) -> list[dict]:
    """The finished runs of this study's variants and seeds, in config order."""
    out: list[dict] = []
    for v in spec.variants:
        for s in spec.seeds:
            path = Path(spec.out) / "runs" / f"{run_name(v, s)}.json"
            if path.is_file():
                r = json.loads(path.read_text())
                r["label"] = v.label
                out.append(r)
    return out


def stats(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for one value) and count of the finite values."""
    a = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if a.size == 0:
        return math.nan, math.nan, 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan, int(a.size)


def _pm(m: float, s: float, digits: int = 2) -> str:
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}f}" if math.isnan(s) else f"{m:.{digits}f} ± {s:.{digits}f}"


def summarize(spec: StudySpec, results: list[dict]) -> dict:
    """Per variant and data set: mean and sd over seeds of each angle's MAE, the baseline, wall times,
    and the paired (same-seed) difference of the mean MAE against the reference variant."""
    datasets = list(dict.fromkeys(d for r in results for d in r["eval"]))
    ref = spec.reference or spec.variants[0].key
    by = {(r["key"], r["seed"]): r for r in results}
    table: dict = {"datasets": datasets, "reference": ref, "variants": []}
    for v in spec.variants:
        runs = [r for r in results if r["key"] == v.key]
        if not runs:
            continue
        entry = {"key": v.key, "label": v.label, "seeds": [r["seed"] for r in runs], "datasets": {},
                 "train_wall_s": stats([r["train_wall_s"] for r in runs]),
                 "eval_s": stats([r["eval_s"] for r in runs]), "steps": sorted({r["steps"] for r in runs})}
        for d in datasets:
            cells = {a: stats([r["eval"][d]["mae"][a] for r in runs if d in r["eval"]]) for a in COLUMNS}
            base = {a: stats([r["baseline"][d]["mae"][a] for r in runs if d in r["baseline"]])
                    for a in COLUMNS}
            n = sorted({r["eval"][d]["n"] for r in runs if d in r["eval"]})
            diffs = [r["eval"][d]["mae"]["mean"] - by[(ref, r["seed"])]["eval"][d]["mae"]["mean"]
                     for r in runs if (ref, r["seed"]) in by and d in r["eval"]]
            entry["datasets"][d] = {"mae": cells, "baseline": base, "n": n,
                                    "diff_vs_ref": stats(diffs) if v.key != ref else None}
        table["variants"].append(entry)
    return table


def write_report(spec: StudySpec, base: TrainConfig, command: str = "", figures: bool = True) -> Path | None:
    """Rebuild results.csv, results.json, results.md (and the figures) in `spec.out` from the finished runs;
    None when no run has finished."""
    results = load_results(spec)
    if not results:
        return None
    out = Path(spec.out)
    summary = summarize(spec, results)
    _write_csv(results, out / "results.csv")
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=json_default) + "\n")
    try:
        if figures:
            plot_curves(spec, results, out)
            plot_summary(spec, summary, results, out / "summary.png")
            if spec.checks:
                plot_checks(spec, results, out / "checks.png")
    except Exception as exc:  # noqa: BLE001 - a figure must not lose the numbers
        log.warning("plotting failed: %s", exc)
    path = out / "results.md"
    text = render_markdown(spec, base, summary, results, command)
    if spec.checks:
        text += "\n".join(checks_markdown(spec, results))
    path.write_text(text)
    return path


def _write_csv(results: list[dict], path: Path) -> None:
    fields = ["study", "key", "label", "seed", "dataset", "n", *[f"mae_{a}" for a in COLUMNS],
              *[f"baseline_{a}" for a in COLUMNS], "steps", "train_wall_s", "eval_s"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in results:
            for d, e in r["eval"].items():
                row = {k: r[k] for k in ("study", "key", "label", "seed", "steps", "train_wall_s", "eval_s")}
                row.update(dataset=d, n=e["n"])
                row.update({f"mae_{a}": f"{e['mae'][a]:.4f}" for a in COLUMNS})
                row.update({f"baseline_{a}": f"{r['baseline'][d]['mae'][a]:.4f}" for a in COLUMNS})
                w.writerow(row)


def render_markdown(spec: StudySpec, base: TrainConfig, summary: dict, results: list[dict],
                    command: str = "") -> str:
    o, m, lo = base.optim, base.model, base.loss
    seeds = sorted({r["seed"] for r in results})
    steps = sorted({r["steps"] for r in results})
    lines = [f"# {spec.title}", ""]
    if spec.note:
        lines += [spec.note, ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    total = sum(r["train_wall_s"] + r["eval_s"] for r in results)
    lines += [
        f"Runs: {len(results)} ({len(summary['variants'])} variant(s) x seeds {', '.join(map(str, seeds))}); "
        f"{' / '.join(map(str, steps))} steps of batch {o.batch_size} each; total wall time of the runs "
        f"{total / 60:.1f} min (training incl. per-epoch validation and checkpoints, plus final evaluation; "
        "data loading once per invocation not included).",
        "",
        f"Shared settings: `{base.data.train}` data, input {m.input_size} px, {m.num_bins} bins of "
        f"{m.bin_width:g} deg (centres), init {m.init}, optimizer {o.optimizer} lr {o.lr:g}"
        + (f" wd {o.weight_decay:g}" if o.weight_decay else "")
        + f", {o.schedule} schedule" + (f" ({o.warmup_steps} warm-up steps)" if o.warmup_steps else "")
        + f", loss {lo.kind}/{lo.target} alpha {lo.alpha:g} unless the variant says otherwise; "
        f"evaluated: `last.pt` (end of schedule)"
        + (f", BatchNorm statistics re-estimated on {spec.recalibrate_bn} un-augmented training crops"
           if spec.recalibrate_bn else "") + ". Full settings: `config.toml` of each run; per-run numbers: "
        "`runs/*.json`.",
        "",
    ]
    ref = summary["reference"]
    for d in summary["datasets"]:
        first = next(v for v in summary["variants"] if d in v["datasets"])
        n = first["datasets"][d]["n"]
        title = "validation split (held-out training crops, teacher targets)" if d == "validation" else d
        lines += [f"## {title} (n={'/'.join(map(str, n))}), MAE in degrees, mean ± sd over seeds", "",
                  f"| model | yaw | pitch | roll | mean | vs predict-the-mean | paired diff vs `{ref}` "
                  "(mean) | seeds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for v in summary["variants"]:
            e = v["datasets"].get(d)
            if e is None:
                continue
            cells = [_pm(*e["mae"][a][:2]) for a in COLUMNS]
            bm = e["baseline"]["mean"][0]
            rel = f"{100 * (e['mae']['mean'][0] / bm - 1):+.0f}%" if bm and not math.isnan(bm) else "n/a"
            diff = "—" if e["diff_vs_ref"] is None else _pm(*e["diff_vs_ref"][:2])
            lines.append(f"| {v['label']} | {' | '.join(cells)} | {rel} | {diff} | {len(v['seeds'])} |")
        b = first["datasets"][d]["baseline"]
        lines += [f"| *predict the training mean* | {' | '.join(_pm(*b[a][:2]) for a in COLUMNS)} | 0% | | |",
                  ""]
    lines += ["## Wall time per run (minutes: training with per-epoch validation and checkpoints, plus the "
              "final evaluation)", "",
              "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | steps |",
              "|---|" + "---:|" * (len(seeds) + 2)]
    for v in summary["variants"]:
        per = {r["seed"]: (r["train_wall_s"] + r["eval_s"]) / 60 for r in results if r["key"] == v["key"]}
        cells = [f"{per[s]:.1f}" if s in per else "—" for s in seeds]
        mean = float(np.mean(list(per.values())))
        steps_cell = "/".join(map(str, v["steps"]))
        lines.append(f"| {v['label']} | {' | '.join(cells)} | {mean:.1f} | {steps_cell} |")
    loads = [r for r in results if r.get("load_average")]
    if loads:
        lines += ["", "Machine load per run (1/5/15-minute load average of the 2-core machine at the run's "
                  "start and end: other work sharing it shows here):", ""]
        for r in loads:
            la = r["load_average"]
            lines.append(f"- {r['key']} seed {r['seed']}: {_load_text(la.get('start'))} -> "
                         f"{_load_text(la.get('end'))} (finished {r.get('finished_utc', '?')} UTC)")
    lines += ["", "Figures: `curves_yaw.png`, `curves_pitch.png`, `curves_roll.png` (per angle: training "
              "loss, training MAE and validation MAE against steps; line = mean over seeds, band = min..max; "
              "dotted line = predict-the-mean on validation; star = final validation MAE after the "
              "BatchNorm re-estimate), `summary.png` (test MAE per model, one dot per seed).", ""]
    return "\n".join(lines)


def _load_text(values: list[float] | None) -> str:
    return "/".join(f"{x:.1f}" for x in values) if values else "n/a"


def json_default(o: object) -> object:
    """`json.dumps(default=...)` for the numbers and paths in a study's results."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")

