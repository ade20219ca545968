"""Face detectors on real AFLW2000-dev images (skipped without ../shared)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces import FaceBox
from posebridge.faces.detectors import DEFAULT_DETECTOR, create_detector, iou, nms
from posebridge.offline.datasets import landmark_box, read_pose_mat
from posebridge.offline.detector_eval import matches, shift, to_canvas, yaw_bucket
from tests.helpers.paths import shared_path

FRONTAL = "image00002"  # yaw about 0-30 degrees


def aflw_canvas(stem: str):
    folder = shared_path("data", "aflw2000-dev")
    img = cv2.imread(str(folder / f"{stem}.jpg"))
    lab = read_pose_mat(folder / f"{stem}.mat")
    canvas, (dx, dy) = to_canvas(img)
    return canvas, shift(landmark_box(lab["pt2d"]), dx, dy), lab


def yunet_path() -> str:
    return str(shared_path("models", "yunet_s_640_640.onnx"))


def detector_params():
    params = [pytest.param("haar", {}, id="haar"), pytest.param("haar", {"input_width": None}, id="haar@640")]
    params += [pytest.param("dlib_hog", {}, id="dlib_hog"),
               pytest.param("dlib_hog", {"input_width": 320}, id="dlib_hog@320")]
    params += [pytest.param("yunet", None, id="yunet")]
    return params


def make(name: str, opts: dict | None):
    if name == "dlib_hog":
        pytest.importorskip("dlib")
    if opts is None:
        opts = {"model_path": yunet_path()}
    return create_detector(name, **opts)


@pytest.mark.parametrize("name,opts", detector_params())
def test_detector_finds_the_aflw_face_on_a_webcam_canvas(name, opts):
    canvas, truth, lab = aflw_canvas(FRONTAL)
    assert yaw_bucket(lab["yaw"]) == 0
    det = make(name, opts)
    boxes = det.detect(canvas)
    assert boxes and all(isinstance(b, FaceBox) for b in boxes)
    assert any(matches(b, truth) for b in boxes)
    assert boxes[0].detector == name
    # Boxes are in frame pixels even when detection ran on a shrunk copy.
    assert all(0 <= b.x0 < b.x1 <= 640 and 0 <= b.y0 < b.y1 <= 480 for b in boxes)


@pytest.mark.parametrize("name,opts", detector_params())
def test_detector_finds_nothing_in_an_empty_frame(name, opts):
    det = make(name, opts)
    rng = np.random.default_rng(0)
    blank = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (31, 31), 0)
    assert det.detect(blank) == []


def test_shrinking_maps_boxes_back_to_frame_pixels():
    canvas, truth, _ = aflw_canvas(FRONTAL)
    full = make("yunet", None).detect(canvas)[0]
    small = make("yunet", {"model_path": yunet_path(), "input_width": 320}).detect(canvas)[0]
    assert iou(full.box, small.box) > 0.7


def test_yunet_gives_five_landmarks_inside_the_box():
    canvas, _, _ = aflw_canvas(FRONTAL)
    b = make("yunet", None).detect(canvas)[0]
    assert b.landmarks is not None and b.landmarks.shape == (5, 2)
    assert np.all((b.landmarks[:, 0] > b.x0) & (b.landmarks[:, 0] < b.x1))
    assert np.all((b.landmarks[:, 1] > b.y0) & (b.landmarks[:, 1] < b.y1))


def test_yunet_needs_a_user_model_file(tmp_path):
    with pytest.raises(ConfigError, match="model_path"):
        create_detector("yunet")
    with pytest.raises(InputFileError, match="not found"):
        create_detector("yunet", model_path=str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    with pytest.raises(InputFileError, match="cannot load") as err:
        create_detector("yunet", model_path=str(junk))
    assert "\n" not in str(err.value)


def test_unknown_detector_or_option_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown detector 'retina'"):
        create_detector("retina")
    with pytest.raises(ConfigError, match="faces.options.min_szie"):
        create_detector("haar", min_szie=30)
    with pytest.raises(ConfigError, match="profile"):
        create_detector("haar", profile="sideways")


def test_default_detector_is_registered_and_works_offline():
    det = create_detector("default")
    assert det.name == DEFAULT_DETECTOR
    canvas, truth, _ = aflw_canvas(FRONTAL)
    assert any(matches(b, truth) for b in det.detect(canvas))


def test_haar_profile_fallback_finds_turned_faces_the_frontal_cascade_misses():
    folder = shared_path("data", "aflw2000-dev")
    stems = []
    for mat in sorted(folder.glob("*.mat"))[:400]:
        lab = read_pose_mat(mat)
        if 45 < abs(lab["yaw"]) < 75 and abs(lab["pitch"]) < 20 and abs(lab["roll"]) < 20:
            stems.append(mat.stem)
        if len(stems) == 6:
            break
    found = {}
    for profile in ("never", "fallback"):
        det = create_detector("haar", input_width=320, profile=profile)
        found[profile] = 0
        for stem in stems:
            canvas, truth, _ = aflw_canvas(stem)
            found[profile] += any(matches(b, truth) for b in det.detect(canvas))
    assert found["fallback"] >= 4 and found["fallback"] > found["never"]


def test_match_rule_and_nms():
    truth = (100.0, 100.0, 200.0, 200.0)
    assert matches((90, 90, 210, 210), truth)
    assert not matches((0, 0, 120, 120), truth)  # misses the centre
    assert not matches((0, 0, 640, 480), truth)  # too big to be this face
    assert not matches((145, 145, 155, 155), truth)  # too small
    a, b, c = FaceBox(0, 0, 10, 10, 0.9), FaceBox(1, 1, 11, 11, 0.8), FaceBox(50, 50, 60, 60, 0.5)
    assert nms([b, c, a]) == [a, c]


def test_dlib_profile_fallback_finds_a_turned_face_hog_misses():
    pytest.importorskip("dlib")
    canvas, truth, lab = aflw_canvas("image00180")
    assert abs(lab["yaw"]) > 45
    hog_only = create_detector("dlib_hog", profile_fallback=False).detect(canvas)
    assert not any(matches(b, truth) for b in hog_only)
    boxes = create_detector("dlib_hog").detect(canvas)
    assert any(matches(b, truth) and b.detector == "haar_profile" for b in boxes)  # ROI maps: per detector
