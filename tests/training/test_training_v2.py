"""The v2 training tools (issue 24): rotation sampling that keeps labels in the bins and never mirrors,
flip-consistency pairs and loss, warm start (`--init`), the pause file, weight snapshots, committed study
results reused on a fresh machine, and the validation checks' roll sweep and yaw calibration."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posebridge.models.bins import BinSpec
from tests.helpers.paths import SYNTHETIC_FACE
from training.losses import flip_consistency_loss, mirror_pairs
from training.trainer import wait_while
from training.transforms import Transform
from training.validation_checks import roll_sweep, slope, yaw_calibration


def transform(**kw) -> Transform:
    return Transform(input_size=112, resize=112, train=True, flip=0.0, blur=0.0, **kw)


def test_rotation_probability_zero_never_rotates_and_one_always_does():
    face = cv2.imread(str(SYNTHETIC_FACE))
    a0 = np.array([0.0, 0.0, 0.0], np.float32)
    never = [transform(rotate_deg=80, rotate_p=0.0).sample(face, None, a0, np.random.default_rng(i))[1]
             for i in range(20)]
    always = [transform(rotate_deg=80, rotate_p=1.0).sample(face, None, a0, np.random.default_rng(i))[1]
              for i in range(20)]
    assert all(np.allclose(a, 0) for a in never)
    assert all(abs(a[2]) > 0.1 for a in always)
    assert max(abs(a[2]) for a in always) > 50  # large roll is reached


def test_rotation_that_would_leave_the_bins_is_not_applied():
    face = cv2.imread(str(SYNTHETIC_FACE))
    a0 = np.array([0.0, 0.0, 90.0], np.float32)  # already at roll 90: most turns leave +-96
    for i in range(40):
        _, a, _ = transform(rotate_deg=80).sample(face, None, a0, np.random.default_rng(i))
        assert np.all(np.abs(a) <= 96.0)


@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_rotation_border_never_reflects_the_face(border):
    face = np.zeros((112, 112, 3), np.uint8)
    face[:, :56] = 200  # a bright left half: a reflection would show bright pixels on the right edge
    t = transform(rotate_deg=45, rotate_p=1.0, rotate_border=border)
    crop, a, _ = t.sample(face, None, np.zeros(3, np.float32), np.random.default_rng(5))
    assert abs(a[2]) > 5
    corner = crop[:8, -8:] if a[2] > 0 else crop[-8:, -8:]  # an uncovered corner on the dark side
    if border == "constant":
        assert corner.max() == 0
    assert crop[:, -3:].mean() < crop[:, :3].mean()  # the dark half stays on the right


def test_mirror_pairs_keeps_rows_and_negates_yaw_roll_and_box_dx():
    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
    y = torch.tensor([[10.0, 5.0, -3.0], [1, 2, 3], [7, 7, 7], [8, 8, 8]])
    w = torch.ones(4, 3)
    box = torch.tensor([[0.1, 0.2, 0.3]] * 4)
    x2, y2, w2, b2 = mirror_pairs(x, y, w, box)
    assert len(x2) == 4 and torch.equal(x2[2], x[0].flip(-1)) and torch.equal(x2[0], x[0])
    assert y2[2].tolist() == [-10.0, 5.0, 3.0] and y2[3].tolist() == [-1.0, 2.0, -3.0]
    assert b2[2].tolist() == pytest.approx([-0.1, 0.2, 0.3])


def test_flip_consistency_loss_is_zero_for_a_mirror_consistent_network_and_grows_otherwise():
    spec = BinSpec(66, 3.0, -99.0, "center")
    bins = {a: spec for a in ("yaw", "pitch", "roll")}
    peak = torch.full((4, 66), -20.0)
    peak[0, 40] = peak[1, 20] = 10.0  # face 0 and 1
    mirrored = peak.clone()
    mirrored[2] = peak[0].flip(-1)  # bins are symmetric about 0: flipping the logits negates the angle
    mirrored[3] = peak[1].flip(-1)
    same_pitch = peak.clone()
    same_pitch[2], same_pitch[3] = peak[0], peak[1]
    ok = flip_consistency_loss((mirrored, same_pitch, mirrored), bins)
    assert float(ok) == pytest.approx(0.0, abs=1e-6)
    bad = flip_consistency_loss((same_pitch, same_pitch, same_pitch), bins)  # yaw not negated
    assert float(bad) > 100.0


def test_wait_while_returns_at_once_without_the_file_and_waits_while_it_exists(tmp_path):
    flag = tmp_path / "PAUSE"
    assert wait_while(str(flag)) == 0.0 and wait_while("") == 0.0
    flag.touch()
    threading.Timer(0.3, flag.unlink).start()
    assert wait_while(str(flag), poll_s=0.05) >= 0.25


def test_init_starts_from_a_checkpoint_and_snapshots_are_kept(tmp_path):
    from posebridge.models.checkpoint import read_checkpoint
    from training.config import load_config
    from training.data import PoseDataset, Record, register_dataset
    from training.trainer import Trainer

    @register_dataset("test_v2_faces")
    def faces(n: int = 8) -> PoseDataset:
        rng = np.random.default_rng(0)
        recs = [Record(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), tuple(rng.uniform(-30, 30, 3)),
                       None, f"f{i}") for i in range(n)]
        return PoseDataset("test_v2_faces", recs, {})

    sets = ["model.backbone=mobilenet_v3_small", "model.input_size=32", "data.train=test_v2_faces",
            "data.resize=32", "data.val_fraction=0.25", "optim.batch_size=4", "optim.epochs=2",
            "optim.max_steps_per_epoch=1", "run.progress=false", "run.snapshot_every=1"]
    first = load_config(None, [*sets, f"run.out_dir={tmp_path / 'a'}"])
    Trainer(first).fit()
    snaps = sorted((tmp_path / "a" / "snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["step_000001.pt", "step_000002.pt"]
    assert "training" not in read_checkpoint(snaps[0])  # weights only, no optimizer state
    warm = load_config(None, [*sets, f"run.out_dir={tmp_path / 'b'}", f"model.pretrained={snaps[-1]}"])
    t = Trainer(warm)
    src = read_checkpoint(snaps[-1])["state_dict"]
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, src[k]), k


def test_slope_and_yaw_calibration():
    true = np.linspace(-90, 90, 181)
    assert slope(1.2 * true + 3, true) == pytest.approx(1.2)
    assert np.isnan(slope(true[:2], true[:2]))
    cal = yaw_calibration(0.8 * true, true, true)
    assert cal["all"] == pytest.approx(0.8) and cal["60-99"] == pytest.approx(0.8)
    assert cal["0-30_n"] == 59 and cal["human"] == pytest.approx(0.8)


class _ExactRoll:
    """A stand-in estimator that reads a crop's in-plane angle from a drawn bar (exact), and yaw 0."""

    def predict_crops(self, crops):
        from types import SimpleNamespace

        out = []
        for c in crops:
            g = c[..., 0].astype(float)
            ys, xs = np.nonzero(g > 127)
            cov = np.cov(np.stack([xs - xs.mean(), ys - ys.mean()]))
            w, v = np.linalg.eigh(cov)
            ang = np.degrees(np.arctan2(v[1, 1], v[0, 1]))
            ang = (ang + 90) % 180 - 90  # a bar has no head or tail
            out.append(SimpleNamespace(angles=(0.0, 0.0, float(ang))))
        return out


def test_roll_sweep_reports_gain_one_for_an_exact_roll_reader():
    bar = np.zeros((120, 120, 3), np.uint8)
    cv2.rectangle(bar, (20, 57), (100, 63), (255, 255, 255), -1)  # horizontal bar: roll 0
    crops = [bar] * 4
    truth = np.zeros((4, 3))
    res = roll_sweep(_ExactRoll(), crops, truth, thetas=(-75, -45, 0, 45, 75))
    assert res["crops"] == 4
    assert res["gain_75"] == pytest.approx(1.0, abs=0.02) and res["err_60"] < 1.5
    assert res["yaw_leak"] == pytest.approx(0.0, abs=1e-9)


def test_study_reuses_a_committed_result_on_a_fresh_machine(tmp_path):
    """runs/ gone (a new machine), the committed per-run JSON present: --resume does not train again."""
    from tests.helpers.study import tiny_study
    from training.study import main as study_main

    _, args = tiny_study(tmp_path, "fresh")
    assert study_main([*args, "--only", "a", "--seeds", "0"]) == 0
    out = tmp_path / "fresh" / "out" / "runs" / "a_s0.json"
    stored = json.loads(out.read_text())
    assert stored["config_digest"]
    import shutil

    shutil.rmtree(tmp_path / "fresh" / "runs")
    t0 = time.time()
    assert study_main([*args, "--only", "a", "--seeds", "0", "--resume"]) == 0
    assert not (tmp_path / "fresh" / "runs" / "a_s0").exists()  # nothing trained
    assert json.loads(out.read_text()) == stored
    assert time.time() - t0 < 60
    # a committed result from other settings is refused, not silently reused
    assert study_main([*args, "--only", "a", "--seeds", "0", "--resume", "--set", "optim.lr=0.5"]) == 2


def test_v2_finetune_study_config_changes_one_thing_per_variant():
    from training.study_spec import load_study, run_config

    spec, base = load_study(Path("training/configs/v2_finetunes.toml"))
    assert spec.checks and spec.reference_model.endswith("posebridge-small.pt")
    assert not base.eval.datasets  # never AFLW2000
    cfgs = {v.key: run_config(base, spec, v, 0) for v in spec.variants}
    assert all(c.model.pretrained == "posebridge/assets/posebridge-small.pt" for c in cfgs.values())
    assert {c.optim.epochs * c.optim.max_steps_per_epoch for c in cfgs.values()} == {1000}
    assert {c.optim.max_steps_per_epoch for c in cfgs.values()} == {125}  # < 141 steps in one pass: exact
    assert cfgs["rot"].data.rotate_deg == 80 and cfgs["ft_v1"].data.rotate_deg == 0
    assert cfgs["rot_p03"].data.rotate_p == 0.3 == cfgs["all"].data.rotate_p
    assert cfgs["flipcons"].loss.flip_consistency > 0 and cfgs["ft_v1"].loss.flip_consistency == 0
