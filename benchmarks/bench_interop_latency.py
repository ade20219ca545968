"""Publish -> receive latency of the VMC (OSC/UDP) and opentrack (UDP) outputs on 127.0.0.1, with the
ZeroMQ stream as the reference.

    .venv/bin/python benchmarks/bench_interop_latency.py                # 10,000 messages each at 1 kHz
    .venv/bin/python benchmarks/bench_interop_latency.py --count 20000 --rate 2000 --kinds vmc,opentrack

For each output a receiver runs in its own process, written from the protocol's spec as an avatar app
or opentrack would read it: python-osc's `BlockingOSCUDPServer` with a dispatcher for VMC, a plain UDP
socket unpacking `<6d` for opentrack, a pyzmq SUB + posebridge's decoder for ZeroMQ. This process sends
synthetic pose messages through the daemon's own outputs (posebridge.output.vmc.VmcSink,
posebridge.output.opentrack.OpentrackSink, posebridge.output.transport.Publisher), stamping
`t_publish = time.time()` right before `send`; the receiver stamps `time.time()` when the message is
dispatched (both read the same wall clock). Messages are matched by content: the head position carries
the message index (x = -i x 10 um, exact in float32 and float64). Also measured: how long `send()`
itself takes in the daemon's loop. Prints a table with the machine load (`uptime`), writes a JSON and a
histogram PNG (default out/interop_latency.{json,png}).

The `receive` sub-command is the receiver itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.output.ports import free_port  # noqa: E402

STEP = 1e-5  # metres of head position per message index


def index_of(x_metres: float) -> int:
    return int(round(-x_metres / STEP))


# ------------------------------------------------------------------------------------------ receivers

def receive(args: argparse.Namespace) -> int:
    """Receive `count` messages (or until `timeout` s of silence); write `index t_receive` lines."""
    got: list[tuple[int, float]] = []
    out = open(args.out, "w")  # noqa: SIM115
    try:
        if args.kind == "vmc":
            from pythonosc.dispatcher import Dispatcher
            from pythonosc.osc_server import BlockingOSCUDPServer

            d = Dispatcher()
            d.map("/VMC/Ext/Root/Pos", lambda _addr, *a: got.append((index_of(a[1]), time.time())))
            server = BlockingOSCUDPServer(("127.0.0.1", args.port), d)
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            server.timeout = args.timeout
            print("READY", flush=True)
            while len(got) < args.count:
                before = len(got)
                server.handle_request()  # one datagram, or returns after `timeout` s
                if len(got) == before:
                    break
            server.server_close()
        elif args.kind == "opentrack":
            import struct

            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", args.port))
            sock.settimeout(args.timeout)
            print("READY", flush=True)
            while len(got) < args.count:
                try:
                    data = sock.recv(64)
                except TimeoutError:
                    break
                x_cm = struct.unpack("<6d", data)[0]  # X (cm) = -100 x pos.x
                got.append((index_of(-x_cm / 100.0), time.time()))
            sock.close()
        else:  # zeromq: the reference
            import zmq

            from posebridge.formats.protocol import decode

            sub = zmq.Context.instance().socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"pose")
            sub.setsockopt(zmq.RCVHWM, 100000)
            sub.connect(f"tcp://127.0.0.1:{args.port}")
            print("READY", flush=True)
            while len(got) < args.count and sub.poll(int(args.timeout * 1000)):
                msg = decode(sub.recv_multipart())
                got.append((index_of(msg.pos[0]), time.time()))
            sub.close(linger=0)
        out.write("".join(f"{i} {t!r}\n" for i, t in got))
    finally:
        out.close()
    return 0


# ---------------------------------------------------------------------------------------------- sender

def synthetic(i: int):
    import math

    from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage
    from posebridge.formats.rotation import unity_quaternion

    t = i / 1000.0
    yaw, pitch, roll = 40 * math.sin(0.9 * t), 20 * math.sin(0.6 * t + 1), 10 * math.sin(0.4 * t + 2)
    return PoseMessage(v=SCHEMA_VERSION, seq=i, t_capture=time.time(), t_publish=0.0, face_id=0, tracked=True,
                       q=[float(x) for x in unity_quaternion(yaw, pitch, roll)], euler=[yaw, pitch, roll],
                       raw=[yaw, pitch, roll], std=[3.0, 3.5, 2.5], box=[100.0, 80.0, 260.0, 240.0],
                       frame=[640, 480], pos=[-i * STEP, 0.01, 0.02])


def run_kind(kind: str, count: int, rate: float, tmp: Path) -> dict:
    from tqdm import tqdm

    port = free_port("tcp" if kind == "zeromq" else "udp")
    out = tmp / f"{kind}.txt"
    budget = count / rate + 30
    rx = subprocess.Popen([sys.executable, __file__, "receive", "--kind", kind, "--port", str(port),
                           "--count", str(count), "--out", str(out), "--timeout", "5"],
                          stdout=subprocess.PIPE, text=True)
    assert rx.stdout is not None
    if rx.stdout.readline().strip() != "READY":
        raise SystemExit(f"{kind} receiver did not start")
    if kind == "zeromq":
        from posebridge.formats.protocol import encode
        from posebridge.output.transport import Publisher

        pub = Publisher(f"tcp://127.0.0.1:{port}", hwm=100000)
        if not pub.wait_for_subscriber(10):
            raise SystemExit("zeromq receiver did not subscribe")
        send, close = (lambda m: pub.send(encode(m))), pub.close
    elif kind == "vmc":
        from posebridge.output.vmc import VmcSink

        sink = VmcSink(f"127.0.0.1:{port}", position_to="root")
        send, close = sink.send, sink.close
    else:
        from posebridge.output.opentrack import OpentrackSink

        sink = OpentrackSink(f"127.0.0.1:{port}")
        send, close = sink.send, sink.close
    msgs = [synthetic(i) for i in range(count)]
    t_pub = np.zeros(count)
    send_us = np.zeros(count)
    period = 1.0 / rate
    t0 = time.monotonic()
    try:
        for i, m in enumerate(tqdm(msgs, desc=kind, unit="msg", mininterval=1.0)):
            while (left := t0 + i * period - time.monotonic()) > 0:
                time.sleep(left if left > 0.002 else 0)
            m.t_publish = time.time()
            t_pub[i] = m.t_publish
            c0 = time.perf_counter()
            send(m)
            send_us[i] = (time.perf_counter() - c0) * 1e6
        rx.wait(timeout=budget)
    finally:
        close()
        if rx.poll() is None:
            rx.kill()
    got = np.loadtxt(out, ndmin=2) if out.stat().st_size else np.zeros((0, 2))
    idx = got[:, 0].astype(int)
    ok = (idx >= 0) & (idx < count)
    lat = (got[ok, 1] - t_pub[idx[ok]]) * 1000.0
    return {"kind": kind, "sent": count, "received": int(ok.sum()), "lost": int(count - len(set(idx[ok]))),
            "lat_ms": lat, "send_us": send_us}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("receive", help="a receiver (run by the benchmark)")
    r.add_argument("--kind", choices=["vmc", "opentrack", "zeromq"], required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    p.add_argument("--kinds", default="vmc,opentrack,zeromq")
    p.add_argument("--out", default=str(REPO / "out" / "interop_latency"), help="output prefix (.json, .png)")
    args = p.parse_args(argv)
    if args.cmd == "receive":
        return receive(args)
    import tempfile

    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            results.append(run_kind(kind.strip(), args.count, args.rate, Path(tmp)))
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\n{args.count} messages per output at {args.rate:g} msg/s on 127.0.0.1, {os.cpu_count()} CPUs")
    print(f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\n")
    print("| output (receiver) | received | median ms | p90 ms | p99 ms | max ms | send() median us "
          "| send() p99 us |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"vmc": "VMC (python-osc server)", "opentrack": "opentrack (UDP socket, <6d)",
             "zeromq": "ZeroMQ stream (pyzmq SUB), reference"}
    summary = []
    for res in results:
        lat, su = res["lat_ms"], res["send_us"]
        row = {"kind": res["kind"], "sent": res["sent"], "received": res["received"], "lost": res["lost"],
               "median_ms": float(np.median(lat)), "p90_ms": float(np.percentile(lat, 90)),
               "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
               "send_median_us": float(np.median(su)), "send_p99_us": float(np.percentile(su, 99))}
        summary.append(row)
        print(f"| {names[res['kind']]} | {row['received']}/{row['sent']} | {row['median_ms']:.3f} | "
              f"{row['p90_ms']:.3f} | {row['p99_ms']:.3f} | {row['max_ms']:.3f} | "
              f"{row['send_median_us']:.1f} | {row['send_p99_us']:.1f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"count": args.count, "rate": args.rate, "cpus": os.cpu_count(), "uptime_before": uptime_before,
              "uptime_after": uptime_after, "results": summary}
    Path(f"{out}.json").write_text(json.dumps(record, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    every = np.concatenate([r["lat_ms"] for r in results])
    bins = np.logspace(np.log10(max(every.min(), 1e-3)), np.log10(every.max()), 80)
    for res, row in zip(results, summary, strict=True):
        ax.hist(res["lat_ms"], bins=bins, alpha=0.55,
                label=f"{names[res['kind']]}: median {row['median_ms']:.3f}, p99 {row['p99_ms']:.3f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("t_receive - t_publish (ms)")
    ax.set_ylabel("messages")
    ax.set_title(f"posebridge outputs on 127.0.0.1: {args.count} messages each at {args.rate:g}/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}.png", dpi=100)
    print(f"\nwrote {out}.json and {out}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
