"""AFLW2000-3D evaluation: the standard protocol (images whose three angles are within [-99, 99]),
crops from landmarks (HopeNet's loose box or 3DDFA's ROI) or from a face detector, MAE tables,
a plot of error against yaw and per-image results."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces.geometry import iou
from posebridge.inference.crops import Box, roi_3ddfa
from posebridge.inference.estimator import Estimator
from posebridge.offline.datasets import PoseSample, in_range, landmark_box, read_aflw2000

PROTOCOLS = ("hopenet", "3ddfa")
YAW_BUCKETS = ((0.0, 30.0), (30.0, 60.0), (60.0, 99.0))
ANGLE_NAMES = ("yaw", "pitch", "roll")


def hopenet_loose_box(pt2d: np.ndarray, k: float = 0.2) -> Box:
    """HopeNet's AFLW2000 test crop: the landmark box (points at -1 ignored) loosened by 2k of its
    width left and right (the right side measured after the left moved), 2k of its height above and
    0.6k below, then (Scale(224) + CenterCrop(224)) the centred square of the shorter side."""
    x0, y0, x1, y1 = landmark_box(pt2d)
    x0 -= 2 * k * abs(x1 - x0)
    y0 -= 2 * k * abs(y1 - y0)
    x1 += 2 * k * abs(x1 - x0)
    y1 += 0.6 * k * abs(y1 - y0)
    x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)  # PIL's Image.crop takes integer boxes
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def landmark_roi(sample: PoseSample, protocol: str) -> Box:
    if protocol == "hopenet":
        if sample.pt2d is None:
            raise InputFileError(sample.image_path.with_suffix(".mat"), "no pt2d landmarks (hopenet crop)")
        return hopenet_loose_box(sample.pt2d)
    if protocol == "3ddfa":
        if sample.pt3d_68 is None:
            raise InputFileError(sample.image_path.with_suffix(".mat"), "no pt3d_68 landmarks (3ddfa crop)")
        return roi_3ddfa(sample.pt3d_68[:2])
    raise ConfigError(f"--protocol: unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def default_protocol(estimator: Estimator) -> str:
    return "3ddfa" if estimator.meta.crop.protocol == "3ddfa" else "hopenet"


@dataclass
class EvalResult:
    model: str
    protocol: str
    detector: str
    images: int  # images in the protocol (angles within [-99, 99])
    evaluated: int
    missed: int  # detector mode: faces the detector did not find
    mae: dict[str, float]
    buckets: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rows")
        return d


def summarize(gt: np.ndarray, pred: np.ndarray) -> tuple[dict[str, float], list[dict]]:
    """MAE per angle and their mean, overall and by |yaw| bucket. gt, pred: (N, 3) yaw/pitch/roll."""
    err = np.abs(pred - gt)

    def mae(e: np.ndarray) -> dict[str, float]:
        if not len(e):
            return {a: float("nan") for a in (*ANGLE_NAMES, "mean")}
        m = e.mean(axis=0)
        return {**{a: float(v) for a, v in zip(ANGLE_NAMES, m, strict=True)}, "mean": float(m.mean())}

    buckets = []
    ay = np.abs(gt[:, 0])
    for lo, hi in YAW_BUCKETS:
        sel = (ay >= lo) & ((ay < hi) if hi < 99.0 else (ay <= hi))
        buckets.append({"yaw_bucket": f"{lo:.0f}-{hi:.0f}", "count": int(sel.sum()), **mae(err[sel])})
    return mae(err), buckets


def evaluate_aflw2000(
    estimator: Estimator,
    root: str | os.PathLike,
    protocol: str | None = None,
    detector: str | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> EvalResult:
    """Run the estimator over AFLW2000 and score it (see the module docstring)."""
    protocol = protocol or default_protocol(estimator)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol: unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    samples = [s for s in read_aflw2000(root) if in_range(s)]
    if not samples:
        raise InputFileError(root, "no AFLW2000 images (.jpg with .mat) with angles within [-99, 99]")
    if limit:
        samples = samples[:limit]
    det = None
    if detector:
        from posebridge.faces.detectors import create_detector

        det = create_detector(detector)
    rows: list[dict] = []
    missed = 0
    pending: list[tuple[PoseSample, object, Box]] = []  # (sample, (image, ROI) | detector face, box)

    def flush() -> None:
        if not pending:
            return
        items = [item for _, item, _ in pending]
        poses = estimator.predict_faces(items) if det is not None else estimator.predict_rois(items)
        for (s, _, roi), p in zip(pending, poses, strict=True):
            rows.append({
                "image": s.image_path.name, "gt_yaw": s.yaw, "gt_pitch": s.pitch, "gt_roll": s.roll,
                "yaw": p.yaw, "pitch": p.pitch, "roll": p.roll,
                "yaw_std": p.yaw_std, "pitch_std": p.pitch_std, "roll_std": p.roll_std,
                "roi": [round(float(v), 2) for v in roi],
            })
        pending.clear()

    for s in tqdm(samples, desc=f"AFLW2000 ({f'{detector} boxes' if detector else protocol})",
                  unit="img", disable=not progress):
        image = cv2.imread(str(s.image_path))
        if image is None:
            raise InputFileError(s.image_path, "cannot read image (missing, truncated or not an image)")
        if det is not None:
            ref = landmark_box(s.pt2d) if s.pt2d is not None else (0, 0, image.shape[1], image.shape[0])
            faces = det.detect(image)
            best = max(faces, key=lambda f: iou(f.box, ref), default=None)
            if best is None or iou(best.box, ref) < 0.1:
                missed += 1
                continue
            roi = best.box
            item = (image, roi, best.detector or det.name)
        else:
            roi = landmark_roi(s, protocol)
            item = (image, roi)
        pending.append((s, item, roi))
        if len(pending) >= batch_size:
            flush()
    flush()
    gt = np.array([[r["gt_yaw"], r["gt_pitch"], r["gt_roll"]] for r in rows], dtype=np.float64).reshape(-1, 3)
    pred = np.array([[r["yaw"], r["pitch"], r["roll"]] for r in rows], dtype=np.float64).reshape(-1, 3)
    mae, buckets = summarize(gt, pred)
    return EvalResult(
        estimator.meta.name, protocol, detector or "", len(samples), len(rows), missed, mae, buckets, rows
    )


def format_table(result: EvalResult) -> str:
    """Plain-text table: overall MAE then by |yaw| bucket."""
    head = f"{'subset':<12}{'count':>7}{'yaw':>8}{'pitch':>8}{'roll':>8}{'mean':>8}"
    lines = [
        f"AFLW2000 model={result.model} "
        + (f"crop=detector:{result.detector} missed={result.missed}/{result.images}" if result.detector
           else f"protocol={result.protocol}"),
        head,
        "-" * len(head),
    ]

    def row(name: str, count: int, m: dict) -> str:
        return f"{name:<12}{count:>7}" + "".join(f"{m[a]:>8.2f}" for a in (*ANGLE_NAMES, "mean"))

    lines.append(row("all", result.evaluated, result.mae))
    for b in result.buckets:
        lines.append(row(f"|yaw| {b['yaw_bucket']}", b["count"], b))
    return "\n".join(lines)


def plot_errors(result: EvalResult, path: str | os.PathLike) -> Path:
    """PNG: absolute error of each angle against ground-truth yaw, with 10-degree binned means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gt_yaw = np.array([r["gt_yaw"] for r in result.rows])
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    edges = np.arange(-100, 101, 10)
    centres = (edges[:-1] + edges[1:]) / 2
    for a, colour in zip(ANGLE_NAMES, ("tab:red", "tab:green", "tab:blue"), strict=True):
        err = np.abs(np.array([r[a] - r[f"gt_{a}"] for r in result.rows]))
        ax.scatter(gt_yaw, err, s=5, alpha=0.25, color=colour)
        idx = np.digitize(gt_yaw, edges) - 1
        means = [err[idx == i].mean() if np.any(idx == i) else np.nan for i in range(len(centres))]
        ax.plot(centres, means, color=colour, lw=2, label=f"{a} (MAE {result.mae[a]:.2f})")
    ax.set_xlabel("ground-truth yaw (degrees)")
    ax.set_ylabel("absolute error (degrees)")
    ax.set_ylim(0, max(30.0, 1.0))
    how = f"{result.detector} boxes, {result.missed} missed" if result.detector else result.protocol
    ax.set_title(f"AFLW2000 {result.model} ({how})"
                 f": mean MAE {result.mae['mean']:.2f} on {result.evaluated} images")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_results(result: EvalResult, out_dir: str | os.PathLike) -> list[Path]:
    """summary.json, per_image.csv and error_vs_yaw.png in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.write_text(json.dumps(result.summary(), indent=2) + "\n")
    per_image = out / "per_image.csv"
    fields: Sequence[str] = list(result.rows[0].keys()) if result.rows else ["image"]
    with per_image.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in result.rows:
            w.writerow({k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})
    return [summary, per_image, plot_errors(result, out / "error_vs_yaw.png")]
