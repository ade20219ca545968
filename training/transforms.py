"""Preprocessing as in the seed: loose crop around the landmarks (random margin in training), resize,
random crop (train) or centre crop (test), ImageNet mean/std; label-preserving augmentations
(horizontal flip negates yaw and roll; Gaussian blur; optional box jitter and colour jitter) and a
label-exact one: an in-plane rotation by theta turns the head's rotation into Rz(theta) R in the camera
frame (posebridge.formats.rotation.rotate_in_plane).

Each sample also gets the box head's target: where the un-jittered ROI (the crop a test would use)
lies relative to the crop actually cut, as (dx, dy) in units of the crop's side, in the crop's own
(rotated, mirrored) axes, and log(ROI side / crop side). Jitter, rotation and flip make it exact.

All randomness comes from the `numpy.random.Generator` passed in, so a sample's augmentation depends
only on (seed, epoch, index): resumed runs and any number of loader workers see the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from posebridge.formats.rotation import rotate_in_plane
from posebridge.inference.meta import IMAGENET_MEAN, IMAGENET_STD

Box = tuple[float, float, float, float]
BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


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
    rotate_deg: float = 0.0
    rotate_p: float = 1.0
    rotate_min_deg: float = 0.0
    rotate_decoy_p: float = 0.0
    rotate_circle_p: float = 0.0
    rotate_max_tilt_deg: float = 0.0
    rotate_border: str = "constant"
    max_angle: float = 96.0  # a rotation whose exact labels leave +-max_angle is not applied (bins end at 99)
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
            color_jitter=d.color_jitter, rotate_deg=d.rotate_deg, rotate_p=d.rotate_p,
            rotate_min_deg=d.rotate_min_deg, rotate_decoy_p=d.rotate_decoy_p,
            rotate_circle_p=d.rotate_circle_p, rotate_max_tilt_deg=d.rotate_max_tilt_deg,
            rotate_border=d.rotate_border,
        )  # fmt: skip

    def _turn(self, rng: np.random.Generator) -> float:
        """A random in-plane turn (clockwise, degrees): uniform in [-rotate_deg, rotate_deg], its size
        mapped onto [rotate_min_deg, rotate_deg] when a minimum is set (the same single draw)."""
        theta = float(rng.uniform(-self.rotate_deg, self.rotate_deg))
        if self.rotate_min_deg > 0:
            span = self.rotate_deg - self.rotate_min_deg
            theta = math.copysign(self.rotate_min_deg + abs(theta) / self.rotate_deg * span, theta)
        return theta

    def base_box(self, image: np.ndarray, box: Box | None, rng: np.random.Generator) -> Box:
        """The un-jittered crop box: the whole (square) image for a face crop, else the landmark box
        loosened by a margin k (random in [margin_min, margin_max] in training, the middle in tests)."""
        if box is None:
            h, w = image.shape[:2]
            side = float(max(h, w))
            cx, cy = w / 2, h / 2
            return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        k = rng.uniform(self.margin_min, self.margin_max) if self.train else (
            (self.margin_min + self.margin_max) / 2)
        return loose_box(box, k)

    def jitter(self, box: Box, rng: np.random.Generator) -> Box:
        """The box moved and scaled at random (training with scale/shift jitter), else itself."""
        shift_y = self.shift_jitter if self.shift_jitter_y < 0 else self.shift_jitter_y
        if not (self.train and (self.scale_jitter or self.shift_jitter or shift_y)):
            return box
        x0, y0, x1, y1 = box
        side = (x1 - x0) * rng.uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
        cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * self.shift_jitter * (x1 - x0)
        cy = (y0 + y1) / 2 + rng.uniform(-1, 1) * shift_y * (y1 - y0)
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)

    def crop_box(self, image: np.ndarray, box: Box | None, rng: np.random.Generator) -> Box:
        return self.jitter(self.base_box(image, box, rng), rng)

    def sample(self, image: np.ndarray, box: Box | None, angles: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The augmented uint8 crop (input_size square, BGR), its angles and its box-head target."""
        angles = np.asarray(angles, dtype=np.float32)
        base = self.base_box(image, box, rng)
        cut = self.jitter(base, rng)
        theta = 0.0
        if self.train and self.rotate_deg and np.all(np.isfinite(angles)):
            # drawn unconditionally, so the rest of the sample's randomness does not depend on rotate_p
            theta = self._turn(rng)
            use = rng.random() < self.rotate_p
            if self.rotate_max_tilt_deg > 0:  # only faces that look at the camera (same draws as without)
                use = use and bool(np.all(np.abs(angles[:2]) < self.rotate_max_tilt_deg))
            turned = rotate_in_plane(*angles, theta).astype(np.float32)
            if use and np.all(np.abs(turned) <= self.max_angle):
                angles = turned
            else:
                theta = 0.0
        side = cut[2] - cut[0]
        scale = self.resize / side
        cx, cy = (cut[0] + cut[2]) / 2, (cut[1] + cut[3]) / 2
        m = cv2.getRotationMatrix2D((cx, cy), -theta, scale)  # OpenCV's positive angle is anticlockwise
        m[0, 2] += self.resize / 2 - cx
        m[1, 2] += self.resize / 2 - cy
        warp = m if scale >= 0.5 else _shrink_m(m, image, scale)
        crop = cv2.warpAffine(_shrunk(image, scale, m), warp, (self.resize, self.resize),
                              flags=cv2.INTER_LINEAR, borderMode=BORDERS[self.rotate_border])
        if self.train and self.rotate_decoy_p > 0 and rng.random() < self.rotate_decoy_p:
            # decoy corners: blank what a turn by another angle would uncover, whatever the sample's own
            # turn, so that corners no longer tell the roll (the network must read the face)
            phi = self._turn(rng)
            md = cv2.getRotationMatrix2D((cx, cy), -phi, scale)
            md[0, 2] += self.resize / 2 - cx
            md[1, 2] += self.resize / 2 - cy
            inside = cv2.warpAffine(np.full(image.shape[:2], 255, np.uint8), md, (self.resize, self.resize),
                                    flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            crop[inside == 0] = 0
        if self.train and self.rotate_circle_p > 0 and (theta != 0.0 or rng.random() < self.rotate_circle_p):
            # a turned crop always, any other with rotate_circle_p: black outside the inscribed circle,
            # which hides where the turned image ends (a circle looks the same at every angle)
            crop[_outside_circle(self.resize)] = 0
        off = self.resize - self.input_size
        ox = oy = 0
        if off > 0:
            if self.train:
                ox, oy = int(rng.integers(0, off + 1)), int(rng.integers(0, off + 1))
            else:
                ox = oy = off // 2
            crop = crop[oy : oy + self.input_size, ox : ox + self.input_size]
        # the un-jittered ROI's centre in the final crop's pixels, and its side relative to the crop's
        bx, by = (base[0] + base[2]) / 2, (base[1] + base[3]) / 2
        u = m @ np.array([bx, by, 1.0])
        target = np.array([(u[0] - ox - self.input_size / 2) / self.input_size,
                           (u[1] - oy - self.input_size / 2) / self.input_size,
                           np.log((base[2] - base[0]) * scale / self.input_size)], np.float32)
        if self.train:
            if rng.random() < self.flip:
                crop = crop[:, ::-1]
                angles = flip_angles(angles)
                target[0] = -target[0]
            if rng.random() < self.blur:
                crop = cv2.GaussianBlur(np.ascontiguousarray(crop), (5, 5), 0)
            if self.color_jitter:
                a = rng.uniform(1 - self.color_jitter, 1 + self.color_jitter)
                b = rng.uniform(-self.color_jitter, self.color_jitter) * 64
                crop = np.clip(crop.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(crop), angles, target

    def pixels(self, image: np.ndarray, box: Box | None, angles: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The augmented uint8 crop (input_size square, BGR) and its angles."""
        crop, angles, _ = self.sample(image, box, angles, rng)
        return crop, angles

    def to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """BGR uint8 -> RGB normalised CHW float32 (the layout inference/crops.py `to_batch` produces)."""
        arr = crop[..., ::-1].astype(np.float32) / 255.0
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    def __call__(self, image: np.ndarray, box: Box | None, angles: np.ndarray,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crop, angles, target = self.sample(image, box, angles, rng)
        return self.to_tensor(crop), torch.from_numpy(angles), torch.from_numpy(target)

    def effective_margin(self) -> float:
        """The symmetric margin (inference/crops.py `square_box`) of the test-time crop seen from a square
        box of the landmark extent: (1 + 2m) = loosening factor x input_size / resize."""
        k = (self.margin_min + self.margin_max) / 2
        factor = (1 + 2.6 * k) * self.input_size / self.resize  # height grows by (2 + 0.6) k
        return max(0.0, (factor - 1) / 2)


def _outside_circle(size: int) -> np.ndarray:
    """Pixels of a size x size square outside its inscribed circle."""
    c = (size - 1) / 2
    y, x = np.ogrid[:size, :size]
    return (x - c) ** 2 + (y - c) ** 2 > (size / 2) ** 2


def _shrunk(image: np.ndarray, scale: float, m: np.ndarray) -> np.ndarray:  # noqa: ARG001
    """For strong down-scaling (< 0.5) the image area-shrunk first (warpAffine does not anti-alias)."""
    if scale >= 0.5:
        return image
    f = min(1.0, 2.0 * scale)
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _shrink_m(m: np.ndarray, image: np.ndarray, scale: float) -> np.ndarray:
    """The affine map `m` (image -> crop) re-expressed for the `_shrunk` image."""
    f = min(1.0, 2.0 * scale)
    h, w = image.shape[:2]
    fx, fy = max(1, round(w * f)) / w, max(1, round(h * f)) / h
    out = m.copy()
    out[:, 0] /= fx
    out[:, 1] /= fy
    return out
