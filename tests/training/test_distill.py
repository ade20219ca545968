"""Distillation data (training/distill.py): teacher targets, masking, AFLW2000 refusal, trainer wiring."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from posebridge.errors import ConfigError, InputFileError, PoseBridgeError
from training.data import create_dataset
from training.distill import (
    AFLW2000_MAX_ID,
    TEACHERS,
    TargetConfig,
    TeacherLabels,
    build_targets,
    check_not_aflw2000,
    is_aflw2000_name,
    read_teacher_labels,
)

COLUMNS = ["image", "yaw_deg"] + [f"{t}_{a}" for t in TEACHERS for a in ("yaw", "pitch", "roll")]


def write_crops(root: Path, rows: list[dict]) -> Path:
    """A tiny aflw-yaw-crops look-alike: labels.csv + 120x120 jpgs."""
    (root / "images").mkdir(parents=True)
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    rng = np.random.default_rng(0)
    for r in rows:
        cv2.imwrite(str(root / "images" / r["image"]), rng.integers(0, 255, (120, 120, 3), np.uint8))
    return root


def row(name: str, aflw: float, ot=(10.0, 5.0, -2.0), wh=(20.0, 15.0, 8.0), fs=(0.0, -5.0, -12.0),
        mb=(12.0, 3.0, -1.0)) -> dict:
    r = {"image": name, "yaw_deg": aflw}
    for t, vals in zip(TEACHERS, (ot, wh, fs, mb), strict=True):
        for a, v in zip(("yaw", "pitch", "roll"), vals, strict=True):
            r[f"{t}_{a}"] = v
    return r


def test_aflw2000_names_are_recognised():
    assert is_aflw2000_name("image00002.jpg")
    assert is_aflw2000_name(f"some/dir/image{AFLW2000_MAX_ID:05d}.jpg")
    assert is_aflw2000_name("IMAGE01234.JPG")
    assert not is_aflw2000_name(f"image{AFLW2000_MAX_ID + 3:05d}.jpg")  # first AFLW training crop: 04378
    assert not is_aflw2000_name("image71361.jpg")
    assert not is_aflw2000_name("face_00002.jpg")
    assert is_aflw2000_name("custom_name.jpg", known={"custom_name"})


def test_check_refuses_any_aflw2000_file():
    check_not_aflw2000(["image04378.jpg", "image71361.jpg"])
    with pytest.raises(InputFileError, match=r"image00456\.jpg.*refusing to train"):
        check_not_aflw2000(["image04378.jpg", "image00456.jpg"], "labels.csv")


def test_every_aflw2000_dev_name_is_refused(shared):
    dev = shared("data", "aflw2000-dev")
    names = [p.name for p in dev.glob("*.jpg")]
    assert len(names) > 1000
    assert all(is_aflw2000_name(n) for n in names)


def test_shared_training_crops_do_not_overlap_aflw2000(shared):
    labels = read_teacher_labels(shared("data", "aflw-yaw-crops", "labels.csv"))
    assert len(labels.names) == 19080
    check_not_aflw2000(labels.names)  # raises if any name were an AFLW2000 image
    dev = {p.name for p in shared("data", "aflw2000-dev").glob("*.jpg")}
    assert not dev & set(labels.names)
    three = ("opentrack", "whenet", "fsanet")  # the README's count is over the first three teachers
    beyond = np.any([np.any(np.abs(labels.teachers[t]) > 99, axis=1) for t in three], axis=0)
    assert int(beyond.sum()) == 147
    assert build_targets(labels, TargetConfig()).counts["teacher_beyond_range"] == 147


def test_targets_weighted_average_and_masks():
    labels = TeacherLabels(
        names=["a", "b", "c"],
        aflw_yaw=np.array([10.0, 10.0, 80.0]),
        teachers={
            "opentrack": np.array([[10.0, 0.0, 0.0], [10.0, 0.0, 120.0], [10.0, 0.0, 0.0]]),
            "whenet": np.array([[20.0, 10.0, 0.0], [20.0, 0.0, 0.0], [20.0, 0.0, 0.0]]),
            "fsanet": np.array([[0.0, -10.0, 6.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        },
    )
    tg = build_targets(labels, TargetConfig({"opentrack": 0.8, "whenet": 0.1, "fsanet": 0.1}, 99.0, 30.0))
    np.testing.assert_allclose(tg.angles[0], [10.0, 0.0, 0.6], atol=1e-5)
    assert tg.keep.tolist() == [True, False, False]  # b: a teacher roll beyond 99; c: 70 deg from AFLW yaw
    assert tg.counts == {"crops": 3, "teacher_beyond_range": 1, "yaw_disagreement": 1, "kept": 1}
    tg = build_targets(labels, TargetConfig({"opentrack": 1.0}, 99.0, 0.0))  # disagreement check off
    assert tg.keep.tolist() == [True, False, True]
    np.testing.assert_allclose(tg.angles[:, 0], 10.0)


def test_unknown_teacher_weight_is_a_config_error():
    with pytest.raises(ConfigError, match="distill.weights"):
        TargetConfig({"hopenet": 1.0})


def test_dataset_builds_teacher_records(tmp_path):
    root = write_crops(tmp_path / "crops", [
        row("image05000.jpg", 8.0),
        row("image05001.jpg", 8.0, ot=(10.0, 5.0, 150.0)),  # teacher beyond range: skipped, counted
        row("image05002.jpg", -60.0),  # 68 deg from the AFLW yaw: skipped, counted
        row("image05003.jpg", 12.0),
    ])
    ds = create_dataset("aflw_distill", {"root": str(root), "progress": False})
    assert ds.protocol == "3ddfa"
    assert len(ds) == 2
    assert ds.skipped == {"teacher angle beyond range": 1, "teacher/AFLW yaw disagreement": 1}
    image, box, angles = ds.load(0)
    assert image.shape == (120, 120, 3) and box is None
    np.testing.assert_allclose(angles, [0.8 * 10 + 0.1 * 20, 0.8 * 5 + 0.1 * 15 - 0.5, 0.8 * -2 + 0.8 - 1.2],
                               atol=1e-4)


def test_dataset_refuses_aflw2000_files(tmp_path):
    root = write_crops(tmp_path / "crops", [row("image05000.jpg", 8.0), row("image00120.jpg", 8.0)])
    with pytest.raises(PoseBridgeError, match=r"image00120\.jpg"):
        create_dataset("aflw_distill", {"root": str(root), "progress": False})


def test_dataset_refuses_aflw2000_image_not_in_labels(tmp_path):
    root = write_crops(tmp_path / "crops", [row("image05000.jpg", 8.0)])
    cv2.imwrite(str(root / "images" / "image00004.jpg"), np.zeros((120, 120, 3), np.uint8))
    with pytest.raises(InputFileError, match=r"images.*image00004\.jpg"):
        create_dataset("aflw_distill", {"root": str(root), "progress": False})


def test_bad_labels_file(tmp_path):
    (tmp_path / "labels.csv").write_text("image,yaw_deg\nimage05000.jpg,3\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_teacher_labels(tmp_path / "labels.csv")
    with pytest.raises(InputFileError, match="not found"):
        create_dataset("aflw_distill", {"root": str(tmp_path / "nowhere")})


def test_one_command_trains_and_packages_the_shipped_config(tmp_path, capsys):
    """`python -m training.distill train`: the shipped config through the real trainer, then the export,
    on a tiny synthetic copy of the data layout."""
    from posebridge.models.checkpoint import load_checkpoint
    from training.distill import TTA_ZOOMS, main

    root = write_crops(tmp_path / "crops", [row(f"image{5000 + i:05d}.jpg", 8.0) for i in range(12)])
    out = tmp_path / "packaged.pt"
    sets = [f"data.options.root={str(root)!r}", "data.options.progress=false", "optim.epochs=1",
            "optim.max_steps_per_epoch=1", "optim.batch_size=4", "data.val_fraction=0.25",
            f"run.out_dir={str(tmp_path / 'run')!r}", "run.progress=false", "run.compile=false",
            "data.num_workers=0"]
    assert main(["train", "--out", str(out), "--no-fixture", *[a for s in sets for a in ("--set", s)]]) == 0
    assert "wrote" in capsys.readouterr().out
    model, meta = load_checkpoint(out)
    assert meta.backbone == "mobilenet_v3_small" and meta.crop.protocol == "3ddfa"
    assert meta.name == "posebridge-small" and meta.input_size == 112
    assert all(b.offset == "center" and b.num_bins == 66 for b in meta.bins.values())
    assert meta.extra["flip_average"] is True and meta.extra["filter"]["meas_scale"] > 0
    assert meta.extra["tta_zooms"] == list(TTA_ZOOMS) and 1.0 in TTA_ZOOMS
    assert meta.extra["trained_from"] == "last.pt" and meta.extra["bn_recalibrated_on"] == 12
    assert (tmp_path / "run" / "last.pt").exists()


def test_one_command_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from training.distill import main

    assert main(["train", "--out", str(tmp_path / "o.pt"), "--set", "optim.nonsense=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill: error:") and "optim.nonsense" in err and "\n" not in err
    assert not (tmp_path / "o.pt").exists()


def test_export_command_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    from training.distill import main

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "out.pt"), "--no-fixture"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill: error:") and "broken.pt" in err and "\n" not in err
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("zooms", ["", "1,x", "0.1,1"])
def test_export_refuses_bad_zoom_views_in_one_line(tmp_path, capsys, zooms):
    from training.distill import main

    ckpt = tmp_path / "some.pt"
    ckpt.write_bytes(b"unused: the option is checked first")
    out = tmp_path / "out.pt"
    assert main(["export", str(ckpt), "--out", str(out), "--no-fixture", "--tta-zooms", zooms]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill: error:") and "--tta-zooms" in err and "\n" not in err
    assert not out.exists()
