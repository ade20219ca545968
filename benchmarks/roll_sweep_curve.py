"""The roll sweep of training.validation_checks, angle by angle: mean error of the predicted roll per
in-plane turn, for several models, with the turned crop's corners black (as the check does) and with
everything outside the inscribed circle black (a circle looks the same at every turn, so no corner can
tell the network how far the crop was turned).

    .venv/bin/python benchmarks/roll_sweep_curve.py MODEL [MODEL ...] [--out DIR]

MODEL: an .onnx or a checkpoint (.pt); its label is its run folder's name. Crops: the held-out training
crops of training/configs/posebridge_small.toml that the check uses (near-frontal, teachers agreeing;
never AFLW2000). Writes roll_sweep_curve.json and .png (default: docs/models/v2_finetunes/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.formats.rotation import rotate_in_plane  # noqa: E402
from posebridge.inference.estimator import Estimator  # noqa: E402
from training.distill import read_teacher_labels  # noqa: E402
from training.validation_checks import AGREE_DEG, SWEEP_CROPS, SWEEP_THETAS, _predict, validation_split  # noqa: E402

OUT = REPO / "docs" / "models" / "v2_finetunes"
MODES = ("corners", "circle")


def sweep_crops() -> tuple[list[np.ndarray], np.ndarray]:
    """The near-frontal held-out crops the check turns, and their consensus angles."""
    root, names = validation_split([str(REPO / "training" / "configs" / "posebridge_small.toml")])
    labels = read_teacher_labels(root / "labels.csv")
    index = {n: i for i, n in enumerate(labels.names)}
    rows = [index[n] for n in names]
    ot, mb = labels.teachers["opentrack"][rows], labels.teachers["tddfa_mb05"][rows]
    agree = np.all(np.abs(ot - mb) < AGREE_DEG, axis=1) & np.all(np.abs(ot) <= 99, axis=1)
    cons = ((ot + mb) / 2)[agree]
    kept = np.array(names)[agree]
    a = np.abs(cons)
    frontal = np.flatnonzero((a[:, 0] < 20) & (a[:, 1] < 20) & (a[:, 2] < 10))
    pick = frontal[np.linspace(0, len(frontal) - 1, min(SWEEP_CROPS, len(frontal))).astype(int)]
    return [cv2.imread(str(root / "images" / kept[i])) for i in pick], cons[pick]


def turned(crop: np.ndarray, theta: float, mode: str) -> np.ndarray:
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -theta, 1.0)  # OpenCV's + angle: anticlockwise
    out = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if mode == "circle":
        y, x = np.ogrid[:h, :w]
        out[(x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2 > (min(h, w) / 2) ** 2] = 0
    return out


def curve(model: str, crops: list[np.ndarray], truth: np.ndarray, mode: str) -> list[float]:
    est = Estimator.load(model, device="cpu", backend="onnx" if model.endswith(".onnx") else "torch",
                         threads=0, flip="both")
    errors = []
    for theta in SWEEP_THETAS:
        pred = _predict(est, [turned(c, theta, mode) for c in crops])
        true = np.array([rotate_in_plane(*t, theta) for t in truth])
        errors.append(float((pred[:, 2] - true[:, 2]).mean()))
    return errors


def label(model: str) -> str:
    p = Path(model)
    return p.stem if p.suffix == ".onnx" else p.parent.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    crops, truth = sweep_crops()
    result = {"thetas": list(SWEEP_THETAS), "crops": len(crops), "models": {}}
    for model in tqdm(args.models, desc="models"):
        result["models"][label(model)] = {m: curve(model, crops, truth, m) for m in MODES}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "roll_sweep_curve.json").write_text(json.dumps(result, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        for name, curves in result["models"].items():
            ax.plot(result["thetas"], curves[mode], marker="o", label=name)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title({"corners": "turned crop, black corners (as the check)",
                      "circle": "black outside the inscribed circle (no corner cue)"}[mode])
        ax.set_xlabel("in-plane turn, degrees (clockwise +)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean error of predicted roll, degrees")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"roll sweep per turn: {len(crops)} near-frontal held-out training crops")
    fig.tight_layout()
    fig.savefig(args.out / "roll_sweep_curve.png", dpi=110)
    for name, curves in result["models"].items():
        for mode in MODES:
            print(f"{name:32s} {mode:8s} " + " ".join(f"{t:+d}:{e:+5.1f}" for t, e in
                                                       zip(result["thetas"], curves[mode], strict=True)))
    print(f"wrote {args.out / 'roll_sweep_curve.json'} and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
