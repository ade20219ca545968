"""Test-time views for posebridge-small: accuracy against the teacher targets on the *validation split of
the training crops* (never AFLW2000) and estimator latency, per set of zoom views.

Each set averages the ROI scaled about its centre by each factor, each with its mirror image (flip
averaging), so a set of k zooms costs 2k network rows per face. The shipped `tta_zooms`
(training/distill.py TTA_ZOOMS) is chosen from this table. The split is the trainer's own (same config,
seed and fraction as training/configs/posebridge_small.toml).

    .venv/bin/python benchmarks/bench_tta_views.py --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from posebridge.inference.estimator import Estimator  # noqa: E402

SETS = [(1.0,), (0.96, 1.0, 1.04), (0.92, 1.0, 1.08), (0.88, 1.0, 1.12), (0.84, 1.0, 1.16),
        (0.92, 0.96, 1.0, 1.04, 1.08)]


def validation_crops(config: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The trainer's validation crops and their distillation targets (yaw, pitch, roll)."""
    import training.distill  # noqa: F401  (registers the aflw_distill dataset)
    from training.config import load_config
    from training.data import create_dataset, split_by_group

    cfg = load_config(config, [])
    ds = create_dataset(cfg.data.train, cfg.data.options)
    _, val = split_by_group(ds.groups, cfg.data.val_fraction, cfg.run.seed)
    images, targets = [], []
    for i in val:
        image, _, angles = ds.load(i)
        images.append(image)
        targets.append(angles)
    return images, np.asarray(targets, dtype=np.float64)


def with_zooms(est: Estimator, zooms: tuple[float, ...]) -> Estimator:
    meta = copy.deepcopy(est.meta)
    meta.extra["tta_zooms"] = list(zooms)
    return Estimator(est.backend, meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="posebridge-small")
    ap.add_argument("--config", default=str(REPO / "training" / "configs" / "posebridge_small.toml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=200, help="latency repeats per set (after 20 warm-up)")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = Estimator.load(args.model, device="cpu")
    images, targets = validation_crops(Path(args.config))
    rows = []
    for zooms in SETS:
        est = with_zooms(base, zooms)
        pred = []
        for i in tqdm(range(0, len(images), 64), desc=f"zooms {zooms}", leave=False):
            pred += [p.angles for p in est.predict_crops(images[i : i + 64])]
        err = np.abs(np.asarray(pred) - targets)
        mae = np.nanmean(err, axis=0)
        times = []
        for k in range(20 + args.repeats):
            t0 = time.perf_counter()
            est.predict_crops(images[:1])
            if k >= 20:
                times.append((time.perf_counter() - t0) * 1000.0)
        flips = 2 if base.meta.extra.get("flip_average") else 1
        rows.append({"zooms": list(zooms), "rows_per_face": flips * len(zooms), "val_yaw": mae[0],
                     "val_pitch": mae[1], "val_roll": mae[2], "val_mean": float(mae.mean()),
                     "torch_estimator_ms": statistics.median(times)})
    print(f"{args.model}: {len(images)} validation crops (teacher targets), {args.threads} threads, batch 1")
    print("| zooms | rows/face | yaw | pitch | roll | mean | estimator ms (PyTorch) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {', '.join(f'{z:g}' for z in r['zooms'])} | {r['rows_per_face']} | {r['val_yaw']:.3f} | "
              f"{r['val_pitch']:.3f} | {r['val_roll']:.3f} | **{r['val_mean']:.3f}** | "
              f"{r['torch_estimator_ms']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "val_crops": len(images), "rows": rows},
                                              indent=2) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            ax.plot(r["torch_estimator_ms"], r["val_mean"], "o")
            ax.annotate(",".join(f"{z:g}" for z in r["zooms"]), (r["torch_estimator_ms"], r["val_mean"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("estimator ms per face (PyTorch, batch 1)")
        ax.set_ylabel("validation MAE vs teacher targets (deg)")
        ax.set_title(f"{args.model}: test-time zoom views (each with flip)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
