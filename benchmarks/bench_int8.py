"""Accuracy cost of the fast backends: AFLW2000 MAE per backend, side by side with PyTorch fp32.

    .venv/bin/python benchmarks/bench_int8.py --model whenet [--data ../shared/data/aflw2000-dev]
        [--backends torch onnx onnx-int8 torch-bf16] [--calib ../shared/data/aflw-yaw-crops]
        [--json OUT.json] [--plot OUT.png]

Int8 is calibrated on training crops (aflw-yaw-crops), never on the evaluation images. The rule for
shipping a backend: its mean MAE exceeds PyTorch fp32's by less than 0.3 degrees (printed as "ship").
A model without weights on this machine (e.g. the HopeNet ResNet-50 seed) cannot be measured here;
pass its checkpoint with --model PATH once available.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posebridge.inference.estimator import Estimator  # noqa: E402
from posebridge.inference.model_store import resolve_model  # noqa: E402
from posebridge.models.checkpoint import load_checkpoint  # noqa: E402
from posebridge.models.torch_backends import backend_for_net  # noqa: E402
from posebridge.offline.pose_eval import evaluate_aflw2000  # noqa: E402

SHARED = REPO.parent / "shared"
MAX_COST = 0.3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="whenet")
    p.add_argument("--data", default=str(SHARED / "data" / "aflw2000-dev"))
    p.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8", "torch-bf16"])
    p.add_argument("--calib", default=None, help="int8 calibration crops (default: aflw-yaw-crops)")
    p.add_argument("--limit", type=int, default=None, help="first N protocol images only (quick check)")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)

    net, meta = load_checkpoint(resolve_model(args.model))
    rows = []
    for name in args.backends:
        t0 = time.perf_counter()
        backend = backend_for_net(name, net, meta, "cpu", threads=0, calib=args.calib)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = evaluate_aflw2000(Estimator(backend, meta), args.data, limit=args.limit, progress=True)
        rows.append({"backend": name, "images": res.evaluated, "protocol": res.protocol, **res.mae,
                     "setup_s": round(setup, 1), "eval_s": round(time.perf_counter() - t0, 1)})
    base = next((r for r in rows if r["backend"] == "torch"), rows[0])
    print(f"\nAFLW2000 dev ({base['images']} images, {base['protocol']} crops), "
          f"model {meta.name} ({meta.backbone})\n")
    print("| backend | yaw | pitch | roll | mean MAE | cost vs torch fp32 | ship (< 0.3) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["cost"] = r["mean"] - base["mean"]
        r["ship"] = bool(r["cost"] < MAX_COST)
        print(f"| {r['backend']} | {r['yaw']:.3f} | {r['pitch']:.3f} | {r['roll']:.3f} | {r['mean']:.3f} | "
              f"{r['cost']:+.3f} | {'yes' if r['ship'] else 'no'} |")
    if args.json:
        out = {"model": meta.name, "backbone": meta.backbone, "rows": rows}
        Path(args.json).write_text(json.dumps(out, indent=2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [r["backend"] for r in rows]
        for i, angle in enumerate(("yaw", "pitch", "roll", "mean")):
            ax.bar([x + 0.2 * i for x in range(len(rows))], [r[angle] for r in rows], width=0.2, label=angle)
        ax.set_xticks([x + 0.3 for x in range(len(rows))], names)
        ax.set_ylabel("MAE (degrees)")
        ax.set_title(f"{meta.name}: AFLW2000 dev MAE per backend")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
