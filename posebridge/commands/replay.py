"""`posebridge replay FILE`: publish a recorded session again, with its original timing.

Messages go out on the same protocol as `serve` (new `seq` from 0, `t_capture` shifted so the first
frame is "now", `t_publish` = now; docs/protocol.md). `--refilter` re-runs the Kalman filter over the
recorded raw estimates, with the recorded filter settings changed by `--filter.NAME VALUE`.
A truncated tail (the recorder was killed) is reported and everything before it is replayed.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

from posebridge.config import add_filter_flags, filter_flags, validate_filter_params
from posebridge.errors import ConfigError, InputFileError
from posebridge.output.protocol import DEFAULT_PUB

log = logging.getLogger("posebridge.replay")


def recorded_messages(rec: dict) -> list:
    """The PoseMessages published for a frame record, as recorded."""
    from posebridge.output.protocol import ProtocolError, from_map

    out = []
    for m in rec.get("messages") or []:
        try:
            out.append(from_map(m))
        except ProtocolError as exc:
            log.warning("frame %s: skipping a recorded message: %s", rec.get("index"), exc)
    return out


def refiltered_messages(rec: dict, outputs: list, mirror: bool) -> list:
    """PoseMessages built from fresh filter outputs over the recorded raw estimates."""
    from posebridge.daemon.loop import output_quaternion
    from posebridge.output.protocol import SCHEMA_VERSION, PoseMessage

    faces = {int(f.get("face_id", -1)): f for f in rec.get("faces") or []}
    frame = [int(v) for v in rec.get("frame", [0, 0])]
    msgs = []
    for face_id, out in outputs:
        face = faces.get(face_id)
        measured = face is not None and face.get("raw") is not None and out.measured
        angles = [float(a) for a in out.angles]
        msgs.append(PoseMessage(
            v=SCHEMA_VERSION, seq=0, t_capture=0.0, t_publish=0.0,
            face_id=face_id if out.tracked else -1, tracked=bool(out.tracked),
            q=output_quaternion(angles, None, mirror), euler=angles,
            raw=[float(a) for a in face["raw"]] if measured else None,
            std=[float(v) for v in (face.get("std") if measured and face.get("std") else out.stds)],
            box=[float(v) for v in face["box"]] if measured and face.get("box") else None,
            frame=frame))
    return msgs


def replay(path: str, publisher, speed: float = 1.0, refilter: bool = False,
           filter_params: dict | None = None, mirror: bool | None = None,
           stop: threading.Event | None = None, seq_start: int = 0) -> dict:
    """Publish the session at `path` through `publisher`; returns counts (frames, messages, problem,
    next_seq). `seq` numbers the messages from `seq_start` (a looping replay keeps counting)."""
    from posebridge.filtering.kalman import FilterConfig
    from posebridge.output.protocol import encode
    from posebridge.output.session_file import SessionReader, paced
    from posebridge.output.session_file import refilter as run_filter

    reader = SessionReader(path)
    recorded = reader.header.get("config", {}) if isinstance(reader.header.get("config"), dict) else {}
    rec_mirror = bool(recorded.get("publish", {}).get("mirror", False))
    mirror = rec_mirror if mirror is None else mirror
    all_faces = bool(recorded.get("faces", {}).get("all_faces", False))
    frames = reader.frames()
    if refilter:
        base = FilterConfig()
        try:
            base = base.replace(**(recorded.get("filter") or {}))
        except ConfigError as exc:
            log.warning("ignoring the recorded filter settings: %s", exc)
        config = base.replace(**(filter_params or {}))
        items = ((rec, refiltered_messages(rec, outs, mirror))
                 for rec, outs in run_filter(frames, config, all_faces=all_faces))
    else:
        items = ((rec, recorded_messages(rec)) for rec in frames)
    seq, n_frames = seq_start, 0
    t_first_rec = None

    def with_messages():
        for rec, msgs in items:
            rec["_msgs"] = msgs
            yield rec

    for rec, t_now in paced(with_messages(), speed=speed):
        if stop is not None and stop.is_set():
            break
        n_frames += 1
        if t_first_rec is None:
            t_first_rec = rec["t_capture"]
        for msg in rec["_msgs"]:
            msg.seq = seq
            msg.t_capture = t_now
            if mirror != rec_mirror and not refilter:
                from posebridge.daemon.loop import output_quaternion

                msg.q = output_quaternion(msg.euler, None, mirror)
            msg.t_publish = time.time()
            publisher.send(encode(msg))
            seq += 1
    return {"frames": n_frames, "messages": seq - seq_start, "next_seq": seq, "problem": reader.problem,
            "complete": reader.complete}


def run(args: argparse.Namespace) -> int:
    from posebridge.daemon.loop import install_signal_handlers
    from posebridge.output.transport import Publisher

    if args.speed < 0:
        raise ConfigError(f"--speed: must be >= 0 (0 = as fast as possible), got {args.speed}")
    params = filter_flags(args)
    validate_filter_params(params, prefix="--filter.")
    if params and not args.refilter:
        raise ConfigError("--filter.* options need --refilter")
    from posebridge.output.session_file import SessionReader

    SessionReader(args.file)  # a missing or foreign file fails here, before any socket is opened
    publisher = Publisher(args.publish, hwm=args.hwm)
    stop = threading.Event()
    restore = install_signal_handlers(stop.set)
    try:
        log.info("replaying %s on %s at %gx%s", args.file, publisher.address, args.speed,
                 " (re-filtered)" if args.refilter else "")
        if args.wait_subscriber and not publisher.wait_for_subscriber(args.wait_subscriber):
            log.info("no subscriber after %.1f s; replaying anyway", args.wait_subscriber)
        seq = 0
        while True:
            result = replay(args.file, publisher, args.speed, args.refilter, params,
                            mirror=True if args.mirror else None, stop=stop, seq_start=seq)
            seq = result["next_seq"]
            if not args.loop or stop.is_set() or result["frames"] == 0:
                break
    except KeyboardInterrupt:
        result = {"frames": 0, "messages": 0, "problem": None}
    finally:
        restore()
        publisher.close()
    if result.get("problem"):
        log.warning("%s: %s (replayed everything before it)", args.file, result["problem"])
    log.info("replayed %d frames, %d messages", result["frames"], result["messages"])
    if result["frames"] == 0 and not stop.is_set():
        raise InputFileError(args.file, "session has no frame records")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("replay", help="publish a recorded session again with its original timing",
                              description=__doc__.splitlines()[0])
    p.add_argument("file", help="session file written by `posebridge record` / `serve --record`")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor; 0 = as fast as possible")
    p.add_argument("--refilter", action="store_true",
                   help="re-run the filter over the raw estimates (with --filter.NAME VALUE changes)")
    p.add_argument("--mirror", action="store_true", help="publish q in selfie view")
    p.add_argument("--publish", default=DEFAULT_PUB, metavar="ADDR", help=f"PUB bind address ({DEFAULT_PUB})")
    p.add_argument("--hwm", type=int, default=100, help="send high-water mark")
    p.add_argument("--wait-subscriber", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for a subscriber before starting")
    p.add_argument("--loop", action="store_true", help="replay again and again until Ctrl-C")
    add_filter_flags(p)
    p.set_defaults(func=run)
