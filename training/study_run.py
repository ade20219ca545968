"""One run of a study: train it (or continue it from its `last.pt`, or reuse its finished result), then
evaluate the end-of-schedule weights with BatchNorm statistics re-estimated on training crops, on the
run's validation split and every `[eval.datasets]` test set, beside the predict-the-mean baseline.
The data comes from dataset factories the caller passes (`CachedDatasets`: each set decoded once per
study)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from posebridge.errors import ConfigError
from posebridge.inference.meta import ANGLES
from posebridge.models.checkpoint import load_checkpoint
from training.batchnorm import batchnorm_layers, reestimate_batchnorm
from training.config import TrainConfig
from training.data import DatasetFactory, PoseDataset, View, create_dataset
from training.evaluate import mae_of, predict
from training.study_checks import run_checks_for
from training.study_report import json_default
from training.study_spec import StudySpec, Variant, check_same_config, config_digest, run_config, run_name
from training.trainer import Trainer
from training.transforms import Transform

log = logging.getLogger("training.study")


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
    """Re-estimate every BatchNorm's running mean/variance (training.batchnorm) on `count` items of
    `view` spread evenly over it, with the model's final weights. Returns the items used (0 = no BN)."""
    if not batchnorm_layers(model) or count <= 0 or len(view) == 0:
        return 0
    pick = np.linspace(0, len(view) - 1, min(count, len(view))).round().astype(int).tolist()
    device = next(model.parameters()).device
    loader = DataLoader(Subset(view, pick), batch_size=batch_size, shuffle=False)
    reestimate_batchnorm(model, (batch["image"].to(device) for batch in loader))
    return len(pick)


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
        result["eval"][name] = {"n": len(pred), "mae": mae_of(pred, true)}
        constant = np.broadcast_to(mean_angles, true.shape)
        result["baseline"][name] = {"n": len(pred), "mae": mae_of(constant, true)}
    if spec.checks:
        result["checks"] = run_checks_for(spec, base, run_dir, model, meta,
                                          View(trainer.train_base, train_idx, test_t, seed))
    result["config_digest"] = config_digest(cfg)
    result["eval_s"] = round(time.time() - t_eval, 1)
    result["invocation_s"] = round(time.time() - t0, 1)
    result["history"] = _history(trainer.history, spe)
    done.write_text(json.dumps(result, indent=1, default=json_default) + "\n")
    return result


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

