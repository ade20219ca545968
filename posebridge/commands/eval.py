"""`posebridge eval aflw2000 DIR`: MAE on AFLW2000-3D (standard protocol) with a table, a plot and
per-image results."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="accuracy on a head-pose benchmark")
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])
    a = sub.add_parser("aflw2000", help="AFLW2000-3D: MAE of yaw/pitch/roll, images within [-99, 99]")
    a.add_argument("dir", type=Path, help="folder of AFLW2000 .jpg + .mat files")
    a.add_argument("--model", help="model name or checkpoint path (default: the installed default)")
    a.add_argument("--protocol", choices=["hopenet", "3ddfa"],
                   help="landmark crop: HopeNet's loose pt2d box or 3DDFA's ROI (default: the model's)")
    a.add_argument("--detector", help="crop from this face detector's box instead of the landmarks")
    a.add_argument("--out", type=Path, help="folder for summary.json, per_image.csv, error_vs_yaw.png "
                   "(default: eval-aflw2000-<model>)")
    a.add_argument("--limit", type=int, help="only the first N images of the protocol")
    a.add_argument("--device", default="auto", help="auto, cpu or cuda")
    a.add_argument("--backend", default="onnx", help="onnx (default, the daemon's runtime), onnx-int8, "
                   "torch, torch-bf16, torch-compile (the torch ones need posebridge[torch])")
    a.add_argument("--zooms", metavar="F,F,...", help="test-time zoom views averaged per face, e.g. 1 for "
                   "the ROI only, 0.96,1,1.04 for three (default: the model's own; posebridge-small: 1)")
    a.add_argument("--batch", type=int, default=32, help="crops per network batch")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posebridge.extras import require

    require("eval", "posebridge eval")
    if args.backend == "onnx-int8":
        require("convert", "--backend onnx-int8 (quantizing on first use)", ("onnx",))
    from posebridge.inference.estimator import Estimator, parse_zooms
    from posebridge.offline.pose_eval import evaluate_aflw2000, format_table, write_results

    zooms = parse_zooms(args.zooms) if args.zooms else None
    estimator = Estimator.load(args.model, device=args.device, backend=args.backend, zooms=zooms, threads=0)
    result = evaluate_aflw2000(estimator, args.dir, protocol=args.protocol, detector=args.detector,
                               limit=args.limit, batch_size=args.batch)
    print(format_table(result))
    out = args.out or Path(f"eval-aflw2000-{estimator.meta.name}")
    for path in write_results(result, out):
        print(f"wrote {path}")
    return 0
