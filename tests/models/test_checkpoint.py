"""Native checkpoints: round trip with metadata; missing / truncated / wrong-format files give one
line naming the file (also through the CLI: exit 2, no traceback)."""

from __future__ import annotations

import pytest
import torch

from posebridge.cli import main
from posebridge.errors import InputFileError
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from posebridge.models.network import CENTER_BINS, build_model


@pytest.fixture
def lenet_ckpt(tmp_path):
    torch.manual_seed(0)
    model = build_model("lenet")
    meta = ModelMeta("tiny", "lenet", bins=dict(CENTER_BINS), input_size=64, color="bgr",
                     provenance={"source": "test"})
    return save_checkpoint(tmp_path / "tiny.pt", model, meta, training={"epoch": 3}), model


def test_round_trip_keeps_weights_and_metadata(lenet_ckpt):
    path, model = lenet_ckpt
    loaded, meta = load_checkpoint(path)
    assert meta.name == "tiny" and meta.input_size == 64 and meta.color == "bgr"
    assert meta.bins["yaw"].offset == "center" and meta.provenance == {"source": "test"}
    assert read_checkpoint(path)["training"] == {"epoch": 3}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), model.eval()(x), strict=True))
    assert not path.with_name("tiny.pt.tmp").exists()


def test_bad_checkpoints_name_the_file(tmp_path, lenet_ckpt):
    path, _ = lenet_ckpt
    with pytest.raises(InputFileError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputFileError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    plain = tmp_path / "plain.pt"
    torch.save(build_model("lenet").state_dict(), plain)
    with pytest.raises(InputFileError, match="plain.pt: not a posebridge checkpoint"):
        load_checkpoint(plain)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(InputFileError, match="notes.pt: not a readable checkpoint"):
        load_checkpoint(text)


@pytest.mark.parametrize("kind", ["missing", "truncated", "text"])
def test_cli_reports_bad_checkpoint_in_one_line(tmp_path, capsys, lenet_ckpt, kind):
    path, _ = lenet_ckpt
    bad = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        bad.write_bytes(path.read_bytes()[:3000])
    elif kind == "text":
        bad.write_text("definitely not torch")
    img = tmp_path / "img.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    assert main(["estimate", str(img), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{kind}.pt" in err[0] and "Traceback" not in err[0]
