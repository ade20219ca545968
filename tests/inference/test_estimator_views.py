"""Test-time views (Estimator.zooms + flip averaging): each face's estimate is the mean over its zoomed
crops and their mirror images, in one backend call, whatever the batch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from posebridge.errors import ConfigError
from posebridge.inference.crops import crop_square, zoom_box
from posebridge.inference.estimator import Estimator, parse_zooms
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.models.network import build_model


def estimator(zooms=None, flip=True) -> Estimator:
    torch.manual_seed(0)
    meta = ModelMeta(name="test-lenet", backbone="lenet", input_size=48)
    meta.crop = CropSpec(protocol="3ddfa")
    meta.extra = {"flip_average": flip}
    if zooms is not None:
        meta.extra["tta_zooms"] = list(zooms)
    return Estimator.from_model(build_model("lenet").eval(), meta, device="cpu")


def faces(n: int = 3) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    rng = np.random.default_rng(1)
    return [(rng.integers(0, 255, (90, 120, 3), np.uint8), (20.0 + 5 * i, 10.0, 80.0 + 5 * i, 70.0))
            for i in range(n)]


def test_zoom_box_scales_about_the_centre():
    assert zoom_box((10.0, 20.0, 30.0, 60.0), 1.5) == pytest.approx((5.0, 10.0, 35.0, 70.0))
    assert zoom_box((10.0, 20.0, 30.0, 60.0), 1.0) == (10.0, 20.0, 30.0, 60.0)


@pytest.mark.parametrize("flip", [True, False])
def test_views_average_single_view_estimates(flip):
    zooms = (0.9, 1.0, 1.1)
    multi, single = estimator(zooms, flip), estimator(None, flip)
    items = faces()
    got = np.array([p.angles + p.stds for p in multi.predict_rois(items)])
    per_zoom = []
    for z in zooms:
        crops = [crop_square(img, zoom_box(roi, z), 48) for img, roi in items]
        per_zoom.append([p.angles + p.stds for p in single.predict_views(crops)])
    assert got == pytest.approx(np.mean(per_zoom, axis=0), abs=1e-4)
    assert not np.allclose(got, per_zoom[1], atol=1e-3)  # the views do change the estimate


def test_flip_average_negates_yaw_and_roll_of_the_mirror():
    est = estimator((1.0,), flip=True)
    plain = copy.copy(est)
    plain.meta = copy.deepcopy(est.meta)
    plain.meta.extra["flip_average"] = False
    img, roi = faces(1)[0]
    crop = crop_square(img, roi, 48)
    a, m = plain.predict_views([crop])[0], plain.predict_views([np.ascontiguousarray(crop[:, ::-1])])[0]
    both = est.predict_views([crop])[0]
    assert both.angles == pytest.approx(((a.yaw - m.yaw) / 2, (a.pitch + m.pitch) / 2, (a.roll - m.roll) / 2),
                                        abs=1e-4)


def test_single_view_model_is_unchanged_and_bad_view_counts_are_refused():
    est = estimator(None)
    assert est.zooms == (1.0,)
    img, roi = faces(1)[0]
    assert est.predict_rois([(img, roi)])[0].angles == pytest.approx(
        est.predict_views([crop_square(img, roi, 48)])[0].angles)
    with pytest.raises(ValueError, match="views per face"):
        estimator((0.9, 1.0, 1.1)).predict_views([crop_square(img, roi, 48)] * 2)


def test_load_can_replace_the_models_views_and_refuses_bad_ones():
    assert Estimator.load("posebridge-small", device="cpu", zooms=[1.0]).zooms == (1.0,)
    assert Estimator.load("posebridge-small", device="cpu", zooms=[0.9, 1, 1.1]).zooms == (0.9, 1.0, 1.1)
    for bad in ([0.1], ["1"], [True]):
        with pytest.raises(ConfigError, match="model.zooms"):
            Estimator.load("posebridge-small", device="cpu", zooms=bad)


def test_parse_zooms_reads_a_comma_list_and_names_the_option_when_bad():
    assert parse_zooms("0.92,1,1.08") == (0.92, 1.0, 1.08)
    assert parse_zooms("1") == (1.0,)
    for bad in ("", "1,,2", "x", "3", "0.9;1"):
        with pytest.raises(ConfigError, match="^--zooms ") as info:
            parse_zooms(bad)
        assert "\n" not in str(info.value)
