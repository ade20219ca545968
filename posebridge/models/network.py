"""HopeNet-style networks: a backbone registry, each with three binned heads fc_yaw/fc_pitch/fc_roll.

`resnet50` keeps torchvision's ResNet attribute names at the top level (conv1, bn1, layer1..4) so the
published HopeNet state_dicts load key for key. Every network's forward returns the three logit
tensors (yaw, pitch, roll); decoding to angles is `posebridge.models.bins.decode`.

A network built with `box_head=True` also has `fc_box`, a linear layer on the same features that
predicts where the face's ROI is relative to the input crop: (dx, dy) as fractions of the crop's side
in the crop's axes and log(ROI side / crop side). `forward_all` returns the three logits and that
(N, 3) tensor; a tracker re-crops the next frame from it (posebridge.faces.tracker).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from posebridge.inference.meta import ANGLES
from posebridge.models.bins import BinSpec

HOPENET_BINS = {a: BinSpec(66, 3.0, -99.0, "left") for a in ANGLES}
CENTER_BINS = {a: BinSpec(66, 3.0, -99.0, "center") for a in ANGLES}
WHENET_BINS = {
    "yaw": BinSpec(120, 3.0, -180.0, "left"),
    "pitch": BinSpec(66, 3.0, -99.0, "left"),
    "roll": BinSpec(66, 3.0, -99.0, "left"),
}


class PoseNet(nn.Module):
    """Base class: subclasses build their trunk and implement `embed(x) -> (N, feature_dim)`."""

    backbone_name: str = ""

    def _add_heads(self, feature_dim: int, bins: dict[str, BinSpec]) -> None:
        self.bins = dict(bins)
        self.fc_yaw = nn.Linear(feature_dim, bins["yaw"].num_bins)
        self.fc_pitch = nn.Linear(feature_dim, bins["pitch"].num_bins)
        self.fc_roll = nn.Linear(feature_dim, bins["roll"].num_bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_box_head(self) -> None:
        self.fc_box = nn.Linear(self.fc_yaw.in_features, 3)
        nn.init.zeros_(self.fc_box.weight)
        nn.init.zeros_(self.fc_box.bias)

    @property
    def has_box_head(self) -> bool:
        return hasattr(self, "fc_box")

    def forward(self, x: torch.Tensor, with_box: bool = False) -> tuple[torch.Tensor, ...]:
        """(yaw, pitch, roll) logits; with `with_box` and a box head also the (N, 3) ROI offset."""
        f = self.embed(x)
        out = (self.fc_yaw(f), self.fc_pitch(f), self.fc_roll(f))
        return (*out, self.fc_box(f)) if with_box and self.has_box_head else out

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(yaw, pitch, roll) logits and, with a box head, the (N, 3) ROI offset."""
        return self.forward(x, with_box=True)


class ResNetPose(PoseNet):
    """torchvision ResNet trunk with flat attribute names (HopeNet's layout)."""

    def __init__(self, depth: int, bins: dict[str, BinSpec]) -> None:
        super().__init__()
        trunk = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(trunk, name))
        self._add_heads(trunk.fc.in_features, bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class AlexNetPose(PoseNet):
    """AlexNet trunk (features + the two 4096 fully connected layers); `relu=False` gives Model1."""

    def __init__(self, bins: dict[str, BinSpec], relu: bool = True) -> None:
        super().__init__()
        trunk = torchvision.models.alexnet(weights=None)
        self.features = trunk.features
        self.avgpool = trunk.avgpool
        self.classifier = nn.Sequential(*list(trunk.classifier.children())[:-1])
        if not relu:  # Model1: the same layers with every ReLU removed (indices kept for the state_dict)
            for seq in (self.features, self.classifier):
                for i, layer in enumerate(seq):
                    if isinstance(layer, nn.ReLU):
                        seq[i] = nn.Identity()
        self._add_heads(4096, bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class LeNetPose(PoseNet):
    """LeNet-5 layout (two 5x5 convolutions, 120 and 84 units), adaptive-pooled for any input size."""

    def __init__(self, bins: dict[str, BinSpec]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((5, 5)),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True), nn.Linear(120, 84), nn.ReLU(inplace=True)
        )
        self._add_heads(84, bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class EfficientNetPose(PoseNet):
    """timm's tf_efficientnet_b0 (TF "same" padding, BN eps 1e-3, swish, SE): WHENet's trunk."""

    def __init__(self, bins: dict[str, BinSpec]) -> None:
        super().__init__()
        import timm

        self.body = timm.create_model("tf_efficientnet_b0", pretrained=False, num_classes=0)
        self._add_heads(self.body.num_features, bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MobileNetV3Pose(PoseNet):
    """torchvision MobileNetV3-small trunk (features + global pool), for small fast students."""

    def __init__(self, bins: dict[str, BinSpec]) -> None:
        super().__init__()
        trunk = torchvision.models.mobilenet_v3_small(weights=None)
        self.features = trunk.features
        self.avgpool = trunk.avgpool
        self._add_heads(trunk.classifier[0].in_features, bins)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


BACKBONES: dict[str, Callable[[dict[str, BinSpec]], PoseNet]] = {
    "resnet50": lambda bins: ResNetPose(50, bins),
    "resnet18": lambda bins: ResNetPose(18, bins),
    "alexnet": lambda bins: AlexNetPose(bins, relu=True),
    "model1": lambda bins: AlexNetPose(bins, relu=False),
    "lenet": LeNetPose,
    "efficientnet_b0": EfficientNetPose,
    "mobilenet_v3_small": MobileNetV3Pose,
}
DEFAULT_BINS = {"efficientnet_b0": WHENET_BINS, "resnet50": HOPENET_BINS}


def build_model(backbone: str, bins: dict[str, BinSpec] | None = None, box_head: bool = False) -> PoseNet:
    """A randomly initialised network. `bins` defaults to the backbone's published layout
    (HopeNet left-edge bins for resnet50, WHENet's for efficientnet_b0, bin centres otherwise);
    `box_head` adds the ROI-offset head (module docstring)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    model = BACKBONES[backbone](bins or DEFAULT_BINS.get(backbone, CENTER_BINS))
    model.backbone_name = backbone
    if box_head:
        model.add_box_head()
    return model
