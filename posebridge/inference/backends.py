"""Inference backends behind one interface: `run(batch) -> (angles (N,3), stds (N,3))` in degrees.

    torch        posebridge.inference.estimator.TorchBackend (CUDA: fp16 + channels_last; CPU: fp32)
    torch-bf16   PyTorch under bf16 autocast (CPUs with AVX512-BF16/AMX, or CUDA)
    torch-compile  PyTorch + torch.compile (CUDA: mode "reduce-overhead", i.e. CUDA graphs)
    onnx         ONNX Runtime, fp32 graph with decoding inside (posebridge.models.export)
    onnx-int8    ONNX Runtime, static int8 QDQ graph (posebridge.models.quantize)

ONNX Runtime runs on CPU by default; `device` "cuda"/"cuda:N"/"tensorrt" asks for those execution
providers, and "auto" takes the best one installed. A requested provider that is missing falls back to
CPU with one warning line. Exported/quantized graphs are cached under <posebridge home>/onnx (default
~/.cache/posebridge/onnx, see posebridge.inference.model_store), keyed by the weights, so only the first start
pays for the export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from posebridge.errors import ConfigError, InputFileError
from posebridge.inference.estimator import Backend, TorchBackend, pick_device
from posebridge.inference.meta import ANGLES, ModelMeta
from posebridge.models.bins import decode
from posebridge.models.network import PoseNet

log = logging.getLogger(__name__)

BACKENDS = ("torch", "torch-bf16", "torch-compile", "onnx", "onnx-int8")
CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); otherwise autocast is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class TorchAutocastBackend(TorchBackend):
    """PyTorch with channels_last and optional bf16/fp16 autocast and torch.compile.

    On CUDA, compile uses mode "reduce-overhead" (CUDA graphs); keep batch sizes fixed to avoid re-capture.
    """

    def __init__(self, model: PoseNet, meta: ModelMeta, device: str = "auto",
                 dtype: torch.dtype | None = None, compile: bool = False) -> None:
        super().__init__(model, meta, device, half=False)
        self.dtype = dtype
        short = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")  # type: ignore[arg-type]
        self.name = "torch-compile" if compile else f"torch-{short}"
        self.model = self.model.to(memory_format=torch.channels_last)
        if compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.model = torch.compile(self.model, mode=mode)

    @torch.inference_mode()
    def run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        dtype = self.dtype or torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=self.dtype is not None):
            logits = self.model(x)
        out = [decode(lg.float(), self.meta.bins[a]) for lg, a in zip(logits, ANGLES, strict=True)]
        angles = torch.stack([m for m, _ in out], dim=1).cpu().numpy()
        stds = torch.stack([s for _, s in out], dim=1).cpu().numpy()
        return angles, stds


def requested_providers(device: str) -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first, for a device string."""
    dev = device.split(":")[0].lower()
    if dev == "cpu":
        return [CPU_EP]
    if dev == "cuda":
        return [CUDA_EP, CPU_EP]
    if dev in ("tensorrt", "trt"):
        return [TRT_EP, CUDA_EP, CPU_EP]
    if dev == "auto":
        return [TRT_EP, CUDA_EP, CPU_EP]
    raise ConfigError(
        f"device: unknown device {device!r} for the onnx backend; use auto, cpu, cuda[:N] or tensorrt"
    )


def select_providers(device: str, available: list[str] | None = None) -> list[str]:
    """The requested providers that this onnxruntime has; logs one line when falling back to CPU."""
    import onnxruntime as ort

    available = list(ort.get_available_providers()) if available is None else available
    wanted = requested_providers(device)
    chosen = [p for p in wanted if p in available] or [CPU_EP]
    if device.split(":")[0].lower() not in ("auto", "cpu") and chosen[0] != wanted[0]:
        log.warning("onnx backend: %s is not available in this onnxruntime (available: %s); "
                    "falling back to %s", wanted[0], ", ".join(available), chosen[0])
    return chosen


class OnnxBackend:
    """ONNX Runtime session over a posebridge ONNX graph (input `input`, outputs `angles`, `stds`)."""

    def __init__(self, model: str | os.PathLike | bytes, meta: ModelMeta, device: str = "cpu",
                 threads: int | None = None, name: str = "onnx") -> None:
        import onnxruntime as ort

        self.meta = meta
        self.name = name
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        threads = threads if threads is not None else int(os.environ.get("POSEBRIDGE_ORT_THREADS", "0"))
        if threads:
            opts.intra_op_num_threads = threads
        providers = select_providers(device)
        device_id = int(device.split(":")[1]) if ":" in device else 0
        provider_args = [(p, {"device_id": device_id}) if p in (CUDA_EP, TRT_EP) else p for p in providers]
        source = model if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise InputFileError(model, "ONNX model not found")
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=provider_args)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            where = "<in-memory model>" if isinstance(model, bytes) else model
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputFileError(where, f"onnxruntime cannot load the model: {first}") from None
        got = self.session.get_providers()
        self.provider = got[0]
        if got[0] != providers[0]:  # e.g. CUDA EP installed but its libraries failed to load
            log.warning("onnx backend: %s failed to start; running on %s", providers[0], got[0])

    def run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        angles, stds = self.session.run(None, {"input": x})
        return angles, stds


def run_chunked(backend: Backend, batch: torch.Tensor, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Batched inference for offline replay/estimate: any number of crops, `chunk` at a time."""
    if len(batch) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    parts = [backend.run(batch[i : i + chunk]) for i in range(0, len(batch), chunk)]
    return np.concatenate([a for a, _ in parts]), np.concatenate([s for _, s in parts])


# ---------------------------------------------------------------- export cache


def cache_dir() -> Path:
    """ONNX files exported/quantized on first use, beside the installed models (see models.store.home)."""
    from posebridge.inference.model_store import home

    return home() / "onnx"


def model_key(net: PoseNet, meta: ModelMeta) -> str:
    """A digest of the weights and metadata: the same checkpoint always maps to the same cache file."""
    h = hashlib.sha256(json.dumps(meta.to_dict(), sort_keys=True).encode())
    h.update(torch.__version__.encode())
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cached_onnx(net: PoseNet, meta: ModelMeta, int8: bool = False,
                calib: str | os.PathLike | None = None) -> Path:
    """The cached fp32 (or int8) ONNX file for these weights, exported/quantized on first use."""
    from posebridge.models.export import export_onnx

    key = model_key(net, meta)
    q = cache_dir() / f"{meta.name}-{key}-int8.onnx"
    if int8 and q.is_file():
        return q
    if int8:
        from posebridge.models.quantize import calibration_dir

        calib = calibration_dir(calib)  # fail before the (slow) export when there is nothing to calibrate on
    fp32 = cache_dir() / f"{meta.name}-{key}.onnx"
    if not fp32.is_file():
        log.info("exporting %s to ONNX (first use; cached at %s)", meta.name, fp32)
        export_onnx(net, meta, fp32)
    if not int8:
        return fp32
    from posebridge.models.quantize import quantize_onnx

    log.info("quantizing %s to int8, calibrating on %s (first use; cached at %s)", meta.name, calib, q)
    data = quantize_onnx(fp32.read_bytes(), meta, calib)  # type: ignore[arg-type]
    tmp = q.with_name(q.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, q)
    return q


def _onnx(int8: bool) -> Callable[..., Backend]:
    def make(net: PoseNet, meta: ModelMeta, device: str, **opts: object) -> Backend:
        if int8:
            from posebridge.models.quantize import int8_advice

            advice = int8_advice(meta.name)
            if advice:
                log.warning(advice)
        path = cached_onnx(net, meta, int8=int8, calib=opts.get("calib"))  # type: ignore[arg-type]
        return OnnxBackend(path, meta, device, threads=opts.get("threads"),  # type: ignore[arg-type]
                           name="onnx-int8" if int8 else "onnx")

    return make


def _bf16(net: PoseNet, meta: ModelMeta, device: str, **opts: object) -> Backend:
    if pick_device(device).type == "cpu" and not cpu_supports_bf16():
        log.warning("torch-bf16: this CPU has no native bf16 (AVX512-BF16/AMX); it will be emulated, slowly")
    return TorchAutocastBackend(net, meta, device, dtype=torch.bfloat16)


_FACTORIES: dict[str, Callable[..., Backend]] = {
    "torch": lambda net, meta, device, **opts: TorchBackend(net, meta, device),
    "torch-bf16": _bf16,
    "torch-compile": lambda net, meta, device, **opts: TorchAutocastBackend(net, meta, device, compile=True),
    "onnx": _onnx(False),
    "onnx-int8": _onnx(True),
}


def create_backend(name: str, net: PoseNet, meta: ModelMeta, device: str = "auto", **opts: object) -> Backend:
    """A backend by name (see module docstring). Options: `calib` (int8 calibration folder), `threads`."""
    if name not in _FACTORIES:
        raise ConfigError(f"estimator.backend: unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return _FACTORIES[name](net, meta, device, **opts)
