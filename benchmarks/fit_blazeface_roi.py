"""Fit the BlazeFace box -> pose-model ROI map (posebridge/inference/roi_map.py `BOX_MAPS["blazeface"]`) on
the TRAINING crops, never on AFLW2000.

Each crop of `aflw-yaw-crops` (120x120, AFLW faces that are not AFLW2000 images) IS the pose model's ROI
(3DDFA protocol: a square centred on the landmark box, side sqrt(2) x its longer side). A deterministic
subset (every `--every`-th by file name from `--offset`, |yaw| <= 99 by AFLW's human yaw) is enlarged to
240, 270 or 300 px (in turn) and pasted at a seeded random place on a black 640x480 frame; the detector
(default options unless given) runs on the frame, and its best box that finds the face
(posebridge.offline.detector_eval.matches against the crop's centred landmark square) gives

    dx = (roi_cx - box_cx) / box_w     dy = (roi_cy - box_cy) / box_h     scale = roi_side / max(box_w, box_h)

The map is the median of each (robust to the few odd boxes); `dx_yaw`, a Theil-Sen line of dx in
sin(labelled yaw), is reported (the shipped maps leave it out, see roi_map.py). Printed: counts, the
spread (IQR, 5-95%), the IoU of the mapped box with the true ROI (plain sqrt(2) square of the box, the
map, the map with the yaw term given the labelled yaw; overall and by |yaw| bucket) and the map as a
Python dict literal. Aggregate numbers go to benchmarks/results/detectors/blazeface_roi_map.json (+ .png).

    .venv/bin/python benchmarks/fit_blazeface_roi.py                      # 3,800 crops, ~1 min
    .venv/bin/python benchmarks/fit_blazeface_roi.py --check-aflw2000     # + the map's IoU there (no fit)
    .venv/bin/python benchmarks/fit_blazeface_roi.py --every 5 --offset 2 --option score_threshold=0.5
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.faces.blazeface import BlazeFaceDetector  # noqa: E402
from posebridge.faces.geometry import iou  # noqa: E402
from posebridge.offline.detector_eval import BUCKET_NAMES, CANVAS, matches, yaw_bucket  # noqa: E402
from posebridge.paths import shared_dir  # noqa: E402

SIZES = (240, 270, 300)
OUT = REPO / "benchmarks" / "results" / "detectors"
Box = tuple[float, float, float, float]


def crops(folder: Path, every: int, offset: int, limit: int = 0) -> list[tuple[Path, float]]:
    with open(folder / "labels.csv", newline="") as f:
        rows = sorted((r["image"], float(r["yaw_deg"])) for r in csv.DictReader(f))
    out = [(folder / "images" / n, y) for n, y in rows[offset::every] if abs(y) <= 99.0]
    return out[:limit] if limit else out


def place(crop: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, Box]:
    """The crop enlarged to size x size at a seeded random place on a black 640x480 frame; the frame and
    the true ROI (the pasted square) in frame pixels."""
    w, h = CANVAS
    rng = np.random.default_rng(seed)
    x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    frame = np.zeros((h, w, 3), np.uint8)
    frame[y:y + size, x:x + size] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    return frame, (float(x), float(y), float(x + size), float(y + size))


def landmark_square(roi: Box) -> Box:
    """The face's landmark box implied by a 3DDFA ROI: the centred square of side ROI / sqrt(2)."""
    cx, cy, half = (roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2, (roi[2] - roi[0]) / np.sqrt(2) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def offsets(box: Box, roi: Box) -> tuple[float, float, float]:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return ((roi[0] + roi[2] - x0 - x1) / 2 / w, (roi[1] + roi[3] - y0 - y1) / 2 / h,
            (roi[2] - roi[0]) / max(w, h))


def apply(box: Box, m: dict[str, float], yaw: float | None = None) -> Box:
    """posebridge.inference.crops.face_roi's formula (3DDFA protocol) for a map `m`."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    dx = m.get("dx", 0.0) + (m.get("dx_yaw", 0.0) * np.sin(np.radians(yaw)) if yaw is not None else 0.0)
    cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + m.get("dy", 0.0) * h
    side = m.get("scale", np.sqrt(2.0)) * max(w, h)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def best_match(faces: list, truth: Box) -> Box | None:
    found = [f for f in faces if matches(f, truth)]
    return max(found, key=lambda f: f.score).box if found else None


def collect(items: list[tuple[Path, float]], det: BlazeFaceDetector) -> list[dict]:
    """Per crop: the true ROI, the AFLW yaw, the detector's matching box (what `detect` returns), which
    pass gave it (first: letterboxed frame; second: the second look), and the first pass's box with
    plain instead of weighted NMS (for the comparison)."""
    rows = []
    weighted = det.weighted_nms
    for i, (path, yaw) in enumerate(tqdm(items, desc="detect", unit="crop", mininterval=2)):
        frame, roi = place(cv2.imread(str(path)), SIZES[i % len(SIZES)], seed=i)
        truth = landmark_square(roi)
        reg, logits = det.raw(frame)
        faces, stage = det.decode(reg, logits), "first"
        det.weighted_nms = not weighted
        other = best_match(det.decode(reg, logits), truth)
        det.weighted_nms = weighted
        if not faces and det.second_look:
            again = det.look_again_raw(frame, reg, logits)
            faces, stage = (det.decode_window(*again, det.second_look_threshold) if again else []), "second"
        box = best_match(faces, truth)
        rows.append({"roi": roi, "yaw": yaw, "box": box, "stage": stage if box else "",
                     "other_nms_box": other})
    return rows


def agreement(rows: list[dict], m: dict[str, float], with_yaw: bool = False) -> dict:
    ious = np.array([iou(apply(r["box"], m, r["yaw"] if with_yaw else None), r["roi"]) for r in rows])
    buckets = np.array([yaw_bucket(r["yaw"]) for r in rows])
    return {"mean_iou": round(float(ious.mean()), 4), "median_iou": round(float(np.median(ious)), 4),
            "p10_iou": round(float(np.percentile(ious, 10)), 4),
            "share_iou_below_0.7": round(float((ious < 0.7).mean()), 4),
            "mean_iou_by_bucket": {b: round(float(ious[buckets == k].mean()), 4) if (buckets == k).any()
                                   else None for k, b in enumerate(BUCKET_NAMES)}}


def plot(o: np.ndarray, yaws: np.ndarray, m: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for k, label in enumerate(("dx (x box width)", "dy (x box height)", "scale (x box side)")):
        axes[k].hist(o[:, k], bins=60, color="tab:blue", alpha=0.7)
        axes[k].axvline(np.median(o[:, k]), color="k", lw=1, label=f"median {np.median(o[:, k]):+.4f}")
        axes[k].set_xlabel(label)
        axes[k].legend(fontsize=8)
    s = np.sin(np.radians(yaws))
    axes[3].scatter(s, o[:, 0], s=2, alpha=0.3)
    xs = np.linspace(-1, 1, 3)
    label = f"{m['dx']:+.3f} {m['dx_yaw']:+.3f} sin(yaw)"
    axes[3].plot(xs, m["dx"] + m["dx_yaw"] * xs, color="k", label=label)
    axes[3].set_xlabel("sin(AFLW yaw)")
    axes[3].set_ylabel("dx (x box width)")
    axes[3].legend(fontsize=8)
    axes[0].set_ylabel("crops")
    fig.suptitle(f"BlazeFace box -> 3DDFA ROI on {len(o)} training crops (aflw-yaw-crops)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def check_aflw2000(data: Path, det: BlazeFaceDetector, m: dict[str, float]) -> dict:
    """The map fitted above applied, not refitted, on AFLW2000-dev (the benchmark) in the detector protocol
    (450x450 image in the middle of a 640x480 frame): IoU of the mapped box with 3DDFA's ROI from
    `pt3d_68`, on the images within +-99 degrees where the detector finds the face."""
    from posebridge.inference.crops import roi_3ddfa
    from posebridge.offline.datasets import in_range, read_aflw2000
    from posebridge.offline.detector_eval import shift, to_canvas

    rows, missed = [], 0
    samples = [s for s in read_aflw2000(data) if in_range(s) and s.pt3d_68 is not None]
    for s in tqdm(samples, desc="aflw2000 check", unit="img", mininterval=2):
        frame, (dx, dy) = to_canvas(cv2.imread(str(s.image_path)))
        pts = np.asarray(s.pt3d_68)[:2]
        lm = shift((pts[0].min(), pts[1].min(), pts[0].max(), pts[1].max()), dx, dy)
        box = best_match(det.detect(frame), lm)
        missed += box is None
        if box is not None:
            rows.append({"roi": shift(roi_3ddfa(pts), dx, dy), "yaw": s.yaw, "box": box})
    o = np.array([offsets(r["box"], r["roi"]) for r in rows])
    return {"images": len(samples), "matched": len(rows), "missed": missed,
            "median_offsets_there (not used)": fit(o),
            "iou_plain_sqrt2": agreement(rows, {"dx": 0.0, "dy": 0.0, "scale": float(np.sqrt(2))}),
            "iou_map": agreement(rows, m)}


def print_summary(r: dict) -> None:
    print(f"{r['data']}\ndetector {json.dumps(r['detector'])}")
    print(f"matched {r['matched']} of {r['crops']} ({r['missed']} missed; "
          f"{r['matched_by_second_look']} by the second look)")
    print("| | median | IQR | 5-95% |\n|---|---|---|---|")
    for k in ("dx", "dy", "scale"):
        sp = r["spread"][k]
        print(f"| {k} | {r['map'][k]:+.4f} | {sp['iqr'][0]:+.4f} .. {sp['iqr'][1]:+.4f} | "
              f"{sp['p5_p95'][0]:+.4f} .. {sp['p5_p95'][1]:+.4f} |")
    print(f"dx_yaw (Theil-Sen in sin(yaw), not applied): {r['map_with_yaw_term']['dx_yaw']:+.4f}")
    print("| ROI from the box | mean IoU | median | p10 | IoU < 0.7 | " + " | ".join(
        f"mean IoU |yaw| {b}" for b in BUCKET_NAMES) + " |")
    print("|---" * (5 + len(BUCKET_NAMES)) + "|")
    rows = [("sqrt(2) square of the box", r["iou_plain_sqrt2"]), ("the map", r["iou_map"]),
            ("the map + dx_yaw (labelled yaw)", r["iou_map_with_yaw_term"])]
    rows += [(f"{k} NMS, first pass, own map ({r['nms_comparison']['crops']} crops)", v["iou"])
             for k, v in r["nms_comparison"].items() if k != "crops"]
    looks = r["second_look_boxes"]
    if "iou_map" in looks:
        rows.append((f"second-look boxes ({looks['n']}), the map", looks["iou_map"]))
    if "aflw2000_check" in r:
        a = r["aflw2000_check"]
        rows += [(f"AFLW2000-dev ({a['matched']} of {a['images']}): sqrt(2) square", a["iou_plain_sqrt2"]),
                 ("AFLW2000-dev: the map (fitted on the crops)", a["iou_map"])]
    for name, a in rows:
        cells = " | ".join(f"{v:.3f}" for v in a["mean_iou_by_bucket"].values())
        print(f"| {name} | {a['mean_iou']:.3f} | {a['median_iou']:.3f} | {a['p10_iou']:.3f} | "
              f"{100 * a['share_iou_below_0.7']:.1f}% | {cells} |")


def fit(o: np.ndarray) -> dict[str, float]:
    """The map: medians of dx, dy and scale."""
    return {k: round(float(np.median(o[:, i])), 4) for i, k in enumerate(("dx", "dy", "scale"))}


def parse_options(pairs: list[str]) -> dict:
    out: dict = {}
    for p in pairs:
        key, _, value = p.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import theilslopes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=Path, default=shared_dir() / "data" / "aflw-yaw-crops")
    ap.add_argument("--every", type=int, default=5, help="every N-th crop by file name")
    ap.add_argument("--offset", type=int, default=2, help="starting at this index")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--option", action="append", default=[], help="detector option KEY=VALUE (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check-aflw2000", type=Path, nargs="?", const=shared_dir() / "data" / "aflw2000-dev",
                    default=None, help="also report (never fit) the map's IoU on AFLW2000-dev")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if not (args.crops / "labels.csv").is_file():
        print(f"fit_blazeface_roi: {args.crops}: training crops (labels.csv) not found", file=sys.stderr)
        return 2
    options = parse_options(args.option)
    det = BlazeFaceDetector(**options)
    items = crops(args.crops, args.every, args.offset, args.limit)
    rows = collect(items, det)
    hit = [r for r in rows if r["box"] is not None]
    o = np.array([offsets(r["box"], r["roi"]) for r in hit])
    yaws = np.array([r["yaw"] for r in hit])
    m = fit(o)
    slope, intercept, _, _ = theilslopes(o[:, 0], np.sin(np.radians(yaws)))
    with_yaw = {"dx": round(float(intercept), 4), "dx_yaw": round(float(slope), 4), "dy": m["dy"],
                "scale": m["scale"]}
    spread = {k: {"iqr": [round(float(v), 4) for v in np.percentile(o[:, i], [25, 75])],
                  "p5_p95": [round(float(v), 4) for v in np.percentile(o[:, i], [5, 95])]}
              for i, k in enumerate(("dx", "dy", "scale"))}
    second = [r for r in hit if r["stage"] == "second"]
    # the other NMS (plain if the detector's is weighted), on the crops where both first passes found
    # the face: each with its own fitted map, so the IoU compares how steady the boxes are
    both = [r for r in hit if r["stage"] == "first" and r["other_nms_box"] is not None]
    other = [dict(r, box=r["other_nms_box"]) for r in both]
    m_other = fit(np.array([offsets(r["box"], r["roi"]) for r in other]))
    m_same = fit(np.array([offsets(r["box"], r["roi"]) for r in both]))
    nms_names = ("weighted", "plain") if det.weighted_nms else ("plain", "weighted")
    report = {
        "data": f"{len(items)} training crops (aflw-yaw-crops, 1 in {args.every} from #{args.offset}, "
                f"|yaw| <= 99) at {'/'.join(map(str, SIZES))} px on a 640x480 frame",
        "detector": {"name": det.name, "variant": det.variant, "score_threshold": det.score_threshold,
                     "second_look": det.second_look, "second_look_threshold": det.second_look_threshold,
                     "nms_threshold": det.nms_threshold, "weighted_nms": det.weighted_nms,
                     "resize": det.resize},
        "crops": len(items), "matched": len(hit), "missed": len(items) - len(hit),
        "matched_by_second_look": len(second),
        "map": m, "map_with_yaw_term": with_yaw, "spread": spread,
        "iou_plain_sqrt2": agreement(hit, {"dx": 0.0, "dy": 0.0, "scale": float(np.sqrt(2))}),
        "iou_map": agreement(hit, m),
        "iou_map_with_yaw_term": agreement(hit, with_yaw, with_yaw=True),
        "second_look_boxes": ({"n": len(second), "own_median_map": fit(np.array(
            [offsets(r["box"], r["roi"]) for r in second])), "iou_map": agreement(second, m)}
            if len(second) >= 10 else {"n": len(second)}),
        "nms_comparison": {"crops": len(both),
                           nms_names[0]: {"map": m_same, "iou": agreement(both, m_same)},
                           nms_names[1]: {"map": m_other, "iou": agreement(other, m_other)}},
    }
    if args.check_aflw2000 is not None:
        report["aflw2000_check"] = check_aflw2000(args.check_aflw2000, det, m)
    print_summary(report)
    print(f'\n    "blazeface": {{"dx": {m["dx"]}, "dy": {m["dy"]}, "scale": {m["scale"]}}},')
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "blazeface_roi_map.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(o, yaws, with_yaw, args.out / "blazeface_roi_map.png")
    print(f"wrote {args.out / 'blazeface_roi_map.json'} and {args.out / 'blazeface_roi_map.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
