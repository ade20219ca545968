"""`posebridge replay FILE`: publish a recorded session again, with its original timing.

Messages go out on the same protocol as `serve` (new `seq` from 0, `t_capture` shifted so the first
frame is "now", `t_publish` = now; docs/protocol.md). `--refilter` re-runs the Kalman filter over the
recorded raw estimates through the same stream bookkeeping as `serve` (posebridge.filtering.streams),
with the recorded filter settings changed by `--filter.NAME VALUE`; recorded `recenter` and `set`
events are applied where they happened. A damaged or truncated part of the file is reported and
everything readable is replayed. Ctrl-C / SIGTERM stop it promptly, even inside a long recorded gap.
`--vmc HOST:PORT` / `--opentrack HOST:PORT` feed the same messages to those outputs too, as `serve`
does (docs/interop.md).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterator

from posebridge.config import add_filter_flags, filter_flags, validate_filter_params
from posebridge.errors import ConfigError, InputFileError
from posebridge.formats.protocol import DEFAULT_PUB

DRAIN_S = 2.0  # how long a finished replay waits for its last queued messages to leave

log = logging.getLogger("posebridge.replay")


def recorded_messages(rec: dict) -> list:
    """The PoseMessages published for a frame record, as recorded."""
    from posebridge.formats.protocol import ProtocolError, from_map

    out = []
    for m in rec.get("messages") or []:
        try:
            out.append(from_map(m))
        except ProtocolError as exc:
            log.warning("frame %s: skipping a recorded message: %s", rec.get("index"), exc)
    return out


def _measurements(rec: dict) -> list:
    """The recorded raw estimates of a frame record as filter measurements (bad entries skipped)."""
    from posebridge.filtering.streams import Measurement

    out = []
    for f in rec.get("faces") or []:
        try:
            raw, std, box = f["raw"], f.get("std") or (0.0, 0.0, 0.0), f.get("box") or (0.0, 0.0, 0.0, 0.0)
            out.append(Measurement(int(f.get("face_id", -1)), tuple(float(v) for v in box),  # type: ignore
                                   tuple(float(v) for v in raw), tuple(float(v) for v in std)))  # type: ignore
        except (KeyError, TypeError, ValueError):
            log.warning("frame %s: skipping a malformed recorded face", rec.get("index"))
    return out


def refiltered(records: Iterator[dict], config, all_faces: bool, mirror: bool,
               overrides: dict, position=None) -> Iterator[tuple[dict, list]]:
    """(frame record, messages) with fresh filters over the recorded raw estimates; `recenter` and `set`
    events are applied in order (the user's `overrides` always win over a recorded `set`). `position`:
    the head-position settings (default: posebridge.config.PositionConfig())."""
    from posebridge.filtering.streams import StreamSet, build_message

    streams = StreamSet(config, all_faces=all_faces, position=position)
    for rec in records:
        kind = rec.get("kind")
        if kind == "event" and rec.get("name") == "recenter":
            neutral = rec.get("neutral")
            streams.set_neutral(neutral if isinstance(neutral, list) and len(neutral) == 3 else None)
        elif kind == "event" and rec.get("name") == "set" and isinstance(rec.get("params"), dict):
            params = {k: v for k, v in rec["params"].items() if k != "mirror" and k not in overrides}
            try:
                streams.set_config(streams.config.replace(**params))
            except ConfigError as exc:
                log.warning("ignoring a recorded set event: %s", exc)
        elif kind == "frame":
            frame = rec.get("frame") or [0, 0]
            size = (int(frame[0]), int(frame[1])) if len(frame) == 2 else (0, 0)
            updates = streams.update(float(rec["t_capture"]), _measurements(rec), size)
            yield rec, [build_message(u, 0, 0.0, 0.0, size, mirror) for u in updates]


def replay(path: str, publisher, speed: float = 1.0, refilter: bool = False,
           filter_params: dict | None = None, mirror: bool | None = None,
           stop: threading.Event | None = None, seq_start: int = 0, sinks: list | None = None) -> dict:
    """Publish the session at `path` through `publisher` (and every `Sink` in `sinks`, after it); returns
    counts (frames, messages, problem, skipped, next_seq). `seq` numbers the messages from `seq_start`
    (a looping replay keeps counting)."""
    from posebridge.filtering.config import FilterConfig
    from posebridge.filtering.streams import output_quaternion
    from posebridge.formats.protocol import encode
    from posebridge.formats.session_file import SessionReader
    from posebridge.sources.pacing import Pacer

    reader = SessionReader(path)
    recorded = reader.header.get("config", {}) if isinstance(reader.header.get("config"), dict) else {}
    rec_mirror = bool((recorded.get("publish") or {}).get("mirror", False))
    mirror = rec_mirror if mirror is None else mirror
    all_faces = bool((recorded.get("faces") or {}).get("all_faces", False))
    if refilter:
        # as `serve` did: the recorded model's calibrated defaults (e.g. its meas_scale), then the recorded
        # user settings, then this replay's changes
        base = FilterConfig()
        model = reader.header.get("model") if isinstance(reader.header.get("model"), dict) else {}
        extra = model.get("extra") if isinstance(model.get("extra"), dict) else {}
        layers = (("model's calibrated", extra.get("filter")), ("recorded", recorded.get("filter")))
        for what, params in layers:
            try:
                base = base.replace(**(params if isinstance(params, dict) else {}))
            except ConfigError as exc:
                log.warning("ignoring the %s filter settings: %s", what, exc)
        config = base.replace(**(filter_params or {}))
        items = refiltered(reader.checked(), config, all_faces, mirror, filter_params or {})
    else:
        items = ((rec, recorded_messages(rec)) for rec in reader.frames())
    pacer = Pacer(realtime=speed > 0, drop_late=False, speed=speed or 1.0, stop=stop)
    seq, n_frames, t_first = seq_start, 0, None
    for rec, msgs in items:
        if stop is not None and stop.is_set():
            break
        try:
            t_rec = float(rec["t_capture"])
        except (KeyError, TypeError, ValueError):
            continue
        t_first = t_rec if t_first is None else t_first
        t_now = pacer.wait_offset(t_rec - t_first)
        if stop is not None and stop.is_set():
            break
        n_frames += 1
        for msg in msgs:
            msg.seq = seq
            msg.t_capture = t_now
            if mirror != rec_mirror and not refilter:
                from posebridge.filtering.streams import Stream

                msg.q = list(output_quaternion(Stream(None, last_angles=tuple(msg.euler)), mirror))
                if msg.pos is not None:  # a mirror reflects the position's x as it does q
                    msg.pos = [-msg.pos[0], msg.pos[1], msg.pos[2]]
            msg.t_publish = time.time()
            publisher.send(encode(msg))
            for sink in sinks or ():
                sink.send(msg)  # never raises, never blocks (posebridge.daemon.stages.SinkStage)
            seq += 1
    return {"frames": n_frames, "messages": seq - seq_start, "next_seq": seq, "problem": reader.problem,
            "skipped": reader.skipped, "damaged": reader.damaged, "invalid_frames": reader.invalid_frames,
            "complete": reader.complete}


def _recorded_position(recorded: dict):
    """The recorded `[position]` settings (defaults when absent or invalid: older sessions)."""
    from posebridge.filtering.position import settings_from

    try:
        return settings_from(recorded.get("position"))
    except (ConfigError, TypeError) as exc:
        log.warning("ignoring the recorded position settings: %s", exc)
        return settings_from(None)


def output_sinks(vmc: str | None, opentrack: str | None) -> list:
    """The `--vmc` / `--opentrack` outputs (docs/interop.md)."""
    from posebridge.config import ServeConfig
    from posebridge.daemon.assemble import build_sinks

    cfg = ServeConfig()
    cfg.vmc.address, cfg.opentrack.address = vmc or "", opentrack or ""
    return build_sinks(cfg)


def run(args: argparse.Namespace) -> int:
    from posebridge.daemon.signals import install_signal_handlers
    from posebridge.formats.session_file import SessionReader
    from posebridge.output.transport import Publisher

    if args.speed < 0:
        raise ConfigError(f"--speed: must be >= 0 (0 = as fast as possible), got {args.speed}")
    params = filter_flags(args)
    validate_filter_params(params, prefix="--filter.")
    if params and not args.refilter:
        raise ConfigError("--filter.* options need --refilter")
    SessionReader(args.file)  # a missing or foreign file fails here, before any socket is opened
    sinks = output_sinks(args.vmc, args.opentrack)
    try:
        publisher = Publisher.owning(args.publish, hwm=args.hwm)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    stop = threading.Event()
    restore = install_signal_handlers(stop.set)
    result = {"frames": 0, "messages": 0, "problem": None, "skipped": 0}
    try:
        log.info("replaying %s on %s at %gx%s", args.file, publisher.address, args.speed,
                 " (re-filtered)" if args.refilter else "")
        if args.wait_subscriber and not publisher.wait_for_subscriber(args.wait_subscriber, stop=stop):
            log.info("no subscriber after %.1f s; replaying anyway", args.wait_subscriber)
        seq = 0
        while not stop.is_set():
            result = replay(args.file, publisher, args.speed, args.refilter, params,
                            mirror=True if args.mirror else None, stop=stop, seq_start=seq, sinks=sinks)
            seq = result["next_seq"]
            if not args.loop or result["frames"] == 0:
                break
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        # a finished replay delivers what is still queued (the last frames); an interrupted one does not wait
        publisher.close(linger_s=0.0 if stop.is_set() else DRAIN_S)
        for sink in sinks:
            sink.close()
    if result.get("problem"):
        log.warning("%s: %s (replayed everything readable)", args.file, result["problem"])
    log.info("replayed %d frames, %d messages; skipped %d damaged region(s), %d ill-typed frame(s)",
             result["frames"], result["messages"], result.get("damaged", 0), result.get("invalid_frames", 0))
    for sink in sinks:
        st = sink.stats()
        log.info("%s to %s: %d messages sent, %d failed", st["name"], st["destination"],
                 st["messages"] - st["errors"], st["errors"])
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
    p.add_argument("--vmc", metavar="HOST:PORT", help="also send VMC protocol (OSC/UDP), default port 39539")
    p.add_argument("--opentrack", metavar="HOST:PORT", help="also send opentrack UDP, default port 4242")
    add_filter_flags(p)
    p.set_defaults(func=run)
