"""`posebridge listen`: a debugging subscriber that prints the pose stream of any publisher."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time

from posebridge.output.protocol import DEFAULT_PUB, ProtocolError


def format_line(msg, now: float) -> str:
    yaw, pitch, roll = msg.euler
    raw = " ".join(f"{a:7.1f}" for a in msg.raw) if msg.raw is not None else "   (no measurement)  "
    state = f"face {msg.face_id:2d}" if msg.tracked else "LOST   "
    latency = (now - msg.t_capture) * 1000.0
    q = " ".join(f"{v:+.3f}" for v in msg.q)
    return (f"#{msg.seq:<6d} {state}  yaw {yaw:7.1f} pitch {pitch:6.1f} roll {roll:6.1f}  "
            f"raw {raw}  q [{q}]  {latency:6.1f} ms")


def to_json(msg) -> str:
    m = msg.to_map()
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in m.items()})


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from posebridge.output.transport import Subscriber

    out = sys.stdout
    received = bad = 0
    save = open(args.save, "w", encoding="utf-8") if args.save else None  # noqa: SIM115
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` ends like Ctrl-C, with the summary line
    with Subscriber(args.address) as sub:
        if not args.json:
            print(f"listening on {args.address} (Ctrl-C to stop)", file=sys.stderr)
        deadline_idle = args.timeout
        try:
            while args.count is None or received < args.count:
                try:
                    msg = sub.recv(timeout_s=deadline_idle)
                except ProtocolError as exc:
                    bad += 1
                    print(f"posebridge listen: skipped malformed message: {exc}", file=sys.stderr)
                    continue
                if msg is None:
                    print(f"posebridge listen: no message for {args.timeout:g} s", file=sys.stderr)
                    break
                received += 1
                out.write((to_json(msg) if args.json else format_line(msg, time.time())) + "\n")
                out.flush()
                if save is not None:
                    save.write(to_json(msg) + "\n")
        except KeyboardInterrupt:
            pass
        finally:
            if save is not None:
                save.close()
        print(f"posebridge listen: {received} messages, {sub.gaps} missed (seq gaps), {bad} malformed",
              file=sys.stderr)
    if args.count is not None and received < args.count:
        return 1
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("listen", help="print the pose stream of a running publisher",
                              description="Subscribe to a posebridge publisher and print each message.")
    p.add_argument("--address", default=DEFAULT_PUB, help=f"publisher address (default {DEFAULT_PUB})")
    p.add_argument("--count", type=int, help="exit after N messages (exit code 1 if fewer arrive)")
    p.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds without a message")
    p.add_argument("--json", action="store_true", help="one JSON object per message (the wire map)")
    p.add_argument("--save", metavar="FILE", help="also write every message as JSON lines to FILE")
    p.set_defaults(func=run)
