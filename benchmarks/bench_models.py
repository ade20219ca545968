"""Milliseconds per face crop: backbone x backend x batch, median over repeats (warm-up excluded).

    .venv/bin/python benchmarks/bench_models.py                # CPU, all backbones, batch 1 and 8
    .venv/bin/python benchmarks/bench_models.py --device cuda  # GPU: fp32, fp16 + channels_last,
                                                               # torch.compile (CUDA graphs), ORT CUDA
    .venv/bin/python benchmarks/bench_models.py --backbones resnet50 --backends torch onnx-int8 --json o.json
    .venv/bin/python benchmarks/bench_models.py --smoke        # tiny CI run (lenet, batch 1)

Speed does not depend on the weights, so the networks are randomly initialised (seeded); int8 is
calibrated on real face crops (../shared/data/aflw-yaw-crops) when present, else on noise (speed only).
Prints markdown tables (one per batch size) with each backend's ratio to PyTorch fp32, `--json` for
machines and `--plot` for a PNG. Accuracy of the fast backends: benchmarks/bench_int8.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from posebridge.inference.meta import ModelMeta  # noqa: E402
from posebridge.models.network import BACKBONES, build_model  # noqa: E402
from posebridge.models.torch_backends import TorchBackend, backend_for_net, cpu_supports_bf16  # noqa: E402

SHARED = REPO.parent / "shared"
CROPS = SHARED / "data" / "aflw2000-dev-crops"  # only pixels to time on; no labels are used
CALIB = SHARED / "data" / "aflw-yaw-crops"
INPUT_SIZE = {"lenet": 64}  # the rest run at 224


def default_backends(device: str) -> list[str]:
    if device.startswith("cuda"):
        return ["torch-fp32", "torch", "torch-compile", "onnx"]
    return ["torch", *(["torch-bf16"] if cpu_supports_bf16() else []), "onnx", "onnx-int8"]


LABELS = {"torch": "torch fp32", "torch-fp32": "torch fp32", "torch-bf16": "torch bf16 autocast",
          "torch-compile": "torch.compile", "onnx": "onnx fp32", "onnx-int8": "onnx int8"}


def make_backend(name: str, net, meta: ModelMeta, device: str, calib: str | None):
    if name == "torch-fp32" or (name == "torch" and not device.startswith("cuda")):
        return TorchBackend(net, meta, device, half=False)
    return backend_for_net(name, net, meta, device, threads=0, calib=calib)


def input_batch(meta: ModelMeta, batch: int):
    if CROPS.is_dir():
        from posebridge.imagefiles import evenly, list_images
        from posebridge.inference.crops import load_crops, to_batch

        return to_batch(load_crops(evenly(list_images(CROPS), batch), meta.input_size), meta)
    return torch.randn(batch, 3, meta.input_size, meta.input_size).numpy()


def time_backend(backend, x, warmup: int, repeats: int, budget_s: float) -> list[float]:
    """Per-call wall times (ms): `warmup` untimed calls, then up to `repeats` (at least 3) within budget."""
    for _ in range(warmup):
        backend.run(x)
    times: list[float] = []
    t_end = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        backend.run(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def run(args) -> dict:
    torch.manual_seed(0)
    calib = args.calib or (str(CALIB) if CALIB.is_dir() else None)
    rows = []
    cells = [(b, k) for b in args.backbones for k in args.backends]
    for backbone, name in tqdm(cells, desc="backbone x backend", unit="cell"):
        size = INPUT_SIZE.get(backbone, 224)
        torch.manual_seed(0)
        net = build_model(backbone).eval()
        meta = ModelMeta(name=f"bench-{backbone}", backbone=backbone, bins=dict(net.bins), input_size=size)
        if name == "onnx-int8" and calib is None:
            calib = _noise_calib(meta)
        t0 = time.perf_counter()
        try:
            backend = make_backend(name, net, meta, args.device, calib)
        except Exception as exc:  # one failing cell (e.g. no CUDA provider) must not stop the table
            rows.append({"backbone": backbone, "backend": name, "error": str(exc).splitlines()[0]})
            continue
        setup = time.perf_counter() - t0
        for batch in args.batches:
            x = input_batch(meta, batch)
            try:
                times = time_backend(backend, x, args.warmup, args.repeats, args.budget)
            except Exception as exc:  # report the cell as failed, keep measuring the rest
                rows.append({"backbone": backbone, "backend": name, "batch": batch,
                             "error": str(exc).splitlines()[0]})
                continue
            med = statistics.median(times)
            tqdm.write(f"{backbone} {name} batch {batch}: {med / batch:.2f} ms per crop ({len(times)} calls)")
            rows.append({
                "backbone": backbone, "backend": name, "label": LABELS.get(name, name), "batch": batch,
                "ms_per_crop": med / batch, "ms_per_call": med,
                "p90_ms_per_call": float(np.percentile(times, 90)), "repeats": len(times),
                "setup_s": round(setup, 2), "provider": getattr(backend, "provider", ""),
            })
        del backend
    return {
        "device": args.device,
        "machine": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "bf16": cpu_supports_bf16(), "python": platform.python_version(),
                    "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "rows": rows,
    }


_NOISE_DIR: tempfile.TemporaryDirectory | None = None


def _noise_calib(meta: ModelMeta) -> str:
    """A folder of noise images so int8 can be built for timing where no face crops exist."""
    global _NOISE_DIR
    import cv2

    _NOISE_DIR = tempfile.TemporaryDirectory(prefix="posebridge-noise-")
    rng = np.random.default_rng(0)
    for i in range(16):
        noise = rng.integers(0, 255, (120, 120, 3), np.uint8)
        cv2.imwrite(str(Path(_NOISE_DIR.name, f"n{i:02d}.png")), noise)
    print("note: no face crops found; int8 calibrated on noise (valid for speed only)")
    return _NOISE_DIR.name


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_tables(result: dict) -> str:
    rows = [r for r in result["rows"] if "error" not in r]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    base_name = "torch-fp32" if "torch-fp32" in backends else "torch"
    out = []
    for batch in sorted({r["batch"] for r in rows}):
        out.append(f"\n**ms per crop, batch {batch}** ({result['device']}; ratio = PyTorch fp32 / fastest)\n")
        out.append("| backbone | " + " | ".join(LABELS.get(b, b) for b in backends) + " | fastest | ratio |")
        out.append("|---|" + "---|" * (len(backends) + 2))
        for backbone in dict.fromkeys(r["backbone"] for r in rows):
            cell = {r["backend"]: r["ms_per_crop"] for r in rows
                    if r["backbone"] == backbone and r["batch"] == batch}
            if not cell:
                continue
            best = min(cell, key=cell.get)
            base = cell.get(base_name)
            ratio = f"{base / cell[best]:.2f}x" if base else "-"
            vals = " | ".join(f"{cell[b]:.2f}" if b in cell else "-" for b in backends)
            out.append(f"| {backbone} | {vals} | {LABELS.get(best, best)} | {ratio} |")
    errors = [r for r in result["rows"] if "error" in r]
    for r in errors:
        out.append(f"\n{r['backbone']} / {r['backend']}: not measured ({r['error']})")
    m = result["machine"]
    out.append(f"\n{m['cpu']}, {m['cpus']} CPUs, torch threads {m['torch_threads']}, torch {m['torch']}, "
               f"onnxruntime {m['onnxruntime']}; load average {result.get('load_avg')}")
    return "\n".join(out)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if "error" not in r]
    batches = sorted({r["batch"] for r in rows})
    backbones = list(dict.fromkeys(r["backbone"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4), squeeze=False)
    width = 0.8 / max(len(backends), 1)
    for ax, batch in zip(axes[0], batches, strict=True):
        for j, b in enumerate(backends):
            vals = [next((r["ms_per_crop"] for r in rows if r["backbone"] == bb and r["backend"] == b
                          and r["batch"] == batch), np.nan) for bb in backbones]
            ax.bar(np.arange(len(backbones)) + j * width, vals, width, label=LABELS.get(b, b))
        ax.set_xticks(np.arange(len(backbones)) + 0.4 - width / 2, backbones, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("ms per crop (log)")
        ax.set_title(f"batch {batch}, {result['device']}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    p.add_argument("--backends", nargs="+", default=None,
                   help="torch torch-fp32 torch-bf16 torch-compile onnx onnx-int8 (default: per device)")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--repeats", type=int, default=20, help="timed calls per cell at most (default 20)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds per cell after 3 calls (default 2)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calib", default=None,
                   help="int8 calibration crops (default ../shared/data/aflw-yaw-crops)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--plot", default=None, metavar="PNG", help="also write a bar chart")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for PyTorch and ONNX Runtime (default: their own defaults, all cores); "
                   "1 gives comparable numbers on a busy shared machine")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI: lenet, torch + onnx, batch 1")
    args = p.parse_args(argv)
    if args.smoke:
        args.backbones, args.batches, args.repeats, args.budget = ["lenet"], [1], 3, 0.1
        args.backends = args.backends or ["torch", "onnx"]
    args.backends = args.backends or default_backends(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["POSEBRIDGE_ORT_THREADS"] = str(args.threads)
    load0 = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="posebridge-bench-home-") as home:
        os.environ["POSEBRIDGE_HOME"] = home  # exported/quantized graphs of random weights: throw away
        t0 = time.perf_counter()
        result = run(args)
    result["load_avg"] = {"start": load0, "end": [round(x, 2) for x in os.getloadavg()]}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(format_tables(result))
    print(f"\n(wall {result['wall_s']} s; load average start {load0}, end {result['load_avg']['end']}: "
          "the machine may be shared, which inflates these numbers)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.plot:
        plot(result, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
