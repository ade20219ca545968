"""Fit the detector box -> 3DDFA landmark ROI mapping (posebridge/faces/roi_map.py) on AFLW2000-dev.

For each image the landmark ROI is 3DDFA's square (centre of the `pt3d_68` box, side sqrt(2) x its
longer side). The detector runs on the full 450x450 image; the detection overlapping the landmark box
most (IoU >= --min-iou) is matched, otherwise the face counts as missed; boxes from the Haar profile
cascades (a detector's fallback for turned faces, tagged "haar_profile") are pooled over the detectors
and get a map of their own. Per matched face:

    dx = (roi_cx - box_cx) / box_w     dy = (roi_cy - box_cy) / box_h     scale = roi_side / max(box_w, box_h)

The map is the median of dy and scale over all matched faces, and for dx a robust (Theil-Sen) line in
sin(yaw) of the face's labelled yaw, because a detector's box slides sideways on the face as the head
turns (for dlib's HOG box dx correlates 0.94 with sin(yaw)): dx = dx + dx_yaw * sin(yaw). At run time
the yaw comes from the model (the tracked face's previous estimate, or a first pass). One global fit
per detector, no per-image tuning. The script prints the table (and the dict literal for
roi_map.BOX_MAPS), the ROI agreement (IoU with the landmark ROI: plain sqrt(2) square, mapped without
and with the yaw term), and writes a JSON and a PNG of the distributions.

    python benchmarks/fit_roi_map.py --detector default --detector yunet --out benchmarks/results/roi_map
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.faces.detectors import (  # noqa: E402
    DEFAULT_DETECTOR,
    PROFILE_TAG,
    create_detector,  # noqa: E402
    iou,
)
from posebridge.inference.crops import roi_3ddfa  # noqa: E402
from posebridge.offline.datasets import read_aflw2000  # noqa: E402

SHARED = REPO.parent / "shared"


def detector_options(name: str, yunet: Path) -> dict:
    return {"model_path": str(yunet)} if name == "yunet" else {}


def collect(detector_name: str, data: Path, yunet: Path, min_iou: float, limit: int) -> dict:
    """Landmark ROI and matched detector box for every image (None when missed)."""
    from tqdm import tqdm

    det = create_detector(detector_name, **detector_options(detector_name, yunet))
    samples = list(read_aflw2000(data))
    if limit:
        samples = samples[:limit]
    rows = []
    for s in tqdm(samples, desc=f"detect ({det.name})", unit="img", mininterval=2):
        pts = np.asarray(s.pt3d_68)[:2]
        lm_box = (float(pts[0].min()), float(pts[1].min()), float(pts[0].max()), float(pts[1].max()))
        roi = roi_3ddfa(pts)
        faces = det.detect(cv2.imread(str(s.image_path)))
        best = max(faces, key=lambda f: iou(f.box, lm_box), default=None)
        hit = best is not None and iou(best.box, lm_box) >= min_iou
        rows.append({"image": s.image_path.name, "roi": list(roi), "box": list(best.box) if hit else None,
                     "tag": (best.detector or det.name) if hit else "", "angles": list(s.angles)})
    return {"detector": det.name, "rows": rows}


def offsets(rows: list[dict], tag: str | None = None) -> np.ndarray:
    """(M, 4) dx, dy, scale and the labelled yaw (degrees) of the matched faces (only boxes tagged `tag`
    when given: a detector's fallback, e.g. dlib_hog's Haar profile boxes tagged "haar_profile", keeps
    its own map)."""
    out = []
    for r in rows:
        if r["box"] is None or (tag is not None and r.get("tag", tag) != tag):
            continue
        x0, y0, x1, y1 = r["box"]
        rx0, ry0, rx1, ry1 = r["roi"]
        w, h = x1 - x0, y1 - y0
        out.append(((rx0 + rx1 - x0 - x1) / 2 / w, (ry0 + ry1 - y0 - y1) / 2 / h, (rx1 - rx0) / max(w, h),
                    r["angles"][0]))
    return np.asarray(out, np.float64).reshape(-1, 4)


def fit_map(o: np.ndarray) -> dict[str, float]:
    """The box map from `offsets`: Theil-Sen dx = dx + dx_yaw * sin(yaw); medians of dy and scale."""
    from scipy.stats import theilslopes

    slope, intercept, _, _ = theilslopes(o[:, 0], np.sin(np.radians(o[:, 3])))
    return {"dx": round(float(intercept), 4), "dx_yaw": round(float(slope), 4),
            "dy": round(float(np.median(o[:, 1])), 4), "scale": round(float(np.median(o[:, 2])), 4)}


def apply_map(box: list[float], m: dict, yaw: float | None = None) -> tuple[float, float, float, float]:
    from posebridge.inference.crops import face_roi
    from posebridge.inference.meta import CropSpec

    return face_roi(tuple(box), CropSpec(protocol="3ddfa", box_map=m), detector="__none__", yaw=yaw)


def agreement(rows: list[dict], m: dict, tag: str | None = None, with_yaw: bool = False) -> dict:
    """How well the mapped ROI matches the landmark ROI: IoU and centre/scale errors (fractions of side);
    `with_yaw`: the map's yaw term gets the labelled yaw (the best a model's yaw estimate can do)."""
    ious, cerr, serr = [], [], []
    for r in rows:
        if r["box"] is None or (tag is not None and r.get("tag", tag) != tag):
            continue
        a, b = apply_map(r["box"], m, r["angles"][0] if with_yaw else None), r["roi"]
        side = b[2] - b[0]
        ious.append(iou(a, tuple(b)))
        cerr.append(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) / side)
        serr.append(abs((a[2] - a[0]) / side - 1.0))
    return {"mean_iou": float(np.mean(ious)), "median_centre_err": float(np.median(cerr)),
            "median_scale_err": float(np.median(serr))}


def summarize(rows: list[dict], tag: str, o: np.ndarray, m: dict, images: int, missed: int,
              fallback: int) -> dict:
    """One detector's (or the pooled profile boxes') report: counts, map, spread and ROI agreement."""
    return {"images": images, "missed": missed, "fallback_boxes": fallback, "map": m,
            "iqr": {k: [round(float(v), 4) for v in np.percentile(o[:, i], [25, 75])]
                    for i, k in enumerate(("dx", "dy", "scale"))},
            "before": agreement(rows, {"dx": 0.0, "dy": 0.0, "scale": float(np.sqrt(2))}, tag),
            "after_no_yaw": agreement(rows, m, tag),
            "after": agreement(rows, m, tag, with_yaw=True)}


def plot(results: dict[str, np.ndarray], maps: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for name, o in results.items():
        labels = ("dx (x box width)", "dy (x box height)", "scale (x box side)")
        for ax, k, label in zip(axes[:3], range(3), labels, strict=True):
            ax.hist(o[:, k], bins=40, alpha=0.55, label=f"{name} (median {np.median(o[:, k]):+.3f})")
            ax.set_xlabel(label)
        s = np.sin(np.radians(o[:, 3]))
        m = maps[name]
        dots = axes[3].scatter(s, o[:, 0], s=3, alpha=0.35)
        xs = np.linspace(-1, 1, 3)
        axes[3].plot(xs, m["dx"] + m["dx_yaw"] * xs, color=dots.get_facecolor()[0][:3],
                     label=f"{name}: {m['dx']:+.3f} {m['dx_yaw']:+.3f} sin(yaw)")
    axes[3].set_xlabel("sin(labelled yaw)")
    axes[3].set_ylabel("dx (x box width)")
    for ax in axes:
        ax.legend(fontsize=7)
    axes[0].set_ylabel("faces")
    fig.suptitle("detector box -> 3DDFA landmark ROI on AFLW2000-dev")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def eval_model(model: str, detections: dict[str, dict], fitted: dict[str, dict],
               limit_deg: float = 99.0) -> list[dict]:
    """MAE of `model` on the same faces cropped several ways, to split the detector-vs-landmark gap:
    landmark ROI on every image in the protocol, landmark ROI on the faces the detector found, the
    mapped detector ROI on those faces (the shipped map, posebridge.inference.roi_map; the detections cached
    by the fit, same matching rule), and that ROI placed with the model's yaw (the `fitted` maps with
    their dx_yaw term)."""
    from posebridge.inference import roi_map
    from posebridge.inference.crops import face_roi
    from posebridge.inference.estimator import Estimator

    est = Estimator.load(model, device="cpu")
    first = next(iter(detections.values()))["rows"]
    keep = [i for i, r in enumerate(first) if all(abs(a) <= limit_deg for a in r["angles"])]
    folder = SHARED / "data" / "aflw2000-dev"
    images = {first[i]["image"]: cv2.imread(str(folder / first[i]["image"])) for i in keep}
    gt = np.array([first[i]["angles"] for i in keep])

    def predict(items: list[tuple[np.ndarray, tuple]]) -> np.ndarray:
        """(image, ROI) pairs -> angles, with the model's own test-time views (zooms, flip)."""
        return np.array([p.angles for p in est.predict_rois(items)]).reshape(-1, 3)

    def mae(items: list[tuple[np.ndarray, tuple]], sel: np.ndarray, pred: np.ndarray | None = None):
        pred = predict(items) if pred is None else pred
        e = np.abs(pred - gt[sel]).mean(axis=0)
        return [round(float(v), 3) for v in (*e, e.mean())]

    everything = np.ones(len(keep), bool)
    out = [{"crop": "landmark ROI", "faces": len(keep), "mae": mae(
        [(images[first[i]["image"]], tuple(first[i]["roi"])) for i in keep], everything)}]
    for name, res in detections.items():
        rows = [res["rows"][i] for i in keep]
        found = np.array([r["box"] is not None for r in rows])
        hits = [r for r in rows if r["box"] is not None]
        lm = [(images[r["image"]], tuple(r["roi"])) for r in hits]
        dt = [(images[r["image"]], face_roi(tuple(r["box"]), est.meta.crop, r.get("tag") or name))
              for r in hits]
        out.append({"crop": f"landmark ROI, faces {name} finds", "faces": len(hits), "mae": mae(lm, found)})
        first_pass = predict(dt)
        out.append({"crop": f"{name} box -> mapped ROI, 1 pass", "faces": len(hits),
                    "mae": mae(dt, found, first_pass), "missed": int((~found).sum())})
        faces = [(images[r["image"]], tuple(r["box"]), r.get("tag") or name) for r in hits]
        shipped = dict(roi_map.BOX_MAPS)
        roi_map.BOX_MAPS.update(fitted)  # with dx_yaw: one pass, then one placed by that pass's yaw
        try:
            refined = np.array([p.angles for p in est.predict_faces(faces)]).reshape(-1, 3)
        finally:
            roi_map.BOX_MAPS.clear()
            roi_map.BOX_MAPS.update(shipped)
        out.append({"crop": f"{name} box -> mapped ROI, yaw-placed", "faces": len(hits),
                    "mae": mae(dt, found, refined), "missed": int((~found).sum())})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "aflw2000-dev")
    ap.add_argument("--detector", action="append", default=None, help="detector (repeatable)")
    ap.add_argument("--yunet", type=Path, default=SHARED / "models" / "yunet_s_640_640.onnx")
    ap.add_argument("--min-iou", type=float, default=0.3, help="IoU with the landmark box")
    ap.add_argument("--limit", type=int, default=0, help="first N images (0 = all)")
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "roi_map",
                    help="summary JSON + PNG (aggregate numbers only)")
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "roi_map",
                    help="per-image detections (derived from research data: kept out of the repository)")
    ap.add_argument("--reuse", action="store_true", help="reuse cached detections instead of detecting again")
    ap.add_argument("--eval-model", default="", help="also score this model on landmark vs detector crops")
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    if not args.data.is_dir():
        print(f"fit_roi_map: error: {args.data}: AFLW2000 folder not found", file=sys.stderr)
        return 2
    names = [DEFAULT_DETECTOR if d == "default" else d for d in (args.detector or ["default"])]
    args.out.mkdir(parents=True, exist_ok=True)
    fitted, dists, report, all_rows = {}, {}, {}, {}
    for name in names:
        cached = args.cache / f"detections_{name}.json"
        if args.reuse and cached.is_file():
            res = json.loads(cached.read_text())
        else:
            res = collect(name, args.data, args.yunet, args.min_iou, args.limit)
            args.cache.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(res))
        o = offsets(res["rows"], res["detector"])
        m = fit_map(o)
        fitted[name], dists[name], all_rows[name] = m, o, res
        n, missed = len(res["rows"]), sum(r["box"] is None for r in res["rows"])
        other = sum(1 for r in res["rows"] if r["box"] is not None and r.get("tag", name) != name)
        report[name] = summarize(res["rows"], res["detector"], o, m, n, missed, other)
    # Haar profile-cascade boxes (dlib_hog's fallback, haar's when no frontal face) get a map of their own,
    # fitted on every such box of the detectors above (one per image).
    profile = {r["image"]: r for res in all_rows.values() for r in res["rows"]
               if r["box"] is not None and r.get("tag") == PROFILE_TAG}
    if len(profile) >= 20:
        rows = list(profile.values())
        o = offsets(rows, PROFILE_TAG)
        m = fitted[PROFILE_TAG] = fit_map(o)
        dists[PROFILE_TAG] = o
        report[PROFILE_TAG] = summarize(rows, PROFILE_TAG, o, m, len(rows), 0, 0)
    print(f"{'detector':12s} {'images':>6s} {'missed':>6s} {'dx':>8s} {'dx_yaw':>7s} {'dy':>8s} "
          f"{'scale':>7s} {'IoU: sqrt2':>10s} {'no yaw':>6s} {'yaw':>6s} {'centre err':>10s} "
          f"{'scale err':>9s}")
    for name, r in report.items():
        m, b, n, a = r["map"], r["before"], r["after_no_yaw"], r["after"]
        print(f"{name:12s} {r['images']:6d} {r['missed']:6d} {m['dx']:+8.4f} {m['dx_yaw']:+7.3f} "
              f"{m['dy']:+8.4f} {m['scale']:7.4f} {b['mean_iou']:10.3f} {n['mean_iou']:6.3f} "
              f"{a['mean_iou']:6.3f} "
              f"{a['median_centre_err']:10.3f} {a['median_scale_err']:9.3f}")
    print("BOX_MAPS =", json.dumps(fitted))
    if args.eval_model:
        scores = eval_model(args.eval_model, all_rows, fitted)
        print(f"\nAFLW2000-dev, angles within [-99, 99], model {args.eval_model} (MAE degrees)")
        print(f"{'crop':36s} {'faces':>5s} {'yaw':>6s} {'pitch':>6s} {'roll':>6s} {'mean':>6s}")
        for r in scores:
            print(f"{r['crop']:36s} {r['faces']:5d} " + " ".join(f"{v:6.2f}" for v in r["mae"]))
        report["eval"] = {"model": args.eval_model, "rows": scores}
    (args.out / "roi_map.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(dists, fitted, args.out / "roi_map.png")
    print(f"wrote {args.out / 'roi_map.json'} and {args.out / 'roi_map.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
