"""The no-camera demo: a shipped rendered clip of a head turning, and the score of a stream against it.

`examples/demo/head-turn.mp4` (10 s, 640x480, 30 fps) is the head scan "Infinite, 3D Head Scan" by Lee
Perry-Smith (CC BY 3.0, examples/demo/CREDITS.md) rendered by posebridge.offline.render: yaw +-45,
pitch +-20, roll +-25, a mixed turn, then the head leaves the frame for 1 s and comes back.
`head-turn.csv` holds the exact pose of every frame; `score` compares a saved stream with it, per axis.

    python -m posebridge.offline.demo score out/demo/stream.jsonl [examples/demo/head-turn.csv]
    python -m posebridge.offline.demo picture out/demo/stream.jsonl 233 docs/demo-frame.png

`make_clip` is the older synthetic clip (a public-domain photo rolled in the image plane: known roll
only, `examples/demo/astronaut.jpg`), kept for tests and benchmarks that need a clip without OpenGL;
`score` still reads its roll-only truth CSV.

    python -m posebridge.offline.demo clip out/roll.mp4 [--truth out/roll.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError, PoseBridgeError
from posebridge.paths import EXAMPLES

DEMO_IMAGE = EXAMPLES / "demo" / "astronaut.jpg"
DEMO_CLIP = EXAMPLES / "demo" / "head-turn.mp4"
DEMO_TRUTH = EXAMPLES / "demo" / "head-turn.csv"
AXES = ("yaw", "pitch", "roll")


@dataclass
class ClipFrame:
    index: int
    t: float  # seconds from the start of the clip
    face: bool  # the face is in frame
    roll: float  # head roll added by the animation, degrees (dataset convention: + = towards left shoulder)


def roll_at(t: float) -> float:
    """0 -> +15 deg over 1.5 s, to -15 by 4.5 s, back to 0 by 6 s (then still)."""
    if t < 1.5:
        return 15.0 * t / 1.5
    if t < 4.5:
        return 15.0 - 30.0 * (t - 1.5) / 3.0
    if t < 6.0:
        return -15.0 + 15.0 * (t - 4.5) / 1.5
    return 0.0


def make_clip(out: str | Path, image: str | Path = DEMO_IMAGE, seconds: float = 8.0, fps: float = 30.0,
              size: tuple[int, int] = (640, 480), gap: tuple[float, float] = (6.3, 7.0),
              noise: float = 2.0, seed: int = 0) -> list[ClipFrame]:
    """Write the demo clip (mp4v) and return the per-frame truth."""
    img = cv2.imread(str(image))
    if img is None:
        raise InputFileError(image, "cannot read the demo image")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise InputFileError(out, "OpenCV cannot write an mp4v video here")
    rng = np.random.default_rng(seed)
    background = np.full((h, w, 3), (96, 104, 112), np.uint8)
    ih, iw = img.shape[:2]
    truth = []
    try:
        for i in range(int(round(seconds * fps))):
            t = i / fps
            face = not (gap[0] <= t < gap[1])
            roll = roll_at(t)
            frame = background.copy()
            if face:
                cx = w / 2 + 40.0 * math.sin(2 * math.pi * t / 8.0)
                cy = h / 2 + 10.0 * math.sin(2 * math.pi * t / 5.0)
                # Rotating the picture clockwise on screen tilts the head towards the person's left
                # shoulder (image right), which is positive roll; OpenCV's positive angle is anticlockwise.
                m = cv2.getRotationMatrix2D((iw / 2, ih / 2), -roll, 1.0)
                m[:, 2] += (cx - iw / 2, cy - ih / 2)
                mask = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (w, h))
                warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR)
                frame[mask > 0] = warped[mask > 0]
            noisy = frame.astype(np.float32) + rng.normal(0.0, noise, frame.shape).astype(np.float32)
            writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
            truth.append(ClipFrame(i, t, face, roll if face else float("nan")))
    finally:
        writer.release()
    return truth


def write_truth(path: str | Path, truth: list[ClipFrame]) -> None:
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["frame", "t", "face", "roll_deg"])
        for c in truth:
            wr.writerow([c.index, f"{c.t:.4f}", int(c.face), "" if math.isnan(c.roll) else f"{c.roll:.2f}"])


def read_truth(path: str | Path) -> list[ClipFrame]:
    with open(path, newline="") as f:
        return [ClipFrame(int(r["frame"]), float(r["t"]), r["face"] == "1",
                          float(r["roll_deg"]) if r["roll_deg"] else float("nan")) for r in csv.DictReader(f)]


def is_rendered_truth(path: str | Path) -> bool:
    """A rendered clip's truth CSV (posebridge.offline.render.clip), rather than `make_clip`'s roll CSV."""
    try:
        with open(path, newline="") as f:
            header = f.readline()
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    return "yaw_deg" in header.split(",")


def score_rendered(stream: str | Path, truth_path: str | Path) -> dict:
    """A saved stream against a rendered clip's exact truth: per-axis mean error of the raw and the
    filtered angles over the same frames (the whole face in view, a pose measured), frames with a pose,
    and how the stream reported the frames with nobody in view."""
    from posebridge.offline.motion import VISIBLE, from_jsonl, summarize
    from posebridge.offline.render.clip import read_truth

    truth = read_truth(truth_path)
    tracked = from_jsonl(stream, len(truth), truth.fps)
    s = summarize(tracked, truth, kinds=())
    view = truth.visible >= VISIBLE
    nobody = truth.visible <= 0.0
    measured = view & np.isfinite(tracked.raw[:, 0])  # raw and filtered on the same frames
    raw_err = np.abs(tracked.raw[measured] - truth.angles[measured])
    filt_err = np.abs(tracked.filtered[measured] - truth.angles[measured])
    return {"frames": len(truth), "messages": int(tracked.received.sum()), "in_view": int(view.sum()),
            "measured": int(np.isfinite(tracked.raw[view, 0]).sum()),
            "raw_mae": [float(np.nanmean(raw_err[:, k])) for k in range(3)],
            "filtered_mae": [float(np.nanmean(filt_err[:, k])) for k in range(3)],
            "range": [float(np.ptp(truth.angles[view, k])) for k in range(3)],
            "nobody_frames": int(nobody.sum()), "lost_when_nobody": int((nobody & tracked.received
                                                                         & ~tracked.tracked).sum()),
            "lag_frames": s["lag"]["filtered_frames"]}


def score(stream: str | Path, truth_path: str | Path, fps: float = 30.0) -> dict:
    """Compare a saved stream (`listen --save`, JSON lines) with `make_clip`'s roll truth.

    Frames are matched by capture time (the file source stamps frame i at t0 + i / fps). The photo has
    a roll of its own, so the measured roll is compared after removing its median offset. (A rendered
    clip's truth: `score_rendered`.)"""
    import json

    truth = read_truth(truth_path)
    msgs = [json.loads(line) for line in Path(stream).read_text().splitlines() if line.strip()]
    if not msgs:
        raise InputFileError(stream, "no messages")
    t0 = msgs[0]["t_capture"]
    pairs, lost_in_gap, gap_frames = [], 0, 0
    for m in msgs:
        i = int(round((m["t_capture"] - t0) * fps))
        if not 0 <= i < len(truth):
            continue
        c = truth[i]
        if not c.face:
            gap_frames += 1
            lost_in_gap += not m["tracked"]
        elif m["raw"] is not None:
            pairs.append((c.roll, m["raw"][2], m["euler"][2]))
    if not pairs:
        return {"frames": len(msgs), "measured": 0}
    arr = np.array(pairs)
    offset = float(np.median(arr[:, 1] - arr[:, 0]))
    raw_err = np.abs(arr[:, 1] - offset - arr[:, 0])
    filt_err = np.abs(arr[:, 2] - offset - arr[:, 0])
    corr = float(np.corrcoef(arr[:, 0], arr[:, 1])[0, 1]) if len(arr) > 2 else float("nan")
    return {"frames": len(msgs), "measured": len(arr), "offset_deg": offset,
            "raw_mae_deg": float(raw_err.mean()), "filtered_mae_deg": float(filt_err.mean()), "corr": corr,
            "gap_frames": gap_frames, "lost_in_gap": lost_in_gap}


def print_rendered_score(r: dict) -> int:
    if not r["measured"]:
        print(f"{r['messages']} messages, none with a measurement (no face found)")
        return 1
    print(f"{r['messages']} messages for {r['frames']} frames; the whole face in view in {r['in_view']}, "
          f"a pose measured in {r['measured']} of them ({100.0 * r['measured'] / r['in_view']:.1f}%).")
    print("mean error against the clip's exact pose, degrees (the head turned over a range of "
          + ", ".join(f"{a} {v:.0f}" for a, v in zip(AXES, r["range"], strict=True)) + "):")
    print("            " + "".join(f"{a:>8}" for a in AXES))
    print("  raw       " + "".join(f"{v:8.1f}" for v in r["raw_mae"]))
    print("  filtered  " + "".join(f"{v:8.1f}" for v in r["filtered_mae"]))
    lag = r["lag_frames"]
    print(("" if lag is None else f"The filtered angles trail the truth by {lag:.1f} frames. ")
          + f"Nobody in view: {r['nobody_frames']} frames, {r['lost_when_nobody']} of them reported "
          "LOST (the rest predicted through the dropout).")
    return 0


def picture(stream: str | Path, frame: int, out: str | Path, clip: str | Path = DEMO_CLIP,
            truth_path: str | Path = DEMO_TRUTH) -> dict:
    """Frame `frame` of the clip with the tracker's published pose drawn on it (its face box and the
    head's axes, posebridge.offline.annotate) and the truth beside it: the README's first picture."""
    import json

    from posebridge.offline.annotate import draw_pose
    from posebridge.offline.render.clip import read_truth

    truth = read_truth(truth_path)
    msgs = [json.loads(line) for line in Path(stream).read_text().splitlines() if line.strip()]
    if not msgs:
        raise InputFileError(stream, "no messages")
    t0 = msgs[0]["t_capture"]
    msg = next((m for m in msgs if int(round((m["t_capture"] - t0) * truth.fps)) == frame), None)
    if msg is None or msg.get("box") is None:
        raise InputFileError(stream, f"no message with a face box for frame {frame}")
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, image = cap.read()
    cap.release()
    if not ok:
        raise InputFileError(clip, f"cannot read frame {frame}")
    yaw, pitch, roll = msg["euler"]
    draw_pose(image, tuple(msg["box"]), yaw, pitch, roll, label="")
    t = truth.angles[frame]
    lines = [f"posebridge  yaw {yaw:+5.1f}  pitch {pitch:+5.1f}  roll {roll:+5.1f}",
             f"truth       yaw {t[0]:+5.1f}  pitch {t[1]:+5.1f}  roll {t[2]:+5.1f}",
             "head: Lee Perry-Smith, CC BY 3.0"]
    for i, text in enumerate(lines):
        y = 26 + 24 * i if i < 2 else image.shape[0] - 12
        scale = 0.6 if i < 2 else 0.45
        cv2.putText(image, text, (12, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, text, (12, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), image):
        raise InputFileError(out, "OpenCV cannot write this image (use .png or .jpg)")
    return {"frame": frame, "euler": [yaw, pitch, roll], "truth": [float(v) for v in t]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m posebridge.offline.demo", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("clip", help="write the synthetic roll clip (a photo rolled in the image plane)")
    c.add_argument("out", help="output video, e.g. out/roll.mp4")
    c.add_argument("--truth", help="also write the per-frame roll as CSV")
    c.add_argument("--seconds", type=float, default=8.0)
    c.add_argument("--image", default=str(DEMO_IMAGE), help="portrait to animate")
    s = sub.add_parser("score", help="compare a saved stream with a clip's truth")
    s.add_argument("stream", help="JSON lines written by `posebridge listen --save`")
    s.add_argument("truth", nargs="?", default=str(DEMO_TRUTH),
                   help="truth CSV (default: the shipped demo clip's, examples/demo/head-turn.csv)")
    pic = sub.add_parser("picture", help="a frame of the demo clip with the tracker's axes drawn")
    pic.add_argument("stream", help="JSON lines written by `posebridge listen --save` during the demo")
    pic.add_argument("frame", type=int, help="frame index in the clip")
    pic.add_argument("out", help="image to write, e.g. docs/demo-frame.png")
    args = p.parse_args(argv)
    try:
        if args.cmd == "picture":
            r = picture(args.stream, args.frame, args.out)
            print(f"wrote {args.out}: frame {r['frame']}, posebridge "
                  + " ".join(f"{v:+.1f}" for v in r["euler"]) + ", truth "
                  + " ".join(f"{v:+.1f}" for v in r["truth"]))
            return 0
        if args.cmd == "score":
            if is_rendered_truth(args.truth):
                return print_rendered_score(score_rendered(args.stream, args.truth))
            r = score(args.stream, args.truth)
            if not r["measured"]:
                print(f"{r['frames']} messages, none with a measurement (no face found)")
                return 1
            print(f"{r['frames']} messages, {r['measured']} with a face measurement. Head roll vs the "
                  f"animation (after removing the photo's own roll of {r['offset_deg']:+.1f} deg): "
                  f"correlation "
                  f"{r['corr']:.2f}, mean error raw {r['raw_mae_deg']:.1f} deg, filtered "
                  f"{r['filtered_mae_deg']:.1f} deg. Nobody in frame: {r['gap_frames']} messages, "
                  f"{r['lost_in_gap']} of them LOST (the rest predicted through the dropout).")
            return 0
        truth = make_clip(args.out, args.image, seconds=args.seconds)
        if args.truth:
            write_truth(args.truth, truth)
    except PoseBridgeError as exc:
        print(f"posebridge demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {args.out}: {len(truth)} frames, 640x480, 30 fps (head roll sweep +-15 deg, "
          f"{sum(not c.face for c in truth)} frames with nobody in frame)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
