"""Evaluate a checkpoint on a registered test dataset: per-angle MAE, per-image CSV, error-vs-yaw PNG.

    python -m training.evaluate --checkpoint runs/x/best.pt --dataset aflw2000_crops \
        --option root=../shared/data/aflw2000-dev-crops --option labels=../shared/data/aflw2000-dev

The test-time preprocessing is the trainer's (resize + centre crop, no augmentation), rebuilt from
the config stored in the checkpoint (defaults for checkpoints made elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from posebridge.errors import PoseBridgeError
from posebridge.inference.meta import ANGLES, ModelMeta
from posebridge.models.bins import decode
from posebridge.models.checkpoint import load_checkpoint, read_checkpoint
from training.config import TrainConfig, from_dict, parse_value
from training.data import PoseDataset, View, create_dataset
from training.transforms import Transform


@dataclass
class EvalResult:
    dataset: str
    summary: str
    n: int
    mae: dict[str, float]  # per angle (NaN when the dataset has no such label) and "mean"
    pred: np.ndarray  # (N, 3) degrees
    true: np.ndarray  # (N, 3) degrees, NaN = missing
    names: list[str] = field(default_factory=list)

    def row(self) -> dict:
        return {"dataset": self.dataset, "n": self.n, **{f"mae_{k}": v for k, v in self.mae.items()}}


def stored_config(path: str | Path) -> TrainConfig:
    """The TrainConfig saved in a trainer checkpoint (defaults when there is none)."""
    payload = read_checkpoint(path)
    cfg_dict = (payload.get("training") or {}).get("config") or {}
    cfg = TrainConfig()
    if cfg_dict:
        from_dict({s: {k: v for k, v in t.items()} for s, t in cfg_dict.items() if isinstance(t, dict)}, cfg)
    return cfg


def mae_of(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    out = {}
    for i, a in enumerate(ANGLES):
        ok = np.isfinite(true[:, i])
        out[a] = float(np.abs(pred[ok, i] - true[ok, i]).mean()) if ok.any() else math.nan
    vals = [v for v in out.values() if not math.isnan(v)]
    out["mean"] = float(np.mean(vals)) if vals else math.nan
    return out


@torch.no_grad()
def predict(model: torch.nn.Module, meta: ModelMeta, view: View, batch_size: int = 64,
            device: str = "cpu", progress: bool = True,
            flip_average: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true angles (degrees) over a View, optionally averaging with the mirrored crop."""
    from tqdm import tqdm

    model = model.to(device).eval()
    preds, trues = [], []
    loader = DataLoader(view, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        x = batch["image"].to(device)
        outs = model(x)
        p = torch.stack([decode(o, meta.bins[a])[0] for o, a in zip(outs, ANGLES, strict=True)], 1)
        if flip_average:
            outs_f = model(torch.flip(x, dims=[3]))
            pf = torch.stack([decode(o, meta.bins[a])[0] for o, a in zip(outs_f, ANGLES, strict=True)], 1)
            pf[:, 0], pf[:, 2] = -pf[:, 0], -pf[:, 2]
            p = (p + pf) / 2
        preds.append(p.cpu().numpy())
        trues.append(batch["angles"].numpy())
    return np.concatenate(preds), np.concatenate(trues)


def evaluate_checkpoint(checkpoint: str | Path, dataset: str | PoseDataset, options: dict | None = None,
                        batch_size: int = 64, device: str = "cpu", progress: bool = True,
                        flip_average: bool = False) -> EvalResult:
    model, meta = load_checkpoint(checkpoint)
    cfg = stored_config(checkpoint)
    cfg.model.input_size = meta.input_size
    base = dataset if isinstance(dataset, PoseDataset) else create_dataset(dataset, options)
    view = View(base, range(len(base)), Transform.from_config(cfg, train=False))
    pred, true = predict(model, meta, view, batch_size, device, progress, flip_average)
    names = [Path(str(r.image)).name if not isinstance(r.image, np.ndarray) else str(i)
             for i, r in enumerate(base.records)]
    return EvalResult(base.name, base.summary(), len(base), mae_of(pred, true), pred, true, names)


def write_outputs(result: EvalResult, out_dir: str | Path, title: str = "",
                  angles: tuple[str, ...] = ANGLES) -> None:
    """per_image.csv, metrics.json and error_vs_yaw.png (plotting the errors of `angles`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "per_image.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image"] + [f"true_{a}" for a in ANGLES] + [f"pred_{a}" for a in ANGLES])
        for name, t, p in zip(result.names, result.true, result.pred, strict=True):
            w.writerow([name] + [f"{v:.3f}" for v in t] + [f"{v:.3f}" for v in p])
    metrics = {**result.row(), "summary": result.summary}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, a in enumerate(ANGLES):
        ok = np.isfinite(result.true[:, i])
        if ok.any() and a in angles:
            ax.scatter(result.true[ok, 0] if np.isfinite(result.true[ok, 0]).all() else result.true[ok, i],
                       np.abs(result.pred[ok, i] - result.true[ok, i]), s=4, alpha=0.5, label=a)
    ax.set_xlabel("true yaw (degrees)")
    ax.set_ylabel("absolute error (degrees)")
    ax.set_title(title or f"{result.dataset}: MAE {result.mae['mean']:.2f}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "error_vs_yaw.png", dpi=100)
    plt.close(fig)


def format_row(result: EvalResult) -> str:
    cells = [f"{result.mae[k]:.2f}" if not math.isnan(result.mae[k]) else "n/a" for k in (*ANGLES, "mean")]
    return (f"{result.dataset} (n={result.n}): yaw {cells[0]}  pitch {cells[1]}  roll {cells[2]}  "
            f"mean {cells[3]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", required=True, help="registered dataset name (training.data.DATASETS)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="dataset option")
    p.add_argument("--out", help="folder for per_image.csv, metrics.json, error_vs_yaw.png")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--flip-average", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        options = {}
        for item in args.option:
            key, _, text = item.partition("=")
            options[key] = parse_value(text)
        result = evaluate_checkpoint(args.checkpoint, args.dataset, options, args.batch_size, args.device,
                                     flip_average=args.flip_average)
    except PoseBridgeError as exc:
        print(f"training.evaluate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(result.summary)
    print(format_row(result))
    if args.out:
        write_outputs(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
