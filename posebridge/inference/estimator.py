"""Estimator: face boxes in a frame in, typed head poses out. It crops each face the way the model
expects (posebridge.inference.crops), runs the backend once for all faces, views and mirror images
(posebridge.inference.backends; ONNX Runtime by default, no PyTorch), and averages the views."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from posebridge.errors import ConfigError
from posebridge.inference.backends import DEFAULT_BACKEND, Backend, create_backend
from posebridge.inference.crops import (
    Box,
    apply_offset,
    crop_square,
    face_roi,
    roi_uses_yaw,
    to_batch,
    zoom_box,
)
from posebridge.inference.meta import ModelMeta


@dataclass(frozen=True)
class PoseEstimate:
    """Head pose in degrees (dataset convention, see docs/protocol.md) and per-angle spread."""

    yaw: float
    pitch: float
    roll: float
    yaw_std: float
    pitch_std: float
    roll_std: float
    roi_offset: tuple[float, float, float] | None = None  # box head: where the ROI is, relative to the crop
    next_roi: Box | None = None  # box head: that ROI in frame pixels (where to crop the next frame)

    @property
    def angles(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)

    @property
    def stds(self) -> tuple[float, float, float]:
        return (self.yaw_std, self.pitch_std, self.roll_std)


def _unmirror(p: PoseEstimate) -> PoseEstimate:
    """The estimate of a mirrored crop, mirrored back: yaw and roll (and the box head's dx) negated."""
    offset = None if p.roi_offset is None else (-p.roi_offset[0], p.roi_offset[1], p.roi_offset[2])
    return replace(p, yaw=-p.yaw, roll=-p.roll, roi_offset=offset)


def check_zooms(zooms: Sequence[object], field: str) -> tuple[float, ...]:
    """Test-time zoom factors: a non-empty list of numbers in [0.5, 2] (one-line ConfigError otherwise)."""
    ok = bool(zooms) and all(isinstance(z, (int, float)) and not isinstance(z, bool) and 0.5 <= z <= 2.0
                             for z in zooms)
    if not ok:
        raise ConfigError(f"{field}: expected a list of zoom factors in [0.5, 2], got {list(zooms)!r}")
    return tuple(float(z) for z in zooms)


def parse_zooms(text: str, field: str = "--zooms") -> tuple[float, ...]:
    """'0.92,1,1.08' -> (0.92, 1.0, 1.08); a one-line ConfigError naming `field` for anything else."""
    try:
        zooms = [float(v) for v in text.split(",")]
    except ValueError:
        zooms = []
    return check_zooms(zooms, f"{field} {text!r}")


class Estimator:
    """Crops faces the way the model expects and returns one PoseEstimate per face."""

    FLIP_MODES = ("model", "both", "alternate", "off")

    def __init__(self, backend: Backend, meta: ModelMeta, flip: str = "model") -> None:
        self.backend = backend
        self.meta = meta
        self.flip = flip  # see `flip_mode`
        self._calls = 0

    @property
    def flip_mode(self) -> str:
        """How the mirror image is used: "both" (the crop and its mirror in one batch, averaged: a model
        with `flip_average`), "alternate" (the crop on one call, its mirror on the next: half the network
        work, the averaging left to the filter over consecutive frames), or "off". "model" = "both" for a
        model with `flip_average`, else "off"."""
        if self.flip == "model":
            return "both" if self.meta.flip_average else "off"
        return self.flip

    @classmethod
    def from_model(cls, model, meta: ModelMeta, device: str = "auto") -> Estimator:
        """A PyTorch network in memory (training, tests): the `torch` backend (PyTorch needed)."""
        from posebridge.models.torch_backends import TorchBackend

        return cls(TorchBackend(model, meta, device), meta)

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, device: str = "auto",
             backend: str = DEFAULT_BACKEND, zooms: Sequence[float] | None = None, threads: int = 1,
             calib: str | None = None, flip: str = "model") -> Estimator:
        """By name (`posebridge-small`, `whenet`), by path (.onnx or a checkpoint), or the default model
        when None; `backend` from posebridge.inference.backends (ONNX Runtime by default), `threads`
        intra-op threads (0 = the runtime's default). `zooms` replaces the model's own test-time zoom
        views (e.g. [1.0]: one view, faster)."""
        from posebridge.inference.model_store import find_model

        if flip not in cls.FLIP_MODES:
            raise ConfigError(f"model.flip: {flip!r} is not one of {', '.join(cls.FLIP_MODES)}")
        runner, meta = create_backend(backend, find_model(model), device, threads, calib)
        if zooms:
            meta.extra["tta_zooms"] = list(check_zooms(zooms, "model.zooms"))
        return cls(runner, meta, flip)

    def crop(self, image: np.ndarray, box: Box, detector: str = "", yaw: float | None = None) -> np.ndarray:
        """The model's ROI for a detector box (`detector` selects the fitted box map, if any; `yaw`, an
        earlier estimate of the face's yaw, lets a yaw-aware map follow the box's sideways slide)."""
        return crop_square(image, face_roi(box, self.meta.crop, detector, yaw), self.meta.input_size)

    @property
    def zooms(self) -> tuple[float, ...]:
        """Test-time views: the ROI scaled by each factor about its centre, predictions averaged (the
        model's `tta_zooms`, chosen at export on the training crops' validation split; 1.0 = the ROI)."""
        return self.meta.zooms

    def views(self, image: np.ndarray, roi: Box) -> list[np.ndarray]:
        """The model-sized crops this estimator averages over for one face ROI (one per zoom)."""
        return [crop_square(image, zoom_box(roi, z), self.meta.input_size) for z in self.zooms]

    def predict_rois(self, items: Sequence[tuple[np.ndarray, Box]]) -> list[PoseEstimate]:
        """Faces given as (BGR image, the model's ROI in it), in one batch."""
        return self.predict_views([c for image, roi in items for c in self.views(image, roi)])

    def predict_crops(self, crops: Sequence[np.ndarray]) -> list[PoseEstimate]:
        """Crops already cut to the model's ROI (BGR uint8, any size). Zoom views larger than the crop
        see zero padding outside it, as the training crops did."""
        return self.predict_rois([(c, (0.0, 0.0, float(c.shape[1]), float(c.shape[0]))) for c in crops])

    def predict_views(self, crops: Sequence[np.ndarray]) -> list[PoseEstimate]:
        """Model-sized crops from `views`, len(zooms) per face in order -> one estimate per face: the mean
        over the zoom views and, when the model has `flip_average`, their mirror images (yaw and roll
        negated), all in one backend call."""
        per_face = len(self.zooms)
        if len(crops) % per_face:
            raise ValueError(f"predict_views: {len(crops)} crops for {per_face} views per face")
        if not crops:
            return []
        batch = to_batch(crops, self.meta)
        mode = self.flip_mode
        self._calls += 1
        if mode == "alternate" and self._calls % 2 == 0:  # this call sees only the mirror image
            batch = np.ascontiguousarray(batch[..., ::-1])
            return [_unmirror(p) for p in self._run(batch, crops, per_face, flip=False)]
        return self._run(batch, crops, per_face, flip=mode == "both")

    def _run(self, batch: np.ndarray, crops: Sequence[np.ndarray], per_face: int,
             flip: bool) -> list[PoseEstimate]:
        x = np.concatenate([batch, batch[..., ::-1]]) if flip else batch
        if self.meta.box_head:
            angles, stds, box = self.backend.run_all(x)
        else:
            (angles, stds), box = self.backend.run(x), None
        if flip:  # the mirrored half: yaw and roll negated (and the box head's dx)
            sign = np.ones_like(angles)
            sign[len(crops):, [0, 2]] = -1.0
            angles = angles * sign
            if box is not None:
                box = box * np.where(np.arange(len(box))[:, None] >= len(crops), [-1.0, 1.0, 1.0], 1.0)
        # rows: faces x views (then the same again mirrored) -> the mean per face
        n_faces = len(crops) // per_face
        angles = angles.reshape(-1, n_faces, per_face, 3).mean(axis=(0, 2))
        stds = stds.reshape(-1, n_faces, per_face, 3).mean(axis=(0, 2))
        offsets: list = [None] * n_faces
        if box is not None and 1.0 in self.zooms:  # the ROI's own view (and its mirror) place the ROI
            k = self.zooms.index(1.0)
            mean = box.reshape(-1, n_faces, per_face, 3)[:, :, k].mean(axis=0)
            offsets = [tuple(map(float, o)) for o in mean]
        return [PoseEstimate(*map(float, a), *map(float, s), roi_offset=o)
                for a, s, o in zip(angles, stds, offsets, strict=True)]

    def predict(self, image: np.ndarray, boxes: Sequence[Box], detector: str = "") -> list[PoseEstimate]:
        """Faces given by detector boxes in a BGR frame."""
        return self.predict_faces([(image, b, detector) for b in boxes])

    def predict_faces(self, faces: Sequence[tuple[np.ndarray, Box, str]],
                      yaw_hints: Sequence[float | None] | None = None,
                      timings: dict[str, float] | None = None) -> list[PoseEstimate]:
        """Faces given as (BGR frame, detector box, detector name), in one batch.

        When the model's ROI for a detector depends on yaw (posebridge.inference.crops.face_roi), a face
        with a yaw hint (e.g. the tracked face's previous estimate) is cropped with it in one pass; a face
        without one is estimated twice: the first pass's yaw places the second pass's crop.
        `timings`, when given, receives the milliseconds spent cropping ("crop") and in the network
        ("infer")."""
        hints = list(yaw_hints) if yaw_hints is not None else [None] * len(faces)
        clock = {"crop": 0.0, "infer": 0.0}

        def run(items: list[tuple[np.ndarray, Box, str, float | None]]) -> list[PoseEstimate]:
            t0 = time.perf_counter()
            rois = [face_roi(box, self.meta.crop, det, yaw) for _, box, det, yaw in items]
            crops = [c for (image, *_), roi in zip(items, rois, strict=True) for c in self.views(image, roi)]
            t1 = time.perf_counter()
            out = self.predict_views(crops)
            clock["crop"] += (t1 - t0) * 1000.0
            clock["infer"] += (time.perf_counter() - t1) * 1000.0
            return [p if p.roi_offset is None else replace(p, next_roi=apply_offset(roi, p.roi_offset))
                    for p, roi in zip(out, rois, strict=True)]

        poses = run([(*face, hint) for face, hint in zip(faces, hints, strict=True)])
        redo = [i for i, ((_, _, det), hint) in enumerate(zip(faces, hints, strict=True))
                if hint is None and roi_uses_yaw(self.meta.crop, det)]
        if redo:
            for i, pose in zip(redo, run([(*faces[i], poses[i].yaw) for i in redo]), strict=True):
                poses[i] = pose
        if timings is not None:
            for k, v in clock.items():
                timings[k] = timings.get(k, 0.0) + v
        return poses
