"""Model metadata carried inside every model file (ONNX metadata `posebridge_meta`, checkpoint `meta`):
what the weights expect and how to decode them. `ModelMeta.from_dict` validates every field, so a
crafted file gives one line naming the field (posebridge.validation), never a traceback or an
absurd allocation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.inference.bin_spec import OFFSETS, BinSpec

ANGLES = ("yaw", "pitch", "roll")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PROTOCOLS = ("loose", "3ddfa")
COLORS = ("rgb", "bgr")
INPUT_SIZE_RANGE = (16, 512)  # pixels; larger inputs are not a head-pose crop (and would exhaust memory)
BOX_MAP_KEYS = {"dx": (-1.0, 1.0), "dy": (-1.0, 1.0), "dx_yaw": (-1.0, 1.0), "scale": (0.25, 4.0)}


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
    def from_dict(cls, d: Any, where: str = "meta.crop") -> CropSpec:
        d = v.table(where, d)
        unknown = set(d) - {"protocol", "margin", "box_map"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {v.show(sorted(unknown))}")
        box_map = v.table(f"{where}.box_map", d.get("box_map", {}))
        checked = {}
        for key, value in box_map.items():
            if key not in BOX_MAP_KEYS:
                known = ", ".join(BOX_MAP_KEYS)
                raise ConfigError(f"{where}.box_map: unknown key {v.show(key)} (known: {known})")
            checked[key] = v.number(f"{where}.box_map.{key}", value, *BOX_MAP_KEYS[key])
        return cls(
            protocol=v.choice(f"{where}.protocol", d.get("protocol", "loose"), PROTOCOLS),
            margin=v.number(f"{where}.margin", d.get("margin", 0.25), 0.0, 2.0),
            box_map=checked,
        )


def _bins(where: str, d: Any) -> dict[str, BinSpec]:
    d = v.table(where, d)
    if set(d) != set(ANGLES):
        raise ConfigError(f"{where}: expected keys {', '.join(ANGLES)}, got {v.show(sorted(map(str, d)))}")
    out = {}
    for angle in ANGLES:
        b = v.table(f"{where}.{angle}", d[angle])
        out[angle] = BinSpec(
            num_bins=v.integer(f"{where}.{angle}.num_bins", b.get("num_bins"), 2, 1000),
            width=v.number(f"{where}.{angle}.width", b.get("width"), 0.0, 90.0, lo_open=True),
            low=v.number(f"{where}.{angle}.low", b.get("low"), -360.0, 360.0),
            offset=v.choice(f"{where}.{angle}.offset", b.get("offset", "center"), OFFSETS),
        )
    return out


@dataclass
class ModelMeta:
    """Everything needed to run a set of weights correctly, stored with the weights.

    `extra` holds optional run-time settings: `flip_average` (average with the mirrored crop),
    `tta_zooms` (test-time zoom views), `filter` (calibrated filter defaults), plus provenance notes."""

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

    @property
    def flip_average(self) -> bool:
        return bool(self.extra.get("flip_average", False))

    @property
    def box_head(self) -> bool:
        """The network also predicts where the face's ROI is relative to its input crop."""
        return bool(self.extra.get("box_head", False))

    @property
    def zooms(self) -> tuple[float, ...]:
        return tuple(float(z) for z in self.extra.get("tta_zooms", (1.0,)))

    @classmethod
    def from_dict(cls, d: Any, where: str = "meta") -> ModelMeta:
        """Validated: every field's type and range is checked (one ConfigError line naming it)."""
        d = v.table(where, d)
        known = {"name", "backbone", "bins", "input_size", "mean", "std", "color", "crop", "provenance",
                 "extra"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"{where}: unknown keys {v.show(sorted(map(str, unknown)))}")
        extra = dict(v.table(f"{where}.extra", d.get("extra", {})))
        for flag in ("flip_average", "box_head"):
            if flag in extra:
                v.boolean(f"{where}.extra.{flag}", extra[flag])
        if "tta_zooms" in extra:
            zooms = extra["tta_zooms"]
            if not isinstance(zooms, list) or not 1 <= len(zooms) <= 8:
                raise ConfigError(f"{where}.extra.tta_zooms: expected a list of 1-8 zoom factors, "
                                  f"got {v.show(zooms)}")
            extra["tta_zooms"] = [v.number(f"{where}.extra.tta_zooms[{i}]", z, 0.5, 2.0)
                                  for i, z in enumerate(zooms)]
        if "filter" in extra:
            v.table(f"{where}.extra.filter", extra["filter"])  # values: posebridge.filtering.config
        provenance = v.table(f"{where}.provenance", d.get("provenance", {}))
        return cls(
            name=v.text(f"{where}.name", d.get("name"), 200),
            backbone=v.text(f"{where}.backbone", d.get("backbone"), 200),
            bins=_bins(f"{where}.bins", d.get("bins")),
            input_size=v.integer(f"{where}.input_size", d.get("input_size", 224), *INPUT_SIZE_RANGE),
            mean=v.numbers(f"{where}.mean", d.get("mean", IMAGENET_MEAN), 3, -10.0, 10.0),
            std=v.numbers(f"{where}.std", d.get("std", IMAGENET_STD), 3, 0.0, 10.0, lo_open=True),
            color=v.choice(f"{where}.color", d.get("color", "rgb"), COLORS),
            crop=CropSpec.from_dict(d.get("crop", {}), f"{where}.crop"),
            provenance={str(k): str(x) for k, x in provenance.items()},
            extra=extra,
        )
