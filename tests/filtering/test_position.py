"""Head position (posebridge.filtering.position): the pinhole geometry from a face box, the filter in
metres, the stream bookkeeping (`pos` in the message: neutral, recenter in the neutral head's axes,
mirror, lost, disabled), replay --refilter with the recorded settings, and the `[position]` / `[vmc]` /
`[opentrack]` config checks (one-line errors naming the field and its range)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posebridge.config import ServeConfig, validate
from posebridge.errors import ConfigError
from posebridge.filtering.config import FilterConfig
from posebridge.filtering.position import (
    PositionConfig,
    PositionTracker,
    box_position,
    focal_px,
    measurement_std,
    settings_from,
)
from posebridge.filtering.streams import Measurement, StreamSet, build_message

W, H = 640, 480
F60 = 320.0 / math.tan(math.radians(30.0))  # focal length of a 640-px frame at 60 degrees


def box_at(x: float, y: float, depth: float, face_w: float = 0.15, f: float = F60) -> tuple[float, ...]:
    """The face box a pinhole camera sees for a head at (x right, y up, depth) metres (module axes: the
    person's right is image left)."""
    w = f * face_w / depth
    cx, cy = W / 2 - x * f / depth, H / 2 - y * f / depth
    return (cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2)


def test_focal_length_and_centred_box():
    assert focal_px(640, 90.0) == pytest.approx(320.0)
    assert focal_px(640, 60.0) == pytest.approx(F60)
    s = PositionConfig()
    w = F60 * 0.15 / 0.6  # 138.56 px at 0.6 m
    x, y, z = box_position((320 - w / 2, 240 - w / 2, 320 + w / 2, 240 + w / 2), (W, H), s)
    assert (x, y, z) == pytest.approx((0.0, 0.0, -0.6))


@pytest.mark.parametrize("x, y, depth", [(0.1, 0.0, 0.6), (-0.2, 0.05, 0.9), (0.0, -0.1, 0.4),
                                         (0.3, 0.2, 1.5)])
def test_box_position_inverts_the_pinhole_projection(x, y, depth):
    got = box_position(box_at(x, y, depth), (W, H), PositionConfig())
    assert got == pytest.approx((x, y, -depth), abs=1e-9)


def test_image_directions():
    """A face on the image's left is the person's right (+x); higher in the image is +y; bigger is
    nearer (z closer to 0)."""
    s = PositionConfig()
    left = box_position((100, 200, 200, 300), (W, H), s)
    right = box_position((440, 200, 540, 300), (W, H), s)
    assert left[0] > 0 > right[0]
    high = box_position((270, 50, 370, 150), (W, H), s)
    assert high[1] > 0
    big = box_position((220, 140, 420, 340), (W, H), s)
    assert big[2] > left[2]  # -0.42 > -0.83
    assert box_position((10, 10, 10, 50), (W, H), s) is None  # zero width
    assert box_position((10, 10, 50, 50), (0, 0), s) is None
    assert box_position((float("nan"), 10, 50, 50), (W, H), s) is None


def test_hfov_and_face_width_scale_depth():
    b = box_at(0.0, 0.0, 0.6)
    base = box_position(b, (W, H), PositionConfig())[2]
    assert box_position(b, (W, H), PositionConfig(face_width_m=0.30))[2] == pytest.approx(2 * base)
    wide = box_position(b, (W, H), PositionConfig(hfov_deg=90.0))[2]
    assert wide == pytest.approx(base * 320.0 / F60)  # a wider lens: the same box is nearer


def test_measurement_std_grows_with_distance():
    s = PositionConfig(box_noise_px=2.0)
    near, far = measurement_std(box_at(0, 0, 0.4), (W, H), s), measurement_std(box_at(0, 0, 1.2), (W, H), s)
    assert near[0] == pytest.approx(2.0 * 0.4 / F60)
    assert near[2] == pytest.approx(0.4 * 2.0 / (F60 * 0.15 / 0.4))
    assert far[2] > 8 * near[2]  # depth error ~ d^2


def run_tracker(boxes, fps=30.0, settings=None):
    tr = PositionTracker(settings or PositionConfig())
    out = []
    for i, b in enumerate(boxes):
        out.append(tr.update(i / fps, b, (W, H)))
    return tr, out


def test_filter_smooths_a_still_head_and_follows_a_lean():
    rng = np.random.default_rng(0)
    still = [tuple(np.array(box_at(0.0, 0.0, 0.6)) + rng.normal(0, 2.0, 4)) for _ in range(600)]
    raw = np.array([box_position(b, (W, H), PositionConfig()) for b in still])
    _, out = run_tracker(still)
    filt = np.array(out[30:])
    # measured over seeds 0-4: depth jitter down 3.4-4.6x, sideways 2.3-2.5x
    assert raw[30:, 2].std() > 3.0 * filt[:, 2].std()
    assert raw[30:, 0].std() > 2.0 * filt[:, 0].std()
    assert abs(filt[:, 2].mean() + 0.6) < 0.01
    # a 10 cm lean to the side, held: within 1 cm after 0.2 s
    lean = [box_at(0.0, 0.0, 0.6)] * 30 + [box_at(0.10, 0.0, 0.6)] * 30
    _, out = run_tracker(lean)
    assert abs(out[30 + 6][0] - 0.10) < 0.01 and abs(out[-1][0] - 0.10) < 1e-3


def test_dropout_predicts_then_lost_then_restarts():
    boxes = [box_at(0.0, 0.0, 0.6)] * 10 + [None] * 30 + [box_at(0.2, 0.0, 0.8)] * 2
    tr, out = run_tracker(boxes)
    assert out[9] is not None and out[12] is not None  # predicted through a short dropout
    assert out[39] is None  # lost after lost_after_s (0.5 s)
    assert out[40] == pytest.approx((0.2, 0.0, -0.8))  # restarts at the new measurement, no glide


def test_kind_none_passes_positions_through():
    tr = PositionTracker(PositionConfig(), FilterConfig(kind="none"))
    tr.update(0.0, box_at(0.1, 0.0, 0.6), (W, H))
    assert tr.update(0.033, box_at(-0.1, 0.0, 0.6), (W, H)) == pytest.approx((-0.1, 0.0, -0.6))


# ----------------------------------------------------------------------------------- in the stream

def messages(streams: StreamSet, boxes, angles=(0.0, 0.0, 0.0), t0=0.0, mirror=False):
    out = []
    for i, b in enumerate(boxes):
        t = t0 + i / 30.0
        ms = [] if b is None else [Measurement(0, b, angles, (3.0, 3.0, 3.0))]
        out += [build_message(u, i, t, t, (W, H), mirror) for u in streams.update(t, ms, (W, H))]
    return out


def test_message_pos_relative_to_the_default_neutral():
    streams = StreamSet(FilterConfig())
    msgs = messages(streams, [box_at(0.05, -0.02, 0.5)] * 20)
    assert msgs[-1].pos == pytest.approx([0.05, -0.02, 0.1], abs=1e-6)  # 0.1 m nearer than 0.6 m
    streams = StreamSet(FilterConfig(), position=PositionConfig(neutral_distance_m=0.5))
    assert messages(streams, [box_at(0.05, -0.02, 0.5)] * 20)[-1].pos == pytest.approx([0.05, -0.02, 0.0],
                                                                                      abs=1e-6)


def test_pos_nil_when_lost_or_disabled_and_mirror_negates_x():
    streams = StreamSet(FilterConfig())
    msgs = messages(streams, [box_at(0.1, 0.0, 0.6)] * 5 + [None] * 20)
    assert msgs[4].pos is not None and msgs[8].pos is not None  # predicted in the dropout
    assert not msgs[-1].tracked and msgs[-1].pos is None
    off = StreamSet(FilterConfig(), position=PositionConfig(enabled=False))
    assert all(m.pos is None for m in messages(off, [box_at(0.1, 0.0, 0.6)] * 5))
    mirrored = messages(StreamSet(FilterConfig()), [box_at(0.1, 0.05, 0.5)] * 10, mirror=True)[-1]
    assert mirrored.pos == pytest.approx([-0.1, 0.05, 0.1], abs=1e-6)


def test_recenter_sets_the_neutral_position_in_the_neutral_heads_axes():
    streams = StreamSet(FilterConfig())
    messages(streams, [box_at(0.2, 0.0, 0.6)] * 30, angles=(90.0, 0.0, 0.0))
    streams.recenter()
    msgs = messages(streams, [box_at(0.2, 0.0, 0.6)] * 3, angles=(90.0, 0.0, 0.0), t0=1.0)
    assert msgs[-1].pos == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    # The neutral head is turned 90 degrees to its right (looking at a screen on the person's right).
    # Moving 10 cm to the person's right (camera x) is then moving *forward*, towards that screen: +z.
    msgs = messages(streams, [box_at(0.3, 0.0, 0.6)] * 30, angles=(90.0, 0.0, 0.0), t0=2.0)
    assert msgs[-1].pos == pytest.approx([0.0, 0.0, 0.1], abs=2e-4)
    # and 10 cm towards the camera is to the neutral head's left (-x)
    msgs = messages(streams, [box_at(0.2, 0.0, 0.5)] * 30, angles=(90.0, 0.0, 0.0), t0=4.0)
    assert msgs[-1].pos == pytest.approx([-0.1, 0.0, 0.0], abs=2e-4)
    streams.recenter(reset=True)
    msgs = messages(streams, [box_at(0.2, 0.0, 0.5)] * 2, angles=(90.0, 0.0, 0.0), t0=6.0)
    assert msgs[-1].pos == pytest.approx([0.2, 0.0, 0.1], abs=2e-4)


def test_replayed_recenter_event_sets_the_position_neutral_too():
    streams = StreamSet(FilterConfig())
    messages(streams, [box_at(0.1, 0.1, 0.7)] * 20)
    streams.set_neutral([0.0, 0.0, 0.0])
    assert messages(streams, [box_at(0.1, 0.1, 0.7)], t0=1.0)[-1].pos == pytest.approx([0, 0, 0], abs=1e-6)


def test_all_faces_streams_have_their_own_positions():
    streams = StreamSet(FilterConfig(), all_faces=True)
    for i in range(10):
        t = i / 30
        ms = [Measurement(1, box_at(0.2, 0, 0.6), (0, 0, 0), (3, 3, 3)),
              Measurement(2, box_at(-0.2, 0, 0.9), (0, 0, 0), (3, 3, 3))]
        msgs = [build_message(u, 0, t, t, (W, H), False) for u in streams.update(t, ms, (W, H))]
    by_face = {m.face_id: m.pos for m in msgs}
    assert by_face[1] == pytest.approx([0.2, 0.0, 0.0], abs=1e-6)
    assert by_face[2] == pytest.approx([-0.2, 0.0, -0.3], abs=1e-6)


def test_replay_refilter_uses_the_recorded_position_settings(tmp_path):
    from posebridge.commands.replay import refiltered

    face = {"face_id": 0, "box": list(box_at(0.0, 0.0, 0.6)), "raw": [0, 0, 0], "std": [3, 3, 3]}
    recs = [{"kind": "frame", "index": i, "t_capture": i / 30.0, "frame": [W, H], "faces": [face]}
            for i in range(10)]
    default = list(refiltered(iter(recs), FilterConfig(), False, False, {}))
    assert default[-1][1][0].pos == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    doubled = list(refiltered(iter(recs), FilterConfig(), False, False, {},
                              position=settings_from({"face_width_m": 0.3})))
    assert doubled[-1][1][0].pos == pytest.approx([0.0, 0.0, -0.6], abs=1e-6)  # twice as far


# ------------------------------------------------------------------------------------------ config

@pytest.mark.parametrize("key, value, message", [
    ("position.hfov_deg", 200.0, "position.hfov_deg: 200.0 is outside [10, 170]"),
    ("position.face_width_m", 0.0, "position.face_width_m: 0.0 is outside [0.05, 0.5]"),
    ("position.neutral_distance_m", float("inf"), "position.neutral_distance_m: inf is not finite"),
    ("position.box_noise_px", -1.0, "position.box_noise_px: -1.0 is outside [0.01, 100]"),
    ("vmc.address", "localhost:99999", "vmc.address: 'localhost:99999' is not HOST:PORT (PORT 1-65535"),
    ("vmc.address", "a:b:c", "vmc.address: 'a:b:c' is not HOST:PORT"),
    ("vmc.position_to", "hips", "vmc.position_to: 'hips' is not one of root, head, none"),
    ("vmc.position_scale", 11.0, "vmc.position_scale: 11.0 is outside [0, 10]"),
    ("vmc.head_local_position", [0.0, 0.1], "vmc.head_local_position: expected 3 numbers"),
    ("opentrack.address", "127.0.0.1:0", "opentrack.address: '127.0.0.1:0' is not HOST:PORT"),
])
def test_config_errors_name_the_field_and_range(key, value, message):
    cfg = ServeConfig()
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, value)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_recorded_settings_are_validated():
    assert settings_from(None) == PositionConfig()
    assert settings_from({"hfov_deg": 70, "unknown": 1}).hfov_deg == 70
    with pytest.raises(ConfigError, match="position.hfov_deg"):
        settings_from({"hfov_deg": 5.0})
