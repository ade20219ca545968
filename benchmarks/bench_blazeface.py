"""BlazeFace (posebridge.faces.blazeface) measured: recall by |yaw| bucket, faces missed, false boxes and
ms per 640x480 frame, for its variants (short/full range, score threshold, second look, top anchor, NMS,
resize) and, for the tables, the other detectors. Results and the choice of defaults: docs/blazeface.md.

Image sets (`--set`, repeatable):

- `crops`: the TRAINING crops `aflw-yaw-crops` (AFLW faces that are not AFLW2000 images; 1 in
  `--crop-every` with |yaw| <= 99 by AFLW's human yaw), each resized to `--crop-size` px (240: a
  landmark box of ~170 px, like AFLW2000's faces; 160: ~113 px, a head ~60 cm from a 640x480 webcam)
  and pasted at a seeded random place on a black 640x480 frame. The crop is the 3DDFA ROI, so the
  face's landmark box is the centred square of side crop/sqrt(2). The default is chosen on this set.
- `negatives`: 640x480 frames tiled with 32x32 patches cut at random from those crops (skin, hair, eyes,
  mouths, background: face parts in no face layout, a hard case); every box is a false one. Also used
  for the choice (`--choose`).
- `aflw2000`: the benchmark, AFLW2000-dev in the detector protocol of benchmarks/bench_detectors.py
  (450x450 image pasted unscaled in the middle of a black 640x480 frame, ±99 degrees, match rule
  posebridge.offline.detector_eval.matches). Reported, not used to choose anything.
- `timing`: thread CPU and wall ms of `detect()` per 640x480 AFLW2000-dev frame, one thread
  (ONNX Runtime intra-op 1, no spinning; cv2 1 thread): each configuration alone (warm caches,
  `--rounds` times), the BlazeFace configurations interleaved frame by frame (colder caches, closer to
  a pipeline), and on face-free frames.

Each BlazeFace model configuration runs once per frame; its thresholds, NMS and second look are decoded
from that one output (`BlazeFaceDetector.raw`, `decode`, `look_again_raw`, `decode_window`), so one run
covers every threshold pair.

    .venv/bin/python benchmarks/bench_blazeface.py --set crops --set negatives
    .venv/bin/python benchmarks/bench_blazeface.py --set crops --crop-size 160 --tag _160
    .venv/bin/python benchmarks/bench_blazeface.py --choose 8    # the default's choice, training data only
    .venv/bin/python benchmarks/bench_blazeface.py --set aflw2000 --others
    .venv/bin/python benchmarks/bench_blazeface.py --set aflw2000 --others --scale 0.5 --limit 300 --tag _half
    .venv/bin/python benchmarks/bench_blazeface.py --set timing --rounds 5 [--others]
    .venv/bin/python benchmarks/bench_blazeface.py --zoom 2 --models short --out /tmp/z2 --set crops ...
    .venv/bin/python benchmarks/bench_blazeface.py --plot        # PNG from the JSONs written above

Each run writes aggregate numbers only (no per-image data) to
benchmarks/results/detectors/blazeface_<set><tag>.json; `--plot` draws blazeface.png from them. Needs
the BlazeFace models (`posebridge models pull blazeface`, or blazeface_model.pull_blazeface).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import posebridge.faces.blazeface as blazeface  # noqa: E402
from posebridge.errors import PoseBridgeError  # noqa: E402
from posebridge.faces.blazeface import BlazeFaceDetector  # noqa: E402
from posebridge.faces.detectors import create_detector  # noqa: E402
from posebridge.offline.datasets import in_range, landmark_box, read_aflw2000  # noqa: E402
from posebridge.offline.detector_eval import BUCKET_NAMES, CANVAS, matches, shift, to_canvas, yaw_bucket  # noqa: E402
from posebridge.paths import shared_dir  # noqa: E402

SHARED = shared_dir()
OUT = REPO / "benchmarks" / "results" / "detectors"
THRESHOLDS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)
LOOK_FIRST = (0.4, 0.45, 0.5, 0.55, 0.6)  # first-pass thresholds combined with a second look ...
LOOK_SECOND = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)  # ... at these second-look thresholds
DEFAULT = "short t=0.5 +look 0.75"  # BlazeFaceDetector() (the defaults, chosen on the training crops)
MODELS = {  # one ONNX Runtime run per frame each; the decodes below share it
    "short": {"variant": "short"},
    "short linear": {"variant": "short", "resize": "linear"},
    "full": {"variant": "full"},
    "full linear": {"variant": "full", "resize": "linear"},
}
TIMED = {  # label -> create_detector(name, **options) for the timing table
    "blazeface default (short t=0.5 +look 0.75)": ("blazeface", {}),
    "blazeface short t=0.5, no second look": ("blazeface", {"second_look": False}),
    "blazeface short top anchor": ("blazeface", {"score_threshold": 0.0, "max_faces": 1}),
    "blazeface short linear t=0.5 +look 0.75": ("blazeface", {"resize": "linear"}),
    "blazeface full t=0.5, no second look": ("blazeface", {"variant": "full", "second_look": False}),
    "blazeface full linear t=0.5, no second look": ("blazeface", {"variant": "full", "resize": "linear",
                                                                  "second_look": False}),
}


def others(yunet: Path) -> dict[str, tuple[str, dict]]:
    """The other detectors, as docs/detectors.md measured them (default options, full frame)."""
    out = {"dlib_hog+profile (current default)": ("dlib_hog", {}), "haar @320": ("haar", {})}
    if yunet.is_file():
        out["yunet"] = ("yunet", {"model_path": str(yunet)})
    return out


Box = tuple[float, float, float, float]
Frame = tuple[np.ndarray, Box | None, float]  # canvas, true landmark box (None: no face), yaw


def decodes(thresholds: tuple[float, ...]) -> list[tuple[str, dict]]:
    """(suffix, decode settings) applied to each model's raw output."""
    out = [(f"t={t:g}", {"score_threshold": t, "max_faces": 10, "weighted_nms": True}) for t in thresholds]
    out.append(("t=0.5 plain NMS", {"score_threshold": 0.5, "max_faces": 10, "weighted_nms": False}))
    out.append(("top anchor", {"score_threshold": 0.0, "max_faces": 1, "weighted_nms": True}))
    return out





def aflw2000_frames(data: Path, limit: int = 0, scale: float = 1.0) -> tuple[list, Iterator[Frame]]:
    samples = [s for s in read_aflw2000(data) if in_range(s) and s.pt2d is not None]
    samples = samples[:limit] if limit else samples

    def gen() -> Iterator[Frame]:
        for s in samples:
            img, truth = cv2.imread(str(s.image_path)), landmark_box(s.pt2d)
            if scale != 1.0:  # as bench_detectors.py --scale: smaller faces
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                truth = tuple(v * scale for v in truth)
            canvas, (dx, dy) = to_canvas(img)
            yield canvas, shift(truth, dx, dy), s.yaw

    return samples, gen()


def crop_list(crops: Path, every: int, limit: int = 0) -> list[tuple[Path, float]]:
    """The deterministic subset of the training crops: every `every`-th by file name, |yaw| <= 99."""
    with open(crops / "labels.csv", newline="") as f:
        rows = sorted((r["image"], float(r["yaw_deg"])) for r in csv.DictReader(f))
    out = [(crops / "images" / name, yaw) for name, yaw in rows[::every] if abs(yaw) <= 99.0]
    return out[:limit] if limit else out


def paste_crop(crop: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, Box]:
    """A crop resized to size x size at a seeded random place on a black 640x480 frame; the frame and the
    crop's square (the true 3DDFA ROI) in frame pixels."""
    w, h = CANVAS
    rng = np.random.default_rng(seed)
    x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    canvas = np.zeros((h, w, 3), np.uint8)
    interp = cv2.INTER_LINEAR if size >= crop.shape[0] else cv2.INTER_AREA
    canvas[y:y + size, x:x + size] = cv2.resize(crop, (size, size), interpolation=interp)
    return canvas, (float(x), float(y), float(x + size), float(y + size))


def crop_frames(items: list[tuple[Path, float]], size: int) -> Iterator[Frame]:
    for i, (path, yaw) in enumerate(items):
        canvas, roi = paste_crop(cv2.imread(str(path)), size, seed=i)
        side = size / np.sqrt(2.0)  # the landmark box's longer side (3DDFA ROI = sqrt(2) x it)
        cx, cy = (roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2
        yield canvas, (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), yaw


def negative_frames(items: list[tuple[Path, float]], n: int, tile: int = 32,
                    seed: int = 0) -> Iterator[Frame]:
    """Frames of random 32x32 patches from random crops: face-like texture, no face."""
    rng = np.random.default_rng(seed)
    w, h = CANVAS
    for _ in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        picks = rng.integers(0, len(items), 6)
        crops = [cv2.imread(str(items[int(k)][0])) for k in picks]
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                c = crops[int(rng.integers(0, len(crops)))]
                u, v = (int(t) for t in rng.integers(0, c.shape[0] - tile + 1, 2))
                frame[y:y + tile, x:x + tile] = c[v:v + tile, u:u + tile]
        yield frame, None, 0.0


def recall_run(frames: Iterator[Frame], total: int, models: dict[str, dict], thresholds: tuple[float, ...],
               other: dict[str, tuple[str, dict]], desc: str) -> dict:
    """Hits per |yaw| bucket, false boxes and frames with a false box, per configuration."""
    nb = len(BUCKET_NAMES)
    dets = {}
    for label, opts in models.items():
        try:
            dets[label] = BlazeFaceDetector(**opts)
        except PoseBridgeError as exc:
            print(f"skipping {label}: {exc}", file=sys.stderr)
    runs = {label: create_detector(name, **opts) for label, (name, opts) in other.items()}
    looks = [f"t={t:g} +look {t2:g}" for t in LOOK_FIRST for t2 in LOOK_SECOND]
    configs = [f"{m} {suffix}" for m in dets for suffix in [s for s, _ in decodes(thresholds)] + looks]
    configs += list(runs)
    stats = {c: {"hits": np.zeros(nb, int), "false": 0, "false_frames": 0} for c in configs}
    totals = np.zeros(nb, int)
    seen = 0
    for canvas, truth, yaw in tqdm(frames, total=total, desc=desc, unit="frame", mininterval=2):
        b = yaw_bucket(yaw)
        totals[b] += truth is not None
        seen += 1

        def score(label: str, boxes: list, truth=truth, b=b) -> None:
            hit = [truth is not None and matches(x, truth) for x in boxes]
            s = stats[label]
            s["hits"][b] += any(hit)
            false = len(hit) - (1 if any(hit) else 0)
            s["false"] += false
            s["false_frames"] += false > 0

        for m, det in dets.items():
            reg, logits = det.raw(canvas)
            first = {}
            for suffix, settings in decodes(thresholds):
                det.score_threshold = settings["score_threshold"]
                det.max_faces, det.weighted_nms = settings["max_faces"], settings["weighted_nms"]
                boxes = det.decode(reg, logits)
                score(f"{m} {suffix}", boxes)
                if suffix.startswith("t=") and suffix[2:].replace(".", "").isdigit():
                    first[settings["score_threshold"]] = boxes
            det.max_faces, det.weighted_nms = 10, True
            again = None
            if any(not first[t] for t in LOOK_FIRST):  # the second look runs only when needed
                again = det.look_again_raw(canvas, reg, logits)
            second = {t2: det.decode_window(*again, t2) if again else [] for t2 in LOOK_SECOND}
            for t in LOOK_FIRST:
                for t2 in LOOK_SECOND:
                    score(f"{m} t={t:g} +look {t2:g}", first[t] or second[t2])
        for label, det in runs.items():
            score(label, det.detect(canvas))
    frames_n = max(seen, 1)
    out = {"totals": totals.tolist(), "frames": seen, "detectors": {}}
    for label, s in stats.items():
        out["detectors"][label] = {
            "recall": (s["hits"] / np.maximum(totals, 1)).tolist(),
            "recall_all": float(s["hits"].sum() / max(totals.sum(), 1)),
            "missed": int(totals.sum() - s["hits"].sum()),
            "false_per_frame": s["false"] / frames_n,
            "frames_with_false_box": s["false_frames"] / frames_n,
        }
    return out


def timing_run(frames: list[np.ndarray], configs: dict[str, tuple[str, dict]], interleave: bool,
               rounds: int = 1, warmup: int = 20) -> dict:
    """Thread CPU and wall ms per detect(): each configuration alone over all frames (warm caches, as
    back-to-back detections), `rounds` times in turn, or all interleaved frame by frame (each call after
    the others' work, as in a pipeline that runs other models between detections). Reported: median and
    p99 over every call, and the median of the quietest round (the machine is shared)."""
    dets = {}
    for label, (name, opts) in configs.items():
        try:
            dets[label] = create_detector(name, **opts)
        except PoseBridgeError as exc:
            print(f"skipping {label}: {exc}", file=sys.stderr)
    cpu: dict[str, list[list[float]]] = {k: [] for k in dets}
    wall: dict[str, list[list[float]]] = {k: [] for k in dets}

    def once(label: str, det, f: np.ndarray) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        det.detect(f)
        cpu[label][-1].append((time.thread_time() - c0) * 1e3)
        wall[label][-1].append((time.perf_counter() - t0) * 1e3)

    for det in dets.values():
        for f in frames[:warmup]:
            det.detect(f)
    if interleave:
        for label in dets:
            cpu[label].append([])
            wall[label].append([])
        for f in tqdm(frames, desc="timing interleaved", unit="frame", mininterval=2):
            for label, det in dets.items():
                once(label, det, f)
    else:
        for r in range(rounds):
            for label, det in dets.items():
                cpu[label].append([])
                wall[label].append([])
                for f in tqdm(frames, desc=f"timing {label} ({r + 1}/{rounds})", unit="frame", mininterval=2):
                    once(label, det, f)
    out = {}
    for label in dets:
        c, w = np.concatenate(cpu[label]), np.concatenate(wall[label])
        out[label] = {"cpu_ms_median": float(np.median(c)), "cpu_ms_p99": float(np.percentile(c, 99)),
                      "wall_ms_median": float(np.median(w)), "wall_ms_p99": float(np.percentile(w, 99)),
                      "cpu_ms_median_quietest_round": float(min(np.median(r) for r in cpu[label])),
                      "calls": int(len(c))}
    return out


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def headline(label: str) -> bool:
    """The rows printed by default (the JSON has every configuration)."""
    if " +look " in label:
        return label.split(" t=")[1].startswith("0.5 +look")
    return label.split(" t=")[-1][:4] not in ("0.1", "0.2", "0.35", "0.45", "0.55", "0.65", "0.8", "0.9")


def print_recall(res: dict, title: str, everything: bool = False) -> None:
    print(f"\n{title}")
    t = res["totals"]
    heads = " | ".join(f"yaw {b} (n={n})" for b, n in zip(BUCKET_NAMES, t, strict=True))
    print(f"| configuration | {heads} | recall all | missed of {sum(t)} | false boxes / frame | "
          "frames with a false box |")
    print("|---" * (len(BUCKET_NAMES) + 5) + "|")
    for label, r in res["detectors"].items():
        if not (everything or headline(label)):
            continue
        cells = " | ".join(f"{100 * v:.1f}%" for v in r["recall"])
        name = f"**{label}** (default)" if label == DEFAULT else label
        print(f"| {name} | {cells} | {100 * r['recall_all']:.1f}% | {r['missed']} | "
              f"{r['false_per_frame']:.3f} | {100 * r['frames_with_false_box']:.1f}% |")


def print_timing(res: dict) -> None:
    print("\n| detector | timed | CPU ms median | CPU ms p99 | CPU ms median, quietest round "
          "| wall ms median | wall ms p99 |")
    print("|---|---|---|---|---|---|---|")
    for mode, rows in res.items():
        for label, r in rows.items():
            print(f"| {label} | {mode} | {r['cpu_ms_median']:.2f} | {r['cpu_ms_p99']:.2f} | "
                  f"{r['cpu_ms_median_quietest_round']:.2f} | {r['wall_ms_median']:.2f} | "
                  f"{r['wall_ms_p99']:.2f} |")


def plot(out: Path, png: Path, show: list[str]) -> None:
    """Recall by |yaw| bucket on AFLW2000-dev per detector; recall (training crops) and frames with a false
    box (negatives) against the score threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    a = out / "blazeface_aflw2000.json"
    if a.is_file():
        res = json.loads(a.read_text())["recall"]
        labels = [k for k in show if k in res["detectors"]] or list(res["detectors"])
        width = 0.8 / len(labels)
        x = np.arange(len(BUCKET_NAMES))
        for i, label in enumerate(labels):
            r = res["detectors"][label]
            axes[0].bar(x + i * width - 0.4 + width / 2, [100 * v for v in r["recall"]], width,
                        label=f"{label}{' = default' if label == DEFAULT else ''} ({r['missed']} missed)")
        ticks = [f"|yaw| {b}\n(n={n})" for b, n in zip(BUCKET_NAMES, res["totals"], strict=True)]
        axes[0].set_xticks(x, ticks)
        axes[0].set_ylim(0, 105)
        axes[0].set_ylabel("recall %")
        axes[0].set_title(f"AFLW2000-dev (benchmark), {sum(res['totals'])} faces")
        axes[0].legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    def curve(ax, res: dict, key: str, prefix: str, label: str, style: str = "-") -> None:
        """`key` against the threshold for labels `prefix<threshold>` (first pass, or second look)."""
        pts = sorted((float(k[len(prefix):]), v[key]) for k, v in res.items()
                     if k.startswith(prefix) and k[len(prefix):].replace(".", "").isdigit())
        if pts:
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, marker="o", ms=3, label=label)

    for tag in ("", "_160"):
        p = out / f"blazeface_crops{tag}.json"
        if p.is_file():
            res = json.loads(p.read_text())["recall"]["detectors"]
            size = json.loads(p.read_text())["header"]["what"].split(" at ")[1].split(" px")[0]
            for model in ("short", "full"):
                curve(axes[1], res, "recall_all", f"{model} t=", f"{model} @{size} px")
            curve(axes[1], res, "recall_all", "short t=0.5 +look ", f"short t=0.5 @{size} px, x = 2nd look",
                  "--")
    p = out / "blazeface_negatives.json"
    if p.is_file():
        res = json.loads(p.read_text())["recall"]["detectors"]
        for model in ("short", "full"):
            curve(axes[2], res, "frames_with_false_box", f"{model} t=", model)
        curve(axes[2], res, "frames_with_false_box", "short t=0.5 +look ", "short t=0.5, x = 2nd look", "--")
    axes[1].set_ylabel("recall %")
    axes[1].set_title("training crops on a 640x480 frame")
    axes[2].set_ylabel("frames with a false box %")
    axes[2].set_title("face-free frames (tiled crop patches)")
    for ax in axes[1:]:
        ax.set_xlabel("score threshold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print(f"wrote {png}")


def choose(out: Path, model: str = "short", top: int = 12) -> bool:
    """The choice of the default on training data only: for each configuration of `model`, the share of
    training crops missed at 240 and at 160 px (mean of the two), plus the share of face-free frames
    with a false box, plus the share of 240-px crop frames with a false box; smallest first."""
    names = ("blazeface_crops.json", "blazeface_crops_160.json", "blazeface_negatives.json")
    if not all((out / n).is_file() for n in names):
        print(f"bench_blazeface: --choose needs {', '.join(names)} in {out}", file=sys.stderr)
        return False
    c240, c160, neg = (json.loads((out / n).read_text())["recall"]["detectors"] for n in names)
    rows = []
    for label in c240:
        if not label.startswith(f"{model} t=") or "plain" in label or label not in c160 or label not in neg:
            continue
        miss = ((1 - c240[label]["recall_all"]) + (1 - c160[label]["recall_all"])) / 2
        cost = miss + neg[label]["frames_with_false_box"] + c240[label]["frames_with_false_box"]
        rows.append((cost, label, 1 - c240[label]["recall_all"], 1 - c160[label]["recall_all"],
                     neg[label]["frames_with_false_box"], c240[label]["frames_with_false_box"]))
    print("\n| configuration | missed @240 | missed @160 | false: face-free frames | false: crop frames "
          "| cost |")
    print("|---|---|---|---|---|---|")
    for cost, label, m240, m160, fneg, fcrop in sorted(rows)[:top]:
        print(f"| {label} | {100 * m240:.2f}% | {100 * m160:.2f}% | {100 * fneg:.2f}% | {100 * fcrop:.2f}% | "
              f"{100 * cost:.2f} |")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[],
                    choices=("crops", "negatives", "aflw2000", "timing"))
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "aflw2000-dev")
    ap.add_argument("--crops", type=Path, default=SHARED / "data" / "aflw-yaw-crops")
    ap.add_argument("--yunet", type=Path, default=SHARED / "models" / "yunet_s_640_640.onnx")
    ap.add_argument("--crop-size", type=int, default=240, help="crop side on the 640x480 frame, px")
    ap.add_argument("--crop-every", type=int, default=3, help="every N-th training crop")
    ap.add_argument("--negatives", type=int, default=3000, help="face-free frames")
    ap.add_argument("--timing-frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="timing: rounds of each BlazeFace configuration")
    ap.add_argument("--limit", type=int, default=0, help="first N images/crops only (0 = all)")
    ap.add_argument("--scale", type=float, default=1.0, help="aflw2000: shrink the images by this first "
                    "(0.5: faces of ~75-125 px, as bench_detectors.py --scale 0.5)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated BlazeFace model configs")
    ap.add_argument("--others", action="store_true", help="also dlib_hog+profile, haar @320, yunet")
    ap.add_argument("--choose", type=int, default=0, metavar="N",
                    help="print the N best configurations by the training-data cost (no detection)")
    ap.add_argument("--zoom", type=float, default=None,
                    help="second-look window / box side (posebridge.faces.blazeface.SECOND_LOOK_ZOOM)")
    ap.add_argument("--print-all", action="store_true", help="print every configuration")
    ap.add_argument("--tag", default="", help="suffix for the JSON name (e.g. _160)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--plot", action="store_true", help="draw blazeface.png from the JSONs in --out")
    ap.add_argument("--show", default="", help="comma-separated labels for the plot's first panel")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if args.zoom is not None:
        blazeface.SECOND_LOOK_ZOOM = args.zoom

    if args.choose:
        if not choose(args.out, "short", args.choose):
            return 2
        choose(args.out, "short linear", 3)
        choose(args.out, "full", 3)
        return 0
    if args.plot:
        show = [s.strip() for s in args.show.split(",") if s.strip()] or [
            DEFAULT, "short t=0.5", "short top anchor", "short linear t=0.5 +look 0.75", "full t=0.5",
            "yunet", "dlib_hog+profile (current default)", "haar @320"]
        plot(args.out, args.out / "blazeface.png", show)
        return 0
    if not args.set:
        ap.error("choose --set crops|negatives|aflw2000|timing (or --plot)")
    models = {k: MODELS[k] for k in (m.strip() for m in args.models.split(",")) if k in MODELS}
    args.out.mkdir(parents=True, exist_ok=True)
    for which in args.set:
        load0 = uptime()
        extra: dict[str, tuple[str, dict]] = others(args.yunet) if args.others else {}
        if which in ("crops", "negatives"):
            if not (args.crops / "labels.csv").is_file():
                print(f"bench_blazeface: {args.crops}: training crops not found", file=sys.stderr)
                return 2
            items = crop_list(args.crops, args.crop_every, args.limit)
            if which == "crops":
                res = recall_run(crop_frames(items, args.crop_size), len(items), models, THRESHOLDS, extra,
                                 f"crops @{args.crop_size}")
                what = (f"{len(items)} training crops (1 in {args.crop_every} of aflw-yaw-crops, "
                        f"|yaw| <= 99) at {args.crop_size} px on a 640x480 frame")
            else:
                n = args.limit or args.negatives
                res = recall_run(negative_frames(items, n), n, models, THRESHOLDS, extra, "negatives")
                what = f"{n} face-free frames tiled with 32x32 patches of training crops"
        elif which == "aflw2000":
            if not args.data.is_dir():
                print(f"bench_blazeface: {args.data}: AFLW2000-dev folder not found", file=sys.stderr)
                return 2
            samples, frames = aflw2000_frames(args.data, args.limit, args.scale)
            res = recall_run(frames, len(samples), models, THRESHOLDS, extra, "aflw2000")
            what = f"{len(samples)} AFLW2000-dev images (±99 degrees) pasted on a 640x480 frame"
            what += f", scaled x{args.scale:g} first" if args.scale != 1.0 else ""
        else:
            samples, frames = aflw2000_frames(args.data, args.timing_frames)
            frames = [f for f, _, _ in frames]
            res = {"alone": timing_run(frames, dict(TIMED), interleave=False, rounds=args.rounds),
                   "interleaved": timing_run(frames, dict(TIMED), interleave=True)}
            if extra:
                res["alone (other detectors)"] = timing_run(frames, extra, interleave=False)
            what = f"detect() on {len(frames)} AFLW2000-dev 640x480 frames, 1 thread"
            if (args.crops / "labels.csv").is_file():  # frames without a face: the second look always runs
                items = crop_list(args.crops, args.crop_every)
                empty = [f for f, _, _ in negative_frames(items, 100, seed=7)]
                res["alone, face-free frames"] = timing_run(empty, dict(TIMED), interleave=False,
                                                            rounds=args.rounds)
                what += " (+ 100 face-free frames)"
        header = {"set": which, "what": what, "uptime_before": load0, "uptime_after": uptime(),
                  "second_look_zoom": blazeface.SECOND_LOOK_ZOOM,
                  "cpus": os.cpu_count(), "opencv": cv2.__version__,
                  "onnxruntime": __import__("onnxruntime").__version__}
        print(json.dumps(header, indent=1))
        if which == "timing":
            print_timing(res)
            payload = {"header": header, "timing": res}
        else:
            print_recall(res, what, args.print_all)
            payload = {"header": header, "recall": res}
        path = args.out / f"blazeface_{which}{args.tag}.json"
        path.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
