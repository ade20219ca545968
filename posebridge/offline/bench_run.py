"""One `posebridge bench` run in this process: the daemon's pipeline built from its config over a video,
timed stage by stage after a warm-up (stage medians and p99, capture -> publish latency, fps, CPU%, peak
RSS, start-up to the first message and pose, skipped frames). `posebridge bench` (posebridge.commands.bench)
starts one child process per configuration, each calling `bench_once`."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from posebridge.daemon.pipeline import STAGES
from posebridge.errors import InputFileError, PoseBridgeError


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
