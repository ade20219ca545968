"""Face detectors compared on AFLW2000-dev: recall by |yaw| bucket and CPU ms per 640x480 frame, plus
the per-frame cost of detecting vs tracking (posebridge.faces.tracker) on a moving face.

    .venv/bin/python benchmarks/bench_detectors.py                   # all 1,040 dev images
    .venv/bin/python benchmarks/bench_detectors.py --limit 200       # quicker
    .venv/bin/python benchmarks/bench_detectors.py --png docs/detectors.png --json /tmp/det.json

Each 450x450 image is pasted unscaled in the middle of a black 640x480 canvas. A detection counts when
it contains the centre of the image's landmark (pt2d) box and its size is 0.5-2.5x the box's longer
side (posebridge.offline.detector_eval.matches). Images outside the +-99 degree protocol are left out. Times
are CPU ms (thread time, so other load on the machine barely changes them) of `detect()` on one
OpenCV thread by default (`--threads`), median and p90, plus the wall-clock median.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posebridge.errors import PoseBridgeError  # noqa: E402
from posebridge.faces.detectors import create_detector  # noqa: E402
from posebridge.faces.tracker import FaceTracker  # noqa: E402
from posebridge.offline.datasets import in_range, landmark_box, read_aflw2000  # noqa: E402
from posebridge.offline.detector_eval import BUCKET_NAMES, matches, shift, to_canvas, yaw_bucket  # noqa: E402
from posebridge.paths import shared_dir  # noqa: E402

SHARED = shared_dir()


def candidates(yunet: Path | None) -> list[tuple[str, str, dict]]:
    out = [
        ("haar", "haar", {"input_width": None}),  # full frame: the detector as first shipped
        ("haar @320", "haar", {"input_width": 320}),
        ("haar profile=always @320", "haar", {"input_width": 320, "profile": "always"}),
        ("dlib_hog", "dlib_hog", {"input_width": None, "profile_fallback": False}),
        ("dlib_hog @320", "dlib_hog", {"input_width": 320, "profile_fallback": False}),
        ("dlib_hog+profile", "dlib_hog", {"input_width": None, "profile_fallback": True}),
        ("dlib_hog+profile @320", "dlib_hog", {"input_width": 320, "profile_fallback": True}),
        ("dlib_hog+profile sf1.2", "dlib_hog", {"input_width": None, "profile_fallback": True,
                                                "profile_scale_factor": 1.2}),
    ]
    if yunet is not None:
        out += [("yunet", "yunet", {"model_path": str(yunet), "input_width": None}),
                ("yunet @320", "yunet", {"model_path": str(yunet), "input_width": 320})]
    return out


def build(cands):
    dets = []
    for label, name, opts in cands:
        try:
            dets.append((label, create_detector(name, **opts)))
        except PoseBridgeError as exc:
            print(f"skipping {label}: {exc}")
    return dets


def recall_benchmark(samples, dets, scale: float = 1.0) -> dict:
    nb = len(BUCKET_NAMES)
    res = {label: {"hits": np.zeros(nb, int), "fp": 0, "ms": [], "cpu": []} for label, _ in dets}
    totals = np.zeros(nb, int)
    for s in tqdm(samples, desc="detectors", unit="img"):
        img = cv2.imread(str(s.image_path))
        truth = landmark_box(s.pt2d)
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            truth = tuple(v * scale for v in truth)
        canvas, (dx, dy) = to_canvas(img)
        truth = shift(truth, dx, dy)
        b = yaw_bucket(s.yaw)
        totals[b] += 1
        for label, det in dets:
            t0, c0 = time.perf_counter(), time.thread_time()
            boxes = det.detect(canvas)
            res[label]["cpu"].append((time.thread_time() - c0) * 1000.0)
            res[label]["ms"].append((time.perf_counter() - t0) * 1000.0)
            hit = [matches(x, truth) for x in boxes]
            res[label]["hits"][b] += any(hit)
            res[label]["fp"] += len(hit) - (1 if any(hit) else 0)
    out = {"totals": totals.tolist(), "detectors": {}}
    for label, r in res.items():
        ms, cpu = np.array(r["ms"]), np.array(r["cpu"])
        out["detectors"][label] = {
            "recall": (r["hits"] / np.maximum(totals, 1)).tolist(),
            "recall_all": float(r["hits"].sum() / max(totals.sum(), 1)),
            "fp_per_image": r["fp"] / max(len(samples), 1),
            "cpu_ms_median": float(np.median(cpu)),
            "cpu_ms_p90": float(np.percentile(cpu, 90)),
            "wall_ms_median": float(np.median(ms)),
        }
    return out


def moving_face_sequence(sample, n: int = 60, amplitude: float = 90.0, seed: int = 0):
    """A face (the AFLW image shrunk to 300 px) panning left-right on a 640x480 canvas with pixel noise;
    yields (frame, true offset)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(cv2.imread(str(sample.image_path)), (300, 300), interpolation=cv2.INTER_AREA)
    for i in range(n):
        ox = 170 + amplitude * np.sin(2 * np.pi * i / n)
        oy = 90 + 30 * np.sin(4 * np.pi * i / n)
        m = np.float32([[1, 0, ox], [0, 1, oy]])
        frame = cv2.warpAffine(img, m, (640, 480))
        noise = rng.normal(0, 4.0, frame.shape)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8), (ox, oy)


def tracker_benchmark(samples, detector_specs, seqs: int) -> list[dict]:
    """Per-frame cost and box error of detect-every-frame vs redetect_every=10 with each follower."""
    frontal = [s for s in samples if max(abs(s.yaw), abs(s.pitch), abs(s.roll)) < 15][:seqs]
    rows = []
    for label, name, opts in detector_specs:
        modes = [("detect every frame", 1, "hold"), ("every 10 + template", 10, "template"),
                 ("every 10 + hold", 10, "hold")]
        for mode, every, follow in modes:
            det = create_detector(name, **opts)
            errs, det_ms, trk_ms, present = [], [], [], 0
            total = 0
            for k, s in enumerate(frontal):
                tr = FaceTracker(det, redetect_every=every, follow=follow)
                ref = None
                for frame, (ox, oy) in moving_face_sequence(s, seed=k):
                    c0 = time.thread_time()
                    faces = tr.update(frame)
                    ms = (time.thread_time() - c0) * 1000.0
                    total += 1
                    (det_ms if tr.last_action == "detect" else trk_ms).append(ms)
                    if not faces:
                        continue
                    present += 1
                    f = faces[0]
                    c = np.array([(f.x0 + f.x1) / 2 - ox, (f.y0 + f.y1) / 2 - oy])  # centre in image coords
                    if ref is None:
                        ref = c
                    errs.append(float(np.hypot(*(c - ref))))
            all_ms = det_ms + trk_ms
            rows.append({
                "detector": label, "mode": mode,
                "ms_per_frame": float(np.mean(all_ms)) if all_ms else 0.0,
                "detect_ms": float(np.mean(det_ms)) if det_ms else 0.0,
                "track_ms": float(np.mean(trk_ms)) if trk_ms else 0.0,
                "detect_share": len(det_ms) / max(len(all_ms), 1),
                "face_found": present / max(total, 1),
                "centre_err_px_mean": float(np.mean(errs)) if errs else float("nan"),
                "centre_err_px_p90": float(np.percentile(errs, 90)) if errs else float("nan"),
            })
    return rows


def print_tables(rec: dict, track_rows: list[dict], header: str) -> None:
    print(header)
    print()
    if not rec["detectors"]:
        rec = {"totals": [], "detectors": {}}
    t = rec["totals"] or [0] * len(BUCKET_NAMES)
    buckets = " | ".join(f"recall yaw {b} (n={n})" for b, n in zip(BUCKET_NAMES, t, strict=True))
    print(f"| detector | {buckets} | recall all | false boxes / image | CPU ms / frame median | p90 | "
          "wall ms median |")
    print("|---" * (len(BUCKET_NAMES) + 6) + "|")
    for label, r in rec["detectors"].items():
        cells = " | ".join(f"{100 * x:.1f}%" for x in r["recall"])
        print(f"| {label} | {cells} | {100 * r['recall_all']:.1f}% | {r['fp_per_image']:.3f} | "
              f"{r['cpu_ms_median']:.1f} | {r['cpu_ms_p90']:.1f} | {r['wall_ms_median']:.1f} |")
    if track_rows:
        print()
        print("| detector | mode | CPU ms / frame (mean) | detect ms | follow ms | frames detected"
              " | face found | centre drift px mean | p90 |")
        print("|---" * 9 + "|")
        for r in track_rows:
            print(f"| {r['detector']} | {r['mode']} | {r['ms_per_frame']:.2f} | {r['detect_ms']:.2f} | "
                  f"{r['track_ms']:.2f} | {100 * r['detect_share']:.0f}% | {100 * r['face_found']:.0f}% | "
                  f"{r['centre_err_px_mean']:.1f} | {r['centre_err_px_p90']:.1f} |")


def plot(rec: dict, png: Path, title: str = "AFLW2000-dev recall by |yaw|") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rec["detectors"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [2, 1]})
    nb = len(BUCKET_NAMES)
    width = 0.8 / len(labels)
    x = np.arange(nb)
    for i, label in enumerate(labels):
        ax1.bar(x + i * width - 0.4 + width / 2, [100 * v for v in rec["detectors"][label]["recall"]],
                width, label=label)
    ax1.set_xticks(x, [f"yaw {b}\n(n={n})" for b, n in zip(BUCKET_NAMES, rec["totals"], strict=True)])
    ax1.set_ylabel("recall %")
    ax1.set_ylim(0, 105)
    ax1.set_title(title)
    ax1.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    med = [rec["detectors"][k]["cpu_ms_median"] for k in labels]
    p90 = [rec["detectors"][k]["cpu_ms_p90"] for k in labels]
    y = np.arange(len(labels))
    ax2.barh(y, med, color="tab:blue", label="median")
    ax2.errorbar(med, y, xerr=[np.zeros(len(med)), np.array(p90) - np.array(med)], fmt="none", ecolor="k",
                 capsize=3, label="to p90")
    ax2.set_yticks(y, labels, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlabel("CPU ms per 640x480 frame (1 thread)")
    ax2.set_title("detect() time")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "aflw2000-dev")
    ap.add_argument("--yunet", type=Path, default=SHARED / "models" / "yunet_s_640_640.onnx")
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (0 = OpenCV default)")
    ap.add_argument("--track-seqs", type=int, default=5, help="moving-face sequences for the tracker table")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the images by this factor first "
                    "(0.5: faces of ~100 px, a head 1-1.5 m from a 640x480 webcam)")
    ap.add_argument("--only", default="", help="comma-separated detector labels to run (default: all)")
    ap.add_argument("--track-only", action="store_true", help="only the tracking table")
    ap.add_argument("--png", type=Path, default=None, help="write the recall/time plot here")
    ap.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    ap.add_argument("--from-json", type=Path, nargs="+", default=None,
                    help="do not run: merge earlier --json outputs (same images) and print/plot them")
    args = ap.parse_args(argv)
    if args.from_json:
        runs = [json.loads(p.read_text()) for p in args.from_json]
        rec = {"totals": runs[0]["recall"]["totals"], "detectors": {}}
        for r in runs:
            if r["recall"]["totals"] != rec["totals"]:
                print(f"bench_detectors: runs cover different images: {r['header']}", file=sys.stderr)
                return 2
            rec["detectors"].update(r["recall"]["detectors"])
        print_tables(rec, [row for r in runs for row in r["tracking"]], "\n".join(r["header"] for r in runs))
        if args.png:
            head = runs[0]["header"]
            scale = head.split(" at scale ")[1].split(",")[0] if " at scale " in head else "1.0"
            plot(rec, args.png, f"AFLW2000-dev recall by |yaw| (images scaled x{scale})")
        return 0

    if not args.data.is_dir():
        print(f"bench_detectors: {args.data}: AFLW2000-dev folder not found", file=sys.stderr)
        return 2
    if args.threads:
        cv2.setNumThreads(args.threads)
    yunet = args.yunet if args.yunet.is_file() else None
    samples = [s for s in read_aflw2000(args.data) if in_range(s) and s.pt2d is not None]
    if args.limit:
        samples = samples[: args.limit]
    load0 = os.getloadavg()
    cands = candidates(yunet)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",")]
        cands = [c for c in cands if c[0] in wanted]
    dets = build(cands) if not args.track_only else []
    rec = recall_benchmark(samples, dets, args.scale) if dets else {"totals": [], "detectors": {}}
    track_specs = [c for c in candidates(yunet) if c[0] in ("haar", "dlib_hog+profile", "yunet")]
    track_rows = tracker_benchmark(samples, track_specs, args.track_seqs) if args.track_seqs else []
    load1 = os.getloadavg()
    header = (f"{len(samples)} AFLW2000-dev images at scale {args.scale}, OpenCV {cv2.__version__}, "
              f"cv2 threads "
              f"{cv2.getNumThreads()}, {os.cpu_count()} CPUs, load average {load0[0]:.2f} -> {load1[0]:.2f}")
    print_tables(rec, track_rows, header)
    if args.png and rec["detectors"]:
        plot(rec, args.png, f"AFLW2000-dev recall by |yaw| (images scaled x{args.scale})")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "recall": rec, "tracking": track_rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
