"""`posebridge estimate`: real images, folders and OpenCV-written videos through the CLI; bad input
gives one line naming the file, exit 2."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from posebridge.cli import main
from posebridge.commands.estimate import FIELDS
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.network import build_model
from posebridge.offline.annotate import pose_axes_2d
from tests.helpers.paths import shared_path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A small real network (random LeNet weights: these tests check plumbing, not accuracy)."""
    path = tmp_path_factory.mktemp("model") / "lenet.pt"
    return save_checkpoint(path, build_model("lenet"), ModelMeta("lenet-test", "lenet", input_size=64))


@pytest.fixture(scope="module")
def face():
    image = cv2.imread(str(shared_path("data", "aflw2000-dev", "image00002.jpg")))  # a frontal face
    assert image is not None
    return image


def test_image_to_csv_with_annotation(tmp_path, model_path, face, capsys):
    img = tmp_path / "face.jpg"
    cv2.imwrite(str(img), face)
    out, ann = tmp_path / "poses.csv", tmp_path / "ann"
    assert main(["estimate", str(img), "--model", str(model_path), "--output", str(out),
                 "--annotate", str(ann)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and list(rows[0].keys()) == FIELDS
    r = rows[0]
    assert (r["source"], r["frame"], r["face"]) == ("face.jpg", "0", "0")
    x0, y0, x1, y1 = (float(r[k]) for k in ("x0", "y0", "x1", "y1"))
    assert 100 < (x0 + x1) / 2 < 350 and 100 < (y0 + y1) / 2 < 350  # the face is near the image centre
    assert all(np.isfinite(float(r[k])) for k in ("yaw", "pitch", "roll", "yaw_std"))
    written = list(ann.glob("*.jpg"))
    assert len(written) == 1
    drawn = cv2.imread(str(written[0]))
    assert drawn.shape == face.shape and np.abs(drawn.astype(int) - face.astype(int)).sum() > 0


def test_folder_and_video_to_jsonl(tmp_path, model_path, face):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), face)
    cv2.imwrite(str(folder / "b.jpg"), np.zeros((120, 160, 3), np.uint8))  # no face: no rows
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "folder.jsonl"
    m = ["--model", str(model_path), "--format", "jsonl"]
    assert main(["estimate", str(folder), *m, "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and {r["source"] for r in rows} == {"a.png"}

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (face.shape[1], face.shape[0]))
    for k in range(4):
        writer.write(np.roll(face, 3 * k, axis=1))
    writer.release()
    out = tmp_path / "video.jsonl"
    assert main(["estimate", str(video), *m, "--output", str(out), "--batch", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted({r["frame"] for r in rows}) == [0, 1, 2, 3]
    assert all(r["source"] == "clip.avi" and set(r) == set(FIELDS) for r in rows)


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for n in needles:
        assert n in err[0], err[0]


def test_bad_inputs_give_one_line(tmp_path, model_path, capsys):
    m = ["--model", str(model_path)]
    _one_line_error(capsys, ["estimate", str(tmp_path / "absent.jpg"), *m], "absent.jpg", "not found")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    _one_line_error(capsys, ["estimate", str(broken), *m], "broken.jpg", "cannot read image")
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    _one_line_error(capsys, ["estimate", str(bad_video), *m], "bad.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(capsys, ["estimate", str(empty), *m], "empty", "no images")
    img = tmp_path / "ok.png"
    cv2.imwrite(str(img), np.zeros((40, 40, 3), np.uint8))
    missing_model = ["--model", str(tmp_path / "nope.pt")]
    _one_line_error(capsys, ["estimate", str(img), *missing_model], "nope.pt", "not found")
    _one_line_error(capsys, ["estimate", str(img), *m, "--detector", "nosuch"], "nosuch")
    _one_line_error(capsys, ["estimate", str(img), *m, "--zooms", "1,big"], "--zooms", "zoom factors")


def test_pose_axes_directions():
    axes = pose_axes_2d(0, 0, 0)
    assert axes[0] == pytest.approx((1, 0)) and axes[1] == pytest.approx((0, 1))  # x right, y down
    assert axes[2] == pytest.approx((0, 0), abs=1e-9)  # z points at the camera
    assert pose_axes_2d(90, 0, 0)[2][0] == pytest.approx(-1)  # yaw +90 (dataset sign): nose to image left
    assert pose_axes_2d(0, 0, 90)[0] == pytest.approx((0, 1), abs=1e-9)
