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

Modules: training/study_spec.py (this format, run names and configs, the settings digest),
training/study_run.py (one run: train or reuse, evaluate), training/study_report.py (tables),
training/study_plots.py (figures), training/study_checks.py (`checks = true`); this one runs the study
and is the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import shlex
import shutil
import sys
import time
from pathlib import Path

from posebridge.errors import ConfigError, PoseBridgeError
from training.config import TrainConfig
from training.study_checks import reference_checks
from training.study_report import json_default, write_report
from training.study_run import CachedDatasets, run_one
from training.study_spec import StudySpec, load_study, run_name

log = logging.getLogger("training.study")


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
            json.dumps({k: r for k, r in res.items() if k != "config"}, indent=1, default=json_default)
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
