"""The seed's comparison (Table 2): six models trained with identical settings, then evaluated.

    python -m training.compare --config training/configs/compare_300wlp.toml --out docs/comparison \
        [--runs runs/compare] [--only resnet50_multi,lenet_multi] [--set optim.epochs=2 ...]

Models: ResNet-50 multi-loss, AlexNet, LeNet, Model1 (AlexNet without ReLU) — all multi-loss — and
ResNet-50 classification-only and regression-only. Each is trained by training.train with the base
config plus its backbone/loss override, evaluated on every `[eval.datasets]` entry (the standard
protocol: AFLW2000, BIWI) and on its own validation split (the seed's in-dataset test, split by source
image here). Writes `<out>/results.md` (Table-2-style MAE table), `<out>/results.csv`,
`<out>/<model>_loss.png` (one loss-curve figure per model); checkpoints stay in `--runs`.
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import math
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.inference.meta import ANGLES
from training.config import TrainConfig, dump_toml, load_config
from training.evaluate import EvalResult, evaluate_checkpoint, mae_of, predict
from training.train import Trainer

log = logging.getLogger("training.compare")


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    backbone: str
    loss: str


VARIANTS = (
    Variant("resnet50_multi", "ResNet-50, multi-loss", "resnet50", "multi"),
    Variant("alexnet_multi", "AlexNet, multi-loss", "alexnet", "multi"),
    Variant("lenet_multi", "LeNet, multi-loss", "lenet", "multi"),
    Variant("model1_multi", "Model1 (AlexNet w/o ReLU), multi-loss", "model1", "multi"),
    Variant("resnet50_cls", "ResNet-50, classification only", "resnet50", "cls"),
    Variant("resnet50_reg", "ResNet-50, regression only", "resnet50", "reg"),
)


def variant_config(base: TrainConfig, v: Variant, runs: Path) -> TrainConfig:
    cfg = copy.deepcopy(base)
    cfg.model.backbone, cfg.loss.kind = v.backbone, v.loss
    cfg.run.name, cfg.run.out_dir = v.key, str(runs / v.key)
    cfg.model.name = f"compare-{v.key}"
    return cfg


def run_variant(base: TrainConfig, v: Variant, runs: Path, progress: bool) -> tuple[list[EvalResult], dict]:
    cfg = variant_config(base, v, runs)
    t0 = time.time()
    trainer = Trainer(cfg)
    result = trainer.fit()
    seconds = time.time() - t0
    ckpt = result.best_path or result.last_path
    results: list[EvalResult] = []
    if trainer.val_view is not None:  # the seed's in-dataset test (here split by source image)
        from posebridge.models.checkpoint import load_checkpoint

        model, meta = load_checkpoint(ckpt)
        device = str(trainer.rt.device)
        pred, true = predict(model, meta, trainer.val_view, cfg.eval.batch_size, device, progress)
        name = f"{cfg.data.train} validation split"
        results.append(EvalResult(name, name, len(pred), mae_of(pred, true), pred, true))
    for name, options in cfg.eval.datasets.items():
        if not isinstance(options, dict):
            raise ConfigError(f"eval.datasets.{name}: expected a table of dataset options")
        results.append(evaluate_checkpoint(ckpt, name, options, cfg.eval.batch_size, str(trainer.rt.device),
                                           progress=progress))
    info = {"seconds": round(seconds, 1), "best_epoch": result.best_epoch, "run_dir": str(runs / v.key),
            "steps": trainer.step}
    return results, info


def _cell(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.2f}"


def write_table(rows: list[dict], out: Path, base: TrainConfig, command: str, note: str) -> Path:
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    steps = base.optim.max_steps_per_epoch
    lines = [f"# Head-pose model comparison ({note})", "",
             f"Command: `{command}`", "",
             f"Settings (identical for every model): input {base.model.input_size}, "
             f"{base.model.num_bins} bins of {base.model.bin_width} deg (bin centres), optimizer "
             f"{base.optim.optimizer} lr {base.optim.lr:g}, batch {base.optim.batch_size}, "
             f"{base.optim.epochs} epoch(s)"
             + (f" x at most {steps} step(s)" if steps else "")
             + f", alpha {base.loss.alpha:g}, init {base.model.init}, train data `{base.data.train}`.", ""]
    for ds in datasets:
        sub = [r for r in rows if r["dataset"] == ds]
        lines += [f"## {ds} (n={sub[0]['n']})", "",
                  "| model | backbone | loss | yaw | pitch | roll | mean MAE | train time (s) |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in sub:
            lines.append(f"| {r['label']} | {r['backbone']} | {r['loss']} | {_cell(r['mae_yaw'])} | "
                         f"{_cell(r['mae_pitch'])} | {_cell(r['mae_roll'])} | {_cell(r['mae_mean'])} | "
                         f"{r['seconds']} |")
        lines.append("")
    lines += ["MAE in degrees. Loss curves: `<model>_loss.png` beside this file. 'n/a': the test set has no "
              "label for that angle.", ""]
    path = out / "results.md"
    path.write_text("\n".join(lines))
    return path


def compare(base: TrainConfig, out: Path, runs: Path, only: list[str] | None = None, progress: bool = True,
            command: str = "", note: str = "") -> list[dict]:
    variants = [v for v in VARIANTS if not only or v.key in only]
    if only and len(variants) != len(only):
        unknown = sorted(set(only) - {v.key for v in VARIANTS})
        keys = ", ".join(v.key for v in VARIANTS)
        raise ConfigError(f"--only: unknown model {unknown[0]!r}; choose from {keys}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "base_config.toml").write_text(dump_toml(base))
    rows: list[dict] = []
    for v in variants:
        log.info("=== %s ===", v.label)
        results, info = run_variant(base, v, runs, progress)
        shutil.copyfile(runs / v.key / "loss_curves.png", out / f"{v.key}_loss.png")
        shutil.copyfile(runs / v.key / "metrics.csv", out / f"{v.key}_metrics.csv")
        for r in results:
            rows.append({"key": v.key, "label": v.label, "backbone": v.backbone, "loss": v.loss,
                         "dataset": r.dataset, "n": r.n, **{f"mae_{k}": r.mae[k] for k in (*ANGLES, "mean")},
                         **info})
        write_table(rows, out, base, command, note)  # rewritten after each model: partial results survive
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True, help="folder for results.md/csv and the loss-curve PNGs")
    p.add_argument("--runs", default="runs/compare", help="folder for the per-model runs (checkpoints)")
    p.add_argument("--only", default="", help="comma-separated model keys (default: all six)")
    p.add_argument("--note", default="", help="label for the table title, e.g. 'small CPU run'")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    command = "python -m training.compare " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        base = load_config(args.config, args.set)
        rows = compare(base, Path(args.out), Path(args.runs), [s for s in args.only.split(",") if s],
                       base.run.progress, command, args.note or "small run, not the paper's setting")
    except PoseBridgeError as exc:
        print(f"training.compare: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print((Path(args.out) / "results.md").read_text())
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
