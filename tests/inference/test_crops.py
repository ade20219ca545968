"""Crop geometry: loose squares, the 3DDFA ROI, HopeNet's AFLW2000 box, sub-pixel crops with
padding, and the colour order / normalisation of the batch."""

from __future__ import annotations

import numpy as np
import pytest

from posebridge.inference.crops import crop_square, face_roi, roi_3ddfa, roi_uses_yaw, square_box, to_batch
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.offline.pose_eval import hopenet_loose_box


def test_square_box_enlarges_and_squares_about_the_centre():
    x0, y0, x1, y1 = square_box((10, 20, 50, 100), 0.25)  # w 40, h 80 -> side 80 * 1.5
    assert (x1 - x0, y1 - y0) == pytest.approx((120, 120))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((30, 60))


def test_roi_3ddfa_is_sqrt2_times_longer_side():
    pts = np.array([[100, 200, 150], [50, 90, 130]], dtype=float)  # box 100 x 80
    x0, y0, x1, y1 = roi_3ddfa(pts)
    assert x1 - x0 == pytest.approx(np.sqrt(2) * 100)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((150, 90))


def test_face_roi_uses_the_models_convention():
    box = (0, 0, 100, 100)
    assert face_roi(box, CropSpec("loose", 0.1)) == pytest.approx((-10, -10, 110, 110))
    spec = CropSpec("3ddfa", box_map={"dx": 0.0, "dy": 0.1, "scale": 1.5})
    assert face_roi(box, spec) == pytest.approx((-25, -15, 125, 135))


def test_yaw_term_slides_the_3ddfa_roi_sideways():
    box = (0.0, 0.0, 100.0, 100.0)
    spec = CropSpec("3ddfa", box_map={"dx": 0.01, "dx_yaw": 0.3, "dy": 0.1, "scale": 1.5})
    straight = face_roi(box, spec)
    assert face_roi(box, spec, yaw=0.0) == pytest.approx(straight)
    assert (straight[0] + straight[2]) / 2 == pytest.approx(51.0)  # no yaw known: the intercept only
    right, left = face_roi(box, spec, yaw=30.0), face_roi(box, spec, yaw=-30.0)
    assert (right[0] + right[2]) / 2 == pytest.approx(51.0 + 100 * 0.3 * 0.5)
    assert (left[0] + left[2]) / 2 == pytest.approx(51.0 - 100 * 0.3 * 0.5)
    assert right[1] == straight[1] and right[2] - right[0] == pytest.approx(150.0)
    assert face_roi(box, CropSpec("loose", 0.1), yaw=30.0) == face_roi(box, CropSpec("loose", 0.1))
    assert roi_uses_yaw(spec) and not roi_uses_yaw(CropSpec("loose", 0.1))
    assert not roi_uses_yaw(CropSpec("3ddfa", box_map={"dx": 0.0}), detector="__none__")


def test_hopenet_loose_box_ignores_missing_points_and_loosens_like_hopenet():
    pt2d = np.array([[100, 200, -1, 150], [100, 200, -1, 150]], dtype=float)  # box 100..200 both ways
    x0, y0, x1, y1 = hopenet_loose_box(pt2d)
    # HopeNet: x 60..256 (left 0.4w, right 0.4 * 1.4w), y 60..216 (0.4h above, 0.12 * 1.4h below,
    # truncated to int) -> the centred square of the shorter side (156) about (158, 138)
    assert x1 - x0 == pytest.approx(156) and y1 - y0 == pytest.approx(156)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((158, 138))


def test_crop_square_is_exact_and_pads_outside_the_frame():
    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = 255
    out = crop_square(img, (30, 30, 70, 70), 40)  # identity scale, offset 30
    assert out.shape == (40, 40, 3)
    assert out[10:30, 10:30].min() == 255 and out[:10].max() == 0
    padded = crop_square(img, (-50, -50, 50, 50), 100)  # top-left quarter outside the image
    assert padded[:50, :50].max() == 0 and padded[90:, 90:].max() == 255


def test_large_downscale_is_antialiased_and_aligned():
    checker = (np.indices((800, 800)).sum(axis=0) % 2 * 255).astype(np.uint8)
    img = np.dstack([checker] * 3)
    out = crop_square(img, (0, 0, 800, 800), 100)  # 8x smaller: area averaging gives flat grey
    assert abs(float(out.mean()) - 127.5) < 3 and out.std() < 10
    marker = np.zeros((1000, 1000, 3), np.uint8)
    marker[600:700, 300:400] = 255  # a 100 px square -> 10 px in a 1/10 crop of the box below
    small = crop_square(marker, (100, 100, 1100, 1100), 100)
    ys, xs = np.nonzero(small[..., 0] > 127)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 29, 50, 59)


def test_to_batch_colour_order_and_normalisation():
    crop = np.zeros((4, 4, 3), np.uint8)
    crop[..., 2] = 255  # pure red in BGR
    meta = ModelMeta("m", "lenet", input_size=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), color="rgb")
    batch = to_batch([crop], meta)
    assert batch.shape == (1, 3, 4, 4)
    assert batch[0, 0].min() == 1.0 and batch[0, 2].max() == 0.0  # channel 0 = R for rgb models
    meta.color = "bgr"
    assert to_batch([crop], meta)[0, 2].min() == 1.0
    meta.color, meta.mean, meta.std = "rgb", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    assert to_batch([crop], meta)[0, 0, 0, 0].item() == pytest.approx(2.0)
