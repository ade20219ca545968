"""Dataset readers shared by evaluation and training: AFLW2000-3D, 300W_LP, BIWI, CMU Panoptic.

Angles are degrees in the HopeNet/300W_LP convention (yaw, pitch, roll). Each reader yields
`PoseSample`s; none of them crops or normalises (see posebridge.inference.crops and training/).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from posebridge.errors import InputFileError

W300LP_SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")


@dataclass
class PoseSample:
    image_path: Path
    yaw: float
    pitch: float
    roll: float
    pt2d: np.ndarray | None = None  # (2, K) landmarks in pixels; -1 marks a missing point
    pt3d_68: np.ndarray | None = None  # (3, 68) when the .mat has it (AFLW2000-3D)
    box: tuple[float, float, float, float] | None = None  # a given face box (Panoptic)
    group: str = ""  # source identity for leak-free splits (300W_LP: the source photo)
    extra: dict = field(default_factory=dict)

    @property
    def angles(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)


def read_pose_mat(mat_path: str | os.PathLike) -> dict:
    """Pose (degrees) and landmarks from a 3DDFA-style .mat (AFLW2000-3D, 300W_LP)."""
    try:
        mat = scipy.io.loadmat(str(mat_path))
        pose = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)
    except FileNotFoundError:
        raise InputFileError(mat_path, "label file not found") from None
    except (KeyError, ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as exc:
        raise InputFileError(mat_path, f"not a 3DDFA .mat with Pose_Para ({type(exc).__name__})") from None
    pitch, yaw, roll = np.degrees(pose[:3])
    out = {"yaw": float(yaw), "pitch": float(pitch), "roll": float(roll)}
    out["pt2d"] = np.asarray(mat["pt2d"], dtype=np.float64) if "pt2d" in mat else None
    out["pt3d_68"] = np.asarray(mat["pt3d_68"], dtype=np.float64) if "pt3d_68" in mat else None
    return out


def landmark_box(pt2d: np.ndarray) -> tuple[float, float, float, float]:
    """Bounding box of the valid landmarks (points with a -1 coordinate are ignored)."""
    pts = np.asarray(pt2d, dtype=np.float64).reshape(2, -1)
    keep = (pts[0] >= 0) & (pts[1] >= 0)
    if not keep.any():
        raise ValueError("no valid landmarks")
    pts = pts[:, keep]
    return (float(pts[0].min()), float(pts[1].min()), float(pts[0].max()), float(pts[1].max()))


def in_range(sample: PoseSample, limit: float = 99.0) -> bool:
    return all(-limit <= a <= limit for a in sample.angles)


def read_aflw2000(root: str | os.PathLike) -> Iterator[PoseSample]:
    """Every image with a .mat beside it, sorted by name (filter with `in_range` for the protocol)."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "AFLW2000 folder not found")
    for jpg in sorted(root.glob("*.jpg")):
        mat = jpg.with_suffix(".mat")
        if not mat.exists():
            continue
        lab = read_pose_mat(mat)
        yield PoseSample(
            jpg, lab["yaw"], lab["pitch"], lab["roll"], lab["pt2d"], lab["pt3d_68"], group=jpg.stem
        )


def w300lp_group(stem: str) -> str:
    """The source photo of a 300W_LP sample: `HELEN_232194_1_0` -> `HELEN_232194_1`.

    The trailing index numbers the synthetic rotations; `_Flip` folders hold mirrored twins with the
    same file names, so both map to the same group.
    """
    return stem.rsplit("_", 1)[0]


def list_300w_lp(root: str | os.PathLike, cache: str | os.PathLike | None = None) -> list[Path]:
    """All .jpg paths of a 300W_LP tree (AFW, HELEN, IBUG, LFPW and their _Flip twins), cached in a
    text file of relative paths so large trees are walked once."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "300W_LP folder not found")
    cache_path = Path(cache) if cache else None
    if cache_path and cache_path.exists():
        return [root / line for line in cache_path.read_text().split() if line]
    paths: list[Path] = []
    for sub in W300LP_SUBSETS:
        for name in (sub, f"{sub}_Flip"):
            d = root / name
            if d.is_dir():
                paths += sorted(p for p in d.glob("*.jpg") if p.with_suffix(".mat").exists())
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text("\n".join(str(p.relative_to(root)) for p in paths) + "\n")
    return paths


def read_300w_lp(root: str | os.PathLike, cache: str | os.PathLike | None = None) -> Iterator[PoseSample]:
    for jpg in list_300w_lp(root, cache):
        lab = read_pose_mat(jpg.with_suffix(".mat"))
        flip = jpg.parent.name.endswith("_Flip")
        yield PoseSample(
            jpg, lab["yaw"], lab["pitch"], lab["roll"], lab["pt2d"], group=w300lp_group(jpg.stem),
            extra={"subset": jpg.parent.name, "flipped": flip},
        )


def biwi_angles(rotation_rows: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees from a BIWI pose.txt rotation (rows as stored), HopeNet's convention."""
    r = np.asarray(rotation_rows, dtype=np.float64).reshape(3, 3).T
    roll = -np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    yaw = -np.degrees(np.arctan2(-r[2, 0], np.sqrt(r[2, 1] ** 2 + r[2, 2] ** 2)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    return float(yaw), float(pitch), float(roll)


def read_biwi_pose(pose_txt: str | os.PathLike) -> tuple[float, float, float]:
    try:
        nums = [float(x) for x in Path(pose_txt).read_text().split()]
    except FileNotFoundError:
        raise InputFileError(pose_txt, "BIWI pose file not found") from None
    except ValueError:
        raise InputFileError(pose_txt, "BIWI pose file has a non-numeric value") from None
    if len(nums) < 9:
        raise InputFileError(pose_txt, f"BIWI pose file has {len(nums)} numbers, expected 12")
    return biwi_angles(np.array(nums[:9]))


def read_biwi(root: str | os.PathLike) -> Iterator[PoseSample]:
    """BIWI frames (`frame_XXXXX_rgb.png` + `frame_XXXXX_pose.txt`) anywhere under root."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "BIWI folder not found")
    for png in sorted(root.rglob("*_rgb.png")):
        pose = png.with_name(png.name.replace("_rgb.png", "_pose.txt"))
        if pose.exists():
            yaw, pitch, roll = read_biwi_pose(pose)
            yield PoseSample(png, yaw, pitch, roll, group=png.parent.name)


def read_panoptic(labels_txt: str | os.PathLike) -> Iterator[PoseSample]:
    """CMU Panoptic labels: `image;x_min;y_min;w;h;yaw;pitch;roll` (degrees, full yaw range).
    Images are looked up by file name beside the labels file."""
    labels_txt = Path(labels_txt)
    if not labels_txt.is_file():
        raise InputFileError(labels_txt, "Panoptic labels file not found")
    for n, line in enumerate(labels_txt.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(";")
        if len(parts) != 8:
            raise InputFileError(labels_txt, f"line {n}: expected 8 ';'-separated fields, got {len(parts)}")
        try:
            x, y, w, h, yaw, pitch, roll = map(float, parts[1:])
        except ValueError:
            raise InputFileError(labels_txt, f"line {n}: non-numeric field") from None
        image = labels_txt.parent / Path(parts[0]).name
        yield PoseSample(image, yaw, pitch, roll, box=(x, y, x + w, y + h), group=Path(parts[0]).parent.name)
