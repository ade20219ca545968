"""Backend selection: names, execution-provider fallback, session tuning for a shared machine, the
export cache, the same results as PyTorch, and one-line errors for a missing extra or a broken file."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from posebridge.errors import ConfigError, InputFileError
from posebridge.inference.backends import create_backend
from posebridge.inference.estimator import Estimator
from posebridge.inference.model_store import ModelFiles
from posebridge.inference.onnx_backend import OnnxBackend
from posebridge.inference.onnx_session import CPU_EP, CUDA_EP, TRT_EP, select_providers
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.torch_backends import TorchBackend, cached_onnx
from tests.helpers.models import spread_model

LOGGER = "posebridge.inference.onnx_session"


@pytest.fixture(scope="module")
def small():
    return spread_model(seed=1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("pbhome")


@pytest.fixture(autouse=True)
def _home(home, monkeypatch):
    monkeypatch.setenv("POSEBRIDGE_HOME", str(home))


@pytest.fixture(scope="module")
def checkpoint(small, tmp_path_factory):
    net, meta = small
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.pt", net, meta)
    return ModelFiles("small", None, path, "path")


def batch(n: int = 6, size: int = 96) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, 3, size, size)).astype(np.float32)


def test_missing_cuda_provider_falls_back_to_cpu_with_one_line(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        chosen = select_providers("cuda", available=[CPU_EP])
    assert chosen == [CPU_EP]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert CUDA_EP in lines[0] and "falling back to CPUExecutionProvider" in lines[0]


def test_missing_tensorrt_uses_cuda_when_present(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert select_providers("tensorrt", available=[CUDA_EP, CPU_EP]) == [CUDA_EP, CPU_EP]
    assert TRT_EP in caplog.text


def test_auto_and_cpu_choose_quietly(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert select_providers("auto", available=[CPU_EP]) == [CPU_EP]
        assert select_providers("cpu", available=[CUDA_EP, CPU_EP]) == [CPU_EP]
        assert select_providers("auto", available=[CUDA_EP, CPU_EP]) == [CUDA_EP, CPU_EP]
    assert caplog.text == ""


def test_session_falls_back_when_onnxruntime_lacks_cuda(small, monkeypatch, caplog):
    """A real session asked for CUDA on an onnxruntime without it runs on CPU and says so once."""
    import onnxruntime as ort

    net, meta = small
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU_EP])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        backend = OnnxBackend(cached_onnx(net, meta), device="cuda:0")
    assert backend.provider == CPU_EP
    assert sum("falling back" in r.getMessage() for r in caplog.records) == 1
    angles, stds = backend.run(batch(2))
    assert angles.shape == (2, 3) and stds.shape == (2, 3)


def test_sessions_share_the_machine_one_thread_no_spinning(small):
    net, meta = small
    opts = OnnxBackend(cached_onnx(net, meta)).session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    three = OnnxBackend(cached_onnx(net, meta), threads=3).session.get_session_options()
    assert three.intra_op_num_threads == 3


def test_unknown_names_are_config_errors(checkpoint):
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'"):
        create_backend("tensorflow", checkpoint)
    with pytest.raises(ConfigError, match="unknown device"):
        select_providers("tpu")


def test_onnx_backend_matches_torch_and_caches_the_export(small, checkpoint, home):
    net, meta = small
    x = batch()
    ref, ref_std = TorchBackend(net, meta, "cpu").run(x)
    backend, got_meta = create_backend("onnx", checkpoint, "cpu")
    assert got_meta.name == meta.name and got_meta.input_size == meta.input_size
    files = sorted((home / "onnx").glob("*.onnx"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    angles, stds = backend.run(x)
    assert np.abs(angles - ref).max() < 0.1 and np.abs(stds - ref_std).max() < 0.1
    assert ref.std(axis=0).min() > 1.0
    create_backend("onnx", checkpoint, "cpu")  # second start: no new export
    assert sorted((home / "onnx").glob("*.onnx")) == files and files[0].stat().st_mtime_ns == mtime


def test_estimator_with_onnx_backend_gives_the_same_poses(small, checkpoint):
    net, meta = small
    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 255, (120, 120, 3), np.uint8) for _ in range(3)]
    torch_poses = Estimator.from_model(net, meta, "cpu").predict_crops(crops)
    onnx_poses = Estimator(*create_backend("onnx", checkpoint, "cpu")).predict_crops(crops)
    for a, b in zip(torch_poses, onnx_poses, strict=True):
        assert np.allclose(a.angles, b.angles, atol=0.1) and np.allclose(a.stds, b.stds, atol=0.1)


def test_bf16_backend_runs_close_to_fp32(small, checkpoint):
    net, meta = small
    x = batch(4)
    ref, _ = TorchBackend(net, meta, "cpu").run(x)
    backend, _ = create_backend("torch-bf16", checkpoint, "cpu")
    angles, stds = backend.run(x)
    assert angles.dtype == np.float32 and angles.shape == (4, 3)
    # bf16 keeps 8 bits of mantissa; this test net's scaled-up heads amplify that, so compare the error
    # with how much the angles differ between crops (real weights: see benchmarks/bench_int8.py)
    assert np.abs(angles - ref).mean() < 0.2 * ref.std(axis=0).mean()


def test_int8_needs_calibration_crops(small, monkeypatch, tmp_path):
    import posebridge.models.quantize as q

    net, meta = small
    monkeypatch.delenv("POSEBRIDGE_CALIB", raising=False)
    monkeypatch.setattr(q, "DEFAULT_CALIB", tmp_path / "absent")
    with pytest.raises(ConfigError, match="calib"):
        q.cached_int8(cached_onnx(net, meta), meta)


def test_a_model_without_checkpoint_has_no_torch_backend(checkpoint):
    with pytest.raises(ConfigError, match="need a checkpoint"):
        create_backend("torch", ModelFiles("m", checkpoint.checkpoint.with_suffix(".onnx"), None, "path"))


def test_missing_or_corrupt_onnx_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        OnnxBackend(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(InputFileError, match="onnxruntime cannot load"):
        OnnxBackend(bad)
