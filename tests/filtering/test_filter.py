"""Pose filter behaviour on synthetic data: noise reduction on a still head, step response, yaw
wrap-around, prediction through dropouts, lost timing, measurement-noise weighting, run-time `set`."""

from __future__ import annotations

import numpy as np
import pytest

from posebridge.errors import ConfigError
from posebridge.filtering.kalman import FilterConfig, FilterOutput, create_filter

FPS = 30.0
NOISE = 0.5  # degrees: raw jitter measured on a still face (docs/filter.md)
SPREAD = 55.0  # degrees: WHENet softmax spread on the same frames


def feed(f, t, angles, stds=None):
    pairs = enumerate(zip(t, angles, strict=True))
    return [f.update(float(ti), a, None if stds is None else stds[i]) for i, (ti, a) in pairs]


def test_static_noise_drops_at_least_4x():
    """Measured-scale noise (WHENet on a still face: ~0.5 degree jitter, ~55 degree spread)."""
    rng = np.random.default_rng(0)
    n = 300
    t = np.arange(n) / FPS
    truth = np.array([20.0, -10.0, 5.0])
    meas = truth + rng.normal(0, NOISE, (n, 3))
    outs = feed(create_filter(), t, meas, np.full((n, 3), SPREAD))
    filt = np.array([o.angles for o in outs])[30:]
    ratio = meas[30:].std(axis=0) / filt.std(axis=0)
    assert np.all(ratio >= 4.0), ratio
    assert np.all(np.abs(filt.mean(axis=0) - truth) < 0.3)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_step_reaches_90_percent_within_100ms(axis):
    rng = np.random.default_rng(axis)
    misses = 0
    for _ in range(20):
        n = 60
        t = np.arange(n) / FPS + rng.uniform(0, 1 / FPS)
        truth = np.zeros((n, 3))
        truth[t >= 1.0, axis] = 30.0
        meas = truth + rng.normal(0, NOISE, (n, 3))
        outs = feed(create_filter(), t, meas, np.full((n, 3), SPREAD))
        filt = np.array([o.angles[axis] for o in outs])
        after = t >= 1.0
        first = np.nonzero(after & (filt >= 27.0))[0][0]
        misses += (t[first] - 1.0) > 0.100
        assert filt[after].max() < 36.0  # no wild overshoot
    assert misses == 0


def test_without_gate_the_step_is_slow():
    """The motion gate is what makes the step fast: a huge gate (never fires) is much slower."""
    n = 60
    t = np.arange(n) / FPS
    meas = np.zeros((n, 3))
    meas[30:, 0] = 30.0
    slow = create_filter(FilterConfig(gate_sigma=1e6, jump_sigma=1e6))
    filt = np.array([o.angles[0] for o in feed(slow, t, meas, np.full((n, 3), SPREAD))])
    assert filt[33] < 27.0
    fast = np.array([o.angles[0] for o in feed(create_filter(), t, meas, np.full((n, 3), SPREAD))])
    assert fast[33] >= 27.0


def test_yaw_wraps_around_180():
    f = create_filter()
    t = np.arange(40) / FPS
    yaw = 170.0 + 60.0 * t  # crosses +180 at t = 1/6 s, ends near -132
    meas = np.column_stack([(yaw + 180) % 360 - 180, np.zeros(40), np.zeros(40)])
    outs = feed(f, t, meas, np.full((40, 3), SPREAD))
    out = np.array([o.angles[0] for o in outs])
    err = (out - meas[:, 0] + 180) % 360 - 180
    assert np.all(np.abs(err) < 3.0), err
    assert np.all((out >= -180) & (out < 180))
    # The wrap is not mistaken for a jump: the same turn away from +-180 gates the same way.
    shifted = np.column_stack([yaw - 180.0, np.zeros(40), np.zeros(40)])  # -10 .. 68, no wrap
    plain = feed(create_filter(), t, shifted, np.full((40, 3), SPREAD))
    assert [o.gated for o in outs] == [o.gated for o in plain]


def test_yaw_jitter_across_180_stays_at_the_back():
    f = create_filter()
    rng = np.random.default_rng(3)
    outs = [f.update(i / FPS, [179.5 if i % 2 else -179.5 + rng.normal(0, 0.2), 0, 0], [SPREAD] * 3)
            for i in range(60)]
    assert all(abs(o.angles[0]) > 177 for o in outs)


def test_pitch_is_not_wrapped():
    f = create_filter()
    out = [f.update(i / FPS, [0.0, 85.0 + i, 0.0], [SPREAD] * 3) for i in range(10)]
    assert out[-1].angles[1] > 90.0


def test_prediction_through_short_dropout_uses_real_time():
    """Tracking a 60 deg/s turn, then no face: the filter keeps predicting by the elapsed time (with a
    rate that persists, rate_decay_s 0.5; the default's 0.05 s mostly holds the last angle instead)."""
    t = np.arange(30) / FPS
    turn = np.column_stack([60.0 * t, np.zeros(30), np.zeros(30)])
    persistent = FilterConfig(rate_decay_s=0.5, gate_sigma=3.0)
    f, short = create_filter(persistent), create_filter(persistent)
    last = feed(f, t, turn, np.full((30, 3), SPREAD))[-1]
    feed(short, t, turn, np.full((30, 3), SPREAD))
    assert 25.0 < last.rates[0] < 75.0  # the turn rate was learned (under-estimated: rate decay 0.5 s)
    a = f.update(t[-1] + 0.1, None)
    b = short.update(t[-1] + 1 / FPS, None)
    assert a.tracked and not a.lost and not a.measured
    moved_a, moved_b = a.angles[0] - last.angles[0], b.angles[0] - last.angles[0]
    assert moved_a > 2 * moved_b > 1.0  # further after 100 ms than after 33 ms
    assert 1.5 < moved_a < 7.0  # at most 60 deg/s x 0.1 s; the rate decays while blind
    assert a.stds[0] > b.stds[0]  # uncertainty grows while predicting blind


def test_lost_state_timing_and_restart():
    cfg = FilterConfig(lost_after_s=0.5)
    f = create_filter(cfg)
    for i in range(10):
        f.update(i / FPS, [10.0, 0.0, 0.0], [SPREAD] * 3)
    t_last = 9 / FPS
    assert not f.update(t_last + 0.2, None).lost
    held = f.update(t_last + 0.49, None)
    assert held.tracked and not held.lost
    lost = f.update(t_last + 0.51, None)
    assert lost.lost and not lost.tracked
    assert f.update(t_last + 2.0, None).lost
    back = f.update(t_last + 2.1, [-40.0, 5.0, 1.0], [SPREAD] * 3)  # a new face: restart from it
    assert back.tracked and not back.lost
    np.testing.assert_allclose(back.angles, [-40.0, 5.0, 1.0])
    np.testing.assert_allclose(back.rates, 0.0)


def test_never_measured_is_lost():
    out = create_filter().update(0.0, None)
    assert isinstance(out, FilterOutput) and out.lost and not out.tracked


def test_confident_measurements_move_the_estimate_more():
    def converged():
        f = create_filter()
        for i in range(60):
            f.update(i / FPS, [0.0, 0.0, 0.0], [SPREAD] * 3)
        return f

    t = 60 / FPS
    confident = np.array(converged().update(t, [1.0, 1.0, 1.0], [30.0, 30.0, 30.0]).angles)
    unsure = np.array(converged().update(t, [1.0, 1.0, 1.0], [150.0, 150.0, 150.0]).angles)
    assert np.all(confident > 2 * unsure)
    assert np.all(unsure > 0)


def test_none_kind_passes_raw_through():
    f = create_filter(FilterConfig(kind="none"))
    out = f.update(0.0, [190.0, 3.0, -4.0], [5, 6, 7])
    np.testing.assert_allclose(out.angles, [-170.0, 3.0, -4.0])
    np.testing.assert_allclose(out.stds, [5, 6, 7])
    assert out.tracked
    gone = f.update(0.033, None)
    assert gone.lost and not gone.tracked
    np.testing.assert_allclose(gone.angles, [-170.0, 3.0, -4.0])


def test_set_at_run_time():
    f = create_filter()
    cfg = f.set(process_noise=500, lost_after_s=1.0)
    assert cfg.process_noise == 500.0 and f.config.lost_after_s == 1.0
    with pytest.raises(ConfigError, match="proces_noise: unknown parameter"):
        f.set(proces_noise=1.0)
    with pytest.raises(ConfigError, match="gate_sigma"):
        f.set(lost_after_s=2.0, gate_sigma="high")
    assert f.config.lost_after_s == 1.0  # all-or-nothing
    with pytest.raises(ConfigError, match="kind"):
        f.set(kind="median")
    with pytest.raises(ConfigError):
        f.set(process_noise=-1.0)
    f.set(kind="none")
    np.testing.assert_allclose(f.update(0.0, [1.0, 2.0, 3.0]).angles, [1.0, 2.0, 3.0])
    f.set(kind="kalman")
    assert f.update(0.033, [1.0, 2.0, 3.0]).tracked


def test_non_finite_measurement_counts_as_missing():
    f = create_filter()
    f.update(0.0, [1.0, 2.0, 3.0])
    out = f.update(0.033, [np.nan, 2.0, 3.0])
    assert not out.measured and np.all(np.isfinite(out.angles))


def test_default_filter_holds_the_last_angle_through_a_dropout():
    """The default (rate_decay_s 0.05 s, chosen on the motion benchmark: docs/filter.md) carries almost no
    rate: 100 ms without a face after a 60 deg/s turn moves the angle by well under a degree."""
    t = np.arange(30) / FPS
    turn = np.column_stack([60.0 * t, np.zeros(30), np.zeros(30)])
    f = create_filter()
    last = feed(f, t, turn, np.full((30, 3), SPREAD))[-1]
    assert abs(last.angles[0] - turn[-1, 0]) < 2.5  # followed the turn (2 deg per frame here) within a frame
    a = f.update(t[-1] + 0.1, None)
    assert a.tracked and not a.measured and abs(a.angles[0] - last.angles[0]) < 0.5
