"""Inference backends behind one interface, `run(batch) -> (angles (N,3), stds (N,3))` in degrees,
chosen by `model.backend`:

    onnx           ONNX Runtime, fp32 graph with the decoding inside (the default; no PyTorch needed)
    onnx-int8      ONNX Runtime, static int8 QDQ graph, quantized on first use (needs the `onnx` package
                   and face crops to calibrate on: `--calib DIR` / POSEBRIDGE_CALIB)
    torch          PyTorch; CUDA fp16 + channels_last, CPU fp32          (pip install 'posebridge[torch]')
    torch-bf16     PyTorch under bf16 autocast                            (idem)
    torch-compile  PyTorch + torch.compile (CUDA graphs on CUDA)          (idem)

ONNX Runtime runs on the CPU with one intra-op thread and no spin-waiting unless configured
(posebridge.inference.onnx_session). A model with only a PyTorch checkpoint is exported to ONNX once
(needs the `[torch]` extra) and cached.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from posebridge.errors import ConfigError
from posebridge.inference.meta import ModelMeta
from posebridge.inference.model_store import ModelFiles

BACKENDS = ("onnx", "onnx-int8", "torch", "torch-bf16", "torch-compile")
DEFAULT_BACKEND = "onnx"
TORCH_EXTRA = "pip install 'posebridge[torch]'"


class Backend(Protocol):
    """Runs a normalised NCHW float32 batch; returns (angles (N,3), stds (N,3)) in degrees."""

    name: str
    provider: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def run_all(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Also the box head's (N, 3) ROI offsets, for a model that has one (else None)."""
        ...


def require_torch(what: str) -> None:
    """A one-line ConfigError naming the extra to install when PyTorch cannot be imported (only called
    where PyTorch is about to be used anyway)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs PyTorch, which this install does not have: {TORCH_EXTRA}") from None


def _checkpoint(files: ModelFiles):
    """(net, meta) from the model's PyTorch checkpoint."""
    if files.checkpoint is None:
        raise ConfigError(f"model.backend: the PyTorch backends need a checkpoint (.pt) and {files.name} "
                          f"has only {files.path.name}; use model.backend = \"onnx\"")
    require_torch(f"loading the PyTorch checkpoint {files.checkpoint.name}")
    from posebridge.models.checkpoint import load_checkpoint

    return load_checkpoint(files.checkpoint)


def onnx_file(files: ModelFiles):
    """The model's fp32 ONNX graph: its own, else its checkpoint exported once (PyTorch needed)."""
    if files.onnx is not None:
        return files.onnx
    require_torch(f"exporting {files.checkpoint} to ONNX (or export it once elsewhere with "
                  "`posebridge models export`)")
    from posebridge.models.torch_backends import cached_onnx

    return cached_onnx(*_checkpoint(files))


def create_backend(name: str, files: ModelFiles, device: str = "auto", threads: int = 1,
                   calib: str | None = None) -> tuple[Backend, ModelMeta]:
    """A backend by name for a model's files, and the model's metadata."""
    if name not in BACKENDS:
        raise ConfigError(f"model.backend: unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    from posebridge.inference.onnx_backend import OnnxBackend

    if name == "onnx":
        backend = OnnxBackend(onnx_file(files), device, threads)
        return backend, backend.meta
    if name == "onnx-int8":
        from posebridge.models.quantize import cached_int8, int8_advice

        fp32 = onnx_file(files)
        meta = OnnxBackend(fp32, "cpu", 1).meta
        advice = int8_advice(meta.name)
        if advice:
            import logging

            logging.getLogger(__name__).warning(advice)
        backend = OnnxBackend(cached_int8(fp32, meta, calib), device, threads, name="onnx-int8")
        return backend, backend.meta
    net, meta = _checkpoint(files)
    from posebridge.models.torch_backends import create_torch_backend

    return create_torch_backend(name, net, meta, device, threads), meta
