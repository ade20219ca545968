"""ONNX Runtime sessions tuned to share a machine with a game: one intra-op thread unless configured,
no spin-waiting (an idle ONNX Runtime thread pool otherwise burns a core polling for work), sequential
execution, full graph optimisation. Used by the pose model and the BlazeFace detector alike.

Execution providers: CPU unless asked; `device` "cuda"/"cuda:N"/"tensorrt" asks for those providers
("auto" takes the best installed). A requested provider that this onnxruntime lacks falls back to CPU
with one warning line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from posebridge.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"


def requested_providers(device: str) -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first, for a device string."""
    dev = device.split(":")[0].lower()
    if dev == "cpu":
        return [CPU_EP]
    if dev == "cuda":
        return [CUDA_EP, CPU_EP]
    if dev in ("tensorrt", "trt", "auto"):
        return [TRT_EP, CUDA_EP, CPU_EP]
    raise ConfigError(f"model.device: unknown device {device!r} for ONNX Runtime; use auto, cpu, cuda[:N] "
                      "or tensorrt")


def select_providers(device: str, available: list[str] | None = None) -> list[str]:
    """The requested providers that this onnxruntime has; logs one line when falling back to CPU."""
    import onnxruntime as ort

    available = list(ort.get_available_providers()) if available is None else available
    wanted = requested_providers(device)
    chosen = [p for p in wanted if p in available] or [CPU_EP]
    if device.split(":")[0].lower() not in ("auto", "cpu") and chosen[0] != wanted[0]:
        log.warning("onnxruntime: %s is not available in this onnxruntime (available: %s); "
                    "falling back to %s", wanted[0], ", ".join(available), chosen[0])
    return chosen


def session_options(threads: int = 1):
    """SessionOptions for a shared machine: `threads` intra-op threads (0 = ONNX Runtime's default, all
    cores), one inter-op thread, no spinning, sequential execution."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 4  # fatal only: load failures are reported as our own one-line error
    opts.intra_op_num_threads = max(0, int(threads))
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def open_session(model: str | os.PathLike | bytes, threads: int = 1, device: str = "cpu"):
    """An InferenceSession; every load failure is one InputFileError line naming the file."""
    import onnxruntime as ort

    if not isinstance(model, bytes) and not Path(model).is_file():
        raise InputFileError(model, "ONNX model not found")
    providers = select_providers(device)
    device_id = int(device.split(":")[1]) if ":" in device and device.split(":")[1].isdigit() else 0
    provider_args = [(p, {"device_id": device_id}) if p in (CUDA_EP, TRT_EP) else p for p in providers]
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort.InferenceSession(source, sess_options=session_options(threads), providers=provider_args)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        where = "<in-memory model>" if isinstance(model, bytes) else model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputFileError(where, f"onnxruntime cannot load the model: {first}") from None
    got = session.get_providers()
    if got[0] != providers[0]:  # e.g. the CUDA provider is installed but its libraries failed to load
        log.warning("onnxruntime: %s failed to start; running on %s", providers[0], got[0])
    return session
