"""The daemon loop with real parts: folder / camera sources, the Haar detector and tracker, a small real
network (untrained LeNet: these tests check plumbing, not accuracy), the Kalman filter, and real ZeroMQ
PUB / REP sockets on 127.0.0.1. Faces come from the public-domain demo portrait (examples/demo)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posebridge.config import ServeConfig
from posebridge.daemon.control_handlers import start_control
from posebridge.daemon.pipeline import Pipeline
from posebridge.faces.detectors import create_detector
from posebridge.faces.tracker import FaceTracker
from posebridge.inference.estimator import Estimator
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.models.network import build_model
from posebridge.output.control import request
from posebridge.output.transport import Publisher, Subscriber
from posebridge.sources.camera import CameraSource
from posebridge.sources.folder import ImageFolderSource
from tests.helpers.paths import PORTRAIT


def canvas(faces: int = 1, noise_seed: int = 0, dx: int = 0) -> np.ndarray:
    """A 640x480 frame with `faces` copies of the portrait (0 = nobody in frame) and mild camera noise."""
    img = np.full((480, 640, 3), (96, 104, 112), np.uint8)
    face = cv2.imread(str(PORTRAIT))
    if faces == 1:
        img[90:390, 170 + dx:470 + dx] = face
    elif faces == 2:
        small = cv2.resize(face, (300, 300))
        img[90:390, 10:310] = small
        img[90:390, 330:630] = small
    rng = np.random.default_rng(noise_seed)
    return np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    torch.manual_seed(0)
    meta = ModelMeta(name="test-lenet", backbone="lenet", input_size=64)
    return Estimator.from_model(build_model("lenet"), meta, device="cpu")


def folder(tmp_path: Path, frames: list[np.ndarray]) -> ImageFolderSource:
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i:04d}.png"), f)
    # paced at 30 fps without dropping: capture times are exactly 1/30 s apart however slow the machine
    return ImageFolderSource(tmp_path, realtime=True, fps=30.0, drop_late=False)


def make_pipeline(source, estimator, **overrides) -> Pipeline:
    cfg = ServeConfig()
    cfg.publish.address = "tcp://127.0.0.1:0"
    cfg.control.address = "tcp://127.0.0.1:0"
    cfg.run.log_every_s = 0
    cfg.filter.update(overrides.pop("filter", {}))
    for key, value in overrides.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    tracker = FaceTracker(create_detector("default"), redetect_every=cfg.faces.redetect_every)
    pub = Publisher(cfg.publish.address, hwm=1000)
    return Pipeline(cfg, source, tracker, estimator, pub, model_name="test-lenet")


def run_all(pipe: Pipeline) -> list:
    msgs = []
    while (res := pipe.step()) is not None:
        msgs.extend(res.messages)
    return msgs


def test_messages_reach_a_real_subscriber(tmp_path, estimator):
    pipe = make_pipeline(folder(tmp_path, [canvas(1, i, dx=2 * i) for i in range(6)]), estimator)
    try:
        with Subscriber(pipe.publisher.address) as sub:
            assert pipe.publisher.wait_for_subscriber(5.0)
            published = run_all(pipe)
            received = list(sub.messages(timeout_s=1.0))
    finally:
        pipe.close()
    assert len(published) == 6 and [m.seq for m in received] == list(range(6))
    first = received[0]
    assert first.v == 1 and first.tracked and first.face_id >= 0 and first.frame == [640, 480]
    assert first.raw is not None and first.box is not None
    assert abs(np.linalg.norm(first.q) - 1.0) < 1e-9
    assert all(m.t_publish >= m.t_capture for m in received)
    assert received == published  # what went over the wire decodes to what was built
    stages = pipe.timer.summary()
    for name in ("decode", "detect", "crop", "infer", "filter", "publish", "latency", "capture", "pose"):
        assert stages[name]["count"] >= 1, name


def test_tracked_face_places_its_crop_with_the_previous_yaw(tmp_path, monkeypatch):
    """With a yaw-aware box map (3DDFA protocol) the first frame of a face takes two passes; after that
    the stream's previous yaw places the crop in one."""
    import posebridge.inference.roi_map as roi_map

    default = create_detector("default").name  # blazeface when pulled, else a fallback
    monkeypatch.setitem(roi_map.BOX_MAPS, default, {"dx": 0.0, "dx_yaw": 0.35, "dy": 0.06, "scale": 1.37})
    torch.manual_seed(0)
    meta = ModelMeta(name="test-lenet", backbone="lenet", input_size=64)
    meta.crop = CropSpec(protocol="3ddfa")
    est = Estimator.from_model(build_model("lenet"), meta, device="cpu")
    calls: list[int] = []
    real = est.predict_views
    monkeypatch.setattr(est, "predict_views", lambda crops: calls.append(len(crops)) or real(crops))
    pipe = make_pipeline(folder(tmp_path, [canvas(1, i) for i in range(5)]), est)
    try:
        msgs = run_all(pipe)
    finally:
        pipe.close()
    assert all(m.tracked and m.raw is not None for m in msgs) and len(msgs) == 5
    assert calls == [1, 1, 1, 1, 1, 1]  # frame 1: first pass + yaw-placed pass; frames 2-5: one pass


def test_no_face_in_frame_publishes_lost(tmp_path, estimator):
    pipe = make_pipeline(folder(tmp_path, [canvas(0, i) for i in range(8)]), estimator)
    try:
        msgs = run_all(pipe)
    finally:
        pipe.close()
    assert len(msgs) == 8
    assert all(not m.tracked and m.raw is None and m.face_id == -1 and m.box is None for m in msgs)
    assert all(np.all(np.isfinite(m.q)) for m in msgs)


def test_dropout_is_predicted_then_lost_then_recovers(tmp_path, estimator):
    """Face for 10 frames, nobody for 20 (0.67 s > lost_after_s 0.3), face again for 14."""
    frames = [canvas(1, i) for i in range(10)] + [canvas(0, i) for i in range(20)] + \
             [canvas(1, i) for i in range(14)]
    pipe = make_pipeline(folder(tmp_path, frames), estimator, filter={"lost_after_s": 0.3})
    try:
        msgs = run_all(pipe)
    finally:
        pipe.close()
    assert len(msgs) == 44
    assert all(m.tracked and m.raw is not None for m in msgs[:10])
    gap = msgs[10:30]
    assert all(m.raw is None for m in gap)
    # predicted through the first 0.3 s of the dropout (9 frames at 30 fps), lost after that
    assert all(m.tracked for m in gap[:8]) and all(not m.tracked and m.face_id == -1 for m in gap[10:])
    # re-acquired at the tracker's next idle detection (every `idle_redetect_every` = 10 frames), then kept
    back = next(i for i, m in enumerate(msgs[30:]) if m.raw is not None)
    assert back <= 10 and all(m.tracked and m.raw is not None for m in msgs[30 + back:])


def test_camera_loss_and_recovery(estimator):
    """A capture that works, fails (camera unplugged: reads and re-opens fail), then works again."""
    state = {"broken": False, "opens": 0}
    frame = canvas(1)

    class FakeCapture:  # the fault injector; everything downstream is real
        def isOpened(self):
            return not state["broken"]

        def read(self):
            time.sleep(1 / 30)
            return (False, None) if state["broken"] else (True, frame.copy())

        def release(self):
            pass

    def factory(device):
        state["opens"] += 1
        return FakeCapture()

    cam = CameraSource(0, capture_factory=factory, retry_initial=0.05, retry_max=0.1)
    pipe = make_pipeline(cam, estimator, filter={"lost_after_s": 0.3})
    phases = {"before": [], "lost": [], "after": []}
    try:
        def run_until(phase, cond, limit_s=30.0):
            deadline = time.monotonic() + limit_s
            while time.monotonic() < deadline:
                res = pipe.step()
                assert res is not None, "a live source must not end"
                phases[phase].extend(res.messages)
                if cond(res.messages):
                    return
            raise AssertionError(f"phase {phase}: condition not reached")

        run_until("before", lambda ms: any(m.tracked and m.raw is not None for m in ms))
        state["broken"] = True
        run_until("lost", lambda ms: any(not m.tracked for m in ms))
        state["broken"] = False
        run_until("after", lambda ms: any(m.tracked and m.raw is not None for m in ms))
        stats = cam.stats()
    finally:
        pipe.close()
    assert stats["losses"] >= 1 and stats["reconnects"] >= 1 and state["opens"] >= 2
    assert pipe.no_frame >= 1  # the loop kept publishing while no frame came
    assert phases["lost"][-1].face_id == -1 and phases["lost"][-1].raw is None
    seqs = [m.seq for p in phases.values() for m in p]
    assert seqs == list(range(len(seqs)))


def test_all_faces_option(tmp_path, estimator):
    frames = [canvas(2, i) for i in range(4)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = make_pipeline(folder(tmp_path / "a", frames), estimator)
    many = make_pipeline(folder(tmp_path / "b", frames), estimator, faces__all_faces=True)
    try:
        msgs_one, msgs_many = run_all(one), run_all(many)
    finally:
        one.close()
        many.close()
    assert len(msgs_one) == 4
    assert len(msgs_many) == 8, "two faces per frame, one message each"
    ids = {m.face_id for m in msgs_many}
    assert len(ids) == 2 and -1 not in ids
    assert {m.face_id for m in msgs_one} <= ids


def test_control_status_recenter_set_while_running(tmp_path, estimator):
    pipe = make_pipeline(folder(tmp_path, [canvas(1, i) for i in range(40)]), estimator)
    ctl = start_control(pipe, "tcp://127.0.0.1:0")
    pipe.attach(control=ctl)
    try:
        no_face = request(ctl.address, {"cmd": "recenter"})
        assert no_face == {"ok": False, "error": "recenter: no tracked face"}
        for _ in range(5):
            last = pipe.step().messages[-1]
        assert last.tracked
        status = request(ctl.address, {"cmd": "status"})
        assert status["ok"] and status["frames"] == 5 and status["model"] == "test-lenet"
        assert status["tracked"] is True and status["seq"] == 5 and isinstance(status["drops"], int)
        assert "infer" in status["stages"] and status["stages"]["infer"]["count"] == 5
        # recenter: q becomes (close to) identity for a still head; euler stays absolute
        reply = request(ctl.address, {"cmd": "recenter"})
        assert reply["ok"] and len(reply["neutral"]) == 3
        after = pipe.step().messages[-1]
        assert abs(after.q[3]) > 0.99
        assert after.euler != [0.0, 0.0, 0.0]
        assert request(ctl.address, {"cmd": "recenter", "reset": True}) == {"ok": True, "neutral": None}
        # set: filter parameters and mirror at run time, all or nothing
        reply = request(ctl.address, {"cmd": "set", "params": {"lost_after_s": 1.5, "mirror": True}})
        assert reply["ok"] and reply["params"]["lost_after_s"] == 1.5 and reply["params"]["mirror"] is True
        assert pipe.streams.streams["primary"].filt.config.lost_after_s == 1.5
        bad = request(ctl.address, {"cmd": "set", "params": {"lost_after_s": 0.1, "proces_noise": 1}})
        assert bad["ok"] is False and "filter.proces_noise: unknown parameter" in bad["error"]
        assert pipe.filter_config.lost_after_s == 1.5  # unchanged
        bad = request(ctl.address, {"cmd": "set", "params": {"lost_after_s": "soon"}})
        assert bad["ok"] is False and "lost_after_s" in bad["error"]
        assert request(ctl.address, {"cmd": "set", "params": []})["ok"] is False
        assert request(ctl.address, {"cmd": "dance"})["ok"] is False
        mirrored = pipe.step().messages[-1]  # still running after the bad requests
        assert mirrored.tracked
    finally:
        pipe.close()


def test_control_answers_while_the_loop_runs(tmp_path, estimator):
    pipe = make_pipeline(folder(tmp_path, [canvas(1, i) for i in range(60)]), estimator)
    ctl = start_control(pipe, "tcp://127.0.0.1:0")
    pipe.attach(control=ctl)
    worker = threading.Thread(target=pipe.run)
    worker.start()
    try:
        replies = [request(ctl.address, {"cmd": "status"}, timeout_s=10) for _ in range(3)]
        assert all(r["ok"] for r in replies)
    finally:
        pipe.stop()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert pipe.publisher.sock.closed and pipe._closed


def test_uncertainty_jump_asks_for_redetection(estimator):
    from posebridge.inference.estimator import PoseEstimate

    pipe = Pipeline(ServeConfig(), source=None, tracker=None, estimator=estimator, publisher=None)
    calm = PoseEstimate(0, 0, 0, 3.0, 3.0, 3.0)
    assert not any(pipe._uncertainty_jumped([calm]) for _ in range(20))
    assert pipe._uncertainty_jumped([PoseEstimate(0, 0, 0, 12.0, 12.0, 12.0)])
    assert pipe.jumps == 1


def test_demo_clip_and_score(tmp_path):
    """The no-camera demo's clip: a real 640x480 video with the known roll, and its scorer."""
    import json

    from posebridge.offline.demo import make_clip, score, write_truth

    truth = make_clip(tmp_path / "clip.mp4", seconds=1.0, gap=(0.5, 0.7))
    cap = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        assert img.shape == (480, 640, 3)
        n += 1
    assert n == len(truth) == 30
    assert truth[0].roll == 0.0 and abs(truth[9].roll - 3.0) < 1e-9 and np.isnan(truth[18].roll)
    write_truth(tmp_path / "truth.csv", truth)
    lines = [json.dumps({"t_capture": 100 + c.index / 30, "tracked": c.face,
                         "raw": [0.0, 0.0, c.roll + 4.0] if c.face else None,
                         "euler": [0.0, 0.0, c.roll + 4.0] if c.face else [0.0, 0.0, 0.0]}) for c in truth]
    (tmp_path / "stream.jsonl").write_text("\n".join(lines))
    r = score(tmp_path / "stream.jsonl", tmp_path / "truth.csv")
    assert r["measured"] == 24 and abs(r["offset_deg"] - 4.0) < 0.01 and r["raw_mae_deg"] < 0.01
    assert r["gap_frames"] == 6 and r["lost_in_gap"] == 6


def test_tracker_options_from_config():
    from posebridge.daemon.assemble import make_tracker
    from posebridge.errors import ConfigError

    cfg = ServeConfig()
    cfg.faces.redetect_every = 4
    cfg.faces.tracker = {"idle_redetect_every": 1, "follow": "hold"}
    tracker = make_tracker(FaceTracker, create_detector("default"), cfg)
    assert tracker.redetect_every == 4 and tracker.idle_redetect_every == 1 and tracker.follow == "hold"
    cfg.faces.tracker = {"idle_redetect_evry": 1}
    with pytest.raises(ConfigError, match="faces.tracker.idle_redetect_evry: unknown option"):
        make_tracker(FaceTracker, create_detector("default"), cfg)
