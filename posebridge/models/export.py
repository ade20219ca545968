"""ONNX export of any posebridge model, with the bin decoding (angles and spread) inside the graph.

The exported graph takes the same normalised NCHW float32 batch as the PyTorch backend (input name
`input`, dynamic batch) and returns `angles` (N, 3) and `stds` (N, 3) in degrees, yaw/pitch/roll.
The model's `ModelMeta` travels in the ONNX metadata (`posebridge_meta`, JSON) so an `.onnx` file is
self-describing and runs in ONNX Runtime alone (posebridge.inference.onnx_backend). The check of an
export against PyTorch and the `models export` command are posebridge.models.onnx_check.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import torch
from torch import nn

from posebridge.errors import ConfigError
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
