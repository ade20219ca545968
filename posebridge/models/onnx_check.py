"""The check of an ONNX export against the PyTorch network it came from (`verify_onnx`: both run on the
same real face crops, the largest angle difference reported) and the `posebridge models export` command
built on it (export, optional int8 quantization, verification)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posebridge.errors import ConfigError
from posebridge.imagefiles import evenly, list_images
from posebridge.inference.crops import load_crops, to_batch
from posebridge.inference.meta import ModelMeta
from posebridge.models.export import onnx_bytes
from posebridge.models.network import PoseNet


@dataclass
class VerifyReport:
    """ONNX vs PyTorch on the same crops, degrees."""

    crops: int
    max_angle_diff: float
    mean_angle_diff: float
    max_std_diff: float
    provider: str

    def line(self) -> str:
        return (f"ONNX vs PyTorch on {self.crops} real crops ({self.provider}): max angle difference "
                f"{self.max_angle_diff:.4f} deg (mean {self.mean_angle_diff:.4f}), max spread difference "
                f"{self.max_std_diff:.4f} deg")

    def to_dict(self) -> dict:
        return asdict(self)


def verify_onnx(
    onnx_model: str | os.PathLike | bytes, net: PoseNet, meta: ModelMeta, crops: np.ndarray, chunk: int = 16
) -> VerifyReport:
    """Run PyTorch fp32 (CPU) and the ONNX model on the same normalised crops; compare angles."""
    from posebridge.inference.onnx_backend import OnnxBackend
    from posebridge.models.torch_backends import TorchBackend

    ref = TorchBackend(net, meta, device="cpu", half=False)
    onnx_backend = OnnxBackend(onnx_model, device="cpu", threads=0)
    diffs, std_diffs = [], []
    for i in range(0, len(crops), chunk):
        b = crops[i : i + chunk]
        a_t, s_t = ref.run(b)
        a_o, s_o = onnx_backend.run(b)
        diffs.append(np.abs(a_t - a_o))
        std_diffs.append(np.abs(s_t - s_o))
    d, sd = np.concatenate(diffs), np.concatenate(std_diffs)
    return VerifyReport(len(crops), float(d.max()), float(d.mean()), float(sd.max()), onnx_backend.provider)


def _default_calib() -> Path | None:
    from posebridge.models.quantize import DEFAULT_CALIB

    return DEFAULT_CALIB if DEFAULT_CALIB.is_dir() else None


def _default_verify() -> Path | None:
    from posebridge.paths import shared_data

    d = shared_data("aflw-yaw-crops")
    return d if d.is_dir() else None


def run_export(args) -> int:
    from posebridge.inference.model_store import resolve_model
    from posebridge.models.checkpoint import load_checkpoint

    net, meta = load_checkpoint(resolve_model(args.model))
    out = Path(args.onnx)
    print(f"exporting {meta.name} ({meta.backbone}) to ONNX ...")
    fp32 = onnx_bytes(net, meta, args.opset)
    verify_dir = Path(args.verify) if args.verify else _default_verify()
    if args.int8:
        from posebridge.models.quantize import quantize_onnx

        calib = Path(args.calib) if args.calib else _default_calib()
        if calib is None:
            raise ConfigError("--calib: int8 quantization needs a folder of face crops (e.g. aflw-yaw-crops)")
        model_bytes = quantize_onnx(fp32, meta, calib, count=args.calib_count)
    else:
        model_bytes = fp32
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(model_bytes)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(model_bytes) / 1e6:.1f} MB, {'int8 QDQ' if args.int8 else 'fp32'})")
    if verify_dir is not None:
        paths = evenly(list_images(verify_dir), args.verify_count)
        report = verify_onnx(model_bytes, net, meta, to_batch(load_crops(paths, meta.input_size), meta))
        print(report.line() + f" [{verify_dir}]")
    else:
        print("no crop folder to verify on (pass --verify DIR)")
    return 0
