"""`posebridge bench`: a real pipeline run (video, detector, model, filter, ZeroMQ publish) on a tiny clip."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest
import torch

from posebridge.cli import main
from posebridge.commands.bench import format_report
from posebridge.daemon.pipeline import STAGES
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.network import build_model
from posebridge.offline.synthetic_clip import drawn_face, make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "face.mp4", drawn_face(), frames=24)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    meta = ModelMeta(name="tiny-lenet", backbone="lenet", input_size=64)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", build_model("lenet"), meta)


def test_generated_clip_is_640x480_with_a_detectable_face(clip):
    from posebridge.faces.detectors import create_detector

    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert ok and frame.shape == (480, 640, 3) and n == 24
    assert create_detector("haar").detect(frame), "the drawn face must be found by the Haar detector"


def test_bench_json_smoke(clip, tiny_model, capsys):
    code = main(["bench", str(clip), "--model", str(tiny_model), "--backend", "torch", "--device", "cpu",
                 "--detector", "haar", "--detect-inline", "--warmup", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    (run,) = report["runs"]
    assert run["frames"] == 22 and run["model"] == "tiny-lenet" and report["size"] == [640, 480]
    assert run["faces_per_frame"] > 0.5 and run["detect_in_thread"] is False and run["backend"] == "torch"
    assert 0 < run["startup_first_message_s"] <= run["startup_first_pose_s"] < 120
    assert run["skipped_frames"] == 0 and run["detector_runs"] >= 3
    for stage in ("decode", "crop", "infer", "filter", "publish"):
        assert run["stages"][stage]["count"] > 0
        assert 0 <= run["stages"][stage]["median_ms"] <= run["stages"][stage]["p99_ms"]
    assert set(run["stages"]) <= set(STAGES)
    counts = [run["stages"].get(s, {}).get("count", 0) for s in ("detect", "track")]
    assert sum(counts) == 22  # every frame either ran the detector or followed the box
    assert run["latency"]["median_ms"] > 0 and run["fps"] > 0
    assert run["cpu_percent"] > 0 and run["peak_rss_mb"] > 50
    text = format_report(report)
    assert "capture->publish" in text and "| peak RSS MB |" in text


def test_bench_compares_with_the_previous_default_in_separate_processes(clip, tiny_model, tmp_path):
    """The default (ONNX Runtime, detector in its thread) beside the previous default (PyTorch, detector
    inline), each in its own process, and the table shows the ratio."""
    proc = subprocess.run(
        [sys.executable, "-m", "posebridge", "bench", str(clip), "--model", str(tiny_model), "--device",
         "cpu", "--detector", "haar", "--warmup", "2", "--frames", "8", "--compare", "previous"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "POSEBRIDGE_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = ("| stage (ms) | onnx + haar (worker) median / p99 | torch + dlib_hog (inline) median / p99 "
              "| ratio (other / this) |")
    assert header in proc.stdout
    assert "| fps |" in proc.stdout and "start-up to first message, s" in proc.stdout


def test_bench_missing_video_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "posebridge", "bench", str(tmp_path / "none.mp4")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "none.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr
