"""Preprocessing as in the seed: loose crop around the landmarks (random margin in training), resize,
random crop (train) or centre crop (test), ImageNet mean/std; label-preserving augmentations
(horizontal flip negates yaw and roll; Gaussian blur; optional box jitter and colour jitter).

All randomness comes from the `numpy.random.Generator` passed in, so a sample's augmentation depends
only on (seed, epoch, index): resumed runs and any number of loader workers see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from posebridge.inference.crops import crop_square
from posebridge.inference.meta import IMAGENET_MEAN, IMAGENET_STD

Box = tuple[float, float, float, float]


def loose_box(box: Box, k: float) -> Box:
    """HopeNet's loose crop of a landmark box, squared about its centre.

    HopeNet widens the landmark box by 0.6k x width left and right, 0.6k x height below and 2k x
    height above (room for the forehead, which 68-point landmarks miss); we then square it so the
    crop keeps the face's aspect ratio.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    x0, x1 = x0 - 0.6 * k * w, x1 + 0.6 * k * w
    y0, y1 = y0 - 2.0 * k * h, y1 + 0.6 * k * h
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def flip_angles(angles: np.ndarray) -> np.ndarray:
    """A horizontal mirror negates yaw and roll and keeps pitch (NaN = missing stays NaN)."""
    out = np.array(angles, dtype=np.float32, copy=True)
    out[0], out[2] = -out[0], -out[2]
    return out


@dataclass
class Transform:
    """Image (HxWx3 BGR uint8) + optional box + angles -> normalised CHW float tensor + angles.

    box: a landmark box (loosened by a margin k; random in [margin_min, margin_max] when training, the
    middle when testing) or None for an image that is already a face crop (used whole).
    """

    input_size: int
    resize: int
    train: bool
    margin_min: float = 0.2
    margin_max: float = 0.4
    flip: float = 0.5
    blur: float = 0.05
    scale_jitter: float = 0.0
    shift_jitter: float = 0.0
    shift_jitter_y: float = -1.0  # < 0: the same as shift_jitter
    color_jitter: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_config(cls, cfg, train: bool) -> Transform:
        d = cfg.data
        augment = train and d.augment
        return cls(
            input_size=cfg.model.input_size, resize=cfg.resize, train=augment,
            margin_min=d.margin_min, margin_max=d.margin_max, flip=d.flip, blur=d.blur,
            scale_jitter=d.scale_jitter, shift_jitter=d.shift_jitter, shift_jitter_y=d.shift_jitter_y,
            color_jitter=d.color_jitter,
        )  # fmt: skip

    def crop_box(self, image: np.ndarray, box: Box | None, rng: np.random.Generator) -> Box:
        if box is None:
            h, w = image.shape[:2]
            side = float(max(h, w))
            cx, cy = w / 2, h / 2
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        else:
            k = rng.uniform(self.margin_min, self.margin_max) if self.train else (
                (self.margin_min + self.margin_max) / 2)
            box = loose_box(box, k)
        shift_y = self.shift_jitter if self.shift_jitter_y < 0 else self.shift_jitter_y
        if self.train and (self.scale_jitter or self.shift_jitter or shift_y):
            x0, y0, x1, y1 = box
            side = (x1 - x0) * rng.uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
            cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * self.shift_jitter * (x1 - x0)
            cy = (y0 + y1) / 2 + rng.uniform(-1, 1) * shift_y * (y1 - y0)
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        return box

    def pixels(self, image: np.ndarray, box: Box | None, angles: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The augmented uint8 crop (input_size square, BGR) and its angles."""
        angles = np.asarray(angles, dtype=np.float32)
        crop = crop_square(image, self.crop_box(image, box, rng), self.resize)
        off = self.resize - self.input_size
        if off > 0:
            if self.train:
                ox, oy = int(rng.integers(0, off + 1)), int(rng.integers(0, off + 1))
            else:
                ox = oy = off // 2
            crop = crop[oy : oy + self.input_size, ox : ox + self.input_size]
        if self.train:
            if rng.random() < self.flip:
                crop = crop[:, ::-1]
                angles = flip_angles(angles)
            if rng.random() < self.blur:
                crop = cv2.GaussianBlur(np.ascontiguousarray(crop), (5, 5), 0)
            if self.color_jitter:
                a = rng.uniform(1 - self.color_jitter, 1 + self.color_jitter)
                b = rng.uniform(-self.color_jitter, self.color_jitter) * 64
                crop = np.clip(crop.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(crop), angles

    def to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """BGR uint8 -> RGB normalised CHW float32 (the layout inference/crops.py `to_batch` produces)."""
        arr = crop[..., ::-1].astype(np.float32) / 255.0
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    def __call__(self, image: np.ndarray, box: Box | None, angles: np.ndarray,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        crop, angles = self.pixels(image, box, angles, rng)
        return self.to_tensor(crop), torch.from_numpy(angles)

    def effective_margin(self) -> float:
        """The symmetric margin (inference/crops.py `square_box`) of the test-time crop seen from a square
        box of the landmark extent: (1 + 2m) = loosening factor x input_size / resize."""
        k = (self.margin_min + self.margin_max) / 2
        factor = (1 + 2.6 * k) * self.input_size / self.resize  # height grows by (2 + 0.6) k
        return max(0.0, (factor - 1) / 2)
