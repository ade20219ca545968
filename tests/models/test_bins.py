"""Bin decoding: one-hot logits decode to the convention's angle for that bin; the spread is the
softmax standard deviation; angle_to_bin inverts it."""

from __future__ import annotations

import pytest
import torch

from posebridge.models.bins import BinSpec, angle_to_bin, decode
from posebridge.models.network import CENTER_BINS, HOPENET_BINS, WHENET_BINS

ONE_HOT = 1e4  # a logit this large makes the softmax exactly one-hot in float32


@pytest.mark.parametrize(
    "spec, k, angle",
    [
        (HOPENET_BINS["yaw"], 0, -99.0),  # HopeNet: 3 * k - 99 (left edge)
        (HOPENET_BINS["yaw"], 33, 0.0),
        (HOPENET_BINS["pitch"], 65, 96.0),
        (WHENET_BINS["yaw"], 0, -180.0),  # WHENet yaw: 3 * k - 180
        (WHENET_BINS["yaw"], 60, 0.0),
        (WHENET_BINS["yaw"], 119, 177.0),
        (WHENET_BINS["roll"], 10, -69.0),
        (CENTER_BINS["yaw"], 0, -97.5),  # posebridge-trained: bin centre
        (CENTER_BINS["yaw"], 65, 97.5),
    ],
)
def test_one_hot_decodes_to_its_bins_angle(spec, k, angle):
    logits = torch.zeros(2, spec.num_bins)
    logits[:, k] = ONE_HOT
    mean, std = decode(logits, spec)
    assert torch.allclose(mean, torch.full((2,), angle), atol=1e-4)
    assert torch.allclose(std, torch.zeros(2), atol=1e-3)


def test_two_equal_bins_decode_between_with_their_spread():
    spec = BinSpec(66, 3.0, -99.0, "left")
    logits = torch.full((66,), -ONE_HOT)
    logits[[10, 12]] = 0.0  # bins at -69 and -63, half each
    mean, std = decode(logits, spec)
    assert mean.item() == pytest.approx(-66.0, abs=1e-4)
    assert std.item() == pytest.approx(3.0, abs=1e-4)


def test_uniform_logits_spread_and_center():
    spec = BinSpec(66, 3.0, -99.0, "center")
    mean, std = decode(torch.zeros(66), spec)
    assert mean.item() == pytest.approx(0.0, abs=1e-4)
    assert std.item() == pytest.approx(3.0 * ((66**2 - 1) / 12) ** 0.5, rel=1e-4)  # discrete uniform


def test_decode_rejects_wrong_bin_count():
    with pytest.raises(ValueError, match="120 bins"):
        decode(torch.zeros(1, 120), BinSpec())


def test_angle_to_bin_inverts_left_edges_and_masks_out_of_range():
    spec = WHENET_BINS["yaw"]
    idx, valid = angle_to_bin(torch.tensor([-180.0, -0.5, 0.0, 1.5, 179.9, 180.0, float("nan")]), spec)
    assert idx[:5].tolist() == [0, 59, 60, 60, 119]
    assert valid.tolist() == [True, True, True, True, True, False, False]
    back, _ = decode(torch.nn.functional.one_hot(idx[:5], 120).float() * ONE_HOT, spec)
    assert back.tolist() == pytest.approx([-180.0, -3.0, 0.0, 0.0, 177.0], abs=1e-4)


def test_binspec_round_trip_and_bad_offset():
    spec = BinSpec(120, 3.0, -180.0, "left")
    assert BinSpec.from_dict(spec.to_dict()) == spec
    assert spec.high == 180.0
    with pytest.raises(ValueError, match="offset"):
        BinSpec(offset="middle")
