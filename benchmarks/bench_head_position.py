"""Head position accuracy on a clip of a real face that moves sideways and towards / away from the camera
by a known amount.

    .venv/bin/python benchmarks/bench_head_position.py                       # astronaut.jpg, 14 s clip
    .venv/bin/python benchmarks/bench_head_position.py --image ../shared/data/aflw-yaw-crops/images/X.jpg
    .venv/bin/python benchmarks/bench_head_position.py --sweep 1e-4,1e-3,1e-2,0.1,1   # process_noise
    .venv/bin/python benchmarks/bench_head_position.py --detector yunet \
        --detector-option model_path=../shared/models/yunet_s_640_640.onnx --out out/head_position_yunet

The clip is made the way a pinhole camera (60 degrees horizontal field of view, 640x480, 30 fps) sees a
flat picture of a face (examples/demo/astronaut.jpg, public domain, or an AFLW crop) at a known position:
2 s still at 0.6 m on the camera's axis, then 12 s of x = 12 cm * sin(2 pi t / 6 s) sideways and
distance d = 0.6 m + 15 cm * sin(2 pi t / 8 s), rendered with camera noise. The real daemon pipeline
(posebridge.daemon.assemble.build_pipeline: video source, default detector + tracker, the packaged
model, the stream filter) runs on it as fast as it can; `pos` of every message is compared with the
truth at the frame's capture time.

The face size is unknown to the daemon (its box spans some fraction of the picture), so the first run
calibrates `position.face_width_m` once from the first 15 measured frames (truth distance known:
face_width_m = box width x d / f); the measured run uses that value. x is compared as published, and
also after removing the constant offset of the box centre from the picture centre (what a `recenter`
does). Prints a table, writes a JSON and a PNG (default out/head_position.{json,png}).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

W, H, FPS, HFOV = 640, 480, 30.0, 60.0
F = (W / 2) / math.tan(math.radians(HFOV) / 2)
STILL_S, MOVE_S = 2.0, 12.0
D_REF, PICTURE_PX = 0.6, 220  # the picture is PICTURE_PX wide at D_REF


def truth(t: float) -> tuple[float, float, float]:
    """(x the person's right, y up, distance) metres at time t."""
    if t < STILL_S:
        return 0.0, 0.0, D_REF
    s = t - STILL_S
    return 0.12 * math.sin(2 * math.pi * s / 6.0), 0.0, D_REF + 0.15 * math.sin(2 * math.pi * s / 8.0)


def make_clip(path: Path, image: Path, seconds: float, seed: int = 0) -> list[tuple[float, float, float]]:
    import cv2

    from posebridge.offline.synthetic_clip import add_noise, open_writer, paste

    img = cv2.imread(str(image))
    if img is None:
        raise SystemExit(f"cannot read {image}")
    writer = open_writer(path, FPS, (W, H))
    rng = np.random.default_rng(seed)
    background = np.full((H, W, 3), (96, 104, 112), np.uint8)
    ih, iw = img.shape[:2]
    out = []
    for i in range(int(round(seconds * FPS))):
        x, y, d = truth(i / FPS)
        scale = PICTURE_PX / iw * D_REF / d  # pixels per picture pixel
        cx, cy = W / 2 - x * F / d, H / 2 - y * F / d  # the person's right is image left
        m = np.array([[scale, 0, cx - scale * iw / 2], [0, scale, cy - scale * ih / 2]])
        writer.write(add_noise(paste(background.copy(), img, m), rng, 2.0))
        out.append((x, y, d))
    writer.release()
    return out


def run_pipeline(clip: Path, n_frames: int, position: dict, detector: str, options: dict, redetect: int,
                 label: str) -> list[dict]:
    """The daemon's pipeline on the clip; one row per frame: index, pos, box, tracked."""
    from tqdm import tqdm

    from posebridge.config import ServeConfig, validate
    from posebridge.daemon.assemble import build_pipeline

    cfg = ServeConfig()
    cfg.source.spec, cfg.source.realtime = str(clip), False
    cfg.control.enabled = False
    cfg.publish.address = "tcp://127.0.0.1:0"
    cfg.faces.detector = detector
    cfg.faces.options = dict(options)
    cfg.faces.redetect_every = redetect
    cfg.faces.detect_in_thread = False  # every frame processed the same way, whatever the machine load
    cfg.run.log_every_s = 0.0
    for k, v in position.items():
        setattr(cfg.position, k, v)
    validate(cfg)
    pipe = build_pipeline(cfg)
    rows: list[dict] = []
    bar = tqdm(total=n_frames, desc=label, unit="frame", leave=False)

    def on_step(res) -> None:
        bar.update(1)
        if res.frame_index < 0 or not res.messages:
            return
        m = res.messages[0]
        rows.append({"i": res.frame_index, "pos": m.pos, "box": m.box, "tracked": m.tracked})

    try:
        pipe.run(on_step=on_step)
    finally:
        bar.close()
    return rows


def calibrate(rows: list[dict], tr: list[tuple[float, float, float]]) -> float:
    """face_width_m from the first 15 frames with a box: box width x true distance / f."""
    ws = [(r["box"][2] - r["box"][0]) * tr[r["i"]][2] / F for r in rows if r["box"] is not None][:15]
    if not ws:
        raise SystemExit("the detector found no face in the clip")
    return float(np.median(ws))


def score(rows: list[dict], tr: list[tuple[float, float, float]], neutral: float) -> dict:
    ok = [r for r in rows if r["pos"] is not None]
    idx = np.array([r["i"] for r in ok])
    est = np.array([r["pos"] for r in ok])
    true = np.array([tr[i] for i in idx])
    x_est, d_est = est[:, 0], neutral - est[:, 2]
    x_true, d_true = true[:, 0], true[:, 2]
    moving = idx >= STILL_S * FPS
    still = ~moving & (idx >= 0.5 * FPS)
    x_off = x_est - (x_est[still].mean() - x_true[still].mean())  # box-centre offset removed (recenter)
    rel = np.abs(d_est - d_true) / d_true
    return {
        "frames": len(rows), "with_pos": len(ok),
        "x_corr": float(np.corrcoef(x_est[moving], x_true[moving])[0, 1]),
        "x_mae_cm": float(np.abs(x_est - x_true)[moving].mean() * 100),
        "x_mae_recentered_cm": float(np.abs(x_off - x_true)[moving].mean() * 100),
        "x_max_recentered_cm": float(np.abs(x_off - x_true)[moving].max() * 100),
        "z_corr": float(np.corrcoef(d_est[moving], d_true[moving])[0, 1]),
        "z_mae_cm": float(np.abs(d_est - d_true)[moving].mean() * 100),
        "z_rel_median_pct": float(np.median(rel[moving]) * 100),
        "z_rel_p95_pct": float(np.percentile(rel[moving], 95) * 100),
        "z_rel_max_pct": float(rel[moving].max() * 100),
        "z_within_10pct": float(np.mean(rel[moving] <= 0.10)),
        "still_x_std_mm": float(x_est[still].std() * 1000),
        "still_z_std_mm": float(d_est[still].std() * 1000),
        "series": {"i": idx.tolist(), "x_est": x_est.tolist(), "x_true": x_true.tolist(),
                   "d_est": d_est.tolist(), "d_true": d_true.tolist()},
    }


def plot(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["series"]
    t = np.array(s["i"]) / FPS
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    axes[0].plot(t, np.array(s["x_true"]) * 100, "k-", label="truth")
    axes[0].plot(t, np.array(s["x_est"]) * 100, "C0-", lw=1, label=f"pos x (r = {result['x_corr']:.3f})")
    axes[0].set_ylabel("x, the person's right (cm)")
    axes[0].legend(loc="upper right")
    axes[1].plot(t, np.array(s["d_true"]) * 100, "k-", label="truth")
    axes[1].plot(t, np.array(s["d_est"]) * 100, "C1-", lw=1,
                 label=f"distance from pos z (r = {result['z_corr']:.3f}, median error "
                       f"{result['z_rel_median_pct']:.1f}%)")
    axes[1].fill_between(t, np.array(s["d_true"]) * 90, np.array(s["d_true"]) * 110, color="0.85",
                         label="truth +-10%")
    axes[1].set_ylabel("distance from the camera (cm)")
    axes[1].set_xlabel("time (s)")
    axes[1].legend(loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    from posebridge.paths import EXAMPLES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(EXAMPLES / "demo" / "astronaut.jpg"), help="face picture")
    p.add_argument("--detector", default="default")
    p.add_argument("--detector-option", action="append", default=[], metavar="KEY=VALUE",
                   help="faces.options for the detector, e.g. model_path=... for yunet (repeatable)")
    p.add_argument("--redetect-every", type=int, default=10, help="faces.redetect_every (daemon default 10)")
    p.add_argument("--sweep", default="", help="comma-separated position.process_noise values to compare")
    p.add_argument("--out", default=str(REPO / "out" / "head_position"), help="output prefix (.json, .png)")
    args = p.parse_args(argv)
    from posebridge.filtering.position import PositionConfig
    from posebridge.tomlconfig import parse_value

    options = {}
    for item in args.detector_option:
        key, _, value = item.partition("=")
        options[key] = parse_value(value)
    base = PositionConfig()
    seconds = STILL_S + MOVE_S
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        tr = make_clip(clip, Path(args.image), seconds)
        n = len(tr)
        t0 = time.perf_counter()
        first = run_pipeline(clip, n, {"hfov_deg": HFOV}, args.detector, options, args.redetect_every,
                             "calibration run")
        face_w = calibrate(first, tr)
        print(f"calibrated position.face_width_m = {face_w:.4f} m (default {base.face_width_m}) from the "
              f"first 15 measured frames; {time.perf_counter() - t0:.1f} s")
        noises = [float(x) for x in args.sweep.split(",") if x] or [base.process_noise]
        results = {}
        for q in noises:
            rows = run_pipeline(clip, n, {"hfov_deg": HFOV, "face_width_m": face_w, "process_noise": q},
                                args.detector, options, args.redetect_every, f"process_noise {q:g}")
            results[q] = score(rows, tr, base.neutral_distance_m)
    load = os.getloadavg()
    print(f"\n{Path(args.image).name}, {n} frames ({seconds:g} s at {FPS:g} fps), detector {args.detector}, "
          f"redetect_every {args.redetect_every}; load average {load[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| process_noise | x corr | x MAE cm | x MAE cm (recentered) | x max cm (recentered) | z corr "
          "| z MAE cm | z error median % | p95 % | max % | frames within 10% | still x std mm "
          "| still z std mm |")
    print("|" + "---|" * 13)
    for q, r in results.items():
        print(f"| {q:g} | {r['x_corr']:.3f} | {r['x_mae_cm']:.2f} | {r['x_mae_recentered_cm']:.2f} | "
              f"{r['x_max_recentered_cm']:.2f} | {r['z_corr']:.3f} | {r['z_mae_cm']:.2f} | "
              f"{r['z_rel_median_pct']:.1f} | {r['z_rel_p95_pct']:.1f} | {r['z_rel_max_pct']:.1f} | "
              f"{r['z_within_10pct'] * 100:.1f}% | {r['still_x_std_mm']:.2f} | {r['still_z_std_mm']:.2f} |")
    main_q = base.process_noise if base.process_noise in results else noises[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"image": Path(args.image).name, "frames": n, "fps": FPS, "hfov_deg": HFOV,
               "detector": args.detector, "detector_options": options,
               "redetect_every": args.redetect_every, "face_width_m_calibrated": face_w,
               "load_average": load[0], "cpus": os.cpu_count(),
               "results": {str(q): {k: v for k, v in r.items() if k != "series"} for q, r in results.items()}}
    Path(f"{out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(results[main_q], Path(f"{out}.png"),
         f"head position vs truth: {Path(args.image).name}, {args.detector}, process_noise {main_q:g}, "
         f"face_width_m calibrated to {face_w:.3f}")
    print(f"\nwrote {out}.json and {out}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
