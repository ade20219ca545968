"""Daemon benchmark: per-stage latency (median / p99) and sustained fps of `serve`'s pipeline on a
640x480 video, plus publisher memory with a subscriber that never reads.

    .venv/bin/python benchmarks/bench_daemon.py [--video FILE] [--model M] [--threads 1] [--out DIR]

Without --video it generates the 10 s demo clip (posebridge.offline.demo). The pipeline runs in-process
exactly as `posebridge serve --fast` does (file read as fast as possible, a real ZeroMQ PUB with a reading SUB
in another process), so "sustained fps" is the throughput of one daemon on this machine. Prints
tables and writes results.json and stages.png to --out. Report the machine load with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.output.ports import free_port  # noqa: E402

STAGES = ["decode", "detect", "track", "crop", "infer", "filter", "publish", "latency"]


SUBSCRIBER = """
import sys
from posebridge.output.transport import Subscriber
n = 0
with Subscriber(sys.argv[1]) as sub:
    first = sub.recv(timeout_s=300)
    n = 1 if first is not None else 0
    while n and sub.recv(timeout_s=3.0) is not None:
        n += 1
print(n)
"""


def run_pipeline(video: Path, model: str | None, threads: int, detector: str, redetect_every: int,
                 realtime: bool, max_frames: int) -> dict:
    from tqdm import tqdm

    from posebridge.config import ServeConfig
    from posebridge.daemon.assemble import build_pipeline
    cfg = ServeConfig()
    cfg.source.spec = str(video)
    cfg.source.realtime = realtime
    cfg.model.name = model or ""
    cfg.model.threads = threads
    cfg.faces.detector = detector
    cfg.faces.redetect_every = redetect_every
    cfg.publish.address = f"tcp://127.0.0.1:{free_port()}"
    cfg.control.enabled = False
    cfg.run.log_every_s = 0
    cfg.run.max_frames = max_frames
    # The subscriber is another process, as a game engine would be (a thread here would share the GIL
    # with the pipeline and inflate its timings).
    counter = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, cfg.publish.address],
                               stdout=subprocess.PIPE, text=True, cwd=REPO,
                               env=dict(os.environ, PYTHONPATH=str(REPO)))
    pipe = build_pipeline(cfg)
    pipe.publisher.wait_for_subscriber(120)
    bar = tqdm(desc="frames", unit="frame", total=max_frames or None)
    t0 = time.perf_counter()
    pipe.run(on_step=lambda res: bar.update(1) if res.frame_index >= 0 else None)
    elapsed = time.perf_counter() - t0
    bar.close()
    out, _ = counter.communicate(timeout=120)
    received = int(out.strip() or 0)
    return {
        "frames": pipe.frames,
        "messages": pipe.seq,
        "received": received,
        "elapsed_s": elapsed,
        "fps": pipe.frames / elapsed if elapsed > 0 else 0.0,
        "stages": pipe.timer.summary(),
        "tracker": pipe.tracker.stats() if hasattr(pipe.tracker, "stats") else {},
        "model": pipe.model_name,
    }


def never_reading_subscriber(messages: int, payload_pad: int, hwm: int) -> dict:
    """Publisher RSS while a connected SUB never reads (pose-sized messages + optional padding)."""
    import psutil
    import zmq

    from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage, encode
    from posebridge.output.transport import Publisher, Subscriber

    ctx = zmq.Context()
    pub = Publisher("tcp://127.0.0.1:0", hwm=hwm, context=ctx)
    sub = Subscriber(pub.address, rcvhwm=hwm, context=ctx)
    pub.wait_for_subscriber(10)
    msg = PoseMessage(v=SCHEMA_VERSION, seq=0, t_capture=time.time(), t_publish=time.time(), face_id=0,
                      tracked=True, q=[0.0, 0.0, 0.0, 1.0], euler=[1.0, 2.0, 3.0], raw=[1.0, 2.0, 3.0],
                      std=[3.0, 3.0, 3.0], box=[1.0, 2.0, 3.0, 4.0], frame=[640, 480])
    frames = encode(msg)
    frames = [frames[0], frames[1] + b"\0" * payload_pad]
    proc = psutil.Process()
    rss = [proc.memory_info().rss]
    worst = 0.0
    step = max(1, messages // 10)
    t0 = time.perf_counter()
    for i in range(messages):
        s = time.perf_counter()
        pub.send(frames)
        worst = max(worst, time.perf_counter() - s)
        if (i + 1) % step == 0:
            rss.append(proc.memory_info().rss)
    elapsed = time.perf_counter() - t0
    sub.close()
    pub.close()
    ctx.term()
    mib = [r / 2**20 for r in rss]
    return {"messages": messages, "bytes_per_message": len(frames[0]) + len(frames[1]), "hwm": hwm,
            "rss_mib": mib, "growth_mib": mib[-1] - mib[1], "data_mib": messages * len(frames[1]) / 2**20,
            "worst_send_ms": worst * 1000, "sends_per_s": messages / elapsed}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def plot(stages: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s for s in STAGES if s in stages]
    med = [stages[s]["median_ms"] for s in names]
    p99 = [stages[s]["p99_ms"] for s in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], med, 0.4, label="median")
    ax.bar([i + 0.2 for i in x], p99, 0.4, label="p99")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, help="640x480 video (default: generate the demo clip)")
    p.add_argument("--model", help="model name or path (default: the default model)")
    p.add_argument("--threads", type=int, default=1, help="CPU inference threads (model.threads)")
    p.add_argument("--detector", default="default")
    p.add_argument("--redetect-every", type=int, default=10)
    p.add_argument("--realtime", action="store_true", help="pace the file at its fps instead of --fast")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the generated clip")
    p.add_argument("--sub-messages", type=int, default=200_000, help="messages for the never-reading test")
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench_daemon")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from posebridge.offline.demo import make_clip

    video = args.video
    if video is None:
        video = args.out / "demo_640x480.mp4"
        make_clip(video, seconds=args.seconds)
    load = os.getloadavg()
    machine = (f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
               "(1/5/15 min), "
               f"{'CUDA' if cuda_available() else 'no GPU'}")
    print(f"machine: {machine}")
    # memory first, in a small process (before the model is loaded)
    mem = never_reading_subscriber(args.sub_messages, 0, 100)
    big = never_reading_subscriber(args.sub_messages // 4, 8192, 100)
    res = run_pipeline(video, args.model, args.threads, args.detector, args.redetect_every, args.realtime,
                       args.max_frames)
    load_after = os.getloadavg()
    print(f"\nmodel {res['model']}, {res['frames']} frames of {video.name} "
          f"({'real time' if args.realtime else 'as fast as possible'}), threads={args.threads}, "
          f"detector={args.detector}, redetect_every={args.redetect_every}")
    print(f"sustained: {res['fps']:.1f} fps over {res['elapsed_s']:.1f} s; {res['messages']} messages "
          f"published, {res['received']} received by a SUB")
    print(f"\n{'stage':<10}{'median ms':>12}{'p99 ms':>12}{'count':>8}")
    for name in STAGES + ["capture", "pose"]:
        s = res["stages"].get(name)
        if s:
            print(f"{name:<10}{s['median_ms']:>12.2f}{s['p99_ms']:>12.2f}{s['count']:>8d}")
    if res["tracker"]:
        t = res["tracker"]
        print(f"tracker: {t.get('detect_frames')} detector frames, {t.get('track_frames')} followed frames")

    print("\nsubscriber that never reads (publisher process RSS, HWM 100):")
    for m in (mem, big):
        print(f"  {m['messages']} messages of {m['bytes_per_message']} B ({m['data_mib']:.0f} MiB sent): "
              f"RSS {m['rss_mib'][1]:.1f} -> {m['rss_mib'][-1]:.1f} MiB (growth {m['growth_mib']:+.1f} MiB), "
              f"worst send {m['worst_send_ms']:.2f} ms, {m['sends_per_s']:.0f} sends/s")
    print(f"\nload average after: {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}")
    out = {"machine": machine, "load_after": load_after, "video": str(video), "args": vars(args) | {
        "video": str(video), "out": str(args.out)}, "pipeline": res, "never_reading": [mem, big]}
    (args.out / "results.json").write_text(json.dumps(out, indent=2, default=str))
    plot(res["stages"], args.out / "stages.png",
         f"{res['model']} on {video.name}: {res['fps']:.1f} fps ({machine})")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'stages.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
