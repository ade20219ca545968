"""Learning check on real faces: train on the AFLW yaw crops, test yaw MAE on AFLW2000 dev crops.

    python benchmarks/learning_check.py                 # train (config below) + evaluate
    python benchmarks/learning_check.py --skip-train    # evaluate an existing runs/learning_check

Trains `training/configs/learning_check.toml` (ResNet-18 from scratch, 1 CPU thread, time-budgeted)
on `../shared/data/aflw-yaw-crops` (10% held out by image for validation; yaw beyond ±99 skipped and
counted; AFLW2000 names refused), then evaluates the best checkpoint on `../shared/data/
aflw2000-dev-crops` (same 3DDFA crop protocol; labels from the .mat files of aflw2000-dev; images
with any angle beyond ±99 skipped and counted). Prints the yaw MAE next to predict-the-mean
baselines and writes `report.md`, `report.json`, `error_vs_yaw.png` under the run's `report/`.
Pass criterion (issue 3): yaw MAE <= 12.5 degrees (the test-mean baseline is ~25.5).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.config import load_config  # noqa: E402
from training.data import create_dataset  # noqa: E402
from training.evaluate import evaluate_checkpoint, write_outputs  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TARGET = 12.5


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "training/configs/learning_check.toml"))
    p.add_argument("--set", action="append", default=[], help="config override for the training run")
    p.add_argument("--skip-train", action="store_true", help="evaluate the existing run only")
    args = p.parse_args()
    for need in ("aflw-yaw-crops", "aflw2000-dev-crops", "aflw2000-dev"):
        if not (SHARED / need).exists():
            print(f"learning_check: skipped, needs ../shared/data/{need}")
            return 0
    cfg = load_config(args.config, args.set)
    run_dir = REPO / cfg.run.out_dir
    t0 = time.time()
    if not args.skip_train:
        overrides = [x for s in args.set for x in ("--set", s)]
        cmd = [sys.executable, "-m", "training.train", "--config", args.config, *overrides]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
    wall = time.time() - t0
    summary_file = run_dir / "summary.json"  # written when the run ends
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {"note": "run unfinished"}
    ckpt = run_dir / "best.pt"

    test = create_dataset("aflw2000_crops", {"root": str(SHARED / "aflw2000-dev-crops"),
                                             "labels": str(SHARED / "aflw2000-dev")})
    result = evaluate_checkpoint(ckpt, test, progress=True)
    flip = evaluate_checkpoint(ckpt, test, progress=False, flip_average=True)
    train_set = create_dataset("aflw_yaw_crops", {"root": str(SHARED / "aflw-yaw-crops")})
    yaw = result.true[:, 0]
    train_mean = float(np.nanmean(train_set.angles()[:, 0]))
    base_train = float(np.abs(yaw - train_mean).mean())
    base_test = float(np.abs(yaw - yaw.mean()).mean())
    base_median = float(np.abs(yaw - np.median(yaw)).mean())
    mae = result.mae["yaw"]
    report = {
        "checkpoint": str(ckpt.relative_to(REPO)), "backbone": cfg.model.backbone,
        "input_size": cfg.model.input_size, "threads": cfg.run.num_threads,
        "train_summary": summary, "test": test.summary(), "test_images": result.n,
        "yaw_mae": mae, "yaw_mae_flip_average": flip.mae["yaw"],
        "baseline_train_mean": base_train, "baseline_test_mean": base_test,
        "baseline_test_median": base_median,
        "target": TARGET, "passed": mae <= TARGET,
        "wall_seconds_this_invocation": round(wall, 1),
    }  # fmt: skip
    out = run_dir / "report"
    title = f"{cfg.model.backbone} on AFLW2000-dev crops: yaw MAE {mae:.2f}"
    write_outputs(result, out, title=title, angles=("yaw",))  # only the yaw head was trained
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [
        "| predictor | yaw MAE (deg) on AFLW2000-dev crops |", "|---|---:|",
        f"| {cfg.model.backbone} @ {cfg.model.input_size}px, trained on AFLW yaw crops | {mae:.2f} |",
        f"| same, with flip averaging | {flip.mae['yaw']:.2f} |",
        f"| predict the training-set mean yaw ({train_mean:.2f}) | {base_train:.2f} |",
        f"| predict the test-set mean yaw (oracle constant) | {base_test:.2f} |",
        f"| predict the test-set median yaw (oracle constant) | {base_median:.2f} |",
    ]  # fmt: skip
    text = "\n".join(lines)
    (out / "report.md").write_text(text + "\n")
    print(test.summary())
    print(f"training: {summary.get('train_seconds')} s training, {summary.get('steps')} steps, "
          f"{summary.get('epochs_run')} epoch(s), best epoch {summary.get('best_epoch')}, "
          f"validation yaw MAE {summary.get('best_val_mae', float('nan')):.2f}")
    print(text)
    print(f"target <= {TARGET}: {'PASS' if mae <= TARGET else 'FAIL'}  (report in {out.relative_to(REPO)})")
    return 0 if mae <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
