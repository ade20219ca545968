"""Following a face box between detections: "template" matches the grey patch saved at the last
detection (normalised cross-correlation) in a window around the box; "hold" keeps the box (costs
nothing, lags a moving head)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from posebridge.faces.base import FaceBox

FOLLOW_METHODS = ("template", "hold")


def _patch(gray: np.ndarray, box: tuple[float, float, float, float], scale: float,
           out: tuple[int, int]) -> np.ndarray:
    """Region `box` of `gray` resampled by `scale` into an `out`=(w, h) image (edges replicated)."""
    m = np.array([[scale, 0.0, -box[0] * scale], [0.0, scale, -box[1] * scale]])
    return cv2.warpAffine(gray, m, out, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


class TemplateFollower:
    """Moves a box to where its face went. `min_score`: below this correlation the face counts as lost;
    `search_margin`: the window reaches this fraction of the box's side beyond it on each side;
    `size`: templates are resampled to size x size pixels."""

    def __init__(self, method: str = "template", min_score: float = 0.5, search_margin: float = 0.35,
                 size: int = 40) -> None:
        self.method = method
        self.min_score = min_score
        self.search_margin = search_margin
        self.size = size

    def template(self, gray: np.ndarray, box: FaceBox) -> np.ndarray:
        """The grey patch of the square around `box`, size x size."""
        s = self.size / max(box.width, box.height, 1.0)
        side = max(box.width, box.height)
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        square = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        return _patch(gray, square, s, (self.size, self.size))

    def follow(self, gray: np.ndarray, box: FaceBox,
               template: np.ndarray | None) -> tuple[FaceBox | None, float | None]:
        """(the moved box, or None when the face is lost; the match score, or None when none was
        computed: "hold", or no template)."""
        if self.method == "hold" or template is None:
            return box, None
        side = max(box.width, box.height, 1.0)
        s = self.size / side
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        half = side * (0.5 + self.search_margin)
        region = (cx - half, cy - half, cx + half, cy + half)
        n = int(round(2 * half * s))
        window = _patch(gray, region, s, (n, n))
        res = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (mx, my) = cv2.minMaxLoc(res)
        if not np.isfinite(score) or score < self.min_score:
            return None, float(score)
        # Top-left of the best match in the window -> frame pixels; the square's centre moves by that.
        new_cx = region[0] + (mx + self.size / 2) / s
        new_cy = region[1] + (my + self.size / 2) / s
        dx, dy = new_cx - cx, new_cy - cy
        return replace(box, x0=box.x0 + dx, y0=box.y0 + dy, x1=box.x1 + dx, y1=box.y1 + dy), float(score)
