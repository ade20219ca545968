"""Model metadata carried inside every checkpoint: what the weights expect and how to decode them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from posebridge.inference.bins import BinSpec

ANGLES = ("yaw", "pitch", "roll")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class CropSpec:
    """How a face box becomes the square crop the model was trained on.

    protocol "loose": the box is enlarged by `margin` x its size on each side, then squared.
    protocol "3ddfa": a square centred on the landmark box, side sqrt(2) x the longer side; from a
    detector box it is built through `box_map` (fitted offsets, see posebridge.inference.crops).
    """

    protocol: str = "loose"
    margin: float = 0.25
    box_map: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CropSpec:
        return cls(**d)


@dataclass
class ModelMeta:
    """Everything needed to run a set of weights correctly, stored in the checkpoint."""

    name: str
    backbone: str
    bins: dict[str, BinSpec] = field(
        default_factory=lambda: {a: BinSpec(66, 3.0, -99.0, "center") for a in ANGLES}
    )
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "rgb"  # channel order the network expects
    crop: CropSpec = field(default_factory=CropSpec)
    provenance: dict[str, str] = field(default_factory=dict)  # source, license, sha256, notes
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bins"] = {k: v.to_dict() for k, v in self.bins.items()}
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelMeta:
        d = dict(d)
        d["bins"] = {k: BinSpec.from_dict(v) for k, v in d["bins"].items()}
        d["crop"] = CropSpec.from_dict(d.get("crop", {}))
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)
