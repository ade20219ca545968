"""Seeded studies of the seed paper's claims: every variant x every seed, trained, evaluated, tabled, plotted.

    python -m training.study --config training/configs/study_losses.toml [--resume]
    python -m training.study --config training/configs/study_backbones.toml [--resume]

A study config is a trainer config (training/config.py: the settings every run shares) plus a
`[study]` table:

    [study]
    name = "losses"                 # names the output files
    title = "Loss ablation ..."     # the table's heading
    seeds = [0, 1, 2]               # run.seed of each repeat (init, augmentation, order, validation split)
    out = "docs/comparison/losses"  # commit-able outputs: results.md/.csv/.json, PNGs, per-run JSON
    runs = "runs/study_losses"      # checkpoints (git-ignored), one folder per variant and seed
    reference = "multi"             # paired differences (same seed) are taken against this variant
    recalibrate_bn = 2048           # BatchNorm statistics re-estimated on N un-augmented training crops
    [[study.variants]]
    key = "multi"
    label = "multi-loss (CE + alpha x MSE)"
    set = ["loss.kind=multi", "loss.target=hard"]   # --set style overrides of the shared settings

Per run the trainer (training.trainer.Trainer) trains to the end of its schedule; then its `last.pt`
(the end of the schedule, not a checkpoint chosen by any score) gets its BatchNorm statistics
re-estimated on training crops (no labels used, no-op for networks without BatchNorm) and is evaluated
once on the run's validation split and on every `[eval.datasets]` entry (the test sets, e.g. the
AFLW2000-dev crops). Nothing is selected on a test set. The predict-the-mean baseline (the mean of
the run's training labels, per angle) is evaluated beside it.

Interruptions: each run writes `last.pt` every `run.checkpoint_every` epochs; `--resume` reuses
finished runs (their `study_result.json`), continues unfinished ones from `last.pt` (bit for bit on
CPU with fixed step counts: the trainer seeds every epoch) and starts the missing ones. Without
`--resume` an existing run folder is an error. A run whose stored config differs from the study's
is refused. `--pause-file F`: before each run, wait while F exists (a shared machine's quiet times).

Outputs in `out`: `results.md` (tables in the seed's format with mean +- sd over seeds, paired
differences, wall time per run), `results.csv` (one row per run and data set), `results.json`,
`curves_{yaw,pitch,roll}.png` (training loss, training MAE and validation MAE against steps per
variant, seeds' mean with their range), `summary.png` (test MAE per variant, one dot per seed) and
`runs/<variant>_s<seed>.json` + `_metrics.csv` (each run's numbers and per-epoch log).
`--report` rebuilds them from the per-run JSON files without training.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import dataclasses
import json
import logging
import math
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.inference.meta import ANGLES
from posebridge.tomlconfig import apply, apply_overrides, coerce, dump_toml, load_toml
from training.config import TrainConfig, validate
from training.data import DatasetFactory, PoseDataset, create_dataset

log = logging.getLogger("training.study")
COLUMNS = (*ANGLES, "mean")
# run settings that do not change what is trained: a resumed run may differ in these
COSMETIC = (("run", "progress"), ("run", "log_every"), ("run", "stop_after"), ("run", "checkpoint_every"),
            ("run", "num_threads"), ("data", "num_workers"), ("eval", "batch_size"), ("run", "pause_file"),
    ("run", "progress"))


# ----------------------------------------------------------------------------- config


@dataclass
class Variant:
    key: str
    label: str
    set: list[str] = field(default_factory=list)


@dataclass
class StudySpec:
    name: str = "study"
    title: str = "Study"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str = "docs/comparison/study"
    runs: str = "runs/study"
    reference: str = ""  # paired differences against this variant ("" = the first)
    recalibrate_bn: int = 2048
    note: str = ""  # one paragraph printed under the title
    checks: bool = False  # validation checks per run and over steps (training/study_checks.py)
    checks_with: list[str] = field(default_factory=list)  # more trainer configs whose held-out crops count
    checks_flip: list[str] = field(default_factory=lambda: ["both", "off"])
    reference_model: str = ""  # a model measured once on the same crops (the line to beat)
    reference_label: str = "reference"
    variants: list[Variant] = field(default_factory=list)


def _variant(table: object, i: int) -> Variant:
    where = f"study.variants[{i}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table with key, label and set")
    unknown = set(table) - {"key", "label", "set"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key (known: key, label, set)")
    if not isinstance(table.get("key"), str) or not table["key"]:
        raise ConfigError(f"{where}.key: expected a non-empty string")
    key = table["key"]
    if not key.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}.key: {key!r} must be letters, digits, '_' or '-' (it names files)")
    label = coerce(table.get("label", key), str, f"{where}.label")
    sets = coerce(table.get("set", []), list[str], f"{where}.set")
    return Variant(key, label, sets)


def load_study(path: str | Path, overrides: list[str] = ()) -> tuple[StudySpec, TrainConfig]:
    """A study config: its `[study]` table and the shared trainer settings (+ `--set` overrides)."""
    raw = load_toml(path)
    table = raw.pop("study", None)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [study] table (see training/study.py)")
    variants = table.pop("variants", [])
    spec = StudySpec()
    try:
        apply(spec, table, "study")
        spec.variants = [_variant(v, i) for i, v in enumerate(variants)]
        base = TrainConfig()
        apply(base, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    apply_overrides(base, list(overrides))
    validate(base)
    if not spec.variants:
        raise ConfigError(f"{path}: study.variants: no variant to run")
    keys = [v.key for v in spec.variants]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: study.variants: duplicate key")
    if spec.reference and spec.reference not in keys:
        raise ConfigError(f"{path}: study.reference: {spec.reference!r} is not a variant ({', '.join(keys)})")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(f"{path}: study.seeds: expected distinct seeds")
    for v in spec.variants:  # every variant's settings must be valid before anything trains
        run_config(base, spec, v, spec.seeds[0])
    return spec, base


def run_name(variant: Variant, seed: int) -> str:
    return f"{variant.key}_s{seed}"


def run_config(base: TrainConfig, spec: StudySpec, variant: Variant, seed: int) -> TrainConfig:
    cfg = copy.deepcopy(base)
    try:
        apply_overrides(cfg, variant.set)
    except ConfigError as exc:
        raise ConfigError(f"study variant {variant.key!r}: {exc}") from None
    validate(cfg)
    cfg.run.seed = seed
    cfg.run.name = f"{spec.name}-{run_name(variant, seed)}"
    cfg.run.out_dir = str(Path(spec.runs) / run_name(variant, seed))
    cfg.model.name = cfg.model.name or cfg.run.name
    return cfg


def _substance(cfg: TrainConfig) -> str:
    c = copy.deepcopy(cfg)
    default = TrainConfig()
    for section, key in COSMETIC:
        setattr(getattr(c, section), key, getattr(getattr(default, section), key))
    return dump_toml(c)


def config_digest(cfg: TrainConfig) -> str:
    """A short hash of the settings that change what is trained (COSMETIC ones left out)."""
    import hashlib

    return hashlib.sha256(_substance(cfg).encode()).hexdigest()[:16]


def check_same_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume or reuse a run trained with other settings than the study's now."""
    stored = run_dir / "config.toml"
    if not stored.is_file():
        return
    old = TrainConfig()
    apply(old, load_toml(stored))
    if _substance(old) != _substance(cfg):
        a, b = _substance(old).splitlines(), _substance(cfg).splitlines()
        diff = next((f"{x!r} -> {y!r}" for x, y in zip(a, b, strict=False) if x != y), "")
        raise ConfigError(f"{run_dir}: trained with other settings than this study's ({diff}); remove the "
                          "folder to start it again")


# ----------------------------------------------------------------------------- one run


@dataclass
class CachedDatasets:
    """A dataset factory that builds each (name, options) once and then hands out the same dataset: the
    18.7k AFLW crops are decoded once per study instead of once per run. Records are only read, never
    changed."""

    build: DatasetFactory = create_dataset
    cache: dict[str, PoseDataset] = field(default_factory=dict)

    def __call__(self, name: str, options: dict | None = None) -> PoseDataset:
        key = name + json.dumps(options or {}, sort_keys=True, default=str)
        if key not in self.cache:
            self.cache[key] = self.build(name, options)
        return self.cache[key]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, view, count: int, batch_size: int = 128) -> int:
    """Re-estimate every BatchNorm's running mean/variance (cumulative average) on `count` items of
    `view` spread evenly over it, with the model's final weights. Returns the items used (0 = no BN)."""
    from torch.utils.data import DataLoader, Subset

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or count <= 0 or len(view) == 0:
        return 0
    pick = np.linspace(0, len(view) - 1, min(count, len(view))).round().astype(int).tolist()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    device = next(model.parameters()).device
    for batch in DataLoader(Subset(view, pick), batch_size=batch_size, shuffle=False):
        model(batch["image"].to(device))
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom
    model.eval()
    return len(pick)


def _mae(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    from training.evaluate import mae_of

    return mae_of(pred, true)


def _history(rows: list[dict], steps_per_epoch: int) -> list[dict]:
    keep = ("epoch", "lr", "seconds", "train_loss", "train_mae", "val_mae")
    out = []
    for r in rows:
        row = {k: r[k] for k in r if k in keep or k.startswith(("train_loss_", "train_mae_", "val_mae_"))}
        row["step"] = int(r["epoch"]) * steps_per_epoch
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


def run_one(spec: StudySpec, base: TrainConfig, variant: Variant, seed: int, resume: bool,
            train_data: DatasetFactory = create_dataset,
            test_data: DatasetFactory = create_dataset) -> dict | None:
    """Train (or resume, or reuse) one run and evaluate its last checkpoint; None when the run stopped
    before the end of its schedule (`run.stop_after`), to be continued with --resume. The trainer builds
    its data with `train_data`, the `[eval.datasets]` test sets come from `test_data`."""
    from posebridge.models.checkpoint import load_checkpoint
    from training.data import View
    from training.evaluate import predict
    from training.trainer import Trainer
    from training.transforms import Transform

    cfg = run_config(base, spec, variant, seed)
    run_dir = Path(cfg.run.out_dir)
    done, last = run_dir / "study_result.json", run_dir / "last.pt"
    if (done.exists() or last.exists()) and not resume:
        raise ConfigError(f"{run_dir} exists: pass --resume to continue the study, or remove the folder")
    if done.exists():
        check_same_config(run_dir, cfg)
        log.info("%s: finished earlier, reusing %s", run_name(variant, seed), done)
        return json.loads(done.read_text())
    committed = Path(spec.out) / "runs" / f"{run_name(variant, seed)}.json"
    if resume and committed.is_file() and not last.exists():
        stored = json.loads(committed.read_text())
        if stored.get("config_digest", config_digest(cfg)) != config_digest(cfg):
            raise ConfigError(f"{committed}: finished with other settings than this study's; remove it to "
                              "run it again")
        log.info("%s: finished earlier (committed result %s), reusing it", run_name(variant, seed), committed)
        return {**stored, "config": cfg.to_dict(), "reused": True}
    t0 = time.time()
    load_before = _loadavg()
    trainer = Trainer(cfg, datasets=train_data)
    if last.exists():
        check_same_config(run_dir, cfg)
        trainer.resume(last)
    trainer.fit()
    spe = trainer.steps_per_epoch()
    planned = cfg.optim.epochs * spe
    budget_s = cfg.optim.time_budget_min * 60
    if trainer.step < planned and not trainer.out_of_time and not (budget_s and trainer.elapsed >= budget_s):
        log.info("%s: stopped at step %d of %d; --resume continues it", run_name(variant, seed), trainer.step,
                 planned)
        return None
    t_eval = time.time()
    model, meta = load_checkpoint(last)
    device = str(trainer.rt.device)
    test_t = Transform.from_config(cfg, train=False)
    train_idx = list(dict.fromkeys(trainer.train_view.indices))
    bn_items = recalibrate_bn(model.to(device), View(trainer.train_base, train_idx, test_t, seed),
                              spec.recalibrate_bn, cfg.eval.batch_size)
    labels = trainer.train_base.angles()
    finite = np.isfinite(labels[train_idx])
    mean_angles = np.where(finite.any(0), np.where(finite, labels[train_idx], 0).sum(0) / np.maximum(
        finite.sum(0), 1), np.nan)  # per angle over the labelled samples; NaN for an angle nobody has
    result: dict = {
        "study": spec.name, "key": variant.key, "label": variant.label, "seed": seed,
        "backbone": cfg.model.backbone, "loss": cfg.loss.kind, "target": cfg.loss.target,
        "input_size": cfg.model.input_size, "steps": trainer.step, "steps_per_epoch": spe,
        "epochs": len(trainer.history), "batch_size": cfg.optim.batch_size,
        "train_data": trainer.train_base.summary(), "split": trainer.split,
        "train_mean": [round(float(a), 4) for a in mean_angles], "bn_recalibrated_on": bn_items,
        "train_loop_s": round(trainer.elapsed, 1),
        "train_wall_s": round(sum(float(r.get("seconds", 0.0)) for r in trainer.history), 1),
        "load_average": {"start": load_before, "end": _loadavg()},  # 1/5/15-min, the machine's other work
        "finished_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "config": cfg.to_dict(), "eval": {}, "baseline": {},
    }  # fmt: skip
    last_row = trainer.history[-1] if trainer.history else {}
    result["val_raw"] = {a: last_row.get(f"val_mae_{a}") for a in ANGLES}  # eval-mode BN, no recalibration
    sets = []
    if trainer.val_view is not None:
        sets.append(("validation", trainer.val_view))
    for name, options in cfg.eval.datasets.items():
        if not isinstance(options, dict):
            raise ConfigError(f"eval.datasets.{name}: expected a table of dataset options")
        ds = test_data(name, options)
        sets.append((name, View(ds, range(len(ds)), test_t)))
    for name, view in sets:
        pred, true = predict(model, meta, view, cfg.eval.batch_size, device, progress=False)
        result["eval"][name] = {"n": len(pred), "mae": _mae(pred, true)}
        constant = np.broadcast_to(mean_angles, true.shape)
        result["baseline"][name] = {"n": len(pred), "mae": _mae(constant, true)}
    if spec.checks:
        from training.study_checks import run_checks_for

        result["checks"] = run_checks_for(spec, base, run_dir, model, meta,
                                          View(trainer.train_base, train_idx, test_t, seed))
    result["config_digest"] = config_digest(cfg)
    result["eval_s"] = round(time.time() - t_eval, 1)
    result["invocation_s"] = round(time.time() - t0, 1)
    result["history"] = _history(trainer.history, spe)
    done.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    return result


def _load_text(values: list[float] | None) -> str:
    return "/".join(f"{x:.1f}" for x in values) if values else "n/a"


def _loadavg() -> list[float] | None:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _json_default(o: object) -> object:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _wait_while(pause_file: str, poll_s: float = 60.0) -> None:
    if not pause_file:
        return
    waited = False
    while Path(pause_file).exists():
        if not waited:
            log.info("pause file %s exists: waiting until it is gone", pause_file)
            waited = True
        time.sleep(poll_s)
    if waited:
        log.info("pause file gone: continuing")


def run_study(spec: StudySpec, base: TrainConfig, resume: bool = False, only: list[str] | None = None,
              seeds: list[int] | None = None, pause_file: str = "", command: str = "") -> list[dict]:
    """Every (variant, seed) in order, seeds outermost (a partial study has whole seeds), then the report."""
    variants = [v for v in spec.variants if not only or v.key in only]
    if only and len(variants) != len(set(only)):
        unknown = sorted(set(only) - {v.key for v in spec.variants})
        raise ConfigError(f"--only: unknown variant {unknown[0]!r}; choose from "
                          f"{', '.join(v.key for v in spec.variants)}")
    seeds = seeds or spec.seeds
    out = Path(spec.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [(s, v) for s in seeds for v in variants]
    results: list[dict] = []
    t0 = time.time()
    if spec.checks:
        from training.study_checks import reference_checks

        reference_checks(spec, base)
    # each (dataset, options) is decoded once per study: one cache for the trainer's sets, one for the tests
    train_data, test_data = CachedDatasets(), CachedDatasets()
    for i, (seed, v) in enumerate(jobs):
        _wait_while(pause_file)
        log.info("=== run %d/%d: %s seed %d (%.1f min so far) ===", i + 1, len(jobs), v.key, seed,
                 (time.time() - t0) / 60)
        res = run_one(spec, base, v, seed, resume, train_data, test_data)
        if res is None:
            break
        name = run_name(v, seed)
        if res.get("reused"):
            results.append(res)
            continue
        (out / "runs" / f"{name}.json").write_text(
            json.dumps({k: r for k, r in res.items() if k != "config"}, indent=1, default=_json_default)
            + "\n")
        metrics = Path(res["config"]["run"]["out_dir"]) / "metrics.csv"
        if metrics.exists():
            shutil.copyfile(metrics, out / "runs" / f"{name}_metrics.csv")
        results.append(res)
        log.info("%s: validation %.2f, %s", name, res["eval"].get("validation", {}).get("mae", {}).get(
            "mean", math.nan), ", ".join(f"{k} {e['mae']['mean']:.2f}" for k, e in res["eval"].items()
                                         if k != "validation"))
        write_report(spec, base, command, figures=False)  # the table after every run
    write_report(spec, base, command)
    log.info("study %s: %d run(s) in this invocation, %.1f min", spec.name, len(results),
             (time.time() - t0) / 60)
    return results


# ----------------------------------------------------------------------------- report


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
    results = load_results(spec)
    if not results:
        return None
    out = Path(spec.out)
    summary = summarize(spec, results)
    _write_csv(results, out / "results.csv")
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    try:
        if figures:
            plot_curves(spec, results, out)
            plot_summary(spec, summary, out / "summary.png")
            if spec.checks:
                from training.study_checks import plot as plot_checks

                plot_checks(spec, results, out / "checks.png")
    except Exception as exc:  # noqa: BLE001 - a figure must not lose the numbers
        log.warning("plotting failed: %s", exc)
    path = out / "results.md"
    text = render_markdown(spec, base, summary, results, command)
    if spec.checks:
        from training.study_checks import markdown as checks_markdown

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


# ----------------------------------------------------------------------------- figures


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


def plot_summary(spec: StudySpec, summary: dict, path: Path) -> Path:
    """Test-set (else validation) MAE per variant and angle: one dot per seed, bar = mean, line = baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load_results(spec)
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


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.study", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="study config (training/configs/study_*.toml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a shared trainer setting (changes every run: a resumed study refuses it)")
    p.add_argument("--resume", action="store_true", help="reuse finished runs, continue unfinished ones")
    p.add_argument("--only", default="", help="comma-separated variant keys (default: all)")
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: study.seeds)")
    p.add_argument("--out", default="", help="override study.out")
    p.add_argument("--runs", default="", help="override study.runs")
    p.add_argument("--pause-file", default="", help="before each run, wait while this file exists")
    p.add_argument("--report", action="store_true", help="only rebuild the report from the finished runs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # the command that reproduces the whole study (not this invocation's --resume/--only/--seeds)
    command = "python -m training.study " + shlex.join(
        ["--config", args.config] + [x for kv in args.set for x in ("--set", kv)]
        + (["--out", args.out] if args.out else []) + (["--runs", args.runs] if args.runs else []))
    try:
        spec, base = load_study(args.config, args.set)
        spec = dataclasses.replace(spec, out=args.out or spec.out, runs=args.runs or spec.runs)
        if args.report:
            path = write_report(spec, base, command)
            if path is None:
                raise ConfigError(f"{spec.out}/runs: no finished run of this study")
        else:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or None
            run_study(spec, base, args.resume, [s for s in args.only.split(",") if s], seeds, args.pause_file,
                      command)
    except PoseBridgeError as exc:
        print(f"training.study: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"training.study: error: {exc}", file=sys.stderr)
        return 2
    md = Path(spec.out) / "results.md"
    if md.exists():
        print(md.read_text())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
