"""Importers: HopeNet state_dicts load unchanged; WHENet's h5 matches an independent Keras-semantics
forward pass, gives plausible angles on a real face, and bad files give one clear error."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posebridge.errors import InputFileError
from posebridge.models.importers import import_hopenet, import_whenet
from posebridge.models.network import HOPENET_BINS, ResNetPose
from tests.helpers.paths import shared_path

# ---------------------------------------------------------------- HopeNet


def hopenet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state_dict with HopeNet's exact layout (ResNet-50 + fc_yaw/pitch/roll + fc_finetune)."""
    torch.manual_seed(seed)
    net = ResNetPose(50, dict(HOPENET_BINS))
    for m in net.modules():  # non-trivial BN statistics so a wrong mapping would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = net.state_dict()
    sd["fc_finetune.weight"] = torch.randn(3, 2048)
    sd["fc_finetune.bias"] = torch.randn(3)
    return sd, net.eval()


def test_hopenet_pkl_imports_with_identical_outputs(tmp_path):
    sd, ref = hopenet_state_dict()
    pkl = tmp_path / "hopenet_alpha1.pkl"
    torch.save(sd, pkl)
    model, meta = import_hopenet(pkl, name="hopenet-test")
    assert meta.backbone == "resnet50"
    assert meta.extra["dropped_keys"] == ["fc_finetune.bias", "fc_finetune.weight"]
    assert all(b.offset == "left" and b.num_bins == 66 and b.low == -99.0 for b in meta.bins.values())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(model(x), ref(x), strict=True):
            assert torch.equal(a, b)


def test_hopenet_dataparallel_prefix_is_accepted(tmp_path):
    sd, ref = hopenet_state_dict(1)
    pkl = tmp_path / "dp.pkl"
    torch.save({f"module.{k}": v for k, v in sd.items()}, pkl)
    model, _ = import_hopenet(pkl)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[0], ref(x)[0])


def test_hopenet_rejects_missing_key_and_garbage(tmp_path):
    sd, _ = hopenet_state_dict()
    del sd["layer3.2.conv1.weight"]
    pkl = tmp_path / "broken.pkl"
    torch.save(sd, pkl)
    with pytest.raises(InputFileError, match=r"broken.pkl: .*'layer3.2.conv1.weight' is missing"):
        import_hopenet(pkl)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(InputFileError, match="junk.pkl: not a readable PyTorch state_dict"):
        import_hopenet(junk)


# ---------------------------------------------------------------- WHENet

B0_STAGES = [  # repeats, kernel, stride, expand ratio, in, out (EfficientNet-B0)
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]


class KerasB0:
    """Keras semantics written out from the h5 by layer name: TF 'same' padding computed per layer,
    BatchNormalization with epsilon 1e-3, swish, squeeze-excite with the Keras layer order."""

    def __init__(self, h5: h5py.File) -> None:
        self.h5 = h5
        self.n = {"conv2d": 0, "depthwise_conv2d": 0, "batch_normalization": 0}

    def w(self, kind: str, key: str = "") -> dict[str, torch.Tensor]:
        self.n[kind] += 1
        g = self.h5[f"{kind}_{self.n[kind]}"]
        return {n.decode().rsplit("/", 1)[-1].split(":")[0]: torch.from_numpy(np.asarray(g[n.decode()]))
                for n in g.attrs["weight_names"]}

    @staticmethod
    def same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph = max((-(-h // s) - 1) * s + k - h, 0)
        pw = max((-(-w // s) - 1) * s + k - w, 0)
        return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])

    def conv(self, x, k=1, s=1):
        p = self.w("conv2d")
        weight = p["kernel"].permute(3, 2, 0, 1)
        return F.conv2d(self.same_pad(x, k, s), weight, p.get("bias"), s)

    def dw(self, x, k, s):
        p = self.w("depthwise_conv2d")
        weight = p["depthwise_kernel"].permute(2, 3, 0, 1)
        return F.conv2d(self.same_pad(x, k, s), weight, None, s, groups=x.shape[1])

    def bn(self, x):
        p = self.w("batch_normalization")
        shape = (1, -1, 1, 1)
        return (x - p["moving_mean"].view(shape)) / torch.sqrt(p["moving_variance"].view(shape) + 1e-3) * \
            p["gamma"].view(shape) + p["beta"].view(shape)

    @staticmethod
    def swish(x):
        return x * torch.sigmoid(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.swish(self.bn(self.conv(x, 3, 2)))
        for repeats, k, stride, expand, cin, cout in B0_STAGES:
            for r in range(repeats):
                s, ci = (stride, cin) if r == 0 else (1, cout)
                h = self.swish(self.bn(self.conv(x))) if expand != 1 else x
                h = self.swish(self.bn(self.dw(h, k, s)))
                se = h.mean(dim=(2, 3), keepdim=True)
                se = torch.sigmoid(self.conv(self.swish(self.conv(se))))
                h = self.bn(self.conv(h * se))
                x = x + h if (s == 1 and ci == cout) else h
        x = self.swish(self.bn(self.conv(x))).mean(dim=(2, 3))
        out = []
        for head in ("yaw_new", "pitch_new", "roll_new"):
            g = self.h5[head]
            out.append(x @ torch.from_numpy(np.asarray(g[f"{head}/kernel:0"])) +
                       torch.from_numpy(np.asarray(g[f"{head}/bias:0"])))
        return out


@pytest.fixture(scope="module")
def whenet():
    return import_whenet(shared_path("models", "WHENet.h5"))


@pytest.mark.parametrize("size", [224, 161])  # even sizes pad TF-style (0 before, 1 after), odd ones (1, 1)
def test_whenet_matches_keras_semantics(whenet, size):
    model, meta = whenet
    assert meta.provenance["sha256"].startswith("8f8bcf92")
    assert (meta.bins["yaw"].num_bins, meta.bins["yaw"].low, meta.bins["yaw"].offset) == (120, -180.0, "left")
    assert (meta.bins["pitch"].num_bins, meta.bins["pitch"].low) == (66, -99.0)
    assert meta.color == "rgb" and meta.provenance["license"] == "BSD-3-Clause"
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), h5py.File(shared_path("models", "WHENet.h5"), "r") as h5:
        ref = KerasB0(h5).forward(x)
        got = model(x)
    for a, b in zip(got, ref, strict=True):
        assert torch.allclose(a, b, atol=2e-3, rtol=1e-3), (a - b).abs().max()


def test_whenet_gives_plausible_angles_on_a_face(whenet):
    import cv2

    from posebridge.inference.estimator import Estimator
    from posebridge.offline.datasets import landmark_box, read_pose_mat

    root = shared_path("data", "aflw2000-dev")
    est = Estimator.from_model(*whenet, device="cpu")
    for stem in ("image00002", "image00006"):  # near-frontal and ~50 degrees yaw
        lab = read_pose_mat(root / f"{stem}.mat")
        pose = est.predict(cv2.imread(str(root / f"{stem}.jpg")), [landmark_box(lab["pt2d"])])[0]
        for a in ("yaw", "pitch", "roll"):
            assert abs(getattr(pose, a) - lab[a]) < 8.0, (stem, a, getattr(pose, a), lab[a])


def copy_h5(src, dst, drop: str | None = None, reshape: str | None = None) -> None:
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        for k, v in fi.attrs.items():
            fo.attrs[k] = v
        for name in fi:
            if name == drop:
                continue
            fi.copy(name, fo)
        if reshape:
            g = fo[reshape]
            wn = g.attrs["weight_names"][0].decode()
            data = np.asarray(g[wn])
            del g[wn]
            g[wn] = data[..., :-1]


def test_whenet_h5_with_missing_layer_is_rejected(tmp_path):
    src = shared_path("models", "WHENet.h5")
    bad = tmp_path / "missing.h5"
    copy_h5(src, bad, drop="depthwise_conv2d_7")
    msg = r"missing.h5: not a WHENet h5: layer 'depthwise_conv2d_7' is missing"
    with pytest.raises(InputFileError, match=msg):
        import_whenet(bad)
    wrong = tmp_path / "wrong.h5"
    copy_h5(src, wrong, reshape="conv2d_30")
    with pytest.raises(InputFileError, match=r"wrong.h5: layer 'conv2d_30' has shape"):
        import_whenet(wrong)


def test_whenet_rejects_non_hdf5(tmp_path):
    f = tmp_path / "fake.h5"
    f.write_bytes(b"\x89HDF not really")
    with pytest.raises(InputFileError, match="fake.h5: not a readable HDF5 file"):
        import_whenet(f)


def test_cli_import_of_bad_weights_is_one_line(tmp_path, monkeypatch, capsys):
    from posebridge.cli import main

    monkeypatch.setenv("POSEBRIDGE_HOME", str(tmp_path / "home"))
    bad = tmp_path / "missing.h5"
    copy_h5(shared_path("models", "WHENet.h5"), bad, drop="yaw_new")
    assert main(["models", "import", str(bad), "--format", "whenet", "--name", "w"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.h5" in err[0] and "'yaw_new' is missing" in err[0]
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(shared_path("models", "WHENet.h5").read_bytes()[:100_000])
    assert main(["models", "import", str(truncated), "--format", "whenet", "--name", "w"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cut.h5" in err[0], err
    assert not (tmp_path / "home" / "models" / "w.pt").exists()
