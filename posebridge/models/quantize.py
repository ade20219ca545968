"""Static int8 quantization of a posebridge ONNX graph with onnxruntime.quantization.

Weights int8 per channel, activations uint8, QDQ format (runs on the CPU provider with VNNI kernels and
on TensorRT). Activation ranges are calibrated on face crops, by default `../shared/data/aflw-yaw-crops`:
never on evaluation images (folders named like an AFLW2000 evaluation set are refused). Only Conv,
MatMul and Gemm are quantized; the three heads (the layers feeding the decoding softmax) and the decoding
itself stay fp32 unless `quantize_heads=True`, because the softmax expectation amplifies logit error.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from posebridge.errors import ConfigError
from posebridge.inference.meta import ModelMeta
from posebridge.paths import shared_data

log = logging.getLogger(__name__)

DEFAULT_CALIB = shared_data("aflw-yaw-crops")
EVALUATION_SETS = ("aflw2000", "biwi", "panoptic")
MAX_INT8_COST = 0.3  # degrees of mean MAE over PyTorch fp32 on AFLW2000: above it int8 does not ship
# Measured with benchmarks/bench_int8.py (AFLW2000 dev, 1,021 images; see docs/speed.md). WHENet: +0.47
# with the default MinMax calibration, +0.33 at best (Percentile, depthwise convolutions kept fp32).
# posebridge-small (mobilenet_v3_small, distilled): -0.01, ships.
MEASURED_INT8_COST = {"whenet": 0.47, "posebridge-small": -0.01}


def int8_advice(model_name: str) -> str | None:
    """A warning for models whose measured int8 accuracy cost exceeds MAX_INT8_COST, else None."""
    cost = MEASURED_INT8_COST.get(model_name)
    if cost is None or cost < MAX_INT8_COST:
        return None
    return (f"onnx-int8 costs {model_name} +{cost:.2f} deg mean MAE on AFLW2000 (limit {MAX_INT8_COST}); "
            "use onnx or torch-bf16 for the same accuracy (docs/speed.md)")


def calibration_dir(calib: str | os.PathLike | None = None) -> Path:
    """The calibration crop folder: `calib`, else $POSEBRIDGE_CALIB, else ../shared/data/aflw-yaw-crops."""
    default = DEFAULT_CALIB if DEFAULT_CALIB.is_dir() else None
    chosen = calib or os.environ.get("POSEBRIDGE_CALIB") or default
    if chosen is None:
        raise ConfigError(
            "calib: int8 needs a folder of face crops to calibrate on; pass --calib DIR (or set "
            "POSEBRIDGE_CALIB), or export once with `posebridge models export --onnx OUT --int8 --calib DIR`"
        )
    path = Path(chosen)
    if any(name in part.lower() for part in path.resolve().parts for name in EVALUATION_SETS):
        raise ConfigError(f"calib: {path} looks like an evaluation set; calibrate on training crops instead")
    return path


class CropReader:
    """onnxruntime CalibrationDataReader over normalised face-crop batches."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        b = next(self._it, None)
        return None if b is None else {"input": b}

    def rewind(self) -> None:  # pragma: no cover - only used by some calibrators
        pass


def depthwise_nodes(model_path: Path) -> list[str]:
    """Names of the grouped (depthwise) convolutions, which lose the most accuracy in int8."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in n.attribute)]


def head_nodes(model_path: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes whose outputs reach a Softmax through shape-only ops (the heads)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {out: n for n in graph.node for out in n.output}
    passthrough = {"Add", "Reshape", "Cast", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Transpose"}
    found: list[str] = []
    for node in graph.node:
        if node.op_type != "Softmax":
            continue
        stack = list(node.input)
        while stack:
            src = producer.get(stack.pop())
            if src is None:
                continue
            if src.op_type in ("MatMul", "Gemm"):
                found.append(src.name)
            elif src.op_type in passthrough:
                stack.extend(i for i in src.input if i in producer)
    return sorted(set(found))


def quantize_onnx(
    fp32: bytes, meta: ModelMeta, calib: str | os.PathLike, count: int = 256, batch: int = 16,
    method: str = "minmax", quantize_heads: bool = False, skip_depthwise: bool = False,
) -> bytes:
    """An int8 QDQ version of a posebridge fp32 ONNX graph, calibrated on `count` crops from `calib`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from posebridge.imagefiles import evenly, list_images
    from posebridge.inference.crops import load_crops, to_batch

    calib = calibration_dir(calib)
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ConfigError(f"calib method: unknown {method!r}; choose from {', '.join(methods)}")
    crops = to_batch(load_crops(evenly(list_images(calib), count), meta.input_size), meta)
    batches = [crops[i : i + batch] for i in range(0, len(crops), batch)]
    with tempfile.TemporaryDirectory(prefix="posebridge-q-") as tmp:
        raw, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        raw.write_bytes(fp32)
        try:
            quant_pre_process(str(raw), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # pre-processing is an optimisation; quantize the raw graph if it fails
            log.warning("quantize: pre-processing failed (%s); quantizing the graph as exported", exc)
            pre = raw
        exclude = [] if quantize_heads else head_nodes(pre)
        if skip_depthwise:
            exclude += depthwise_nodes(pre)
        quantize_static(
            str(pre), str(out), CropReader(batches), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"], nodes_to_exclude=exclude,
            calibrate_method=methods[method], extra_options={"CalibMovingAverage": method == "minmax"},
        )
        import onnx

        model = onnx.load(str(out))
        src = onnx.load_from_string(fp32)
        del model.metadata_props[:]
        model.metadata_props.extend(src.metadata_props)  # keep posebridge_meta
        entry = model.metadata_props.add()
        entry.key = "posebridge_quant"
        entry.value = f"int8 static QDQ, {len(crops)} crops from {calib.name}, {method}"
        return model.SerializeToString()


def cached_int8(fp32_path: Path, meta: ModelMeta, calib: str | os.PathLike | None = None) -> Path:
    """The int8 graph for an fp32 posebridge ONNX file, quantized on first use and cached beside the other
    derived graphs (posebridge.paths.home()/onnx), keyed by the fp32 file's digest."""
    from posebridge.downloads import sha256_file
    from posebridge.paths import home

    out = home() / "onnx" / f"{meta.name}-{sha256_file(fp32_path)[:20]}-int8.onnx"
    if out.is_file():
        return out
    calib_dir = calibration_dir(calib)  # fail before the (slow) quantization when there is nothing to use
    log.info("quantizing %s to int8, calibrating on %s (first use; cached at %s)", meta.name, calib_dir, out)
    data = quantize_onnx(Path(fp32_path).read_bytes(), meta, calib_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out
