"""Unit tests of the training pieces: loss values, masking, flip symmetry, splits, config checking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from posebridge.errors import ConfigError
from posebridge.models.bins import BinSpec
from posebridge.offline.datasets import read_300w_lp
from training.config import load_config
from training.data import create_dataset, split_by_group
from training.losses import angle_loss, pose_loss, soft_targets
from training.transforms import Transform, flip_angles, loose_box

SPEC = BinSpec(3, 10.0, -15.0, "center")  # bin angles -10, 0, 10


def hand_batch():
    # sample 0: uniform logits -> p = 1/3 each, expectation 0; label 10 -> bin 2
    # sample 1: logits (0, 0, ln 2) -> p = (1/4, 1/4, 1/2), expectation -2.5 + 5 = 2.5; label -12 -> bin 0
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2.0)]], requires_grad=True)
    return logits, torch.tensor([10.0, -12.0])


def test_multi_loss_matches_hand_computed_values():
    logits, angle = hand_batch()
    out = angle_loss(logits, angle, SPEC, kind="multi", alpha=0.5)
    ce = (math.log(3.0) + math.log(4.0)) / 2
    mse = ((0.0 - 10.0) ** 2 + (2.5 + 12.0) ** 2) / 2  # 155.125
    assert out.ce.item() == pytest.approx(ce, rel=1e-6)
    assert out.mse.item() == pytest.approx(mse, rel=1e-6)
    assert out.total.item() == pytest.approx(ce + 0.5 * mse, rel=1e-6)
    assert out.pred.tolist() == pytest.approx([0.0, 2.5], abs=1e-5)


def test_classification_and_regression_only_variants():
    logits, angle = hand_batch()
    assert angle_loss(logits, angle, SPEC, kind="cls").total.item() == pytest.approx(
        (math.log(3.0) + math.log(4.0)) / 2, rel=1e-6)
    assert angle_loss(logits, angle, SPEC, kind="reg").total.item() == pytest.approx(155.125, rel=1e-6)


def test_soft_targets_are_gaussian_over_bin_centres():
    q = soft_targets(torch.tensor([0.0, 10.0]), SPEC, sigma=10.0)
    assert q.sum(-1).tolist() == pytest.approx([1.0, 1.0])
    e = math.exp(-0.5)
    assert q[0].tolist() == pytest.approx([e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)], rel=1e-5)
    assert q[1].argmax().item() == 2
    logits, angle = hand_batch()
    soft = angle_loss(logits, angle, SPEC, kind="cls", target="soft", sigma=1e-3)  # ~one-hot
    hard = angle_loss(logits, angle, SPEC, kind="cls", target="hard")
    assert soft.total.item() == pytest.approx(hard.total.item(), rel=1e-4)


def test_missing_labels_are_masked_per_angle():
    logits, angle = hand_batch()
    with_nan = angle_loss(logits, torch.tensor([10.0, math.nan]), SPEC, kind="multi", alpha=0.5)
    only_first = angle_loss(logits[:1], angle[:1], SPEC, kind="multi", alpha=0.5)
    assert with_nan.total.item() == pytest.approx(only_first.total.item(), rel=1e-6)
    with_nan.total.backward()
    assert torch.all(logits.grad[1] == 0) and torch.any(logits.grad[0] != 0)
    # out-of-range labels (here 20, beyond [-15, 15)) are masked the same way
    assert not angle_loss(logits, torch.tensor([20.0, -12.0]), SPEC).valid[0]


def test_yaw_only_labels_train_only_the_yaw_head():
    bins = {a: SPEC for a in ("yaw", "pitch", "roll")}
    outs = tuple(torch.randn(4, 3, requires_grad=True) for _ in range(3))
    angles = torch.tensor([[5.0, math.nan, math.nan]] * 4)
    total, parts = pose_loss(outs, angles, bins, kind="multi", alpha=1.0)
    total.backward()
    assert outs[0].grad.abs().sum() > 0
    assert outs[1].grad.abs().sum() == 0 and outs[2].grad.abs().sum() == 0
    assert parts["pitch"].total.item() == 0 and not parts["pitch"].valid.any()


def test_flip_negates_yaw_and_roll_and_mirrors_pixels():
    rng_img = np.random.default_rng(1)
    image = rng_img.integers(0, 255, (80, 100, 3), dtype=np.uint8)
    angles = np.array([30.0, -10.0, 5.0], np.float32)
    kw = dict(input_size=32, resize=36, train=True, blur=0.0)
    box = (30.0, 20.0, 70.0, 60.0)
    plain, a0 = Transform(flip=0.0, **kw).pixels(image, box, angles, np.random.default_rng(7))
    flipped, a1 = Transform(flip=1.0, **kw).pixels(image, box, angles, np.random.default_rng(7))
    assert a0.tolist() == [30.0, -10.0, 5.0]
    assert a1.tolist() == [-30.0, -10.0, -5.0]
    assert np.array_equal(flipped, plain[:, ::-1])
    assert np.isnan(flip_angles(np.array([1.0, np.nan, np.nan]))[1:]).all()


def test_box_jitter_limits_per_axis():
    """shift_jitter bounds the horizontal (and by default the vertical) shift; shift_jitter_y its own."""
    image = np.zeros((120, 120, 3), np.uint8)

    def offsets(**kw):
        t = Transform(input_size=112, resize=112, train=True, scale_jitter=0.1, **kw)
        rng = np.random.default_rng(0)
        boxes = np.array([t.crop_box(image, None, rng) for _ in range(2000)])
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - 60
        return centre[:, 0], centre[:, 1], boxes[:, 2] - boxes[:, 0]

    dx, dy, side = offsets(shift_jitter=0.1)
    assert 11.0 < np.abs(dx).max() <= 12.0 and 11.0 < np.abs(dy).max() <= 12.0
    assert 108.0 <= side.min() < 109.0 and 131.0 < side.max() <= 132.0
    dx2, dy2, side2 = offsets(shift_jitter=0.1, shift_jitter_y=0.02)
    assert np.array_equal(dx2, dx) and np.array_equal(side2, side)  # same draws, only y is narrower
    assert 2.2 < np.abs(dy2).max() <= 2.4 and np.allclose(dy2, dy / 5)


def test_300wlp_flip_twins_have_mirrored_labels(shared):
    root = shared("data", "300w_lp-samples")
    samples = {(s.extra["subset"], s.image_path.stem): s for s in read_300w_lp(root)}
    pairs = [(s, samples[(k[0] + "_Flip", k[1])]) for k, s in samples.items()
             if not k[0].endswith("_Flip") and (k[0] + "_Flip", k[1]) in samples]
    assert len(pairs) == 4
    for s, f in pairs:  # 300W_LP re-fitted the mirrored photos: equal up to ~1.5 degrees of fit noise
        assert f.yaw == pytest.approx(-s.yaw, abs=2.0)
        assert f.roll == pytest.approx(-s.roll, abs=2.0)
        assert f.pitch == pytest.approx(s.pitch, abs=2.0)
        assert f.group == s.group  # the twin belongs to the same source photo


def test_split_keeps_every_source_group_on_one_side():
    groups = [f"HELEN_{i // 8}_1" for i in range(400)]  # 50 photos x (4 rotations x 2 flips)
    train, val = split_by_group(groups, 0.1, seed=3)
    assert sorted(train + val) == list(range(400))
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert len({groups[i] for i in val}) == 5
    assert split_by_group(groups, 0.1, seed=3) == (train, val)  # deterministic
    assert split_by_group(groups, 0.1, seed=4)[1] != val  # the seed matters
    assert split_by_group(["a", "a"], 0.5) == ([0, 1], [])  # one group cannot be split


def test_split_by_source_on_300wlp_samples(shared):
    ds = create_dataset("w300lp", {"root": str(shared("data", "300w_lp-samples"))})
    assert len(ds) == 9 and len(set(ds.groups)) == 3
    train, val = split_by_group(ds.groups, 0.3, seed=0)
    assert val and train
    assert not {ds.groups[i] for i in train} & {ds.groups[i] for i in val}


def test_loose_box_is_square_and_contains_the_landmarks():
    box = (10.0, 20.0, 50.0, 80.0)
    x0, y0, x1, y1 = loose_box(box, 0.3)
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 < 10 and y0 < 20 - 2 * 0.3 * 60 + 1e-6 and x1 > 50 and y1 > 80


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlr = 1e-3\nlearning_rate = 2\n")
    with pytest.raises(ConfigError, match="optim.learning_rate: unknown key"):
        load_config(bad)
    with pytest.raises(ConfigError, match="optim.batch_size: expected an integer"):
        load_config(None, ["optim.batch_size=big"])
    with pytest.raises(ConfigError, match="model.backbone"):
        load_config(None, ["model.backbone=vgg"])
    cfg = load_config(None, ["optim.lr=3e-3", "data.options.root=/x", "loss.target=soft"])
    assert cfg.optim.lr == 3e-3 and cfg.data.options == {"root": "/x"} and cfg.loss.target == "soft"


def test_unknown_dataset_and_option_are_config_errors():
    with pytest.raises(ConfigError, match="unknown dataset"):
        create_dataset("nope", {})
    with pytest.raises(ConfigError, match="data.options.colour"):
        create_dataset("w300lp", {"root": ".", "colour": 1})


def test_yaw_crops_reader_counts_out_of_range_and_refuses_aflw2000_names(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("image,yaw_deg\na.jpg,10\nb.jpg,-120\nc.jpg,99\n")
    ds = create_dataset("aflw_yaw_crops", {"root": str(tmp_path)})
    assert len(ds) == 2 and ds.skipped["out of range"] == 1
    assert math.isnan(ds.records[0].angles[1]) and math.isnan(ds.records[0].angles[2])
    banned = tmp_path / "aflw2000"
    banned.mkdir()
    (banned / "c.jpg").write_bytes(b"")
    with pytest.raises(Exception, match="AFLW2000 image"):
        create_dataset("aflw_yaw_crops", {"root": str(tmp_path), "exclude": str(banned)})
