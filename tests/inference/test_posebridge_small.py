"""The packaged default model, posebridge-small: an ONNX graph (what the runtime runs, no PyTorch) and
its fp16 checkpoint (the PyTorch backends), at most 8 MB together; loads from the package with no
network, carries its crop protocol, gives the recorded angles on a committed synthetic fixture crop,
and both files give the same angles."""

from __future__ import annotations

import json
import socket

import cv2
import numpy as np
import pytest

from posebridge.inference.crops import face_roi
from posebridge.inference.estimator import Estimator
from posebridge.inference.meta import CropSpec
from posebridge.inference.model_store import find_model, packaged_models, resolve_model
from posebridge.inference.roi_map import BOX_MAPS, box_map_for
from posebridge.models.checkpoint import read_checkpoint
from tests.helpers.paths import FIXTURES, REPO, SYNTHETIC_FACE

ASSET = REPO / "posebridge" / "assets" / "posebridge-small.pt"
GRAPH = ASSET.with_suffix(".onnx")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("posebridge-small tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def estimator():
    return Estimator.load("posebridge-small", device="cpu")


def test_packaged_and_small():
    assert ASSET.is_file() and GRAPH.is_file(), "posebridge/assets/posebridge-small.{pt,onnx} missing"
    weights = [p for p in (REPO / "posebridge" / "assets").iterdir() if p.suffix in (".pt", ".onnx")]
    assert sum(p.stat().st_size for p in weights) <= 8 * 1024 * 1024  # package weight files in all
    files = packaged_models()["posebridge-small"]
    assert files.onnx == GRAPH and files.checkpoint == ASSET


def test_is_the_default_model(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path))  # an empty user cache: nothing else installed
    assert find_model(None).onnx == GRAPH
    assert resolve_model(None) == ASSET
    assert resolve_model("posebridge-small") == ASSET


def test_onnx_runtime_and_pytorch_give_the_same_angles():
    """docs/models.md: the two backends' MAE agree to 1e-6; per crop they agree to float32 rounding
    (measured: at most 2.3e-5 degrees over 300 real crops), checked here at 1e-4."""
    rng = np.random.default_rng(0)
    crops = [cv2.imread(str(SYNTHETIC_FACE))] + [
        rng.integers(0, 255, (112, 112, 3), np.uint8) for _ in range(7)]
    onnx_poses = Estimator.load("posebridge-small", device="cpu").predict_crops(crops)
    torch_poses = Estimator.load("posebridge-small", device="cpu", backend="torch").predict_crops(crops)
    a = np.array([p.angles for p in onnx_poses])
    b = np.array([p.angles for p in torch_poses])
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    np.testing.assert_allclose([p.stds for p in onnx_poses], [p.stds for p in torch_poses], atol=1e-4, rtol=0)
    assert abs(np.abs(a).mean() - np.abs(b).mean()) < 1e-6  # a mean absolute figure agrees to 1e-6


def test_metadata_states_protocol_and_bins():
    meta = read_checkpoint(ASSET)["meta"]
    assert meta["name"] == "posebridge-small"
    assert meta["backbone"] == "mobilenet_v3_small"
    assert meta["crop"]["protocol"] == "3ddfa"
    assert set(meta["crop"]["box_map"]) == {"dx", "dy", "scale"}
    centre_bins = {"num_bins": 66, "width": 3.0, "low": -99.0, "offset": "center"}
    assert all(b == centre_bins for b in meta["bins"].values())
    assert "non-commercial" in meta["provenance"]["license"]
    payload = read_checkpoint(ASSET)
    assert "training" not in payload  # no optimizer state shipped


def test_loads_without_network_and_gives_recorded_angles(no_network):
    expected = json.loads((FIXTURES / "posebridge_small_expected.json").read_text())
    crop = cv2.imread(str(FIXTURES / expected["crop"]))
    assert crop is not None
    est = Estimator.load("posebridge-small", device="cpu")
    pose = est.predict_crops([crop])[0]
    np.testing.assert_allclose(pose.angles, expected["angles"], atol=0.05)
    np.testing.assert_allclose(pose.stds, expected["stds"], atol=0.05)


def test_mirrored_crop_mirrors_the_pose(estimator):
    """Flip averaging makes the estimate exactly antisymmetric in yaw and roll under a mirror."""
    size = estimator.meta.input_size  # at the input size, so no resampling breaks the mirror symmetry
    crop = cv2.resize(cv2.imread(str(SYNTHETIC_FACE)), (size, size))
    a, b = estimator.predict_crops([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert estimator.meta.extra.get("flip_average") is True
    np.testing.assert_allclose([b.yaw, b.pitch, b.roll], [-a.yaw, a.pitch, -a.roll], atol=0.05)


# The shipped model's validation checks on the training crops every recipe holds out (flip both), as
# measured and reported in docs/models.md (`python -m training.validation_checks --config
# training/configs/posebridge_small.toml posebridge/assets/posebridge-small.onnx --flip both`). A change
# that makes the packaged model worse by more than the margin fails here. Update with the model.
SHIPPED_CHECKS = {"consensus_mean": 2.106, "human_yaw": 6.541, "eye_roll": 3.095, "score": 3.914}
CHECK_MARGIN = 0.05


def test_accuracy_on_held_out_training_crops_matches_the_model_card(shared):
    """A regression bound for the packaged model on 748 held-out training crops (never AFLW2000)."""
    from training.validation_checks import run_checks, validation_split

    shared("data", "aflw-yaw-crops", "labels.csv")
    root, names = validation_split([str(REPO / "training" / "configs" / "posebridge_small.toml")])
    got = run_checks(str(GRAPH), root, names, "both")
    measured = {"consensus_mean": got.consensus["mean"], "human_yaw": got.human_yaw,
                "eye_roll": got.eye_roll, "score": got.score}
    for key, want in SHIPPED_CHECKS.items():
        assert measured[key] <= want + CHECK_MARGIN, f"{key}: {measured[key]:.3f} (model card: {want})"
        assert measured[key] >= want - CHECK_MARGIN, f"{key}: {measured[key]:.3f} beats the card ({want})"


def test_detector_box_maps_to_landmark_roi():
    """The fitted map moves a detector box down and enlarges it (every fitted detector)."""
    assert {"dlib_hog", "haar", "yunet"} <= set(BOX_MAPS)
    for name in BOX_MAPS:
        m = box_map_for(name)
        x0, y0, x1, y1 = face_roi((100.0, 100.0, 200.0, 200.0), CropSpec(protocol="3ddfa"), name)
        assert x1 - x0 == pytest.approx(100.0 * m["scale"])
        assert (y0 + y1) / 2 == pytest.approx(150.0 + 100.0 * m["dy"])
        assert 1.0 < m["scale"] < 1.6 and 0.0 < m["dy"] < 0.3
    assert box_map_for("no-such-detector") == {}


def test_yaw_placed_crop_takes_a_second_pass_unless_given_a_hint(estimator, monkeypatch):
    """A detector box whose ROI depends on yaw (a map with dx_yaw; the shipped maps have none): without
    a hint the first pass's yaw places the crop of the second; with a hint one pass uses it."""
    monkeypatch.setitem(BOX_MAPS, "dlib_hog", {"dx": 0.0115, "dx_yaw": 0.3515, "dy": 0.0578, "scale": 1.3723})
    frame = np.full((240, 320, 3), 110, np.uint8)
    frame[60:172, 100:212] = cv2.imread(str(SYNTHETIC_FACE))
    box, det = (125.0, 80.0, 195.0, 150.0), "dlib_hog"
    spec = estimator.meta.crop
    first = estimator.predict_rois([(frame, face_roi(box, spec, det))])[0]
    second = estimator.predict_rois([(frame, face_roi(box, spec, det, first.yaw))])[0]
    assert estimator.predict_faces([(frame, box, det)])[0].angles == pytest.approx(second.angles, abs=1e-4)
    hinted = estimator.predict_rois([(frame, face_roi(box, spec, det, 40.0))])[0]
    got = estimator.predict_faces([(frame, box, det)], [40.0])[0]
    assert got.angles == pytest.approx(hinted.angles, abs=1e-4)
    assert estimator.crop(frame, box, det, yaw=40.0).tobytes() != estimator.crop(frame, box, det).tobytes()


def test_shipped_maps_place_the_crop_in_one_pass(estimator, monkeypatch):
    calls: list[int] = []
    real, views = estimator.predict_views, len(estimator.zooms)
    monkeypatch.setattr(estimator, "predict_views", lambda c: calls.append(len(c) // views) or real(c))
    frame = np.full((240, 320, 3), 110, np.uint8)
    estimator.predict_faces([(frame, (125.0, 80.0, 195.0, 150.0), name) for name in BOX_MAPS])
    assert calls == [len(BOX_MAPS)]
