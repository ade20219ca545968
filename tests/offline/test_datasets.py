"""Dataset readers on the ../shared/data fixtures (AFLW2000, 300W_LP, BIWI, Panoptic) and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from posebridge.errors import InputFileError
from posebridge.offline.datasets import (
    biwi_angles,
    in_range,
    landmark_box,
    list_300w_lp,
    read_300w_lp,
    read_aflw2000,
    read_biwi,
    read_biwi_pose,
    read_panoptic,
    read_pose_mat,
)
from tests.helpers.paths import shared_path


def test_aflw2000_reader_and_standard_protocol():
    samples = list(read_aflw2000(shared_path("data", "aflw2000-dev")))
    assert len(samples) == 1040 and samples[0].image_path.name == "image00002.jpg"
    s = samples[0]
    assert s.angles == pytest.approx((1.0443, -22.8742, 4.9089), abs=1e-3)  # Pose_Para is pitch, yaw, roll
    assert s.pt2d.shape == (2, 21) and s.pt3d_68.shape == (3, 68)
    kept = [x for x in samples if in_range(x)]
    assert len(kept) == 1021  # 19 dev images have an angle beyond +-99
    assert all(max(abs(a) for a in x.angles) <= 99 for x in kept)


def test_landmark_box_ignores_missing_points():
    pts = np.array([[10, -1, 30, 20], [5, -1, 25, 50]], dtype=float)
    assert landmark_box(pts) == (10, 5, 30, 50)
    with pytest.raises(ValueError):
        landmark_box(-np.ones((2, 3)))


def test_300w_lp_reader_groups_flips_with_their_source(tmp_path):
    root = shared_path("data", "300w_lp-samples")
    samples = list(read_300w_lp(root, cache=tmp_path / "list.txt"))
    assert len(samples) == 9
    assert {s.group for s in samples} == {"AFW_134212_1", "HELEN_232194_1", "IBUG_image_008_1"}
    by = {(s.extra["subset"], s.image_path.name): s for s in samples}
    orig, flip = by[("AFW", "AFW_134212_1_0.jpg")], by[("AFW_Flip", "AFW_134212_1_0.jpg")]
    assert orig.yaw == pytest.approx(26.87, abs=0.01) and flip.extra["flipped"]
    assert flip.yaw == pytest.approx(-orig.yaw, abs=0.5) and flip.roll == pytest.approx(-orig.roll, abs=0.6)
    assert orig.pt2d.shape == (2, 68)
    assert list_300w_lp(root, cache=tmp_path / "list.txt") == [s.image_path for s in samples]  # cached list


def test_biwi_pose_in_hopenet_convention():
    root = shared_path("data", "biwi-sample")
    assert read_biwi_pose(root / "frame_00003_pose.txt") == pytest.approx((3.29, 7.61, -1.57), abs=0.01)
    (s,) = list(read_biwi(root))
    assert s.image_path.name == "frame_00003_rgb.png" and s.yaw == pytest.approx(3.29, abs=0.01)
    assert biwi_angles(np.eye(3)) == pytest.approx((0.0, 0.0, 0.0))


def test_panoptic_labels_full_yaw_range():
    samples = list(read_panoptic(shared_path("data", "panoptic-sample", "labels.txt")))
    assert len(samples) == 4 and all(s.image_path.exists() for s in samples)
    back = samples[1]
    assert back.yaw == pytest.approx(-174.772, abs=1e-3) and back.box == (857, 232, 857 + 220, 232 + 219)
    assert not in_range(back)


def test_bad_label_files_name_the_file(tmp_path):
    bad_mat = tmp_path / "x.mat"
    bad_mat.write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="x.mat: not a 3DDFA .mat"):
        read_pose_mat(bad_mat)
    with pytest.raises(InputFileError, match="label file not found"):
        read_pose_mat(tmp_path / "none.mat")
    labels = tmp_path / "labels.txt"
    labels.write_text("a.jpg;1;2;3\n")
    with pytest.raises(InputFileError, match="line 1: expected 8"):
        list(read_panoptic(labels))
    pose = tmp_path / "p_pose.txt"
    pose.write_text("1 2 3\n")
    with pytest.raises(InputFileError, match="has 3 numbers"):
        read_biwi_pose(pose)
    with pytest.raises(InputFileError, match="AFLW2000 folder not found"):
        list(read_aflw2000(tmp_path / "nope"))
