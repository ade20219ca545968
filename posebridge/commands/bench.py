"""`posebridge bench [VIDEO]`: the full daemon pipeline on a video, timed stage by stage.

Prints per stage (decode, detect, track, crop, infer, filter, publish) median and p99 ms, capture ->
publish latency, sustained fps, CPU% (100% = one core), peak RSS, start-up time (process start to the
first published message and to the first tracked pose) and skipped frames; `--json` for machines.
Each configuration runs in its own process, so CPU%, RSS and start-up belong to it alone. Without a
VIDEO it makes a 640x480 clip of a moving face (the BIWI sample frame from ../shared when present,
else a drawn face). `--compare BACKEND` also runs the same clip with another backend (e.g. `torch`, the
previous default) and prints the ratios. Per-backbone ms-per-crop tables: benchmarks/bench_models.py.
"""

from __future__ import annotations

import argparse
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
PREVIOUS_DEFAULT = {"backend": "torch", "detector": "dlib_hog", "detect_in_thread": False}  # before 2026-12
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


def make_clip(path: str | os.PathLike, face: np.ndarray | None = None, frames: int = 300, fps: float = 30.0,
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


def bench_once(video: str, model: str | None = None, backend: str | None = None, device: str = "auto",
               detector: str | None = None, realtime: bool = False, warmup: int = 10, max_frames: int = 0,
               threads: int | None = None, detect_in_thread: bool | None = None,
               t_spawn: float | None = None, overrides: list[str] | None = None,
               watch_view: bool = False) -> dict:
    """Run the daemon's pipeline over `video` in this process; stage timings and CPU exclude the first
    `warmup` frames. `t_spawn` (wall clock when the parent started this process) makes `startup_*`
    the time from process start to the first published message / first tracked pose. With the live page
    on (`--set view.enabled=true`, any free port unless `view.address` says otherwise) no page is open,
    unless `watch_view`: then a client process reads the preview and polls the state like an open page
    during the timed frames (its own CPU is not counted)."""
    from posebridge.config import ServeConfig
    from posebridge.daemon.assemble import build_pipeline
    from posebridge.timing import StageTimer

    t_begin = time.time() if t_spawn is None else t_spawn
    cfg = ServeConfig()
    cfg.source.spec, cfg.source.realtime = str(video), realtime
    cfg.model.name, cfg.model.device = model or "", device
    if backend:
        cfg.model.backend = backend
    if threads is not None:
        cfg.model.threads = threads
    if detector:
        cfg.faces.detector = detector
    if detect_in_thread is not None:
        cfg.faces.detect_in_thread = detect_in_thread
    cfg.publish.address = "tcp://127.0.0.1:0"  # any free port: never collides with a running daemon
    cfg.control.enabled = False
    cfg.run.log_every_s = 0.0
    cfg.view.address = "127.0.0.1:0"  # when `--set view.enabled=true`: never collides with a running daemon
    if overrides:
        from posebridge.config import apply_overrides, validate

        apply_overrides(cfg, overrides)
        validate(cfg)
    t_load = time.perf_counter()
    pipe = build_pipeline(cfg)
    load_s = time.perf_counter() - t_load
    first_msg = first_pose = None
    watcher = None
    try:
        for _ in range(warmup):
            result = pipe.step()
            if result is None:
                raise InputFileError(video, f"video has fewer than {warmup} warm-up frames")
            if first_msg is None and result.messages:
                first_msg = result.messages[0].t_publish
            if first_pose is None and any(m.tracked for m in result.messages):
                first_pose = next(m.t_publish for m in result.messages if m.tracked)
        pipe.timer = StageTimer(window=100_000)
        if watch_view:
            if pipe.view is None:
                raise PoseBridgeError("--watch-view needs the live page: add --view")
            watcher = start_page_client(pipe.view.url)
        encodes0 = pipe.view.feed.encodes if pipe.view is not None else 0
        dropped0 = int(pipe.source.stats().get("dropped", 0))
        frames = faces = 0
        cpu0, t0 = os.times(), time.perf_counter()
        while True:
            result = pipe.step()
            if result is None:
                break
            frames += 1
            faces += result.faces
            if first_pose is None and any(m.tracked for m in result.messages):
                first_pose = next(m.t_publish for m in result.messages if m.tracked)
            if max_frames and frames >= max_frames:
                break
        wall = time.perf_counter() - t0
        cpu1 = os.times()
        summary = pipe.timer.summary()
        meta = pipe.estimator.meta
        backend_name = pipe.estimator.backend.name
        provider = pipe.estimator.backend.provider
        skipped = int(pipe.source.stats().get("dropped", 0)) - dropped0
        tracker = pipe.tracker.stats()
        view = None
        if pipe.view is not None:
            view = {"watched": watch_view, "encodes": pipe.view.feed.encodes - encodes0,
                    "encode_ms_total": pipe.view.feed.encode_ms}
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=10)
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
        "detector": cfg.faces.detector,
        "detect_in_thread": cfg.faces.detect_in_thread,
        "flip": pipe.estimator.flip_mode,
        "overrides": list(overrides or []),
        "threads": cfg.model.threads,
        "model": meta.name,
        "backbone": meta.backbone,
        "frames": frames,
        "skipped_frames": skipped,
        "faces_per_frame": round(crops_per_frame, 3),
        "stages": {s: summary[s] for s in STAGES if s in summary},
        "latency": summary.get("latency", {}),
        "fps": frames / wall,
        "cpu_percent": 100.0 * cpu_s / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "infer_ms_per_crop": infer.get("median_ms", float("nan")) / max(crops_per_frame, 1e-9)
        if crops_per_frame else float("nan"),
        "load_s": load_s,
        "startup_first_message_s": (first_msg - t_begin) if first_msg else float("nan"),
        "startup_first_pose_s": (first_pose - t_begin) if first_pose else float("nan"),
        "detector_runs": tracker.get("detect_frames", 0),
        "torch_imported": "torch" in sys.modules,
        "realtime": realtime,
        "view": view,
    }


PAGE_CLIENT = """
import sys, threading, time, urllib.request
url = sys.argv[1]
def stream():
    with urllib.request.urlopen(url + "stream.mjpg", timeout=30) as r:
        while r.read(65536):
            pass
threading.Thread(target=stream, daemon=True).start()
since = -1
while True:
    with urllib.request.urlopen(url + f"api/state?since={since}", timeout=30) as r:
        r.read()
    time.sleep(0.1)
"""


def start_page_client(url: str) -> subprocess.Popen:
    """A process that does what an open page does: read the preview stream, poll the state at 10 Hz."""
    return subprocess.Popen([sys.executable, "-c", PAGE_CLIENT, url], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def bench_subprocess(args, video: str, backend: str | None = None, detector: str | None = None,
                     detect_in_thread: bool | None = None, prev_default: bool = False) -> dict:
    """One configuration in a fresh process, so CPU%, RSS and start-up belong to that run alone."""
    cmd = [sys.executable, "-m", "posebridge", "bench", video, "--device", args.device,
           "--warmup", str(args.warmup), "--frames", str(args.frames), "--json", "--child"]
    for flag, value in (("--model", args.model), ("--backend", backend or args.backend),
                        ("--detector", detector or args.detector), ("--threads", args.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    if detect_in_thread is False:
        cmd.append("--detect-inline")
    if args.realtime:
        cmd.append("--realtime")
    if args.watch_view and not prev_default:
        cmd.append("--watch-view")
    for item in ([] if prev_default else args.set):
        cmd += ["--set", item]
    env = {**os.environ, "POSEBRIDGE_BENCH_SPAWN": repr(time.time())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise PoseBridgeError(f"bench with backend {backend or args.backend or 'default'}: {last}")
    out = proc.stdout
    start = out.find("{") if out.startswith("{") else out.find("\n{") + 1  # skip anything a library printed
    return json.loads(out[start:])["runs"][0]


# --------------------------------------------------------------------------------------- output


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _label(run: dict) -> str:
    where = "worker" if run.get("detect_in_thread") else "inline"
    view = run.get("view")
    page = "" if not view else (", page open" if view["watched"] else ", --view, no page")
    return f"{run['backend']} + {run.get('detector', '?')} ({where}{page})"


def format_report(report: dict) -> str:
    runs = report["runs"]
    head = " | ".join(f"{_label(r)} median / p99" for r in runs)
    two = len(runs) > 1
    lines = [
        f"posebridge bench: {report['video']} ({report['size'][0]}x{report['size'][1]}, "
        f"{'real-time pacing' if report['realtime'] else 'as fast as possible'}), model {runs[0]['model']} "
        f"({runs[0]['backbone']}), {runs[0]['frames']} timed frames after {report['warmup']} warm-up",
        f"machine: {report['machine']['cpus']} CPUs, load average {report['machine']['load_avg_start']} "
        f"at start, {report['machine']['load_avg_end']} at the end (other work inflates these numbers)",
        "",
        f"| stage (ms) | {head} |" + (" ratio (other / this) |" if two else ""),
        "|---|" + "---|" * len(runs) + ("---|" if two else ""),
    ]

    def row(name: str, values: list[dict | None], key: str = "median_ms") -> str:
        cells = [f"{_fmt(v.get('median_ms'))} / {_fmt(v.get('p99_ms'))}" if v else "-" for v in values]
        line = f"| {name} | " + " | ".join(cells) + " |"
        if two:
            a, b = values[-1], values[0]
            ratio = a[key] / b[key] if a and b and b.get(key) else float("nan")
            line += f" {ratio:.2f}x |" if not math.isnan(ratio) else " - |"
        return line

    for s in STAGES:
        lines.append(row(s, [r["stages"].get(s) for r in runs]))
    lines.append(row("**capture->publish**", [r["latency"] or None for r in runs]))
    lines.append("")
    lines.append("| | " + " | ".join(_label(r) for r in runs) + " |" + (" ratio |" if two else ""))
    lines.append("|---|" + "---|" * len(runs) + ("---|" if two else ""))
    summary_rows = (
        ("fps", "fps", True), ("cpu_percent", "CPU % (100 = one core)", False),
        ("peak_rss_mb", "peak RSS MB", False),
        ("startup_first_message_s", "start-up to first message, s", False),
        ("startup_first_pose_s", "start-up to first tracked pose, s", False),
        ("skipped_frames", "frames skipped", False), ("infer_ms_per_crop", "infer ms per crop", False),
        ("faces_per_frame", "faces per frame", True), ("detector_runs", "detector runs", False),
    )
    for key, label, better_high in summary_rows:
        vals = [r.get(key, float("nan")) for r in runs]
        cells = [f"{v:.2f}" if key in ("faces_per_frame", "startup_first_message_s", "startup_first_pose_s")
                 else _fmt(float(v)) for v in vals]
        line = f"| {label} | " + " | ".join(cells) + " |"
        if two:
            a, b = vals[-1], vals[0]
            ratio = (b / a if better_high else a / b) if a and b else float("nan")
            line += f" {ratio:.2f}x |" if not math.isnan(ratio) else " - |"
        lines.append(line)
    lines.append("")
    lines.append("ratio: how many times better the first column is (time, CPU, memory: other / this; fps: "
                 "this / other). Per-backbone ms per crop: .venv/bin/python benchmarks/bench_models.py")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time the full pipeline on a video, stage by stage",
        description=__doc__.split("\n\n")[0] + " " + " ".join(__doc__.split("\n\n")[1].split()),
    )
    p.add_argument("video", nargs="?", default=None, help="video file (default: a 640x480 clip made here)")
    p.add_argument("--model", default=None, help="model name or path (default: the default model)")
    p.add_argument("--backend", default=None, help="onnx | onnx-int8 | torch | torch-bf16 | torch-compile "
                   "(default: the daemon's default, onnx)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | tensorrt")
    p.add_argument("--detector", default=None, help="face detector (default: the daemon's default)")
    p.add_argument("--detect-inline", action="store_true",
                   help="run the detector inside the frame loop (the previous default) instead of its thread")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (default: the daemon's default, 1; 0 = all cores)")
    p.add_argument("--frames", type=int, default=0, help="timed frames (default: the whole clip)")
    p.add_argument("--warmup", type=int, default=10, help="frames run before timing starts (default 10)")
    p.add_argument("--clip-frames", type=int, default=300, help="length of the generated clip (default 300)")
    p.add_argument("--face", default=None, help="face image for the generated clip (default: see above)")
    p.add_argument("--realtime", action="store_true", help="pace the file at its fps like a camera")
    p.add_argument("--compare", default=None, metavar="BACKEND|previous",
                   help="also run this backend (or `previous`: torch + dlib_hog inline, the default before "
                        "this release) on the same clip and print the ratios")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any daemon option by its TOML path, e.g. --set model.flip=alternate (not applied to "
                        "the `--compare previous` run)")
    p.add_argument("--view", action="store_true",
                   help="serve the live page during the run, no page open (= --set view.enabled=true)")
    p.add_argument("--watch-view", action="store_true",
                   help="with --view: a client process reads the preview and polls the state as a page does")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.view:
        args.set = [*args.set, "view.enabled=true"]
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
        if args.child:
            spawn = os.environ.get("POSEBRIDGE_BENCH_SPAWN")
            runs = [bench_once(video, args.model, args.backend, args.device, args.detector, args.realtime,
                               args.warmup, args.frames, args.threads, False if args.detect_inline else None,
                               t_spawn=float(spawn) if spawn else None, overrides=args.set,
                               watch_view=args.watch_view)]
        else:
            runs = [bench_subprocess(args, video, detect_in_thread=False if args.detect_inline else None)]
            if args.compare == "previous":
                prev = PREVIOUS_DEFAULT
                runs.append(bench_subprocess(args, video, prev["backend"], prev["detector"],
                                             prev["detect_in_thread"], prev_default=True))
            elif args.compare:
                runs.append(bench_subprocess(args, video, args.compare))
    report = {
        "video": args.video or f"generated 640x480 clip ({face_src}, {args.clip_frames} frames)",
        "size": size, "realtime": args.realtime, "warmup": args.warmup,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "load_avg_start": load_avg,
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
