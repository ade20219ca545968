"""CPU latency of the shipped posebridge-small beside WHENet, per face crop at batch 1, in the same run.

For each model: the network alone in PyTorch fp32 and in ONNX Runtime (posebridge.inference.backends, fp32
graph with decoding inside), and the full `Estimator.predict_crops` call (crop + resize + normalise +
network over the model's test-time views in one batch: each zoom view of its metadata's `tta_zooms`, and
its mirror image when `flip_average` is on, as posebridge-small's are). Median over repeats after
warm-up; real face crops from ../shared when present (speed does not depend on pixels). WHENet is the
installed one (`posebridge models pull whenet`), else imported from ../shared/models/WHENet.h5, else a
randomly initialised network of the same shape (same speed).

    .venv/bin/python benchmarks/bench_posebridge_small.py --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from posebridge.inference.crops import to_batch  # noqa: E402
from posebridge.inference.estimator import Estimator  # noqa: E402
from posebridge.inference.model_store import resolve_model  # noqa: E402
from posebridge.models.checkpoint import load_checkpoint  # noqa: E402
from posebridge.models.torch_backends import TorchBackend, backend_for_net  # noqa: E402
from training.distill import BEST_VALIDATION_ZOOMS  # noqa: E402

SHARED = REPO.parent / "shared"


def load_whenet():
    from posebridge.errors import PoseBridgeError

    try:
        return (*load_checkpoint(resolve_model("whenet")), "installed")
    except PoseBridgeError:
        pass
    h5 = SHARED / "models" / "WHENet.h5"
    if h5.is_file():
        from posebridge.models.importers.whenet import import_whenet

        return (*import_whenet(h5), "imported from ../shared")
    from posebridge.models.importers.whenet import whenet_meta
    from posebridge.models.network import WHENET_BINS, build_model

    return build_model("efficientnet_b0", dict(WHENET_BINS)).eval(), whenet_meta("whenet"), "random init"


def a_crop() -> np.ndarray:
    crops = sorted((SHARED / "data" / "aflw2000-dev-crops").glob("*.jpg"))
    img = cv2.imread(str(crops[0])) if crops else None
    return img if img is not None else np.random.default_rng(0).integers(0, 255, (120, 120, 3), np.uint8)


def median_ms(fn, warmup: int, repeats: int, budget_s: float) -> tuple[float, int]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < end):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), len(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per cell at most (after 5 calls)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    crop = a_crop()
    small_net, small_meta = load_checkpoint(resolve_model("posebridge-small"))
    whenet_net, whenet_meta, whenet_src = load_whenet()
    rows = []
    views = copy.deepcopy(small_meta)  # the same weights with the opt-in zoom views (model.zooms)
    views.extra["tta_zooms"] = list(BEST_VALIDATION_ZOOMS)
    zooms = ",".join(f"{z:g}" for z in BEST_VALIDATION_ZOOMS)
    models = [("posebridge-small", small_net, small_meta),
              (f"posebridge-small, zooms {zooms}", small_net, views),
              (f"whenet ({whenet_src})", whenet_net, whenet_meta)]
    for label, net, meta in models:
        size = meta.input_size
        x = to_batch([cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)], meta)
        backends = {"torch fp32": TorchBackend(net, meta, "cpu", half=False),
                    "onnxruntime fp32": backend_for_net("onnx", net, meta, "cpu", threads=args.threads)}
        row = {"model": label, "input": size, "flip_average": bool(meta.extra.get("flip_average")),
               "zooms": list(Estimator(backends["torch fp32"], meta).zooms)}
        for name, backend in backends.items():
            ms, n = median_ms(lambda b=backend, x=x: b.run(x), args.warmup, args.repeats, args.budget)
            row[f"{name} network ms"], row[f"{name} n"] = ms, n
            est = Estimator(backend, meta)
            row[f"{name} estimator ms"], _ = median_ms(lambda e=est: e.predict_crops([crop]), args.warmup,
                                                       args.repeats, args.budget)
        rows.append(row)
    load = os.getloadavg()
    cols = ["torch fp32 network ms", "onnxruntime fp32 network ms", "torch fp32 estimator ms",
            "onnxruntime fp32 estimator ms"]
    heads = " | ".join(c.replace(" ms", "") for c in cols)
    print(f"| model | input | flip avg | zoom views | {heads} |")
    print("|---|---|---|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {'on' if r['flip_average'] else 'off'} | "
              f"{', '.join(f'{z:g}' for z in r['zooms'])} | " + " | ".join(f"{r[c]:.2f}" for c in cols)
              + " |")
    print(f"ms per crop, batch 1, median; {args.threads} threads; {os.cpu_count()} CPUs; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    result = {"rows": rows, "threads": args.threads, "cpus": os.cpu_count(), "load_avg": load}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        w = 0.8 / len(cols)
        for j, c in enumerate(cols):
            ax.bar(np.arange(len(rows)) + j * w, [r[c] for r in rows], w, label=c.replace(" ms", ""))
        ax.set_xticks(np.arange(len(rows)) + 0.4 - w / 2, [r["model"] for r in rows])
        ax.set_ylabel("ms per crop (batch 1, median)")
        ax.set_title(f"CPU latency, {args.threads} threads, load avg {load[0]:.1f}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
