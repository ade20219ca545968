"""ONNX export (decoding inside the graph) and int8 quantization, checked against PyTorch on real crops."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import onnx
import pytest

from posebridge.commands.models import add_export_parser
from posebridge.errors import ConfigError, InputFileError
from posebridge.imagefiles import evenly, list_images
from posebridge.inference.crops import load_crops, to_batch
from posebridge.inference.onnx_backend import META_KEY
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.export import onnx_bytes, read_onnx_meta
from posebridge.models.onnx_check import verify_onnx
from posebridge.models.quantize import calibration_dir, head_nodes, quantize_onnx
from posebridge.models.torch_backends import TorchBackend
from tests.helpers.models import spread_model
from tests.helpers.paths import shared_path


def crop_batch(n: int, meta) -> np.ndarray:
    """`n` real face crops from the training crops (never the benchmark), as the model's batch."""
    paths = evenly(list_images(shared_path("data", "aflw-yaw-crops")), n)
    return to_batch(load_crops(paths, meta.input_size), meta)


@pytest.fixture(scope="module")
def small():
    net, meta = spread_model()
    return net, meta, onnx_bytes(net, meta)


@pytest.fixture(scope="module")
def real_crops(small):
    _, meta, _ = small
    return crop_batch(24, meta)


def test_onnx_matches_pytorch_on_real_crops(small, real_crops):
    net, meta, model = small
    ref, _ = TorchBackend(net, meta, "cpu").run(real_crops)
    assert ref.std(axis=0).min() > 2.0, "angles must vary between crops for the comparison to mean anything"
    report = verify_onnx(model, net, meta, real_crops)
    assert report.crops == 24
    assert report.max_angle_diff < 0.1
    assert report.max_std_diff < 0.1
    assert "max angle difference" in report.line()


def test_verify_detects_a_different_model(small, real_crops):
    """The check can fail: this ONNX graph compared with a PyTorch model of other weights."""
    _, meta, model = small
    other, _ = spread_model(seed=5)
    report = verify_onnx(model, other, meta, real_crops[:8])
    assert report.max_angle_diff > 1.0


def test_dynamic_batch_and_outputs(small):
    _, meta, model = small
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["angles", "stds"]
    for n in (1, 5):
        angles, stds = sess.run(None, {"input": np.zeros((n, 3, 96, 96), np.float32)})
        assert angles.shape == (n, 3) and stds.shape == (n, 3)
        assert np.all(stds >= 0)


def test_meta_travels_in_the_file(small, tmp_path):
    _, meta, model = small
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    assert read_onnx_meta(path).to_dict() == meta.to_dict()
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props[META_KEY])["backbone"] == "mobilenet_v3_small"


def test_bad_onnx_files_are_input_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_onnx_meta(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf at all" * 10)
    with pytest.raises(InputFileError, match=str(bad.name)):
        read_onnx_meta(bad)
    plain = tmp_path / "plain.onnx"
    x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("angles", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["input"], ["angles"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph), str(plain))
    with pytest.raises(InputFileError, match=META_KEY):
        read_onnx_meta(plain)


def test_int8_is_quantized_keeps_heads_fp32_and_follows_fp32():
    """The shipped model's real weights: the int8 graph has QDQ pairs, keeps the three heads in fp32, and
    follows the fp32 graph closely on real (training) crops. Its accuracy cost on the benchmark is
    measured by benchmarks/bench_int8.py (docs/speed.md)."""
    from posebridge.inference.model_store import packaged_models
    from posebridge.inference.onnx_backend import OnnxBackend

    fp32_path = packaged_models()["posebridge-small"].onnx
    fp32 = OnnxBackend(fp32_path)
    q = quantize_onnx(fp32_path.read_bytes(), fp32.meta, shared_path("data", "aflw-yaw-crops"), count=64)
    proto = onnx.load_from_string(q)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    assert sum(n.op_type == "Gemm" and n.name.startswith("node_linear") for n in proto.graph.node) == 3
    props = {p.key: p.value for p in proto.metadata_props}
    assert META_KEY in props and "int8" in props["posebridge_quant"]
    x = crop_batch(48, fp32.meta)
    ref, _ = fp32.run(x)
    got, _ = OnnxBackend(q).run(x)
    assert np.abs(got - ref).mean() < 0.1 * ref.std(axis=0).mean()
    for k in range(3):
        assert np.corrcoef(got[:, k], ref[:, k])[0, 1] > 0.98


def test_head_nodes_found(small, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(small[2])
    heads = head_nodes(path)
    assert len(heads) == 3  # fc_yaw, fc_pitch, fc_roll feed the three decoding softmaxes


def test_calibration_refuses_evaluation_images(tmp_path, monkeypatch):
    evaluation = tmp_path / "aflw2000-dev-crops"
    evaluation.mkdir()
    with pytest.raises(ConfigError, match="evaluation set"):
        calibration_dir(evaluation)
    import posebridge.models.quantize as q

    monkeypatch.delenv("POSEBRIDGE_CALIB", raising=False)
    monkeypatch.setattr(q, "DEFAULT_CALIB", tmp_path / "absent")
    with pytest.raises(ConfigError, match="--calib"):
        calibration_dir(None)


def test_models_export_command(small, tmp_path, capsys):
    net, meta, _ = small
    ckpt = save_checkpoint(tmp_path / "tiny.pt", net, meta)
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(crops / f"c{i}.png"), rng.integers(0, 255, (60, 60, 3), np.uint8))
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers())
    out = tmp_path / "out" / "tiny.onnx"
    args = parser.parse_args(["export", "--onnx", str(out), "--model", str(ckpt), "--verify", str(crops)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "max angle difference" in text and out.is_file()
    assert read_onnx_meta(out).name == "tiny"


def test_whenet_onnx_matches_pytorch():
    """The real WHENet weights: exported graph within 0.1 degree of PyTorch on real crops."""
    from posebridge.models.importers import import_whenet

    net, meta = import_whenet(shared_path("models", "WHENet.h5"))
    crops = crop_batch(16, meta)
    report = verify_onnx(onnx_bytes(net, meta), net, meta, crops)
    assert report.max_angle_diff < 0.1, report.line()


def test_int8_advice_follows_the_measured_cost():
    from posebridge.models.quantize import MAX_INT8_COST, MEASURED_INT8_COST, int8_advice

    assert int8_advice("never-measured") is None
    for name, cost in MEASURED_INT8_COST.items():
        assert (int8_advice(name) is not None) == (cost >= MAX_INT8_COST)
