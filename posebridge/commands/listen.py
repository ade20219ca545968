"""`posebridge listen`: a debugging subscriber that prints the pose stream of any publisher.

`--vmc PORT` / `--opentrack PORT` instead listen on UDP like an avatar app (VMC protocol receiver) or
opentrack ("UDP over network" input) would, and print what such a receiver sees: each VMC packet's
messages, or each opentrack packet's X, Y, Z (cm) and yaw, pitch, roll (degrees). For checking a
set-up (docs/interop.md): run it where the app would run, with the app closed (one program per port)."""

from __future__ import annotations

import argparse
import json
import math
import select
import signal
import socket
import sys
import threading
import time

from posebridge.formats.protocol import DEFAULT_PUB, ProtocolError


def format_line(msg, now: float) -> str:
    yaw, pitch, roll = msg.euler
    raw = " ".join(f"{a:7.1f}" for a in msg.raw) if msg.raw is not None else "   (no measurement)  "
    state = f"face {msg.face_id:2d}" if msg.tracked else "LOST   "
    latency = (now - msg.t_capture) * 1000.0
    q = " ".join(f"{v:+.3f}" for v in msg.q)
    pos = "  pos [" + " ".join(f"{v:+.3f}" for v in msg.pos) + "] m" if msg.pos is not None else ""
    return (f"#{msg.seq:<6d} {state}  yaw {yaw:7.1f} pitch {pitch:6.1f} roll {roll:6.1f}  "
            f"raw {raw}  q [{q}]{pos}  {latency:6.1f} ms")


def to_json(msg) -> str:
    m = msg.to_map()
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in m.items()})


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def format_opentrack(values: tuple[float, ...]) -> str:
    x, y, z, yaw, pitch, roll = values
    return (f"X {x:+7.2f} Y {y:+7.2f} Z {z:+7.2f} cm   yaw {yaw:+7.2f} pitch {pitch:+7.2f} "
            f"roll {roll:+7.2f} deg")


def _udp_socket(bind: str, port: int) -> socket.socket:
    from posebridge.errors import ConfigError

    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} is outside 1-65535")
    sock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on UDP {bind}:{port} ({exc.strerror}); is another program using "
                          "it (close the avatar app / opentrack while checking)?") from None
    return sock


def run_udp(args: argparse.Namespace) -> int:
    """`--vmc PORT` and/or `--opentrack PORT`: print every packet a receiver would get."""
    socks: dict[socket.socket, str] = {}
    try:
        if args.vmc is not None:
            socks[_udp_socket(args.bind, args.vmc)] = "vmc"
        if args.opentrack is not None:
            socks[_udp_socket(args.bind, args.opentrack)] = "opentrack"
    except BaseException:
        for s in socks:
            s.close()
        raise
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    if not args.json:
        where = ", ".join(f"{kind} on udp {args.bind}:{s.getsockname()[1]}" for s, kind in socks.items())
        print(f"listening: {where} (Ctrl-C to stop)", file=sys.stderr)
    received = bad = 0
    save = open(args.save, "w", encoding="utf-8") if args.save else None  # noqa: SIM115
    try:
        while args.count is None or received < args.count:
            ready, _, _ = select.select(list(socks), [], [], args.timeout)
            if not ready:
                print(f"posebridge listen: no packet for {args.timeout:g} s", file=sys.stderr)
                break
            for sock in ready:
                data = sock.recv(65536)
                now = time.time()
                try:
                    line, record = _udp_line(socks[sock], data, now)
                except ValueError as exc:
                    bad += 1
                    print(f"posebridge listen: skipped a malformed {socks[sock]} packet: {exc}",
                          file=sys.stderr)
                    continue
                received += 1
                sys.stdout.write((json.dumps(record) if args.json else line) + "\n")
                sys.stdout.flush()
                if save is not None:
                    save.write(json.dumps(record) + "\n")
    except KeyboardInterrupt:
        pass
    finally:
        for sock in socks:
            sock.close()
        if save is not None:
            save.close()
    print(f"posebridge listen: {received} packets, {bad} malformed", file=sys.stderr)
    return 1 if args.count is not None and received < args.count else 0


def _udp_line(kind: str, data: bytes, now: float) -> tuple[str, dict]:
    if kind == "opentrack":
        from posebridge.output.opentrack import decode_pose

        values = decode_pose(data)
        keys = ("x_cm", "y_cm", "z_cm", "yaw", "pitch", "roll")
        record = {"kind": kind, "t_receive": now, **dict(zip(keys, values, strict=True))}
        return "opentrack " + format_opentrack(values), record
    from posebridge.output.vmc import format_datagram, parse_datagram

    messages = parse_datagram(data)
    return "vmc " + format_datagram(messages), {"kind": kind, "t_receive": now, "messages": [
        {"address": a, "args": args} for a, args in messages]}


def run(args: argparse.Namespace) -> int:
    if args.vmc is not None or args.opentrack is not None:
        return run_udp(args)
    from posebridge.output.transport import Subscriber

    out = sys.stdout
    received = bad = 0
    save = open(args.save, "w", encoding="utf-8") if args.save else None  # noqa: SIM115
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` ends like Ctrl-C, with the summary line
    keys = None
    if args.keys:
        from posebridge.output.security import load_client

        keys = load_client(args.keys)
    with Subscriber(args.address, keys=keys) as sub:
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
    p.add_argument("--keys", metavar="DIR", help="client CURVE keys (client.key_secret + server.key) for a "
                   "daemon started with [security] keys")
    p.add_argument("--vmc", type=int, metavar="PORT", help="listen for VMC protocol (OSC/UDP) on PORT, e.g. "
                   "39539, and print what an avatar app receives")
    p.add_argument("--opentrack", type=int, metavar="PORT", help="listen for opentrack UDP packets on PORT, "
                   "e.g. 4242, and print what opentrack receives")
    p.add_argument("--bind", default="127.0.0.1", metavar="HOST",
                   help="address for --vmc / --opentrack (default 127.0.0.1; 0.0.0.0 = from other machines)")
    p.set_defaults(func=run)
