"""PyTorch inference backends (the `[torch]` extra), behind the same interface as the ONNX Runtime
backend: `run(batch) -> (angles (N,3), stds (N,3))` in degrees, NumPy in and out.

    torch          CUDA: fp16 + channels_last (the ResNet-50 seed model's fast path); CPU: fp32
    torch-bf16     bf16 autocast (CPUs with AVX512-BF16/AMX, or CUDA)
    torch-compile  torch.compile (CUDA: mode "reduce-overhead", i.e. CUDA graphs)

`cached_onnx` exports a checkpoint to ONNX once (keyed by a digest of its weights) for the ONNX Runtime
backends, when a model has no `.onnx` of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from posebridge.inference.meta import ANGLES, ModelMeta
from posebridge.models.bins import decode
from posebridge.models.network import PoseNet

log = logging.getLogger(__name__)

TORCH_BACKENDS = ("torch", "torch-bf16", "torch-compile")


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        from posebridge.errors import ConfigError

        raise ConfigError(f"model.device: {device!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    missing = not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()
    if dev.type == "cuda" and missing:
        from posebridge.errors import ConfigError

        raise ConfigError(f"model.device: {device!r} is not available here "
                          f"({torch.cuda.device_count()} CUDA devices); use cpu or auto")
    return dev


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); otherwise autocast is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class TorchBackend:
    """PyTorch: CUDA in fp16 (channels_last) when available, else CPU fp32; inference_mode.
    `threads` sets PyTorch's intra-op threads on CPU (0 keeps its default)."""

    name = "torch"

    def __init__(self, model: PoseNet, meta: ModelMeta, device: str = "auto", half: bool | None = None,
                 threads: int = 0) -> None:
        self.device = pick_device(device)
        self.half = (self.device.type == "cuda") if half is None else half
        self.meta = meta
        self.provider = str(self.device)
        if threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(threads)
        model = model.eval().to(self.device)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model.half() if self.half else model

    def _decode(self, logits) -> tuple[np.ndarray, np.ndarray]:
        out = [decode(lg.float(), self.meta.bins[a]) for lg, a in zip(logits[:3], ANGLES, strict=True)]
        angles = torch.stack([m for m, _ in out], dim=1).cpu().numpy()
        stds = torch.stack([s for _, s in out], dim=1).cpu().numpy()
        return angles, stds

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        angles, stds = self.run_all(batch)[:2]
        return angles, stds

    @torch.inference_mode()
    def run_all(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Angles, spreads and, with a box head, the (N, 3) ROI offsets (else None)."""
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        if self.half:
            x = x.half()
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = self.model.forward_all(x)
        angles, stds = self._decode(outputs)
        return angles, stds, (outputs[3].float().cpu().numpy() if len(outputs) == 4 else None)


class TorchAutocastBackend(TorchBackend):
    """PyTorch with channels_last and optional bf16/fp16 autocast and torch.compile.

    On CUDA, compile uses mode "reduce-overhead" (CUDA graphs); keep batch sizes fixed to avoid re-capture.
    """

    def __init__(self, model: PoseNet, meta: ModelMeta, device: str = "auto",
                 dtype: torch.dtype | None = None, compile: bool = False, threads: int = 0) -> None:
        super().__init__(model, meta, device, half=False, threads=threads)
        self.dtype = dtype
        short = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")  # type: ignore[arg-type]
        self.name = "torch-compile" if compile else f"torch-{short}"
        self.model = self.model.to(memory_format=torch.channels_last)
        if compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.model = torch.compile(self.model, mode=mode)

    @torch.inference_mode()
    def run_all(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.dtype or torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=self.dtype is not None):
            outputs = self.model.forward_all(x)
        angles, stds = self._decode(outputs)
        return angles, stds, (outputs[3].float().cpu().numpy() if len(outputs) == 4 else None)


def create_torch_backend(name: str, net: PoseNet, meta: ModelMeta, device: str = "auto", threads: int = 0):
    """A PyTorch backend by name (see the module docstring)."""
    if name == "torch":
        return TorchBackend(net, meta, device, threads=threads)
    if name == "torch-bf16":
        if pick_device(device).type == "cpu" and not cpu_supports_bf16():
            log.warning("torch-bf16: no native bf16 on this CPU (AVX512-BF16/AMX); emulated, slowly")
        return TorchAutocastBackend(net, meta, device, dtype=torch.bfloat16, threads=threads)
    if name == "torch-compile":
        return TorchAutocastBackend(net, meta, device, compile=True, threads=threads)
    raise ValueError(f"not a PyTorch backend: {name!r}")


def model_key(net: PoseNet, meta: ModelMeta) -> str:
    """A digest of the weights and metadata: the same checkpoint always maps to the same cache file."""
    h = hashlib.sha256(json.dumps(meta.to_dict(), sort_keys=True).encode())
    h.update(torch.__version__.encode())
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cached_onnx(net: PoseNet, meta: ModelMeta) -> Path:
    """The cached fp32 ONNX file for these weights (posebridge.paths.home()/onnx), exported on first use."""
    from posebridge.models.export import export_onnx
    from posebridge.paths import home

    path = home() / "onnx" / f"{meta.name}-{model_key(net, meta)}.onnx"
    if not path.is_file():
        log.info("exporting %s to ONNX (first use; cached at %s)", meta.name, path)
        export_onnx(net, meta, path)
    return path


def backend_for_net(name: str, net: PoseNet, meta: ModelMeta, device: str = "auto", threads: int = 1,
                    calib: str | None = None):
    """Any backend (posebridge.inference.backends.BACKENDS) for a network in memory (benchmarks, tests):
    the PyTorch ones directly, the ONNX Runtime ones through the cached export."""
    if name in TORCH_BACKENDS:
        return create_torch_backend(name, net, meta, device, threads)
    from posebridge.inference.onnx_backend import OnnxBackend

    fp32 = cached_onnx(net, meta)
    if name == "onnx":
        return OnnxBackend(fp32, device, threads)
    if name == "onnx-int8":
        from posebridge.models.quantize import cached_int8

        return OnnxBackend(cached_int8(fp32, meta, calib), device, threads, name="onnx-int8")
    from posebridge.errors import ConfigError

    raise ConfigError(f"model.backend: unknown backend {name!r}")
