"""`python -m posebridge.offline.render`: write a rendered clip (video + truth CSV) or one frame."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.offline.render.camera import Camera
from posebridge.offline.render.effects import BACKGROUNDS, Look
from posebridge.offline.render.trajectory import MIX_KINDS, PRESETS, Pose, Trajectory, random_mix


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size: expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise ConfigError(f"--size: {w}x{h} is outside 32..4096 per side")
    return w, h


def look_for(args: argparse.Namespace) -> Look:
    """The seed's random look, with any of --background, --noise, --flicker, --blur replacing its part."""
    look = Look.random(np.random.default_rng((args.seed, 1)))
    changes = {k: v for k, v in (("background", args.background), ("noise", args.noise),
                                 ("flicker", args.flicker), ("blur", args.blur)) if v is not None}
    return Look(**{**look.__dict__, **changes})


def trajectory_for(args: argparse.Namespace) -> Trajectory:
    if args.preset:
        return PRESETS[args.preset](args.fps)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    bad = [k for k in kinds if k not in MIX_KINDS]
    if bad or not kinds:
        raise ConfigError(f"--kinds: expected some of {','.join(MIX_KINDS)}, got {args.kinds!r}")
    if not 2.0 <= args.mix <= 3600.0:
        raise ConfigError(f"--mix: expected 2..3600 seconds, got {args.mix}")
    return random_mix(args.seed, args.mix, args.fps, kinds)


def add_look_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="makes the clip exactly reproducible (default 0)")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--fov", type=float, default=40.0, help="vertical field of view, degrees (default 40)")
    p.add_argument("--background", choices=BACKGROUNDS, help="default: drawn from the seed")
    p.add_argument("--noise", type=float, help="camera noise sigma, grey levels (default: from the seed)")
    p.add_argument("--flicker", type=float, help="brightness flicker, +- fraction (default: from the seed)")
    p.add_argument("--blur", type=float, help="lens blur sigma, pixels (default: from the seed, 0-0.8)")
    p.add_argument("--mesh", help="head scan .glb (default: examples/head-scan/LeePerrySmith.glb)")
    p.add_argument("--texture", help="its colour texture (default: Map-COL.jpg beside the default mesh)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m posebridge.offline.render", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("clip", help="render a clip (video) and its truth CSV")
    c.add_argument("out", help="video file, e.g. out/clip.mp4 (mp4v)")
    c.add_argument("--truth", help="truth CSV (default: the video's name with .csv)")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--preset", choices=sorted(PRESETS), help="a named motion")
    what.add_argument("--mix", type=float, metavar="SECONDS", help="a seeded random mix this long")
    c.add_argument("--kinds", default="slow,fast,step,hold",
                   help=f"motions in a --mix, some of {','.join(MIX_KINDS)} (default slow,fast,step,hold)")
    c.add_argument("--fps", type=float, default=30.0)
    add_look_args(c)
    f = sub.add_parser("frame", help="render one frame (PNG)")
    f.add_argument("out", help="image file, e.g. out/frame.png")
    for name in ("yaw", "pitch", "roll", "x", "y"):
        f.add_argument(f"--{name}", type=float, default=0.0)
    f.add_argument("--distance", type=float, default=0.6, help="metres (default 0.6)")
    add_look_args(f)
    args = p.parse_args(argv)
    try:
        return run(args)
    except PoseBridgeError as exc:
        print(f"posebridge render: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace) -> int:
    import cv2

    from posebridge.offline.render.clip import render_frames, write_clip
    from posebridge.offline.render.mesh import load_head
    from posebridge.offline.render.trajectory import Builder

    w, h = parse_size(args.size)
    if not 5.0 <= args.fov <= 120.0:
        raise ConfigError(f"--fov: expected 5..120 degrees, got {args.fov}")
    camera = Camera(w, h, args.fov)
    look = look_for(args)
    head = load_head(args.mesh, args.texture)
    if args.cmd == "frame":
        pose = Pose(args.yaw, args.pitch, args.roll, args.x, args.y, args.distance)
        frame = next(render_frames(Builder(30.0, pose).build(), look, camera, head, args.seed))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(args.out, frame):
            raise ConfigError(f"{args.out}: OpenCV cannot write this image (use .png or .jpg)")
        print(f"wrote {args.out}: yaw {args.yaw:+.1f} pitch {args.pitch:+.1f} roll {args.roll:+.1f}")
        return 0
    if not 1.0 <= args.fps <= 240.0:
        raise ConfigError(f"--fps: expected 1..240, got {args.fps}")
    traj = trajectory_for(args)
    truth_path = args.truth or str(Path(args.out).with_suffix(".csv"))
    from tqdm import tqdm

    with tqdm(total=len(traj), unit="frame", desc=Path(args.out).name, leave=False) as bar:
        truth = write_clip(args.out, traj, look, camera, args.seed, truth_path, head, progress=bar.update)
    kinds = {k: truth.kinds.count(k) for k in dict.fromkeys(truth.kinds)}
    print(f"wrote {args.out} ({len(truth)} frames, {w}x{h}, {args.fps:g} fps) and {truth_path}; "
          + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
