"""FaceTracker on real AFLW2000-dev faces moving across a 640x480 frame (skipped without ../shared)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posebridge.errors import ConfigError
from posebridge.faces import FaceBox
from posebridge.faces.detectors import create_detector
from posebridge.faces.primary import primary
from posebridge.faces.tracker import FaceTracker
from posebridge.timing import StageTimer
from tests.helpers.paths import shared_path

W, H = 640, 480


@pytest.fixture(scope="module")
def face():
    img = cv2.imread(str(shared_path("data", "aflw2000-dev", "image00002.jpg")))
    return img


@pytest.fixture(scope="module")
def detector():
    return create_detector("default")


class Counting:
    """Delegates to a real detector and counts the calls."""

    def __init__(self, det):
        self.det, self.calls, self.name = det, 0, det.name

    def detect(self, image):
        self.calls += 1
        return self.det.detect(image)


def scene(placements, seed: int = 0) -> np.ndarray:
    """Faces pasted at (image, side, x, y) on a grey 640x480 frame, plus camera-like pixel noise."""
    frame = np.full((H, W, 3), 60, np.uint8)
    for img, side, x, y in placements:
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        m = np.float32([[1, 0, x], [0, 1, y]])
        mask = cv2.warpAffine(np.full((side, side), 255, np.uint8), m, (W, H)) > 0
        frame[mask] = cv2.warpAffine(small, m, (W, H))[mask]
    noise = np.random.default_rng(seed).normal(0, 3.0, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def pan(face, n: int, step: float = 4.0, side: int = 300):
    for i in range(n):
        x = 60 + step * i
        yield scene([(face, side, x, 90)], seed=i), x


def centre_x(b: FaceBox) -> float:
    return (b.x0 + b.x1) / 2


def test_stable_id_and_detector_runs_only_every_n_frames(face, detector):
    det = Counting(detector)
    tr = FaceTracker(det, redetect_every=10)
    ids, actions = [], []
    for frame, _ in pan(face, 30):
        faces = tr.update(frame)
        assert len(faces) == 1
        ids.append(faces[0].face_id)
        actions.append(tr.last_action)
    assert set(ids) == {0}
    assert det.calls == 3 and actions[0] == actions[10] == actions[20] == "detect"
    st = tr.stats()
    assert st["detect_frames"] == 3 and st["track_frames"] == 27
    assert st["track_ms_mean"] > 0 and st["detect_ms_mean"] > 0  # both timed (their ratio: benchmarks)


def test_template_follows_a_moving_face_while_hold_lags(face, detector):
    errors = {}
    for follow in ("template", "hold"):
        tr = FaceTracker(detector, redetect_every=10, follow=follow)
        offset, errs = None, []
        for frame, x in pan(face, 10, step=5.0):
            b = tr.update(frame)[0]
            if offset is None:
                offset = centre_x(b) - x  # detector box centre relative to the pasted image
            errs.append(abs(centre_x(b) - x - offset))
        errors[follow] = max(errs)
    assert errors["template"] < 6.0
    assert errors["hold"] > 40.0  # 9 frames x 5 px behind


def test_uncertainty_jump_forces_a_detection(face, detector):
    det = Counting(detector)
    tr = FaceTracker(det, redetect_every=100)
    frames = [f for f, _ in pan(face, 4)]
    tr.update(frames[0])
    tr.update(frames[1])
    assert det.calls == 1 and tr.last_action == "track"
    faces = tr.update(frames[2], uncertainty_jump=True)
    assert det.calls == 2 and tr.last_action == "detect" and faces[0].face_id == 0
    assert tr.stats()["redetect_reasons"]["jump"] == 1


def test_face_leaving_and_returning_gets_a_new_id(face, detector):
    det = Counting(detector)
    tr = FaceTracker(det, redetect_every=10, search_frames=4, idle_redetect_every=3)
    assert tr.update(scene([(face, 300, 100, 90)]))[0].face_id == 0
    assert tr.update(scene([], seed=1)) == []  # the follower loses it: detect at once, nothing there
    assert det.calls == 2 and tr.primary_id is None
    calls = []
    for s in range(2, 12):
        assert tr.update(scene([], seed=s)) == []
        calls.append(det.calls)
    # Just lost: search on every frame (4 frames), then an empty room: every 3rd frame.
    assert calls == [3, 4, 5, 5, 5, 6, 6, 6, 7, 7]
    back = [tr.update(scene([(face, 300, 200, 90)], seed=s)) for s in range(20, 23)]
    assert back[-1] and back[-1][0].face_id == 1  # picked up within 3 frames, with a new id


def test_two_faces_keep_their_ids_and_the_bigger_one_is_primary(face, detector):
    tr = FaceTracker(detector, redetect_every=3)
    seen = []
    for i in range(8):
        frame = scene([(face, 300, 20 + 3 * i, 100), (face, 220, 400 - 3 * i, 150)], seed=i)
        faces = tr.update(frame)
        assert len(faces) == 2
        big, small = faces  # primary first
        assert big.width > small.width and centre_x(big) < centre_x(small)
        seen.append((big.face_id, small.face_id))
    assert len(set(seen)) == 1 and seen[0][0] != seen[0][1]
    two = scene([(face, 300, 20, 100), (face, 220, 400, 150)])
    only = FaceTracker(detector, primary_only=True).update(two)
    assert len(only) == 1 and centre_x(only[0]) < W / 2  # the bigger, left face


def test_primary_prefers_large_central_faces_and_is_sticky():
    size = (W, H)
    centre = FaceBox(270, 190, 370, 290, face_id=1)
    corner_big = FaceBox(0, 0, 130, 130, face_id=2)  # bigger, but in the corner
    assert primary([corner_big, centre], size).face_id == 1
    left = FaceBox(100, 190, 200, 290, face_id=3)
    right = FaceBox(430, 185, 540, 295, face_id=4)  # 10% larger
    assert primary([left, right], size).face_id == 4
    assert primary([left, right], size, prefer_id=3, switch_ratio=1.3).face_id == 3  # no flicker
    assert primary([], size) is None


def test_costs_go_to_the_stage_timer(face, detector):
    timer = StageTimer()
    tr = FaceTracker(detector, redetect_every=5, timer=timer)
    for frame, _ in pan(face, 10):
        tr.update(frame)
    summary = timer.summary()
    assert summary["detect"]["count"] == 2 and summary["track"]["count"] == 8


def test_bad_tracker_options_are_config_errors(detector):
    with pytest.raises(ConfigError, match="redetect_every"):
        FaceTracker(detector, redetect_every=0)
    with pytest.raises(ConfigError, match="follow"):
        FaceTracker(detector, follow="flow")
