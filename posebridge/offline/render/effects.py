"""What a camera adds around the rendered head: a background, the lighting, and sensor noise, all drawn
from a seeded generator (`Look.random(rng)`), so a seed reproduces a clip exactly.

Backgrounds: `flat` (one colour), `gradient` (two colours, any direction), `blobs` (smooth random
shapes, like an out-of-focus room) and `clutter` (blurred rectangles and discs, like shelves and
posters). The lens: a Gaussian blur (sigma in pixels; webcams are soft). Noise: Gaussian per pixel (sigma
in grey levels) and a per-frame brightness flicker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from posebridge.offline.render.gl import Light

BACKGROUNDS = ("flat", "gradient", "blobs", "clutter")


def background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 RGB background of `kind` for a (width, height) frame."""
    w, h = size
    base = rng.uniform(40, 200, 3)
    if kind == "flat":
        img = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    elif kind == "gradient":
        other = rng.uniform(40, 200, 3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        s = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
        s = (s - s.min()) / max(float(s.max() - s.min()), 1e-6)
        img = base[None, None] * (1 - s[..., None]) + other[None, None] * s[..., None]
    elif kind == "blobs":
        small = rng.uniform(30, 220, (4 + rng.integers(0, 4), 5 + rng.integers(0, 5), 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = cv2.GaussianBlur(img, (0, 0), 12)
    elif kind == "clutter":
        img = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
        for _ in range(int(rng.integers(6, 14))):
            colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
            x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
            if rng.random() < 0.6:
                x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
                cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
            else:
                cv2.circle(img, (x0, y0), int(rng.integers(10, h // 4)), colour, -1)
        img = cv2.GaussianBlur(img, (0, 0), 2.5)
    else:
        raise ValueError(f"background kind {kind!r}: expected one of {', '.join(BACKGROUNDS)}")
    return np.clip(img, 0, 255).astype(np.uint8)


def composite(rgba: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA over an RGB background -> float32 RGB."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return rgba[..., :3].astype(np.float32) + back.astype(np.float32) * (1.0 - alpha)


def camera_noise(rgb: np.ndarray, rng: np.random.Generator, sigma: float, flicker: float,
                 blur: float = 0.0) -> np.ndarray:
    """Float RGB -> uint8 through the lens (Gaussian blur of `blur` px) and the sensor (a brightness
    flicker of +-`flicker`, a fraction, and Gaussian noise of `sigma` grey levels)."""
    if blur > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), blur)
    gain = 1.0 + rng.uniform(-flicker, flicker) if flicker > 0 else 1.0
    out = rgb * gain
    if sigma > 0:
        out = out + rng.normal(0.0, sigma, rgb.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Look:
    """Everything about a clip except the head's motion."""

    background: str = "gradient"
    light: Light = field(default_factory=Light)
    noise: float = 2.0  # Gaussian sigma, grey levels
    flicker: float = 0.01  # per-frame brightness change, +- fraction
    blur: float = 0.0  # lens blur, Gaussian sigma in pixels

    @staticmethod
    def random(rng: np.random.Generator, noise: tuple[float, float] = (1.0, 4.0)) -> Look:
        """A random background, light (direction in front of the face, warm or cool, dim or bright) and
        noise level."""
        direction = (rng.uniform(-1, 1), rng.uniform(-0.3, 1), rng.uniform(0.5, 1.5))
        tint = rng.uniform(0.85, 1.0, 3)
        strength = rng.uniform(0.6, 1.0)
        ambient = rng.uniform(0.2, 0.45)
        light = Light(tuple(float(v) for v in direction), tuple(float(v) for v in tint * strength),
                      (float(ambient),) * 3, float(rng.uniform(0.0, 0.15)))
        return Look(str(rng.choice(BACKGROUNDS)), light, float(rng.uniform(*noise)),
                    float(rng.uniform(0.0, 0.02)), float(rng.uniform(0.0, 0.8)))
