"""End-to-end trainer runs on tiny data: resume continues the same run, checkpoints are native,
CLI errors are one line, and the overfit check on the nine 300W_LP samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from posebridge.models.checkpoint import load_checkpoint, read_checkpoint
from training.config import load_config
from training.data import PoseDataset, Record, register_dataset
from training.train import main as train_main
from training.train import train


@register_dataset("test_synthetic_faces")
def synthetic_faces(n: int = 16, yaw_only: bool = False) -> PoseDataset:
    """Random images whose mean brightness encodes the yaw (learnable, deterministic)."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        yaw = float(rng.uniform(-60, 60))
        img = np.clip(rng.normal(128 + yaw, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
        pitch, roll = (math.nan, math.nan) if yaw_only else (float(rng.uniform(-30, 30)), 0.0)
        records.append(Record(img, (yaw, pitch, roll), None, f"g{i // 2}"))
    return PoseDataset("test_synthetic_faces", records)


def tiny(out, *extra):
    return load_config(None, [
        "data.train=test_synthetic_faces", "model.backbone=lenet", "model.input_size=32", "data.resize=36",
        "optim.batch_size=4", "optim.lr=1e-3", "data.val_fraction=0.25", "run.progress=false",
        "optim.schedule=cosine", f"run.out_dir={str(out)!r}", *extra,
    ])  # fmt: skip


def test_resume_continues_the_same_run(tmp_path):
    straight = train(tiny(tmp_path / "a", "optim.epochs=3"))
    train(tiny(tmp_path / "b", "optim.epochs=3", "run.stop_after=1"))  # an interrupted run
    resumed = train(tiny(tmp_path / "b", "optim.epochs=3"), resume="auto")
    a = read_checkpoint(tmp_path / "a" / "last.pt")
    b = read_checkpoint(tmp_path / "b" / "last.pt")
    assert a["training"]["step"] == b["training"]["step"] == 3 * 3  # 12 train samples / batch 4
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    keys = ("train_loss", "train_mae_yaw", "val_mae_yaw", "lr")
    assert [[r[k] for k in keys] for r in straight.history] == [[r[k] for k in keys] for r in resumed.history]
    assert (tmp_path / "b" / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert (tmp_path / "b" / "loss_curves.png").stat().st_size > 1000


def test_channels_last_trains_the_same_model(tmp_path):
    """run.channels_last only changes the memory layout: same seed, same weights (to float rounding)."""
    a = read_checkpoint(train(tiny(tmp_path / "a", "optim.epochs=2")).last_path)["state_dict"]
    b = read_checkpoint(train(tiny(tmp_path / "b", "optim.epochs=2", "run.channels_last=true")).last_path)
    assert any(v.dim() == 4 for v in a.values())
    for k, v in a.items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-4), k


def test_compile_without_a_cxx_compiler_falls_back_to_eager(tmp_path, monkeypatch, caplog):
    """run.compile on a machine without a working C++ compiler: one warning, then the eager run's weights."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    torch._dynamo.reset()
    a = read_checkpoint(train(tiny(tmp_path / "a", "optim.epochs=1")).last_path)["state_dict"]
    with caplog.at_level("WARNING", logger="training"):
        b = read_checkpoint(train(tiny(tmp_path / "b", "optim.epochs=1", "run.compile=true")).last_path)
    torch._dynamo.reset()
    warnings = [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1 and "C++ compiler" in warnings[0], warnings
    for k, v in a.items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-5), k


def test_checkpoint_is_native_with_bin_centres_and_protocol(tmp_path):
    result = train(tiny(tmp_path, "optim.epochs=1", "model.crop_protocol=3ddfa", "model.name=tiny"))
    model, meta = load_checkpoint(result.best_path)
    assert meta.backbone == "lenet" and meta.name == "tiny" and meta.input_size == 32
    assert meta.crop.protocol == "3ddfa"
    assert all(b.offset == "center" and b.num_bins == 66 for b in meta.bins.values())
    out = model(torch.zeros(1, 3, 32, 32))
    assert [o.shape[-1] for o in out] == [66, 66, 66]


def test_yaw_only_data_leaves_pitch_and_roll_heads_untouched(tmp_path):
    cfg = tiny(tmp_path, "optim.epochs=1", "data.options={n = 8, yaw_only = true}", "optim.weight_decay=0.0")
    torch.manual_seed(0)
    result = train(cfg)
    state = read_checkpoint(result.last_path)["state_dict"]
    # with Adam, a head that never gets a gradient keeps its Xavier init exactly: the biases stay zero
    assert torch.all(state["fc_pitch.bias"] == 0) and torch.all(state["fc_roll.bias"] == 0)
    assert torch.any(state["fc_yaw.bias"] != 0)


def test_cli_reports_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nepochs = 1\nbogus = 2\n")
    assert train_main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.toml" in err and "optim.bogus" in err
    assert train_main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_cli_resume_without_checkpoint_names_the_file(tmp_path, capsys):
    code = train_main(["--set", "data.train=test_synthetic_faces", "--set", "model.backbone=lenet",
                       "--set", "model.input_size=32", "--set", f"run.out_dir={str(tmp_path)!r}",
                       "--set", "run.progress=false", "--resume"])
    assert code == 2
    assert "last.pt: checkpoint not found" in capsys.readouterr().err


def test_evaluate_cli_writes_outputs_and_rejects_bad_checkpoint(tmp_path, capsys):
    from training.evaluate import main as eval_main
    from training.export import export_weights

    result = train(tiny(tmp_path / "run", "optim.epochs=1"))
    out = tmp_path / "eval"
    assert eval_main(["--checkpoint", str(result.best_path), "--dataset", "test_synthetic_faces",
                      "--option", "n=6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test_synthetic_faces (n=6): yaw" in printed
    assert (out / "per_image.csv").read_text().count("\n") == 7
    assert (out / "error_vs_yaw.png").stat().st_size > 1000
    shipped = export_weights(result.best_path, tmp_path / "small.pt", half=True)
    payload = read_checkpoint(shipped)
    assert "training" not in payload and payload["state_dict"]["fc_yaw.weight"].dtype == torch.float16
    model, _ = load_checkpoint(shipped)  # fp16 weights load into the float32 network
    assert model.fc_yaw.weight.dtype == torch.float32
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert eval_main(["--checkpoint", str(bad), "--dataset", "test_synthetic_faces"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.pt" in err


def test_too_small_input_for_the_backbone_is_a_config_error(tmp_path):
    from posebridge.errors import ConfigError

    with pytest.raises(ConfigError, match="model.input_size: 32 is too small for alexnet"):
        train(tiny(tmp_path, "model.backbone=alexnet"))


def test_pretrained_init_from_state_dict_file_or_checkpoint(tmp_path):
    from posebridge.errors import InputFileError
    from training.model_setup import make_model

    trunk = {"features.0.weight": torch.full((6, 3, 5, 5), 0.5), "fc.weight": torch.zeros(3)}
    torch.save(trunk, tmp_path / "imagenet.pth")
    model = make_model(tiny(tmp_path, f"model.pretrained={str(tmp_path / 'imagenet.pth')!r}"))
    assert torch.all(model.features[0].weight == 0.5)  # the trunk tensor that matches is copied
    assert model.fc_yaw.bias.abs().sum() == 0  # heads keep their (Xavier, zero-bias) init
    result = train(tiny(tmp_path / "run", "optim.epochs=1"))
    tuned = make_model(tiny(tmp_path, f"model.pretrained={str(result.last_path)!r}"))
    saved = read_checkpoint(result.last_path)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in tuned.state_dict().items())  # fine-tuning start
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(InputFileError, match="junk.pth"):
        make_model(tiny(tmp_path, f"model.pretrained={str(tmp_path / 'junk.pth')!r}"))
