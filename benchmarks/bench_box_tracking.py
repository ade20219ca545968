"""Tracking with the pose model's box head against today's tracker, on clips of real faces that move,
scale and turn in the image plane with known truth (issue 13).

    .venv/bin/python benchmarks/bench_box_tracking.py [--model posebridge-small] [--clips 20] [--frames 300]

Each clip is one held-out training crop (never trained on, never AFLW2000: the crops both recipes'
validation splits keep, training/validation_checks.py) pasted into a 640x480 frame over a textured
background, its centre drifting +-120 / +-50 px, its size 160-240 px, turning +-15 degrees in the image
plane. The truth per frame: the crop's ROI (a square on the crop, the model's 3DDFA ROI) and the pose
(the two best teachers' mean for the crop, turned by the in-plane angle exactly: Rz(theta) R).

Two trackers on the same frames, the detector inline (deterministic counts):
  template: today's tracker, the detector every `faces.redetect_every` frames and template matching
            between, the ROI mapped from the detector box;
  box head: the same, but a face the model has seen is followed by its box head's ROI; the detector
            re-checks every `model_redetect_every` frames.
Reports the ROI's IoU with the truth (mean, 10th percentile), detector runs per 1,000 frames, faces
lost (frames without an ROI), and the pose error (mean over yaw, pitch, roll) per tracker; JSON + PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posebridge.faces.detectors import create_detector  # noqa: E402
from posebridge.faces.geometry import iou  # noqa: E402
from posebridge.faces.tracker import FaceTracker  # noqa: E402
from posebridge.formats.rotation import rotate_in_plane  # noqa: E402
from posebridge.inference.crops import face_roi  # noqa: E402
from posebridge.inference.estimator import Estimator  # noqa: E402

W, H = 640, 480
OUT = Path(__file__).resolve().parent / "results" / "box_tracking"


def background(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (H // 16, W // 16, 3), np.uint8)
    return cv2.GaussianBlur(cv2.resize(noise, (W, H), interpolation=cv2.INTER_CUBIC), (31, 31), 0)


def clip(crop: np.ndarray, label: np.ndarray, frames: int, seed: int):
    """Yields (frame, truth ROI, truth pose) for one crop animated as in the module docstring."""
    bg = background(seed)
    phase = np.random.default_rng(seed).uniform(0, 2 * math.pi, 4)
    c = crop.shape[0]
    for i in range(frames):
        t = i / 30.0
        cx = W / 2 + 120 * math.sin(2 * math.pi * t / 4.0 + phase[0])
        cy = H / 2 + 50 * math.sin(2 * math.pi * t / 5.0 + phase[1])
        side = 200 * (1 + 0.2 * math.sin(2 * math.pi * t / 3.0 + phase[2]))
        theta = 15 * math.sin(2 * math.pi * t / 6.0 + phase[3])  # clockwise degrees
        m = cv2.getRotationMatrix2D((c / 2, c / 2), -theta, side / c)
        m[:, 2] += (cx, cy) - m @ np.array([c / 2, c / 2, 1.0])
        face = cv2.warpAffine(crop, m, (W, H), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.full((c, c), 255, np.uint8), m, (W, H)) > 128
        frame = bg.copy()
        frame[mask] = face[mask]
        truth_roi = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        yield frame, truth_roi, rotate_in_plane(*label, theta)


def run_tracker(est: Estimator, frames: list, use_box: bool, detector: str, redetect: int) -> dict:
    tracker = FaceTracker(create_detector(detector), redetect_every=redetect)
    ious, errs, lost = [], [], 0
    for frame, truth_roi, truth_pose in frames:
        faces = tracker.update(frame)
        if not faces:
            lost += 1
            continue
        f = faces[0]
        pose = est.predict_faces([(frame, f.box, f.detector)])[0]
        roi = face_roi(f.box, est.meta.crop, f.detector)
        if use_box:
            tracker.refine(f.face_id, pose.next_roi)
        ious.append(iou(roi, truth_roi))
        errs.append(np.abs(np.array(pose.angles) - truth_pose).mean())
    runs = tracker.stats()["detect_frames"]
    return {"iou": ious, "err": errs, "lost": lost, "detector_runs": runs, "frames": len(frames)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="posebridge-small")
    ap.add_argument("--detector", default="default")
    ap.add_argument("--redetect-every", type=int, default=10)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from training.distill import read_teacher_labels
    from training.validation_checks import validation_split

    configs = [str(Path(__file__).resolve().parents[1] / "training" / "configs" / n)
               for n in ("posebridge_small.toml", "posebridge_small_v2.toml")]
    root, names = validation_split(configs)
    labels = read_teacher_labels(root / "labels.csv")
    index = {n: i for i, n in enumerate(labels.names)}
    ot, mb = labels.teachers["opentrack"], labels.teachers["tddfa_mb05"]
    picks = [n for n in names[:: max(1, len(names) // (4 * args.clips))]
             if np.all(np.abs(ot[index[n]] - mb[index[n]]) < 5) and abs(ot[index[n]][0]) < 60][: args.clips]
    est = Estimator.load(args.model, device="cpu")
    if not est.meta.box_head:
        print(f"{est.meta.name} has no box head: nothing to compare", file=sys.stderr)
        return 2
    results = {"template": [], "box head": []}
    t0 = time.time()
    for k, name in enumerate(tqdm(picks, desc="clips", unit="clip")):
        i = index[name]
        crop = cv2.imread(str(root / "images" / name))
        frames = list(clip(crop, (ot[i] + mb[i]) / 2, args.frames, seed=k))
        results["template"].append(run_tracker(est, frames, False, args.detector, args.redetect_every))
        results["box head"].append(run_tracker(est, frames, True, args.detector, args.redetect_every))
    summary = {}
    for key, runs in results.items():
        ious = np.concatenate([r["iou"] for r in runs])
        errs = np.concatenate([r["err"] for r in runs])
        frames = sum(r["frames"] for r in runs)
        summary[key] = {
            "mean_iou": float(ious.mean()), "p10_iou": float(np.percentile(ious, 10)),
            "detector_runs_per_1000_frames": 1000.0 * sum(r["detector_runs"] for r in runs) / frames,
            "frames_without_face": int(sum(r["lost"] for r in runs)), "frames": frames,
            "pose_mae": float(errs.mean()),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"model": est.meta.name, "detector": args.detector, "clips": len(picks),
              "frames_per_clip": args.frames, "seconds": round(time.time() - t0, 1), "summary": summary}
    (args.out / "box_tracking.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(picks)} clips x {args.frames} frames, model {est.meta.name}, detector {args.detector}")
    print(f"{'tracker':<10}{'mean IoU':>10}{'p10 IoU':>9}{'det/1000':>10}{'no face':>9}{'pose MAE':>10}")
    for key, s in summary.items():
        print(f"{key:<10}{s['mean_iou']:>10.3f}{s['p10_iou']:>9.3f}{s['detector_runs_per_1000_frames']:>10.1f}"
              f"{s['frames_without_face']:>9d}{s['pose_mae']:>10.2f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for key, runs in results.items():
        axes[0].hist(np.concatenate([r["iou"] for r in runs]), bins=40, range=(0.3, 1), alpha=0.6, label=key)
        axes[1].hist(np.concatenate([r["err"] for r in runs]), bins=40, range=(0, 15), alpha=0.6, label=key)
    axes[0].set_xlabel("ROI IoU with the truth")
    axes[1].set_xlabel("pose error, mean of yaw/pitch/roll (deg)")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{est.meta.name}: box-head tracking vs template tracking ({len(picks)} clips)")
    fig.tight_layout()
    fig.savefig(args.out / "box_tracking.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
