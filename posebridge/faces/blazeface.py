"""MediaPipe's BlazeFace face detector (Apache-2.0 models, converted to ONNX by `posebridge models pull
blazeface`) run in ONNX Runtime, with 6 keypoints per face.

The frame is letterboxed into the model's square input (aspect kept, black padding, as MediaPipe's
ImageToTensorCalculator does), the SSD anchors are decoded here (MediaPipe's SsdAnchorsCalculator and
TensorsToDetectionsCalculator options for these two models), and overlapping boxes are merged by
MediaPipe's weighted non-maximum suppression. When that finds nothing, a second look zooms on the best
anchor (see BlazeFaceDetector). Measurements and the choice of defaults: docs/blazeface.md.

Keypoints (FaceBox.landmarks, 6 x 2), in MediaPipe's order: the person's right eye, left eye, nose tip,
mouth centre, right ear tragion, left ear tragion (the person's right eye is on the image's left in an
unmirrored frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import ConfigError
from posebridge.faces.base import FaceBox, register_detector
from posebridge.faces.blazeface_model import PULL_COMMAND, VARIANTS, check_variant
from posebridge.faces.blazeface_model import model_path as installed_model
from posebridge.faces.geometry import positive_int

NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0  # raw logits are clipped to +-this before the sigmoid (MediaPipe's score_clipping_thresh)
_POINT_COLUMNS = [0, 1, *range(4, 4 + 2 * NUM_KEYPOINTS)]  # regressor columns that are x, y positions


@dataclass(frozen=True)
class AnchorSpec:
    """MediaPipe SsdAnchorsCalculator options (fixed anchor size, so anchors are centres only)."""

    size: int  # input side, pixels
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    offset: float = 0.5


ANCHOR_SPECS = {
    "short": AnchorSpec(128, (8, 16, 16, 16), 1.0),
    "full": AnchorSpec(192, (4,), 0.0),
}


def anchor_centres(spec: AnchorSpec) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in input pixels, in the model's output order: per run of layers with
    the same stride, row-major over the feature map, with one anchor per aspect ratio (1.0, plus the
    interpolated scale when its ratio is 1.0) per layer of the run at each cell."""
    out = []
    i = 0
    while i < len(spec.strides):
        stride, per_cell = spec.strides[i], 0
        while i < len(spec.strides) and spec.strides[i] == stride:
            per_cell += 2 if spec.interpolated_scale_aspect_ratio == 1.0 else 1
            i += 1
        n = int(np.ceil(spec.size / stride))
        grid = (np.arange(n) + spec.offset) / n
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return (np.concatenate(out) * spec.size).astype(np.float32)


def suppress(dets: np.ndarray, scores: np.ndarray, threshold: float, max_faces: int,
             weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Non-maximum suppression over (M, 4 + 2K) rows (x0, y0, x1, y1, keypoints), best first. Weighted
    (MediaPipe's): each kept row is the score-weighted mean of the rows whose IoU with the best remaining
    one is above `threshold`, with the best one's score; plain: the best row itself."""
    order = np.argsort(-scores, kind="stable")
    dets, scores = dets[order], scores[order]
    areas = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    kept, kept_scores = [], []
    while len(dets) and len(kept) < max_faces:
        b = dets[0]
        iw = np.maximum(np.minimum(dets[:, 2], b[2]) - np.maximum(dets[:, 0], b[0]), 0.0)
        ih = np.maximum(np.minimum(dets[:, 3], b[3]) - np.maximum(dets[:, 1], b[1]), 0.0)
        inter = iw * ih
        overlap = inter > threshold * (areas[0] + areas - inter)  # IoU > threshold, no division
        overlap[0] = True
        if weighted:
            w = scores[overlap]
            kept.append(w @ dets[overlap] / w.sum())
        else:
            kept.append(b)
        kept_scores.append(scores[0])
        rest = ~overlap
        dets, scores, areas = dets[rest], scores[rest], areas[rest]
    if not kept:
        return np.zeros((0, dets.shape[1])), np.zeros(0)
    return np.stack(kept), np.asarray(kept_scores)


RESIZE = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}
SECOND_LOOK_ZOOM = 1.75  # second-look window side / the best anchor's box side (docs/blazeface.md)


class Window:
    """A square of the frame (side `side` px from (x0, y0); what lies outside the frame is black) as the
    model's size x size input: one cv2.resize of the part inside the frame into a preallocated NCHW
    tensor whose border stays -1 (black after scaling to [-1, 1])."""

    def __init__(self, frame_shape: tuple[int, ...], x0: float, y0: float, side: float, size: int,
                 resize: str = "area") -> None:
        h, w = self.frame_shape = tuple(frame_shape[:2])
        k = size / side
        self.ix0, self.iy0 = max(int(np.ceil(x0)), 0), max(int(np.ceil(y0)), 0)  # frame part inside
        self.ix1, self.iy1 = min(int(np.floor(x0 + side)), w), min(int(np.floor(y0 + side)), h)
        self.u0, self.v0 = round((self.ix0 - x0) * k), round((self.iy0 - y0) * k)  # where it goes
        self.out_w = min(round((self.ix1 - x0) * k), size) - self.u0
        self.out_h = min(round((self.iy1 - y0) * k), size) - self.v0
        self.empty = min(self.out_w, self.out_h, self.ix1 - self.ix0, self.iy1 - self.iy0) <= 0
        # frame px -> input px, per axis (exact for the rounded output size)
        self.sx = self.out_w / max(self.ix1 - self.ix0, 1)
        self.sy = self.out_h / max(self.iy1 - self.iy0, 1)
        self.interp = RESIZE[resize] if k < 1.0 else cv2.INTER_LINEAR
        self.tensor = np.full((1, 3, size, size), -1.0, np.float32)

    @classmethod
    def letterbox(cls, frame_shape: tuple[int, ...], size: int, resize: str = "area") -> Window:
        """The whole frame, centred, aspect kept, padded black (MediaPipe's letterbox)."""
        h, w = frame_shape[:2]
        side = max(w, h)
        return cls(frame_shape, (w - side) / 2, (h - side) / 2, side, size, resize)

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        part = frame_bgr[self.iy0:self.iy1, self.ix0:self.ix1]
        small = cv2.resize(part, (self.out_w, self.out_h), interpolation=self.interp)
        view = self.tensor[0, :, self.v0:self.v0 + self.out_h, self.u0:self.u0 + self.out_w]
        np.multiply(small.transpose(2, 0, 1)[::-1], np.float32(1 / 127.5), out=view, casting="unsafe")
        view -= 1.0  # BGR HWC uint8 -> RGB CHW in [-1, 1]
        return self.tensor

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(M, 2k) interleaved x, y input-pixel coordinates -> frame pixels (in place)."""
        xy[:, 0::2] -= self.u0
        xy[:, 0::2] /= self.sx
        xy[:, 0::2] += self.ix0
        xy[:, 1::2] -= self.v0
        xy[:, 1::2] /= self.sy
        xy[:, 1::2] += self.iy0
        return xy


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:120]
        raise ConfigError(f"faces.options.model_path: {path}: not a loadable BlazeFace ONNX model ({why}); "
                          f"run `{PULL_COMMAND}`") from None


def _fraction(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"faces.options.{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _logit(p: float) -> float:
    """sigmoid(x) > p  <=>  x > logit(p); p = 0 accepts everything."""
    if p <= 0:
        return -np.inf
    p = min(p, 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_BGRA2BGR)


@register_detector("blazeface")
class BlazeFaceDetector:
    """BlazeFace (MediaPipe) in ONNX Runtime; gives 6 keypoints per face (see the module docstring).

    `second_look`: when the letterboxed frame gives no face above `score_threshold`, the region around
    its best anchor (1.75x that box) is run through the model again, zoomed, and faces above
    `second_look_threshold` count: a face of ~100 px in a 640x480 frame is ~20 px in the 128-px input,
    where the short-range model places its best anchor on it but scores it low. It costs a second
    inference only on frames where the first found nothing. `score_threshold` 0 (with `max_faces=1`)
    returns the best anchor even when nothing looks like a face."""

    name = "blazeface"

    def __init__(
        self,
        variant: str = "short",
        model_path: str | None = None,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        threads: int = 1,
        max_faces: int = 10,
        second_look: bool = True,
        second_look_threshold: float = 0.75,
        weighted_nms: bool = True,
        resize: str = "area",
    ) -> None:
        self.variant = check_variant(variant)
        if model_path:
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"faces.options.model_path: {path}: BlazeFace model not found; "
                                  f"run `{PULL_COMMAND}` or fix the path")
        else:
            path = installed_model(self.variant)
        if resize not in RESIZE:
            raise ConfigError(f"faces.options.resize: expected one of {', '.join(RESIZE)}, got {resize!r}")
        self.score_threshold = _fraction("score_threshold", score_threshold)
        self.second_look_threshold = _fraction("second_look_threshold", second_look_threshold)
        self.nms_threshold = _fraction("nms_threshold", nms_threshold)
        self.threads = positive_int("threads", threads)
        self.max_faces = positive_int("max_faces", max_faces)
        self.second_look, self.weighted_nms = bool(second_look), bool(weighted_nms)
        self.resize, self.model_path = resize, str(path)
        self._session = _session(path, self.threads)
        spec = ANCHOR_SPECS[self.variant]
        self.size = spec.size
        self._input = self._session.get_inputs()[0].name
        shape = list(self._session.get_inputs()[0].shape)
        if shape != [1, 3, spec.size, spec.size]:
            raise ConfigError(f"faces.options.model_path: {path}: input shape {shape} is not the "
                              f"{variant}-range model's [1, 3, {spec.size}, {spec.size}] "
                              "(check faces.options.variant)")
        self._anchors = anchor_centres(spec)  # (N, 2), input pixels
        n = len(self._anchors)
        outs = {tuple(o.shape): o.name for o in self._session.get_outputs()}
        if (1, n, 16) not in outs or (1, n, 1) not in outs:
            raise ConfigError(f"faces.options.model_path: {path}: outputs {sorted(outs)} do not match the "
                              f"{n} anchors of the {variant}-range model")
        self._outputs = [outs[(1, n, 16)], outs[(1, n, 1)]]
        self._offsets = np.tile(self._anchors, (1, 1 + NUM_KEYPOINTS)).astype(np.float64)  # (N, 14)
        self._letterbox: Window | None = None

    def _run(self, window: Window, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, logits = self._session.run(self._outputs, {self._input: window(frame_bgr)})
        return reg[0], logits[0, :, 0]

    def raw(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw outputs for the letterboxed frame: (N, 16) regressors and (N,) score logits."""
        image_bgr = _bgr(image_bgr)
        lb = self._letterbox
        if lb is None or lb.frame_shape != image_bgr.shape[:2]:
            lb = self._letterbox = Window.letterbox(image_bgr.shape, self.size, self.resize)
        return self._run(lb, image_bgr)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """All faces in a BGR frame, best first, in frame pixels."""
        image_bgr = _bgr(image_bgr)
        reg, logits = self.raw(image_bgr)
        faces = self.decode(reg, logits)
        if not faces and self.second_look:
            again = self.look_again_raw(image_bgr, reg, logits)
            if again is not None:
                faces = self.decode_window(*again, self.second_look_threshold)
        return faces

    def decode(self, reg: np.ndarray, logits: np.ndarray) -> list[FaceBox]:
        """Faces above `score_threshold` from `raw`'s outputs for the last frame."""
        return self._decode(reg, logits, self._letterbox, _logit(self.score_threshold))

    def decode_window(self, reg: np.ndarray, logits: np.ndarray, window: Window,
                      threshold: float) -> list[FaceBox]:
        """Faces above `threshold` from the model's outputs for `window`, in frame pixels."""
        return self._decode(reg, logits, window, _logit(threshold))

    def look_again_raw(self, image_bgr: np.ndarray, reg: np.ndarray,
                       logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, Window] | None:
        """The second look: the model's outputs for the window around the best anchor of `raw`'s outputs
        (None when that window is empty)."""
        i = int(np.argmax(logits))
        r = reg[i].astype(np.float64)
        lb = self._letterbox
        centre = lb.to_frame(r[None, 0:2] + self._anchors[i])[0]
        side = SECOND_LOOK_ZOOM * max(r[2] / lb.sx, r[3] / lb.sy)
        if not np.isfinite(side) or side < 8:
            return None
        x0, y0 = centre - side / 2
        win = Window(image_bgr.shape, x0, y0, side, self.size, self.resize)
        if win.empty:
            return None
        return (*self._run(win, image_bgr), win)

    def _decode(self, reg: np.ndarray, logits: np.ndarray, window: Window, logit_threshold: float,
                ) -> list[FaceBox]:
        idx = np.flatnonzero(logits > logit_threshold)
        if idx.size == 0:
            return []
        if logit_threshold == -np.inf:  # the top anchor regardless of threshold (and those beside it)
            idx = idx[np.argsort(-logits[idx])[: 64 * self.max_faces]]
        scores = 1.0 / (1.0 + np.exp(-np.minimum(np.maximum(logits[idx], -SCORE_CLIP), SCORE_CLIP)))
        r = reg[idx].astype(np.float64)
        # regressors per anchor, input pixels: centre offset x, y; w, h; 6 keypoint offsets x, y
        pts = r[:, _POINT_COLUMNS] + self._offsets[idx]  # centre, then keypoints
        half = r[:, 2:4] / 2
        dets = np.concatenate([pts[:, :2] - half, pts[:, :2] + half, pts[:, 2:]], axis=1)
        valid = (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
        dets, scores = suppress(dets[valid], scores[valid], self.nms_threshold, self.max_faces,
                                self.weighted_nms)
        window.to_frame(dets)
        h, w = window.frame_shape
        np.clip(dets[:, 0::2], 0.0, w, out=dets[:, 0::2])  # boxes and keypoints stay inside the frame
        np.clip(dets[:, 1::2], 0.0, h, out=dets[:, 1::2])
        marks = dets[:, 4:].reshape(-1, NUM_KEYPOINTS, 2)
        rows = zip(dets[:, :4].tolist(), scores.tolist(), marks, strict=True)
        return [FaceBox(x0, y0, x1, y1, score, landmarks=m, detector=self.name)
                for (x0, y0, x1, y1), score, m in rows if x1 > x0 and y1 > y0]


__all__ = ["ANCHOR_SPECS", "VARIANTS", "BlazeFaceDetector", "Window", "anchor_centres", "suppress"]
