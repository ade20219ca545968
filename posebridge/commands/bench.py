"""`posebridge bench [VIDEO]`: the full daemon pipeline on a video, timed stage by stage.

Prints per stage (decode, detect, track, crop, infer, filter, publish) median and p99 ms, capture ->
publish latency, sustained fps, CPU% (100% = one core) and peak RSS; `--json` for machines. Without a
VIDEO it makes a 640x480 clip of a moving face (the BIWI sample frame from ../shared when present,
else a drawn face that the Haar detector finds). When the backend is not plain PyTorch, the same clip
is also run with PyTorch fp32 (each run in its own process, one after the other) and the ratio printed.
Per-backbone ms-per-crop tables: benchmarks/bench_models.py.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError, PoseBridgeError

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "track", "crop", "infer", "filter", "publish")
CLIP_SIZE = (640, 480)


# --------------------------------------------------------------------------------------- the clip


def drawn_face(size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """A plain drawn face (skin ellipse, eyes, brows, nose, mouth, hair) that Haar cascades detect."""
    w, h = size
    img = np.full((h, w, 3), (90, 110, 120), np.uint8)
    cx, cy = w // 2, h // 2
    cv2.ellipse(img, (cx, cy), (80, 105), 0, 0, 360, (140, 170, 215), -1)
    for sx in (-1, 1):
        cv2.ellipse(img, (cx + sx * 32, cy - 25), (18, 9), 0, 0, 360, (240, 240, 240), -1)
        cv2.circle(img, (cx + sx * 32, cy - 25), 7, (40, 30, 20), -1)
        cv2.line(img, (cx + sx * 14, cy - 48), (cx + sx * 52, cy - 50), (40, 40, 60), 6)
    cv2.line(img, (cx, cy - 15), (cx - 8, cy + 22), (100, 120, 170), 4)
    cv2.ellipse(img, (cx, cy + 50), (30, 10), 0, 0, 180, (60, 60, 150), -1)
    cv2.ellipse(img, (cx, cy - 95), (85, 40), 0, 180, 360, (30, 30, 40), -1)
    return cv2.GaussianBlur(img, (5, 5), 0)


def default_face() -> tuple[np.ndarray, str]:
    """The BIWI sample frame (a real 640x480 face) when ../shared is present, else the drawn face."""
    from posebridge.paths import shared_data

    biwi = shared_data("biwi-sample", "frame_00003_rgb.png")
    img = cv2.imread(str(biwi)) if biwi.is_file() else None
    if img is not None:
        return img, str(biwi)
    return drawn_face(), "drawn face"


def make_clip(path: str | os.PathLike, face: np.ndarray | None = None, frames: int = 150, fps: float = 30.0,
              size: tuple[int, int] = CLIP_SIZE) -> Path:
    """A video of `face` (a frame-sized image) drifting and turning slightly, like a head in front of a
    webcam. Written with OpenCV (mp4v); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if face is None:
        face, _ = default_face()
    face = cv2.resize(face, size, interpolation=cv2.INTER_AREA) if face.shape[1::-1] != size else face
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise InputFileError(path, "OpenCV cannot write an mp4v video here")
    w, h = size
    for i in range(frames):
        t = i / fps
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 6.0 * math.sin(2 * math.pi * t / 3.0), 1.0)
        m[0, 2] += 25.0 * math.sin(2 * math.pi * t / 4.0)
        m[1, 2] += 10.0 * math.sin(2 * math.pi * t / 5.0)
        writer.write(cv2.warpAffine(face, m, size, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path


# ------------------------------------------------------------------------------------ one run


def bench_once(video: str, model: str | None, backend: str, device: str, detector: str | None = None,
               realtime: bool = False, warmup: int = 10, max_frames: int = 0) -> dict:
    """Run the pipeline over `video` in this process; timings exclude the first `warmup` frames."""
    import psutil

    from posebridge.config import ServeConfig
    from posebridge.daemon.loop import Pipeline
    from posebridge.timing import StageTimer

    cfg = ServeConfig()
    cfg.source.spec, cfg.source.realtime = str(video), realtime
    cfg.model.name, cfg.model.device, cfg.model.backend = model or "", device, backend
    if detector:
        cfg.faces.detector = detector
    cfg.publish.address = "tcp://127.0.0.1:0"  # any free port: never collides with a running daemon
    cfg.control.enabled = False
    cfg.run.log_every_s = 0.0
    t_load = time.perf_counter()
    pipe = Pipeline.from_config(cfg)
    load_s = time.perf_counter() - t_load
    proc = psutil.Process()
    try:
        for _ in range(warmup):
            if pipe.step() is None:
                raise InputFileError(video, f"video has fewer than {warmup} warm-up frames")
        pipe.timer = StageTimer(window=100_000)
        frames = faces = 0
        cpu0, t0 = proc.cpu_times(), time.perf_counter()
        while True:
            result = pipe.step()
            if result is None:
                break
            frames += 1
            faces += result.faces
            if max_frames and frames >= max_frames:
                break
        wall = time.perf_counter() - t0
        cpu1 = proc.cpu_times()
        summary = pipe.timer.summary()
        meta = pipe.estimator.meta
        backend_name = getattr(pipe.estimator.backend, "name", backend)
        provider = getattr(pipe.estimator.backend, "provider", "")
    finally:
        pipe.close()
    if frames == 0:
        raise InputFileError(video, "no frames left to time after the warm-up")
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    infer = summary.get("infer", {})
    crops_per_frame = faces / frames
    return {
        "backend": backend_name,
        "provider": provider,
        "device": device,
        "model": meta.name,
        "backbone": meta.backbone,
        "frames": frames,
        "faces_per_frame": round(crops_per_frame, 3),
        "stages": {s: summary[s] for s in STAGES if s in summary},
        "latency": summary.get("latency", {}),
        "fps": frames / wall,
        "cpu_percent": 100.0 * cpu_s / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "infer_ms_per_crop": infer.get("median_ms", float("nan")) / max(crops_per_frame, 1e-9)
        if crops_per_frame else float("nan"),
        "load_s": load_s,
        "realtime": realtime,
    }


def bench_subprocess(args, backend: str, video: str) -> dict:
    """One configuration in a fresh process, so CPU% and peak RSS belong to that run alone."""
    cmd = [sys.executable, "-m", "posebridge", "bench", video, "--backend", backend, "--device", args.device,
           "--warmup", str(args.warmup), "--frames", str(args.frames), "--json", "--no-compare"]
    if args.model:
        cmd += ["--model", args.model]
    if args.detector:
        cmd += ["--detector", args.detector]
    if args.realtime:
        cmd.append("--realtime")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise PoseBridgeError(f"bench with backend {backend}: {last}")
    out = proc.stdout
    start = out.find("{") if out.startswith("{") else out.find("\n{") + 1  # skip anything a library printed
    return json.loads(out[start:])["runs"][0]


# --------------------------------------------------------------------------------------- output


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def format_report(report: dict) -> str:
    runs = report["runs"]
    head = " | ".join(f"{r['backend']} median / p99" for r in runs)
    lines = [
        f"posebridge bench: {report['video']} ({report['size'][0]}x{report['size'][1]}, "
        f"{'real-time pacing' if report['realtime'] else 'as fast as possible'}), model {runs[0]['model']} "
        f"({runs[0]['backbone']}), {runs[0]['frames']} timed frames after {report['warmup']} warm-up",
        f"machine: {report['machine']['cpus']} CPUs, load average {report['machine']['load_avg_start']} "
        "at start (on a shared machine other work inflates these numbers)",
        "",
        f"| stage (ms) | {head} |" + (" ratio (torch / this) |" if len(runs) > 1 else ""),
        "|---|" + "---|" * len(runs) + ("---|" if len(runs) > 1 else ""),
    ]

    def row(name: str, values: list[dict | None], key: str = "median_ms") -> str:
        cells = [f"{_fmt(v.get('median_ms'))} / {_fmt(v.get('p99_ms'))}" if v else "-" for v in values]
        line = f"| {name} | " + " | ".join(cells) + " |"
        if len(values) > 1:
            a, b = values[0], values[-1]
            ratio = a[key] / b[key] if a and b and b.get(key) else float("nan")
            line += f" {ratio:.2f}x |" if not math.isnan(ratio) else " - |"
        return line

    for s in STAGES:
        lines.append(row(s, [r["stages"].get(s) for r in runs]))
    lines.append(row("**capture->publish**", [r["latency"] or None for r in runs]))
    lines.append("")
    ratio_head = " ratio |" if len(runs) > 1 else ""
    lines.append("| | " + " | ".join(r["backend"] for r in runs) + " |" + ratio_head)
    lines.append("|---|" + "---|" * len(runs) + ("---|" if len(runs) > 1 else ""))
    summary_rows = (
        ("fps", "sustained fps", True), ("infer_ms_per_crop", "infer ms per crop", False),
        ("cpu_percent", "CPU % (100 = one core)", False), ("peak_rss_mb", "peak RSS MB", False),
        ("faces_per_frame", "faces per frame", True),
    )
    for key, label, better_high in summary_rows:
        vals = [r[key] for r in runs]
        cells = [_fmt(v) if key != "faces_per_frame" else f"{v:.2f}" for v in vals]
        line = f"| {label} | " + " | ".join(cells) + " |"
        if len(runs) > 1:
            a, b = vals[0], vals[-1]
            ratio = (b / a if better_high else a / b) if a and b else float("nan")
            line += f" {ratio:.2f}x |"
        lines.append(line)
    lines.append("")
    lines.append("Per-backbone ms per crop (backbone x backend x batch): "
                 ".venv/bin/python benchmarks/bench_models.py")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time the full pipeline on a video, stage by stage",
        description=__doc__.split("\n\n")[0] + " " + " ".join(__doc__.split("\n\n")[1].split()),
    )
    p.add_argument("video", nargs="?", default=None, help="video file (default: a 640x480 clip made here)")
    p.add_argument("--model", default=None, help="model name or checkpoint (default: the default model)")
    p.add_argument("--backend", default=None, help="torch | torch-bf16 | torch-compile | onnx | onnx-int8 "
                   "(default: the daemon's default)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | tensorrt (onnx)")
    p.add_argument("--detector", default=None, help="face detector (default: the daemon's default)")
    p.add_argument("--frames", type=int, default=0, help="timed frames (default: the whole clip)")
    p.add_argument("--warmup", type=int, default=10, help="frames run before timing starts (default 10)")
    p.add_argument("--clip-frames", type=int, default=160, help="length of the generated clip (default 160)")
    p.add_argument("--face", default=None, help="face image for the generated clip (default: see above)")
    p.add_argument("--realtime", action="store_true", help="pace the file at its fps like a camera")
    p.add_argument("--threads", type=int, default=0,
                   help="inference threads for PyTorch and ONNX Runtime (default: all cores)")
    p.add_argument("--no-compare", action="store_true", help="do not also run PyTorch fp32 for the ratio")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    from posebridge.config import ServeConfig

    backend = args.backend or ServeConfig().model.backend
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["POSEBRIDGE_ORT_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="posebridge-bench-") as tmp:
        video, face_src = args.video, None
        if video is None:
            if args.face:
                face = cv2.imread(args.face)
                if face is None:
                    raise InputFileError(args.face, "not a readable image")
                face_src = args.face
            else:
                face, face_src = default_face()
            video = str(make_clip(Path(tmp) / "bench.mp4", face, frames=args.clip_frames))
        elif not Path(video).is_file():
            raise InputFileError(video, "video file not found")
        cap = cv2.VideoCapture(video)
        size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
        cap.release()
        load_avg = [round(x, 2) for x in os.getloadavg()]
        if args.no_compare or backend == "torch":
            runs = [bench_once(video, args.model, backend, args.device, args.detector, args.realtime,
                               args.warmup, args.frames)]
        else:
            runs = [bench_subprocess(args, "torch", video), bench_subprocess(args, backend, video)]
    report = {
        "video": args.video or f"generated 640x480 clip ({face_src}, {args.clip_frames} frames)",
        "size": size, "realtime": args.realtime, "warmup": args.warmup, "threads": args.threads or "default",
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "load_avg_start": load_avg,
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
