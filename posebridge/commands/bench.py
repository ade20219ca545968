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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from posebridge.errors import InputFileError, PoseBridgeError

log = logging.getLogger(__name__)

# the defaults of the release before ONNX Runtime and BlazeFace (docs/speed.md compares the two)
PREVIOUS_DEFAULT = {"backend": "torch", "detector": "dlib_hog", "detect_in_thread": False}


# ------------------------------------------------------------------------------- child processes


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
    from posebridge.daemon.pipeline import STAGES

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
    from posebridge.offline.bench_run import bench_once
    from posebridge.offline.synthetic_clip import default_face, make_clip

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
