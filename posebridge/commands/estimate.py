"""`posebridge estimate PATH`: head poses for every face in an image, a folder of images or a video,
read through the same sources `serve` uses (posebridge.sources), as fast as they decode.

One row per face per frame (CSV or JSON lines). In a folder or a video, an item that cannot be read
gets a row with its `error` and the rest are processed; a summary line on stderr counts them. The exit
code is 2 only when nothing could be read (a single unreadable image, a corrupt video)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from posebridge import imagefiles
from posebridge.errors import InputFileError
from posebridge.sources.folder import ImageFolderSource
from posebridge.sources.video import VideoFileSource

FIELDS = ["source", "frame", "face", "x0", "y0", "x1", "y1", "score",
          "yaw", "pitch", "roll", "yaw_std", "pitch_std", "roll_std", "error"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("estimate", help="head pose of every face in an image, folder or video")
    p.add_argument("path", type=Path, help="image, folder of images, or video file")
    p.add_argument("--model", help="model name or checkpoint path (default: the installed default)")
    p.add_argument("--detector", default="default", help="face detector name (default: the project default)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend", default="onnx", help="onnx (default), onnx-int8, torch, torch-bf16, "
                   "torch-compile (the torch ones need posebridge[torch])")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv", dest="fmt")
    p.add_argument("--output", type=Path, help="write rows here (default: stdout)")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write images with the pose axes drawn here")
    p.add_argument("--zooms", metavar="F,F,...", help="test-time zoom views averaged per face, e.g. 1 for "
                   "the ROI only, 0.96,1,1.04 for three (default: the model's own; posebridge-small: 1)")
    p.add_argument("--batch", type=int, default=32, help="crops per network batch")
    p.set_defaults(func=run)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence libjpeg/FFmpeg messages written straight to fd 2 while a file is probed, so a bad file
    gives only our one-line error."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


UNREADABLE_IMAGE = "cannot read image (truncated or not an image)"
MAX_DAMAGED = 30  # undecodable video frames in a row reported and skipped before the video counts as ended


def open_input(path: Path) -> ImageFolderSource | VideoFileSource:
    """The source that reads `path` as fast as it is asked: a folder's images or one image, else a video
    whose damaged frames are skipped (up to MAX_DAMAGED in a row)."""
    with quiet_native_stderr():
        if path.is_dir():
            return ImageFolderSource(path, realtime=False)
        if imagefiles.is_image_name(path):
            return ImageFolderSource(path, realtime=False, files=[path])
        return VideoFileSource(path, realtime=False, skip_damaged=MAX_DAMAGED)


def iter_frames(path: Path, source: ImageFolderSource | VideoFileSource,
                ) -> Iterator[tuple[str, int, np.ndarray | None, str]]:
    """(source name, frame index, BGR image or None, error) for each image of a folder (an unreadable one
    is reported with its error, not fatal), one image (unreadable: InputFileError), or a video's frames
    (a damaged one reported, the rest read)."""
    reported = 0

    def problems() -> Iterator[tuple[str, int, None, str]]:
        nonlocal reported
        if isinstance(source, ImageFolderSource):
            for bad in source.unreadable[reported:]:
                if not path.is_dir():
                    raise InputFileError(path, UNREADABLE_IMAGE)
                yield bad.name, 0, None, UNREADABLE_IMAGE
            reported = len(source.unreadable)
        else:
            for index in source.damaged[reported:]:
                yield path.name, index, None, "cannot decode this frame"
            reported = len(source.damaged)

    while True:
        with quiet_native_stderr():
            frame = source.read()
        yield from problems()  # met before this frame
        if frame is None:
            return
        if isinstance(source, ImageFolderSource):
            yield Path(frame.meta["file"]).name, 0, frame.image, ""
        else:
            yield path.name, frame.meta["file_frame"], frame.image, ""


class RowWriter:
    def __init__(self, fmt: str, stream) -> None:
        self.fmt, self.stream = fmt, stream
        self.csv = csv.DictWriter(stream, fieldnames=FIELDS) if fmt == "csv" else None
        if self.csv:
            self.csv.writeheader()

    def write(self, row: dict) -> None:
        if self.csv:
            self.csv.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()})
            self.stream.flush()
        else:
            self.stream.write(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                          for k, v in row.items()}) + "\n")
            self.stream.flush()


def frame_count(source: ImageFolderSource | VideoFileSource) -> int | None:
    """Frames to expect (for the progress bar), None when the video does not say."""
    return len(source.files) if isinstance(source, ImageFolderSource) else source.frame_count or None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from posebridge.faces.detectors import create_detector
    from posebridge.inference.estimator import Estimator, parse_zooms
    from posebridge.offline.annotate import draw_pose

    if not args.path.exists():
        raise InputFileError(args.path, "file or folder not found")
    zooms = parse_zooms(args.zooms) if args.zooms else None
    if args.backend == "onnx-int8":
        from posebridge.extras import require

        require("convert", "--backend onnx-int8 (quantizing on first use)", ("onnx",))
    estimator = Estimator.load(args.model, device=args.device, backend=args.backend, zooms=zooms, threads=0)
    detector = create_detector(args.detector)
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    writer = RowWriter(args.fmt, out)
    pending: list[tuple[str, int, np.ndarray, list]] = []  # frames whose faces wait for a batch
    n_faces = 0
    unreadable: list[str] = []

    def flush() -> None:
        nonlocal n_faces
        poses = iter(estimator.predict_faces([(img, f.box, f.detector or detector.name)
                                              for _, _, img, faces in pending for f in faces]))
        for source, index, img, faces in pending:
            for k, face in enumerate(faces):
                p = next(poses)
                writer.write({"source": source, "frame": index, "face": k,
                              "x0": float(face.x0), "y0": float(face.y0), "x1": float(face.x1),
                              "y1": float(face.y1), "score": float(face.score),
                              "yaw": p.yaw, "pitch": p.pitch, "roll": p.roll,
                              "yaw_std": p.yaw_std, "pitch_std": p.pitch_std, "roll_std": p.roll_std,
                              "error": ""})
                n_faces += 1
                if args.annotate:
                    draw_pose(img, face.box, p.yaw, p.pitch, p.roll)
            if args.annotate:
                name = f"{Path(source).stem}_{index:06d}.jpg" if index or not args.path.is_dir() else \
                    f"{Path(source).stem}.jpg"
                cv2.imwrite(str(args.annotate / name), img)
        pending.clear()

    reader = None
    try:
        reader = open_input(args.path)
        total = frame_count(reader)
        frames = tqdm(iter_frames(args.path, reader), total=total, unit="frame", desc="estimate",
                      disable=total is not None and total <= 1, file=sys.stderr)
        queued = 0
        for source, index, image, error in frames:
            if image is None:
                unreadable.append(f"{source}" + (f" frame {index}" if index else ""))
                writer.write({"source": source, "frame": index, "error": error})
                continue
            faces = detector.detect(image)
            pending.append((source, index, image, faces))
            queued += len(faces)
            if queued >= args.batch:
                flush()
                queued = 0
        flush()
    finally:
        if reader is not None:
            reader.close()
        if args.output:
            out.close()
    print(f"{n_faces} face(s)" + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    if unreadable:
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        shown = ", ".join(unreadable[:5]) + more
        print(f"posebridge estimate: {len(unreadable)} unreadable item(s) skipped: {shown}", file=sys.stderr)
        if total is not None and len(unreadable) >= total:
            raise InputFileError(args.path, "nothing could be read")
    return 0
