"""A tiny study for the study runner's tests (training.study): a registered synthetic dataset
(`test_compare_faces`), a two-variant, two-seed study on it and the command-line arguments that run it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from training.data import PoseDataset, Record, register_dataset


@register_dataset("test_compare_faces")
def compare_faces(n: int = 8) -> PoseDataset:
    rng = np.random.default_rng(1)
    records = [Record(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
                      (float(rng.uniform(-50, 50)), float(rng.uniform(-30, 30)), math.nan), None, f"g{i}")
               for i in range(n)]
    return PoseDataset("test_compare_faces", records)


STUDY_TOML = """
[study]
name = "tiny"
title = "Tiny study"
seeds = [0, 1]
reference = "a"
recalibrate_bn = 8
[[study.variants]]
key = "a"
label = "LeNet, multi-loss"
set = ["model.backbone=lenet", "loss.kind=multi"]
[[study.variants]]
key = "b"
label = "MobileNetV3, regression only"
set = ["model.backbone=mobilenet_v3_small", "loss.kind=reg"]
[model]
input_size = 32
[data]
train = "test_compare_faces"
options = {n = 12}
val_fraction = 0.25
resize = 32
[optim]
batch_size = 4
epochs = 2
max_steps_per_epoch = 2
lr = 1e-3
[run]
progress = false
[eval]
datasets = {test_compare_faces = {n = 5}}
batch_size = 8
"""


def tiny_study(tmp_path: Path, name: str = "s", extra: str = "") -> tuple[Path, list[str]]:
    """STUDY_TOML (+ `extra`) written to tmp_path/NAME.toml; (that file, the `python -m training.study`
    arguments that run it into tmp_path/NAME/out and tmp_path/NAME/runs)."""
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(STUDY_TOML + extra)
    return cfg, ["--config", str(cfg), "--out", str(tmp_path / name / "out"),
                 "--runs", str(tmp_path / name / "runs")]
