"""Publish -> C# receive latency of the Unity client's plain-C# core, on 127.0.0.1.

    .venv/bin/python benchmarks/bench_unity_latency.py                 # 10,000 messages at 1 kHz
    .venv/bin/python benchmarks/bench_unity_latency.py --count 20000 --rate 2000

Compiles `unity_client/Runtime/Core` + the console runner with mono's `mcs`, starts a synthetic
publisher (posebridge.formats.protocol + posebridge.output.transport, the daemon's own encoder and XPUB
socket) and
lets the C# client measure t_receive - t_publish for every message (both sides read the same wall
clock). Prints a table and writes a histogram PNG (default out/unity_latency.png).

The `publish` sub-command is the synthetic publisher itself (tests/end_to_end/test_unity_client.py uses it for
the fault tests): it prints `READY <address>` once bound and can record what it sent as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.output.ports import free_port  # noqa: E402

UNITY = REPO / "unity_client"


def synthetic_message(seq: int, t: float, extra_keys: bool = False) -> dict:
    """A protocol v1 map with a slowly moving head; q from posebridge.formats.rotation (the daemon's math)."""
    from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage
    from posebridge.formats.rotation import unity_quaternion

    yaw, pitch, roll = 40 * math.sin(0.9 * t), 20 * math.sin(0.6 * t + 1), 10 * math.sin(0.4 * t + 2)
    q = [float(x) for x in unity_quaternion(yaw, pitch, roll)]
    msg = PoseMessage(v=SCHEMA_VERSION, seq=seq, t_capture=time.time(), t_publish=0.0, face_id=0,
                      tracked=True, q=q, euler=[yaw, pitch, roll], raw=[yaw + 0.5, pitch, roll],
                      std=[3.0, 3.5, 2.5], box=[100.0, 80.0, 260.0, 240.0], frame=[640, 480])
    m = msg.to_map()
    if extra_keys:  # forward compatibility: readers must ignore keys they do not know
        m["x_future"] = {"nested": [1, 2.5, None, "s"], "flag": True}
        m["zz_note"] = "unknown key"
    return m


def publish(args: argparse.Namespace) -> int:
    import msgpack

    from posebridge.formats.protocol import TOPIC_POSE
    from posebridge.output.transport import Publisher

    pub = Publisher(args.address, hwm=args.hwm)
    print(f"READY {pub.address}", flush=True)
    record = open(args.record, "w") if args.record else None  # noqa: SIM115
    try:
        if args.wait_subscriber > 0 and not pub.wait_for_subscriber(args.wait_subscriber):
            print("no subscriber", flush=True)
            return 1
        period = 1.0 / args.rate
        t0 = time.monotonic()
        seq = 0
        while (args.count <= 0 or seq < args.count) and time.monotonic() - t0 < args.max_seconds:
            m = synthetic_message(seq, time.monotonic() - t0, args.extra_keys)
            m["t_publish"] = time.time()
            if pub.send([TOPIC_POSE, msgpack.packb(m, use_bin_type=True, use_single_float=False)]):
                if record:
                    record.write(json.dumps({"seq": seq, "q": m["q"], "euler": m["euler"]}) + "\n")
                    record.flush()  # the tests stop this publisher with SIGKILL: nothing may sit in a buffer
                seq += 1
            next_t = t0 + seq * period
            while (left := next_t - time.monotonic()) > 0:
                time.sleep(left if left > 0.002 else 0)
        print(f"SENT {seq}", flush=True)
        return 0
    finally:
        if record:
            record.close()
        pub.close()


def compile_runner(out_dir: Path) -> Path:
    """mcs-compile the core + console runner; returns the .exe path."""
    exe = out_dir / "PoseBridgeTests.exe"
    sources = sorted(str(p) for p in (UNITY / "Runtime" / "Core").glob("*.cs"))
    sources += sorted(str(p) for p in (UNITY / "Tests" / "Console").glob("*.cs"))
    subprocess.run(["mcs", "-langversion:7.2", "-nologo", "-optimize+", f"-out:{exe}", *sources], check=True)
    return exe


def python_baseline(args: argparse.Namespace) -> np.ndarray:
    """The same measurement with libzmq's own SUB socket (pyzmq), for comparison."""
    import msgpack
    import zmq

    address = f"tcp://127.0.0.1:{free_port()}"
    budget = args.count / args.rate * 3 + 30
    pub = subprocess.Popen([sys.executable, __file__, "publish", "--address", address,
                            "--rate", str(args.rate), "--count", "0", "--max-seconds", str(budget),
                            "--wait-subscriber", "30", "--hwm", "10000"], stdout=subprocess.PIPE, text=True)
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"pose")
    sock.setsockopt(zmq.RCVHWM, 10000)
    sock.connect(address)
    lat = []
    try:
        while len(lat) < args.count:
            if not sock.poll(int(budget * 1000)):
                break
            _, payload = sock.recv_multipart()
            now = time.time()
            lat.append(now - msgpack.unpackb(payload)["t_publish"])
    finally:
        sock.close(linger=0)
        pub.terminate()
        pub.wait(timeout=10)
    return np.array(lat) * 1000.0


def bench(args: argparse.Namespace) -> int:

    if not shutil.which("mcs") or not shutil.which("mono"):
        print("needs mono: apt-get install mono-mcs mono-runtime", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_runner(Path(tmp))
        lat_file = Path(tmp) / "latency.txt"
        address = f"tcp://127.0.0.1:{free_port()}"
        budget = args.count / args.rate * 3 + 30
        pub = subprocess.Popen([sys.executable, __file__, "publish", "--address", address,
                                "--rate", str(args.rate), "--count", "0", "--max-seconds", str(budget),
                                "--wait-subscriber", "30", "--hwm", "10000"],
                               stdout=subprocess.PIPE, text=True)
        try:
            assert pub.stdout is not None
            print(pub.stdout.readline().strip())
            res = subprocess.run(["mono", str(exe), "latency", "--endpoint", address,
                                  "--count", str(args.count), "--timeout", str(budget),
                                  "--out", str(lat_file)],
                                 capture_output=True, text=True, timeout=budget + 30)
        finally:
            pub.terminate()
            pub.wait(timeout=10)
        print(res.stdout.strip())
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        lat = np.loadtxt(lat_file) * 1000.0
        base = python_baseline(args) if args.baseline else None
    load = os.getloadavg()
    print(f"\n{lat.size} messages at {args.rate:g} msg/s on 127.0.0.1; load average {load[0]:.2f} "
          f"on {os.cpu_count()} CPUs\n")
    print("| subscriber | median ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for name, x in [("C# client (mono)", lat), ("pyzmq SUB (libzmq), baseline", base)]:
        if x is not None and x.size:
            print(f"| {name} | {np.median(x):.3f} | {np.percentile(x, 90):.3f} | "
                  f"{np.percentile(x, 99):.3f} | {x.max():.3f} |")
    out = Path(args.plot)
    out.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    both = lat if base is None or not base.size else np.concatenate([lat, base])
    bins = np.logspace(np.log10(max(both.min(), 1e-3)), np.log10(both.max()), 80)
    ax.hist(lat, bins=bins, alpha=0.7, label="C# client")
    if base is not None and base.size:
        ax.hist(base, bins=bins, alpha=0.5, label="pyzmq SUB (baseline)")
    ax.set_xscale("log")
    ax.axvline(np.median(lat), color="k", label=f"median {np.median(lat):.3f} ms")
    ax.axvline(np.percentile(lat, 99), color="r", label=f"p99 {np.percentile(lat, 99):.3f} ms")
    ax.set_xlabel("t_receive - t_publish (ms)")
    ax.set_ylabel("messages")
    ax.set_title(f"posebridge -> C# client on 127.0.0.1, {lat.size} msgs at {args.rate:g}/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    pp = sub.add_parser("publish", help="synthetic pose publisher")
    pp.add_argument("--address", default="tcp://127.0.0.1:5570")
    pp.add_argument("--rate", type=float, default=100.0, help="messages per second")
    pp.add_argument("--count", type=int, default=0, help="messages to send (0 = until --max-seconds)")
    pp.add_argument("--max-seconds", type=float, default=60.0)
    pp.add_argument("--wait-subscriber", type=float, default=10.0,
                    help="seconds to wait for a SUB (0 = don't)")
    pp.add_argument("--record", help="write one JSON line per sent message (seq, q, euler)")
    pp.add_argument("--extra-keys", action="store_true", help="add unknown keys to every message")
    pp.add_argument("--hwm", type=int, default=1000)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the pyzmq SUB comparison run")
    p.add_argument("--plot", default=str(REPO / "out" / "unity_latency.png"))
    args = p.parse_args(argv)
    return publish(args) if args.cmd == "publish" else bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
