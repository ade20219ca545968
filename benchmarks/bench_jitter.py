"""The raw network's frame-to-frame spread on still faces with camera noise (issue 13, item 5): how much
a model's answer wobbles when nothing moves, before any filtering. Users' first complaint about head
trackers is a jittery still head.

    .venv/bin/python benchmarks/bench_jitter.py MODEL [MODEL ...] [--faces 40] [--frames 60] \
        [--flip both,alternate,off]

Faces: held-out training crops (never AFLW2000, never trained on: training/validation_checks.py's split),
each pasted at a fixed place in a 640x480 frame; every frame adds fresh camera noise (Gaussian, sigma 3
grey levels, and a +-2% brightness flicker). Two crops per frame: the fixed ROI (the network's own
sensitivity to noise) and the ROI from the default detector's box on that frame (what the daemon sees:
the box wobbles too). Reports, per model, the median over faces of the per-angle standard deviation
across frames (degrees) and the mean; JSON + PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posebridge.faces.detectors import create_detector  # noqa: E402
from posebridge.inference.estimator import Estimator  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "jitter"
CONFIGS = [str(Path(__file__).resolve().parents[1] / "training" / "configs" / n)
           for n in ("posebridge_small.toml", "posebridge_small_v2.toml")]


def frames_for(crop: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    base = np.full((480, 640, 3), 110, np.uint8)
    face = cv2.resize(crop, (220, 220), interpolation=cv2.INTER_CUBIC)
    base[130:350, 210:430] = face
    for _ in range(n):
        f = base.astype(np.float32) * rng.uniform(0.98, 1.02) + rng.normal(0, 3.0, base.shape)
        yield np.clip(f, 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model names or .onnx/.pt files")
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--flip", default="model",
                    help="comma-separated flip modes to run each model in (model, both, alternate, off)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from training.validation_checks import validation_split

    root, names = validation_split(CONFIGS)
    names = names[:: max(1, len(names) // args.faces)][: args.faces]
    detector = create_detector("default")
    fixed_roi = (210.0 - 0.0, 130.0, 430.0, 350.0)  # the pasted crop is the ROI (3DDFA crops)
    results = {}
    runs = [(model, flip) for model in args.models for flip in args.flip.split(",")]
    for model, flip in runs:
        base = f"{Path(model).parent.name}/{Path(model).name}" if Path(model).exists() else model  # unique
        label = base if flip == "model" else f"{base} flip={flip}"
        # One estimator per ROI kind: "alternate" mirrors every other call of an estimator.
        est_fixed = Estimator.load(model, device="cpu", flip=flip)
        est_det = Estimator.load(model, device="cpu", flip=flip)
        per_fixed, per_det = [], []
        for k, name in enumerate(tqdm(names, desc=label, unit="face")):
            crop = cv2.imread(str(root / "images" / name))
            fixed, det = [], []
            for frame in frames_for(crop, args.frames, seed=k):
                fixed.append(est_fixed.predict_rois([(frame, fixed_roi)])[0].angles)
                faces = detector.detect(frame)
                if faces:
                    det.append(est_det.predict_faces([(frame, faces[0].box, faces[0].detector)])[0].angles)
            per_fixed.append(np.std(fixed, axis=0))
            if len(det) > args.frames // 2:
                per_det.append(np.std(det, axis=0))
        fixed_med, det_med = np.median(per_fixed, axis=0), np.median(per_det, axis=0)
        results[label] = {"fixed_roi": {"yaw": fixed_med[0], "pitch": fixed_med[1], "roll": fixed_med[2],
                                        "mean": float(fixed_med.mean())},
                          "detector_roi": {"yaw": det_med[0], "pitch": det_med[1], "roll": det_med[2],
                                           "mean": float(det_med.mean())},
                          "faces": len(names), "faces_with_detector_boxes": len(per_det)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "jitter.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"{len(names)} held-out training faces x {args.frames} frames; median over faces of the per-angle "
          "std across frames (deg)")
    print(f"{'model':<40}{'ROI':>8}{'yaw':>7}{'pitch':>7}{'roll':>7}{'mean':>7}")
    for model, r in results.items():
        for key in ("fixed_roi", "detector_roi"):
            v = r[key]
            print(f"{model[:39]:<40}{key.split('_')[0]:>8}{v['yaw']:>7.3f}{v['pitch']:>7.3f}"
                  f"{v['roll']:>7.3f}{v['mean']:>7.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    labels = ["yaw", "pitch", "roll"]
    width = 0.8 / (2 * len(results))
    for i, (model, r) in enumerate(results.items()):
        for j, key in enumerate(("fixed_roi", "detector_roi")):
            off = (2 * i + j) * width
            ax.bar(np.arange(3) + off, [r[key][a] for a in labels], width,
                   label=f"{model} ({key.replace('_', ' ')})")
    ax.set_xticks(np.arange(3) + width * (len(results) - 0.5))
    ax.set_xticklabels(labels)
    ax.set_ylabel("frame-to-frame std, deg (median over faces)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(args.out / "jitter.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
