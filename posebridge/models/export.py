"""ONNX export of any posebridge model, with the bin decoding (angles and spread) inside the graph.

The exported graph takes the same normalised NCHW float32 batch as the PyTorch backend (input name
`input`, dynamic batch) and returns `angles` (N, 3) and `stds` (N, 3) in degrees, yaw/pitch/roll.
The model's `ModelMeta` travels in the ONNX metadata (`posebridge_meta`, JSON) so an `.onnx` file is
self-describing and runs in ONNX Runtime alone (posebridge.inference.onnx_backend). `verify_onnx` runs
both on real face crops and reports the largest angle difference.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from posebridge.errors import ConfigError
from posebridge.imagefiles import evenly, list_images, load_crops
from posebridge.inference.crops import to_batch
from posebridge.inference.meta import ANGLES, ModelMeta
from posebridge.inference.onnx_backend import INPUT_NAME, META_KEY, OUTPUT_NAMES
from posebridge.models.bins import decode
from posebridge.models.network import PoseNet

log = logging.getLogger(__name__)

OPSET = 18


class DecodedPoseNet(nn.Module):
    """A PoseNet followed by `bins.decode` for each head: batch -> (angles (N,3), stds (N,3))."""

    def __init__(self, net: PoseNet, meta: ModelMeta) -> None:
        super().__init__()
        self.net = net
        self.specs = [meta.bins[a] for a in ANGLES]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.net.forward_all(x)
        out = [decode(lg, spec) for lg, spec in zip(outputs[:3], self.specs, strict=True)]
        angles, stds = torch.stack([m for m, _ in out], dim=1), torch.stack([s for _, s in out], dim=1)
        return (angles, stds, outputs[3]) if len(outputs) == 4 else (angles, stds)


def onnx_bytes(net: PoseNet, meta: ModelMeta, opset: int = OPSET) -> bytes:
    """The decoded model as a serialised ONNX graph (dynamic batch), metadata attached."""
    wrapper = DecodedPoseNet(net.eval().float().cpu(), meta).eval()
    example = torch.zeros(2, 3, meta.input_size, meta.input_size)  # batch 2: export must not specialise on 1
    batch = torch.export.Dim("batch", min=1, max=4096)
    quiet = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, (example,), dynamo=True, input_names=[INPUT_NAME],
                output_names=[*OUTPUT_NAMES, *(["box"] if net.has_box_head else [])],
                dynamic_shapes=({0: batch},), opset_version=opset, verbose=False,
            )
    except ImportError as exc:  # the dynamo exporter needs onnxscript
        hint = "pip install onnxscript"
        raise ConfigError(f"onnx export needs the 'onnxscript' package ({exc}): {hint}") from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta.to_dict())
    proto.producer_name = "posebridge"
    return proto.SerializeToString()


def export_onnx(net: PoseNet, meta: ModelMeta, out: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the decoded model to `out` (atomically); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(onnx_bytes(net, meta, opset))
    os.replace(tmp, out)
    return out


def read_onnx_meta(path: str | os.PathLike) -> ModelMeta:
    """The (validated) ModelMeta stored in a posebridge ONNX file."""
    from posebridge.inference.onnx_backend import OnnxBackend

    return OnnxBackend(path, "cpu", 1).meta


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
