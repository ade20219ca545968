"""Label-exact in-plane rotation and the box head's targets (issue 13): a crop turned by theta changes
the pose to Rz(theta) R in the camera frame; turning back by -theta restores it; known cases by hand;
the box target says exactly where the un-jittered ROI is; and the packaged model agrees with the sign."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posebridge.formats.rotation import dataset_angles, dataset_matrix, rotate_in_plane
from posebridge.inference.crops import apply_offset
from tests.helpers.paths import SYNTHETIC_FACE
from training.transforms import Transform


def test_dataset_angles_inverts_dataset_matrix():
    rng = np.random.default_rng(0)
    a = rng.uniform(-89, 89, (2000, 3))
    np.testing.assert_allclose(dataset_angles(dataset_matrix(a[:, 0], a[:, 1], a[:, 2])), a, atol=1e-9)


def test_rotation_and_back_gives_the_original_angles():
    rng = np.random.default_rng(1)
    a = rng.uniform(-80, 80, (2000, 3))
    theta = rng.uniform(-45, 45, 2000)
    there = rotate_in_plane(a[:, 0], a[:, 1], a[:, 2], theta)
    back = rotate_in_plane(there[:, 0], there[:, 1], there[:, 2], -theta)
    np.testing.assert_allclose(back, a, atol=1e-9)


@pytest.mark.parametrize("pose, theta, expected", [
    ((0, 0, 0), 20, (0, 0, 20)),  # a frontal face: in-plane rotation is pure roll
    ((0, 0, 10), -25, (0, 0, -15)),
    ((30, 0, 0), 90, (0, 30, 90)),  # turned right, image turned a quarter clockwise: now looking up
    ((0, 20, 0), 90, (-20, 0, 90)),  # looking up, turned a quarter clockwise: now turned left
    ((40, 10, -5), 0, (40, 10, -5)),
])
def test_known_cases_by_hand(pose, theta, expected):
    np.testing.assert_allclose(rotate_in_plane(*pose, theta), expected, atol=1e-9)


def crop_transform(**kw) -> Transform:
    return Transform(input_size=112, resize=112, train=True, flip=0.0, blur=0.0, **kw)


def test_transform_rotates_pixels_and_labels_together():
    face = cv2.imread(str(SYNTHETIC_FACE))
    t = crop_transform(rotate_deg=30.0)
    angles0 = np.array([10.0, 5.0, 0.0], np.float32)
    crop, angles, target = t.sample(face, None, angles0, np.random.default_rng(3))
    # recover theta from the label and check the pixels were turned by the same angle clockwise
    theta = float(dataset_angles(
        dataset_matrix(*angles) @ np.linalg.inv(dataset_matrix(10.0, 5.0, 0.0)))[2])
    m = cv2.getRotationMatrix2D((56, 56), -theta, 112 / face.shape[1])
    m[:, 2] += 56 - m @ np.array([face.shape[1] / 2, face.shape[0] / 2, 1.0])
    want = cv2.warpAffine(face, m, (112, 112), flags=cv2.INTER_LINEAR)
    assert abs(theta) > 1 and np.abs(crop.astype(int) - want).mean() < 1.0
    assert np.allclose(target, 0.0, atol=1e-6)  # no jitter: the crop is the ROI


def test_a_minimum_turn_keeps_every_rotation_at_least_that_large():
    """`rotate_min_deg` draws the turn's size from [min, rotate_deg], either sign: a frontal face's
    label roll is then the turn itself, and none is smaller than the minimum."""
    face = cv2.imread(str(SYNTHETIC_FACE))
    t = crop_transform(rotate_deg=80.0, rotate_min_deg=45.0)
    rolls = [float(t.sample(face, None, np.zeros(3, np.float32), np.random.default_rng(s))[1][2])
             for s in range(40)]
    assert min(abs(r) for r in rolls) >= 45.0 - 1e-4 and max(abs(r) for r in rolls) <= 80.0 + 1e-4
    assert min(rolls) < 0 < max(rolls)


def test_a_minimum_turn_larger_than_the_range_is_refused():
    from posebridge.errors import ConfigError
    from training.config import TrainConfig, validate

    cfg = TrainConfig()
    cfg.data.rotate_deg, cfg.data.rotate_min_deg = 30.0, 45.0
    with pytest.raises(ConfigError, match="data.rotate_min_deg: must be in"):
        validate(cfg)


def test_decoy_corners_blank_an_unturned_crop_and_leave_its_labels():
    """`rotate_decoy_p` blanks the corners a turn by another angle would uncover, on a sample that is not
    turned: the corners appear, the labels do not move (corners must not tell the roll)."""
    white = np.full((120, 120, 3), 255, np.uint8)
    labels = np.array([5.0, -3.0, 2.0], np.float32)
    plain = crop_transform(rotate_deg=80.0, rotate_min_deg=45.0, rotate_p=0.0)
    decoy = crop_transform(rotate_deg=80.0, rotate_min_deg=45.0, rotate_p=0.0, rotate_decoy_p=1.0)
    crop, angles, _ = plain.sample(white, None, labels, np.random.default_rng(0))
    assert (crop > 0).all()
    crop, angles, _ = decoy.sample(white, None, labels, np.random.default_rng(0))
    black = (crop == 0).all(axis=2)
    assert black.mean() > 0.05 and int(black[[0, 0, -1, -1], [0, -1, 0, -1]].sum()) >= 2
    assert not black[56, 56] and np.allclose(angles, labels)


def test_a_circle_hides_where_a_turned_crop_ends():
    """`rotate_circle_p`: a turned crop is black outside its inscribed circle (so no straight edge of
    the turned image shows) and keeps the face inside; an unturned one only with that probability."""
    white = np.full((120, 120, 3), 255, np.uint8)
    labels = np.zeros(3, np.float32)
    # a turn of 86-89 degrees: the turned square nearly covers the crop, so its corners would be white
    turned = crop_transform(rotate_deg=89.0, rotate_min_deg=86.0, rotate_p=1.0, rotate_circle_p=1e-9)
    crop, angles, _ = turned.sample(white, None, labels, np.random.default_rng(0))
    assert abs(angles[2]) >= 86 - 1e-4
    black = (crop == 0).all(axis=2)
    y, x = np.ogrid[:112, :112]
    inside = (x - 55.5) ** 2 + (y - 55.5) ** 2 <= 54**2
    assert black[6, 6] and black[-7, -7] and not black[inside].any()
    unturned = crop_transform(rotate_deg=80.0, rotate_p=0.0, rotate_circle_p=1e-9)
    assert (unturned.sample(white, None, labels, np.random.default_rng(0))[0] > 0).all()


def test_a_tilt_limit_turns_only_faces_that_look_at_the_camera():
    face = cv2.imread(str(SYNTHETIC_FACE))
    t = crop_transform(rotate_deg=80.0, rotate_min_deg=45.0, rotate_p=1.0, rotate_max_tilt_deg=20.0)
    frontal, turned = np.array([5.0, -8.0, 1.0], np.float32), np.array([35.0, 0.0, 1.0], np.float32)
    assert abs(t.sample(face, None, frontal, np.random.default_rng(1))[1][2]) > 40
    assert np.allclose(t.sample(face, None, turned, np.random.default_rng(1))[1], turned)


def test_box_target_points_back_to_the_unjittered_roi():
    face = cv2.imread(str(SYNTHETIC_FACE))
    rng = np.random.default_rng(5)
    t = crop_transform(scale_jitter=0.2, shift_jitter=0.15)
    roi = (0.0, 0.0, float(face.shape[1]), float(face.shape[0]))
    for _ in range(20):
        state = rng.bit_generator.state
        crop, _, target = t.sample(face, None, np.zeros(3, np.float32), rng)
        rng2 = np.random.default_rng()
        rng2.bit_generator.state = state
        cut = t.crop_box(face, None, rng2)  # the same draws: the box actually cut
        np.testing.assert_allclose(apply_offset(cut, target), roi, atol=1e-3)


def test_flip_mirrors_the_box_target():
    face = cv2.imread(str(SYNTHETIC_FACE))
    kw = dict(shift_jitter=0.2)
    _, _, plain = crop_transform(**kw).sample(face, None, np.zeros(3, np.float32), np.random.default_rng(9))
    t = Transform(input_size=112, resize=112, train=True, flip=1.0, blur=0.0, **kw)
    _, _, flipped = t.sample(face, None, np.zeros(3, np.float32), np.random.default_rng(9))
    assert flipped[0] == pytest.approx(-plain[0]) and flipped[1:] == pytest.approx(plain[1:])


def test_the_packaged_model_sees_the_roll_the_labels_say():
    """Real weights on real training crops: turning the crop by theta moves the predicted roll by about
    theta, the direction `rotate_in_plane` uses for the labels."""
    from posebridge.inference.estimator import Estimator
    from tests.helpers.paths import shared_path

    crops_dir = shared_path("data", "aflw-yaw-crops", "images")
    est = Estimator.load("posebridge-small", device="cpu")
    shifts = []
    for name in ("image04378.jpg", "image04379.jpg", "image04384.jpg"):
        img = cv2.imread(str(crops_dir / name))
        h, w = img.shape[:2]
        base = est.predict_crops([img])[0].roll
        turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), -15.0, 1.0), (w, h))
        shifts.append(est.predict_crops([turned])[0].roll - base)
    assert all(8.0 < s < 22.0 for s in shifts), shifts
