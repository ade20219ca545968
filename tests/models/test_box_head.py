"""The box head (issue 13): a network that also says where the face's ROI is. Training learns the exact
shift/scale targets, the ONNX export carries a `box` output the runtime decodes (mirror-averaged), and
the tracker follows a face with it: the detector is only a re-check, and drift hands the face back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from posebridge.faces.base import ROI_TAG, FaceBox
from posebridge.faces.tracker import FaceTracker
from posebridge.inference.crops import apply_offset
from posebridge.inference.estimator import Estimator
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.models.export import export_onnx
from posebridge.models.network import build_model
from tests.helpers.paths import SYNTHETIC_FACE


def test_apply_offset_moves_and_scales_the_roi():
    roi = (100.0, 50.0, 200.0, 150.0)
    assert apply_offset(roi, (0.0, 0.0, 0.0)) == pytest.approx(roi)
    assert apply_offset(roi, (0.1, -0.2, 0.0)) == pytest.approx((110.0, 30.0, 210.0, 130.0))
    assert apply_offset(roi, (0.0, 0.0, np.log(2.0))) == pytest.approx((50.0, 0.0, 250.0, 200.0))


@pytest.fixture(scope="module")
def boxnet(tmp_path_factory):
    """A tiny network with a box head whose box output is set by hand: (+0.1, -0.05, log 1.2) for any
    input, so the decoding can be checked exactly (zero weights, bias only)."""
    torch.manual_seed(0)
    net = build_model("lenet", box_head=True)
    with torch.no_grad():
        net.fc_box.weight.zero_()
        net.fc_box.bias.copy_(torch.tensor([0.1, -0.05, float(np.log(1.2))]))
    meta = ModelMeta("boxnet", "lenet", input_size=48, crop=CropSpec(protocol="3ddfa"),
                     extra={"box_head": True, "flip_average": True})
    path = export_onnx(net, meta, tmp_path_factory.mktemp("m") / "boxnet.onnx")
    return net, meta, path


def test_export_has_a_box_output_and_the_runtime_decodes_it(boxnet):
    import onnxruntime as ort

    _, _, path = boxnet
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["angles", "stds", "box"]
    est = Estimator.load(str(path), device="cpu")
    assert est.meta.box_head
    frame = np.full((240, 320, 3), 100, np.uint8)
    roi = (100.0, 60.0, 196.0, 156.0)
    pose = est.predict_faces([(frame, roi, ROI_TAG)])[0]
    # the mirrored view's dx (+0.1 in its own axes) counts as -0.1: the mean dx is 0, dy and scale stay
    assert pose.roi_offset == pytest.approx((0.0, -0.05, np.log(1.2)), abs=1e-5)
    assert pose.next_roi == pytest.approx(apply_offset(roi, (0.0, -0.05, np.log(1.2))), abs=1e-3)


def test_torch_and_onnx_agree_on_the_box(boxnet):
    net, meta, path = boxnet
    crops = [cv2.resize(cv2.imread(str(SYNTHETIC_FACE)), (48, 48))]
    a = Estimator.from_model(net, meta, "cpu").predict_crops(crops)[0]
    b = Estimator.load(str(path), device="cpu").predict_crops(crops)[0]
    assert a.roi_offset == pytest.approx(b.roi_offset, abs=1e-5)


class Counting:
    name = "fake"

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def detect(self, image):
        self.calls += 1
        return [FaceBox(*b, score=1.0, detector="fake") for b in self.boxes]


def test_the_tracker_follows_the_models_roi_and_rechecks_rarely():
    det = Counting([(100.0, 100.0, 200.0, 200.0)])
    tr = FaceTracker(det, redetect_every=10, model_redetect_every=30)
    frame = np.full((480, 640, 3), 90, np.uint8)
    faces = tr.update(frame)
    assert faces[0].detector == "fake"
    for i in range(60):
        roi = (90.0 + i % 3, 90.0, 230.0 + i % 3, 230.0)  # the model's ROI, jittering around the face
        tr.refine(faces[0].face_id, roi)
        faces = tr.update(frame)
        assert faces[0].detector == ROI_TAG and faces[0].box == pytest.approx(roi)
    assert det.calls <= 3  # frame 1, then a re-check every 30 frames (not every 10) that confirms it
    tr.refine(faces[0].face_id, (-500.0, -500.0, -300.0, -300.0))  # off the frame: implausible
    assert tr.update(frame) == [] or tr.tracks[0].model is False


def test_drift_hands_the_face_back_to_the_detector():
    det = Counting([(100.0, 100.0, 200.0, 200.0)])
    tr = FaceTracker(det, redetect_every=10, model_redetect_every=5)
    frame = np.full((480, 640, 3), 90, np.uint8)
    face = tr.update(frame)[0]
    tr.refine(face.face_id, (150.0, 60.0, 290.0, 200.0))  # the model wandered right of the real face
    for _ in range(6):
        faces = tr.update(frame)
        if faces and faces[0].detector == "fake":
            break
    assert faces[0].detector == "fake" and not tr.tracks[0].model
