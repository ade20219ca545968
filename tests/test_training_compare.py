"""The comparison runner end to end on tiny data: six models, one or two steps each, table + figures."""

from __future__ import annotations

import math

import numpy as np

from training.compare import VARIANTS, compare
from training.compare import main as compare_main
from training.config import load_config
from training.data import PoseDataset, Record, register_dataset


@register_dataset("test_compare_faces")
def compare_faces(n: int = 8) -> PoseDataset:
    rng = np.random.default_rng(1)
    records = [Record(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
                      (float(rng.uniform(-50, 50)), float(rng.uniform(-30, 30)), math.nan), None, f"g{i}")
               for i in range(n)]
    return PoseDataset("test_compare_faces", records)


def test_compare_runs_all_six_models_and_writes_table(tmp_path):
    base = load_config(None, [
        "data.train=test_compare_faces", "model.input_size=64", "optim.batch_size=2", "optim.epochs=1",
        "optim.max_steps_per_epoch=1", "data.val_fraction=0.25", "run.progress=false",
        "eval.datasets={test_compare_faces = {n = 4}}", "eval.batch_size=4",
    ])  # fmt: skip
    out, runs = tmp_path / "docs", tmp_path / "runs"
    rows = compare(base, out, runs, command="pytest", note="tiny test run")
    assert {r["key"] for r in rows} == {v.key for v in VARIANTS}
    assert len(rows) == 2 * len(VARIANTS)  # validation split + one test set per model
    table = (out / "results.md").read_text()
    assert "tiny test run" in table and "## test_compare_faces (n=4)" in table
    for v in VARIANTS:
        assert f"| {v.label} |" in table
        assert (out / f"{v.key}_loss.png").stat().st_size > 1000
        assert (runs / v.key / "best.pt").exists()
    assert all(math.isnan(r["mae_roll"]) and r["mae_yaw"] >= 0 for r in rows)  # no roll labels: n/a
    assert "| n/a |" in table


def test_compare_rejects_unknown_model(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ntrain = "test_compare_faces"\n')
    assert compare_main(["--config", str(cfg), "--out", str(tmp_path / "o"), "--only", "vgg_multi"]) == 2
    assert "unknown model 'vgg_multi'" in capsys.readouterr().err
