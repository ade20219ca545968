"""Training/test datasets by name, the transformed view the trainer iterates, and leak-free splits.

A dataset is a `PoseDataset`: indexable records (image, box, angles) plus one `group` per record
(the source identity: all records of one group land on the same side of a split). Angles are degrees
(yaw, pitch, roll); NaN marks a missing label, and the loss then trains only the heads that have one
(yaw-only data trains the yaw head only). Register a new dataset with:

    from training.data import PoseDataset, register_dataset

    @register_dataset("my_data")
    def my_data(root: str, limit: int = 0) -> PoseDataset:   # options come from [data.options]
        ...

and name it in the config: `[data] train = "my_data"`, `[data.options] root = "..."`. The module
holding the factory must be imported before training: list it in `[data.options] plugin = "..."` or
put it in `training.data.PLUGINS` (training.distill is listed there).
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from posebridge.errors import ConfigError, InputFileError
from posebridge.offline.datasets import (
    landmark_box,
    list_300w_lp,
    read_aflw2000,
    read_biwi,
    read_pose_mat,
    w300lp_group,
)
from training.transforms import Box, Transform

log = logging.getLogger(__name__)
PLUGINS = ("training.distill",)  # modules imported (if present) so their datasets register
DATASETS: dict[str, Callable[..., PoseDataset]] = {}


def register_dataset(name: str) -> Callable:
    def deco(factory: Callable[..., PoseDataset]) -> Callable[..., PoseDataset]:
        DATASETS[name] = factory
        return factory

    return deco


def _load_plugins(extra: str | Sequence[str] = ()) -> None:
    names = list(PLUGINS) + ([extra] if isinstance(extra, str) else list(extra))
    for mod in names:
        if not mod:
            continue
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # the plugin exists but one of its imports is missing: a real error
                raise
            if mod not in PLUGINS:
                raise ConfigError(f"data.options.plugin: no module {mod!r}") from None


def create_dataset(name: str, options: dict | None = None) -> PoseDataset:
    """Build a registered dataset; unknown names and options raise ConfigError naming them."""
    options = dict(options or {})
    _load_plugins(options.pop("plugin", ()))
    if name not in DATASETS:
        raise ConfigError(f"data.train: unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}")
    factory = DATASETS[name]
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(f"data.options.{unknown[0]}: unknown option for dataset {name!r} "
                              f"(known: {', '.join(params)})")
    return factory(**options)


def read_image(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputFileError(path, "image not found or not readable")
    return image


@dataclass
class Record:
    image: Path | np.ndarray  # a file (read lazily) or the pixels (BGR uint8)
    angles: tuple[float, float, float]  # yaw, pitch, roll degrees; NaN = missing
    box: Box | None = None  # landmark box to loosen, or None for an image that is already a face crop
    group: str = ""
    weights: tuple[float, float, float] | None = None  # per-angle sample weights (None = 1, 1, 1)


@dataclass
class PoseDataset:
    """Records plus bookkeeping; `skipped` counts records dropped by reason (never silently)."""

    name: str
    records: list[Record]
    skipped: dict[str, int] = field(default_factory=dict)
    protocol: str = "loose"  # the crop protocol the records follow ("loose" boxes or "3ddfa" crops)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def groups(self) -> list[str]:
        return [r.group for r in self.records]

    def load(self, i: int) -> tuple[np.ndarray, Box | None, np.ndarray]:
        r = self.records[i]
        image = r.image if isinstance(r.image, np.ndarray) else read_image(r.image)
        return image, r.box, np.asarray(r.angles, dtype=np.float32)

    def angles(self) -> np.ndarray:
        return np.asarray([r.angles for r in self.records], dtype=np.float32).reshape(-1, 3)

    def summary(self) -> str:
        skipped = ", ".join(f"{v} {k}" for k, v in self.skipped.items() if v) or "none"
        return f"{self.name}: {len(self)} samples, {len(set(self.groups))} groups; skipped: {skipped}"


# what the trainer builds its data with: (registered name, factory options) -> dataset; the default is
# create_dataset, a study passes one that builds each (name, options) once
DatasetFactory = Callable[[str, dict | None], PoseDataset]


def _in_range(angles: Sequence[float], limit: float) -> bool:
    return all(math.isnan(a) or -limit <= a <= limit for a in angles)


def _limited(items: list, limit: int) -> list:
    return items[:limit] if limit and limit > 0 else items


# ----------------------------------------------------------------------------- registered datasets


@register_dataset("w300lp")
def w300lp(root: str, cache: str = "", limit: int = 0, limit_deg: float = 99.0) -> PoseDataset:
    """300W_LP (AFW, HELEN, IBUG, LFPW and _Flip twins): labels from Pose_Para, box from pt2d.
    `cache`: a text file listing the images (written on first use). Group = source photo."""
    paths = _limited(list_300w_lp(root, cache or None), limit)
    records, skipped = [], {"out of range": 0, "no landmarks": 0}
    for jpg in paths:
        lab = read_pose_mat(jpg.with_suffix(".mat"))
        angles = (lab["yaw"], lab["pitch"], lab["roll"])
        if not _in_range(angles, limit_deg):
            skipped["out of range"] += 1
            continue
        try:
            box = landmark_box(lab["pt2d"])
        except (ValueError, TypeError):
            skipped["no landmarks"] += 1
            continue
        records.append(Record(jpg, angles, box, w300lp_group(jpg.stem)))
    return PoseDataset("w300lp", records, skipped)


@register_dataset("aflw2000")
def aflw2000(root: str, limit: int = 0, limit_deg: float = 99.0) -> PoseDataset:
    """AFLW2000-3D for testing (loose crop from the pt2d box); |angle| > limit_deg skipped, counted."""
    records, skipped = [], {"out of range": 0, "no landmarks": 0}
    for s in read_aflw2000(root):
        if not _in_range(s.angles, limit_deg):
            skipped["out of range"] += 1
            continue
        try:
            box = landmark_box(s.pt2d)
        except (ValueError, TypeError):
            skipped["no landmarks"] += 1
            continue
        records.append(Record(s.image_path, s.angles, box, s.group))
    return PoseDataset("aflw2000", _limited(records, limit), skipped)


@register_dataset("aflw2000_crops")
def aflw2000_crops(root: str, labels: str, limit: int = 0, limit_deg: float = 99.0) -> PoseDataset:
    """AFLW2000 3DDFA-protocol crops (`root`/*.jpg) with labels from the .mat files in `labels`."""
    root, labels_dir = Path(root), Path(labels)
    if not root.is_dir():
        raise InputFileError(root, "AFLW2000 crops folder not found")
    records, skipped = [], {"out of range": 0, "no label": 0}
    for jpg in sorted(root.glob("*.jpg")):
        mat = labels_dir / (jpg.stem + ".mat")
        if not mat.exists():
            skipped["no label"] += 1
            continue
        lab = read_pose_mat(mat)
        angles = (lab["yaw"], lab["pitch"], lab["roll"])
        if not _in_range(angles, limit_deg):
            skipped["out of range"] += 1
            continue
        records.append(Record(jpg, angles, None, jpg.stem))
    return PoseDataset("aflw2000_crops", _limited(records, limit), skipped, protocol="3ddfa")


@register_dataset("biwi")
def biwi(root: str, limit: int = 0, limit_deg: float = 99.0, detector: str = "default") -> PoseDataset:
    """BIWI frames for testing; the face box comes from a posebridge face detector (no landmarks in
    BIWI). Frames without a detected face are skipped and counted."""
    from posebridge.faces.detectors import create_detector

    det = create_detector(detector)
    records, skipped = [], {"out of range": 0, "no face": 0}
    for s in _limited(list(read_biwi(root)), limit):
        if not _in_range(s.angles, limit_deg):
            skipped["out of range"] += 1
            continue
        faces = det.detect(read_image(s.image_path))
        if not faces:
            skipped["no face"] += 1
            continue
        records.append(Record(s.image_path, s.angles, faces[0].box, s.group))
    return PoseDataset("biwi", records, skipped)


def aflw2000_names(folder: str | Path) -> set[str]:
    """Image names of an AFLW2000 folder (used to refuse them in training data)."""
    return {p.name for p in Path(folder).glob("*.jpg")}


@register_dataset("aflw_yaw_crops")
def aflw_yaw_crops(
    root: str, limit: int = 0, limit_deg: float = 99.0, preload: bool = False, exclude: str = ""
) -> PoseDataset:
    """AFLW 3DDFA-protocol face crops with the original AFLW yaw annotation only (pitch/roll NaN).

    `labels.csv` beside `images/`; yaw beyond ±limit_deg is skipped and counted. `exclude`: an
    AFLW2000 folder whose image names must not appear (raises if one does). `preload` reads every
    crop into RAM once (19k x 120x120x3 = 0.8 GB).
    """
    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file():
        raise InputFileError(table, "labels.csv not found")
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "image" not in rows[0] or "yaw_deg" not in rows[0]:
        raise InputFileError(table, "expected columns image, yaw_deg")
    banned = aflw2000_names(exclude) if exclude else set()
    records, skipped = [], {"out of range": 0}
    for row in _limited(rows, limit):
        if row["image"] in banned:
            raise InputFileError(table, f"{row['image']} is an AFLW2000 image; refusing to train on it")
        yaw = float(row["yaw_deg"])
        if not _in_range((yaw,), limit_deg):
            skipped["out of range"] += 1
            continue
        path = root / "images" / row["image"]
        records.append(Record(path, (yaw, math.nan, math.nan), None, Path(row["image"]).stem))
    if preload:
        from tqdm import tqdm

        for r in tqdm(records, desc="preload aflw_yaw_crops", leave=False, disable=None):
            r.image = read_image(r.image)
    return PoseDataset("aflw_yaw_crops", records, skipped, protocol="3ddfa")


# ----------------------------------------------------------------------------- splits and views


def split_by_group(groups: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Train/validation indices with every group wholly on one side.

    Groups are ordered by a seeded hash and the first ceil(val_fraction x #groups) go to validation
    (at least one when val_fraction > 0 and there are two or more groups). For 300W_LP the group is
    the source photo, so its synthetic rotations and its mirrored _Flip twin never straddle the split.
    """
    unique = sorted(set(groups))
    if val_fraction <= 0 or len(unique) < 2:
        return list(range(len(groups))), []
    key = {g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest() for g in unique}
    ordered = sorted(unique, key=key.__getitem__)
    n_val = min(len(unique) - 1, max(1, math.ceil(val_fraction * len(unique))))
    val_groups = set(ordered[:n_val])
    train_idx = [i for i, g in enumerate(groups) if g not in val_groups]
    val_idx = [i for i, g in enumerate(groups) if g in val_groups]
    return train_idx, val_idx


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class View(Dataset):
    """A subset of a PoseDataset under a Transform; items are dicts {image, angles, index}.

    `epoch` is part of each sample's random seed: set it (`set_epoch`) before each epoch's loader.
    `repeat` lists every index that many times (tiny data sets).
    """

    def __init__(self, base: PoseDataset, indices: Sequence[int], transform: Transform, seed: int = 0,
                 repeat: int = 1) -> None:
        self.base, self.indices, self.transform = base, list(indices) * repeat, transform
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        idx = self.indices[i]
        image, box, angles = self.base.load(idx)
        rng = sample_rng(self.seed, self.epoch, i)
        x, y, target = self.transform(image, box, angles, rng)
        w = self.base.records[idx].weights
        weights = torch.tensor(w if w is not None else (1.0, 1.0, 1.0), dtype=torch.float32)
        return {"image": x, "angles": y, "box": target, "weights": weights, "index": torch.tensor(idx)}
