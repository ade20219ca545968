"""Distillation data: AFLW face crops (3DDFA ROI, 120x120) with targets from published teachers.

`../shared/data/aflw-yaw-crops/labels.csv` holds, per crop, the AFLW yaw annotation and the
predictions of four teachers (opentrack head-pose-0.4-small, WHENet, FSA-Net, 3DDFA_V2 mb05). The
target of each angle is a fixed weighted average of the teachers, per angle (`weights` maps a teacher
to a weight for all three angles, or an angle to such a map). Crops with a teacher angle beyond +-99
degrees (outside the 66 bins) and crops where the target yaw disagrees with the human AFLW yaw by
more than `max_yaw_disagreement` degrees (a teacher failure, usually) are left out and counted. With
`agreement_sigma` > 0 every crop and angle gets a weight 1 / (1 + (d / sigma)^2) where d is how much
opentrack and mb05 disagree on that angle: their disagreement tracks opentrack's own error
(docs/models.md), so doubtful targets count less. landmarks21.csv's eye line gives an independent
check of roll (training/validation_checks.py).

AFLW2000 is the benchmark: any file named like an AFLW2000 image is refused (`check_not_aflw2000`).
Crops are decoded once into RAM (19k x 120x120x3 uint8 = 0.8 GB); augmentation is per sample in
the trainer's transform (training.transforms): horizontal flip (negates yaw and roll), scale/shift jitter
of the ROI, colour jitter, blur. Registered as the trainer dataset "aflw_distill".
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import ConfigError, InputFileError, PoseBridgeError
from posebridge.paths import shared_data
from training.data import PoseDataset, Record, register_dataset

TEACHERS = ("opentrack", "whenet", "fsanet", "tddfa_mb05")
ANGLE_NAMES = ("yaw", "pitch", "roll")
DEFAULT_ROOT = shared_data("aflw-yaw-crops")
AFLW2000_DEV = shared_data("aflw2000-dev")

# AFLW2000-3D is the first 2,000 faces of AFLW as numbered by 3DDFA: image00002.jpg .. image04375.jpg.
# (Our aflw-yaw-crops start at image04378; aflw2000-dev holds the even half of the 2,000, max id 4364.)
AFLW2000_MAX_ID = 4375
_AFLW_NAME = re.compile(r"^image(\d{5})\.(jpg|png|mat)$", re.IGNORECASE)


# ----------------------------------------------------------------------------- AFLW2000 refusal
def aflw2000_names(dev_dir: str | os.PathLike | None = AFLW2000_DEV) -> set[str]:
    """File stems of the AFLW2000 images we know of: the dev folder's names when it is present."""
    names: set[str] = set()
    if dev_dir is not None and Path(dev_dir).is_dir():
        names |= {p.stem.lower() for p in Path(dev_dir).glob("*.jpg")}
    return names


def is_aflw2000_name(name: str, known: set[str] | frozenset[str] = frozenset()) -> bool:
    """True for a file named like an AFLW2000-3D image (id range of the benchmark) or listed in `known`."""
    base = Path(name).name
    if Path(base).stem.lower() in known:
        return True
    m = _AFLW_NAME.match(base)
    return bool(m) and int(m.group(1)) <= AFLW2000_MAX_ID


def check_not_aflw2000(names: Sequence[str], source: str | os.PathLike = "training set") -> None:
    """Raise if any training file is an AFLW2000 image (the benchmark must never be trained on)."""
    known = aflw2000_names()
    bad = [n for n in names if is_aflw2000_name(n, known)]
    if bad:
        problem = f"{len(bad)} file(s) belong to the AFLW2000 benchmark (first: {bad[0]}); refusing to train"
        raise InputFileError(source, problem)


# ----------------------------------------------------------------------------- labels and targets
@dataclass
class TeacherLabels:
    names: list[str]
    aflw_yaw: np.ndarray  # (N,) degrees, human annotation (AFLW)
    teachers: dict[str, np.ndarray]  # teacher -> (N, 3) yaw, pitch, roll degrees


def read_teacher_labels(csv_path: str | os.PathLike) -> TeacherLabels:
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputFileError(csv_path, "labels file not found")
    cols = ["image", "yaw_deg"] + [f"{t}_{a}" for t in TEACHERS for a in ANGLE_NAMES]
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise InputFileError(csv_path, f"missing column(s) {', '.join(missing)}")
        rows = list(reader)
    try:
        names = [r["image"] for r in rows]
        aflw = np.array([float(r["yaw_deg"]) for r in rows])
        teachers = {
            t: np.array([[float(r[f"{t}_{a}"]) for a in ANGLE_NAMES] for r in rows]).reshape(-1, 3)
            for t in TEACHERS
        }
    except ValueError as exc:
        raise InputFileError(csv_path, f"non-numeric value ({exc})") from None
    return TeacherLabels(names, aflw, teachers)


DEFAULT_WEIGHTS = {"opentrack": 0.8, "whenet": 0.1, "fsanet": 0.1}


@dataclass
class TargetConfig:
    weights: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))  # teacher -> w, or angle -> that
    max_angle: float = 99.0  # every teacher angle must be within +-max_angle (the bins' range)
    max_yaw_disagreement: float = 30.0  # |teacher target yaw - AFLW yaw| above this drops the crop; 0 = off
    agreement_sigma: float = 0.0  # > 0: per-angle sample weight 1 / (1 + (|opentrack - mb05| / sigma)^2)

    def __post_init__(self) -> None:
        for angle, table in self.per_angle().items():
            unknown = set(table) - set(TEACHERS)
            if unknown:
                raise ConfigError(f"distill.weights.{angle}: unknown teacher(s) {sorted(unknown)}; "
                                  f"known: {TEACHERS}")
            if sum(table.values()) <= 0:
                raise ConfigError(f"distill.weights.{angle}: must sum to a positive number")

    def per_angle(self) -> dict[str, dict[str, float]]:
        """angle -> {teacher: weight} (a flat teacher map applies to every angle)."""
        if set(self.weights) <= set(ANGLE_NAMES) and self.weights:
            missing = [a for a in ANGLE_NAMES if a not in self.weights]
            if missing:
                raise ConfigError(f"distill.weights: per-angle weights need yaw, pitch and roll (missing "
                                  f"{', '.join(missing)})")
            return {a: dict(self.weights[a]) for a in ANGLE_NAMES}
        return {a: dict(self.weights) for a in ANGLE_NAMES}


@dataclass
class Targets:
    angles: np.ndarray  # (N, 3) float32 target yaw, pitch, roll
    keep: np.ndarray  # (N,) bool
    counts: dict[str, int]
    weights: np.ndarray | None = None  # (N, 3) per-sample, per-angle weights (agreement_sigma)


def build_targets(labels: TeacherLabels, cfg: TargetConfig) -> Targets:
    columns = []
    for i, table in enumerate(cfg.per_angle().values()):
        total = sum(table.values())
        columns.append(sum(w / total * labels.teachers[t][:, i] for t, w in table.items() if w))
    angles = np.stack(columns, axis=1)
    used = {t for table in cfg.per_angle().values() for t, w in table.items() if w}
    in_range = np.all([np.all(np.abs(labels.teachers[t]) <= cfg.max_angle, axis=1) for t in sorted(used)],
                      axis=0)
    agree = np.ones(len(labels.names), bool)
    if cfg.max_yaw_disagreement > 0:
        agree = np.abs(angles[:, 0] - labels.aflw_yaw) <= cfg.max_yaw_disagreement
    keep = in_range & agree
    counts = {
        "crops": len(labels.names),
        "teacher_beyond_range": int((~in_range).sum()),
        "yaw_disagreement": int((in_range & ~agree).sum()),
        "kept": int(keep.sum()),
    }
    weights = None
    if cfg.agreement_sigma > 0:
        d = np.abs(labels.teachers["opentrack"] - labels.teachers["tddfa_mb05"])
        weights = (1.0 / (1.0 + (d / cfg.agreement_sigma) ** 2)).astype(np.float32)
    return Targets(angles.astype(np.float32), keep, counts, weights)


# ----------------------------------------------------------------------------- images
def load_crops(image_dir: str | os.PathLike, names: Sequence[str], size: int = 120,
               progress: bool = True) -> np.ndarray:
    """Decode every crop once into a (N, size, size, 3) BGR uint8 array."""
    from tqdm import tqdm

    image_dir = Path(image_dir)
    out = np.empty((len(names), size, size, 3), np.uint8)
    for i, n in enumerate(tqdm(names, desc="loading crops", unit="img", disable=not progress, mininterval=2)):
        img = cv2.imread(str(image_dir / n), cv2.IMREAD_COLOR)
        if img is None:
            raise InputFileError(image_dir / n, "missing or unreadable image")
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = img
    return out


# ----------------------------------------------------------------------------- trainer dataset
@register_dataset("aflw_distill")
def aflw_distill(root: str = str(DEFAULT_ROOT), weights: dict | None = None, max_angle: float = 99.0,
                 max_yaw_disagreement: float = 30.0, agreement_sigma: float = 0.0, limit: int = 0,
                 progress: bool = True, load_images: bool = True) -> PoseDataset:
    """AFLW crops (3DDFA protocol) with weighted-teacher targets for yaw, pitch and roll.

    Options ([data.options]): `root` (aflw-yaw-crops folder), `weights` (teacher -> weight, e.g.
    {opentrack = 0.8, whenet = 0.1, fsanet = 0.1}, or per angle {yaw = {...}, pitch = {...}, roll =
    {...}}), `max_angle`, `max_yaw_disagreement`, `agreement_sigma` (see module docstring), `limit`
    (first N kept crops, for smoke runs), `load_images` (False: records point at the files, read when
    used; for split bookkeeping). Every crop is decoded into RAM once.
    The trainer holds out its validation split from these records (data.val_fraction, by crop name).
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise InputFileError(root_path, "aflw-yaw-crops folder not found")
    labels = read_teacher_labels(root_path / "labels.csv")
    check_not_aflw2000(labels.names, root_path / "labels.csv")
    image_dir = root_path / "images"
    check_not_aflw2000([p.name for p in image_dir.glob("*")] if image_dir.is_dir() else [], image_dir)
    cfg = TargetConfig(dict(weights) if weights else dict(DEFAULT_WEIGHTS), max_angle, max_yaw_disagreement,
                       agreement_sigma)
    tg = build_targets(labels, cfg)
    idx = np.flatnonzero(tg.keep)
    if limit and limit > 0:
        idx = idx[:limit]
    names = [labels.names[i] for i in idx]
    if load_images:
        images = load_crops(image_dir, names, progress=progress)
    else:
        images = [image_dir / n for n in names]  # type: ignore[assignment]
    records = [Record(images[k], tuple(float(a) for a in tg.angles[i]), None, Path(n).stem,
                      None if tg.weights is None else tuple(float(w) for w in tg.weights[i]))
               for k, (i, n) in enumerate(zip(idx, names, strict=True))]
    skipped = {"teacher angle beyond range": tg.counts["teacher_beyond_range"],
               "teacher/AFLW yaw disagreement": tg.counts["yaw_disagreement"]}
    return PoseDataset("aflw_distill", records, skipped, protocol="3ddfa")


# ----------------------------------------------------------------------------- export
ASSET = Path(__file__).resolve().parents[1] / "posebridge" / "assets" / "posebridge-small.pt"
FIXTURE_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
FIXTURE_CROP = FIXTURE_DIR / "synthetic_face_112.png"
FIXTURE_ANGLES = FIXTURE_DIR / "posebridge_small_expected.json"
PROVENANCE = {
    "source": "trained by posebridge: training/configs/posebridge_small.toml + training.distill export",
    "license": "research and non-commercial use only (trained on AFLW face crops, research-only data)",
    "teachers": "opentrack head-pose-0.4-small-int8 (ISC) 0.8, WHENet (BSD-3-Clause) 0.1, FSA-Net (see "
                "docs/models.md) 0.1",
    "notes": "exported by python -m training.distill export; see docs/models.md",
}


def synthetic_face(size: int = 112) -> np.ndarray:
    """A drawn, slightly turned cartoon face (no dataset pixels): the committed test fixture's source."""
    img = np.full((size, size, 3), (90, 120, 150), np.uint8)
    s = size / 112
    c = (int(58 * s), int(60 * s))
    cv2.ellipse(img, c, (int(30 * s), int(40 * s)), 8, 0, 360, (120, 160, 205), -1, cv2.LINE_AA)
    for ex in (45, 70):
        cv2.ellipse(img, (int(ex * s), int(50 * s)), (int(6 * s), int(3 * s)), 0, 0, 360, (40, 40, 40), -1,
                    cv2.LINE_AA)
    cv2.line(img, (int(60 * s), int(52 * s)), (int(64 * s), int(70 * s)), (80, 110, 160), 2, cv2.LINE_AA)
    cv2.ellipse(img, (int(59 * s), int(82 * s)), (int(11 * s), int(4 * s)), 5, 0, 360, (60, 60, 150), -1,
                cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def recalibrate_batchnorm(model, input_size: int, root: str | os.PathLike = DEFAULT_ROOT, count: int = 2048,
                          batch: int = 128) -> int:
    """Re-estimate every BatchNorm's running mean/variance (training.batchnorm) on `count` un-augmented
    training crops. Returns the number of crops used."""
    import torch

    from posebridge.inference.crops import crop_square, to_batch
    from posebridge.inference.meta import ModelMeta
    from training.batchnorm import reestimate_batchnorm

    root = Path(root)
    labels = read_teacher_labels(root / "labels.csv")
    check_not_aflw2000(labels.names, root / "labels.csv")
    keep = np.flatnonzero(build_targets(labels, TargetConfig()).keep)
    pick = keep[np.linspace(0, len(keep) - 1, min(count, len(keep))).astype(int)]
    images = load_crops(root / "images", [labels.names[i] for i in pick], progress=False)
    meta = ModelMeta(name="", backbone="", input_size=input_size)

    def batches():
        for i in range(0, len(images), batch):
            whole = (0, 0, images.shape[2], images.shape[1])
            chunk = [crop_square(im, whole, input_size) for im in images[i : i + batch]]
            yield torch.from_numpy(to_batch(chunk, meta))

    reestimate_batchnorm(model, batches())
    model.eval()
    return len(images)


FILTER_MEAS_SCALE = 0.3
# Test-time zoom views (inference/estimator.py Estimator.zooms) written into the packaged model: one (the
# ROI itself). Extra views are opt-in (`model.zooms`, `--zooms`): the best set on the validation split of
# the training crops (never AFLW2000), 0.96/1/1.04, gains 0.04 deg on AFLW2000 for 3x the network rows
# (`python benchmarks/bench_tta_views.py`, docs/models.md), too little for a live tracker's default.
TTA_ZOOMS = (1.0,)
BEST_VALIDATION_ZOOMS = (0.96, 1.0, 1.04)


def export(checkpoint: str | os.PathLike, out: str | os.PathLike = ASSET, flip_average: bool = True,
           detector: str = "", fixture: bool = True, recalibrate: int = 2048,
           root: str | os.PathLike = DEFAULT_ROOT, zooms: Sequence[float] = TTA_ZOOMS) -> Path:
    """The trained checkpoint -> the packaged model: BatchNorm statistics recalibrated on training crops,
    name, provenance, flip averaging and zoom views, default box map; no trainer state (optimizer).
    Writes `out` (.pt, weights stored as fp16) and beside it the `.onnx` graph the runtime runs, both
    from the same fp16-rounded weights, so ONNX Runtime and PyTorch give the same angles (package
    weight files: 6.5 MB in all). Records the fixture crop's angles for the package test."""

    from posebridge.faces.detectors import DEFAULT_DETECTOR
    from posebridge.inference.roi_map import box_map_for
    from posebridge.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    if meta.crop.protocol != "3ddfa":
        raise InputFileError(checkpoint, f"crop protocol is {meta.crop.protocol!r}, expected '3ddfa'")
    meta.name = "posebridge-small"
    meta.crop.box_map = dict(box_map_for(detector or DEFAULT_DETECTOR))
    meta.provenance = dict(PROVENANCE)
    meta.extra = {k: v for k, v in meta.extra.items() if isinstance(v, (str, int, float, bool))}
    meta.extra["flip_average"] = bool(flip_average)
    meta.extra["tta_zooms"] = [float(z) for z in zooms]
    # Filter calibration: this model's softmax spread is ~5 deg where WHENet's is ~55, so the Kalman
    # filter's spread -> measurement-noise scale is the model's own (measured with
    # benchmarks/bench_filter.py: still-face jitter / spread is 0.04-0.24 here, 0.01-0.02 for WHENet).
    meta.extra["filter"] = {"meas_scale": FILTER_MEAS_SCALE}
    meta.extra["trained_from"] = Path(checkpoint).name
    if recalibrate:
        meta.extra["bn_recalibrated_on"] = recalibrate_batchnorm(model, meta.input_size, root, recalibrate)
    return package(model, meta, out, fixture)


def package(model, meta, out: str | os.PathLike = ASSET, fixture: bool = True) -> Path:
    """Write the packaged pair: `out` (.pt with fp16 weights) and `out` with suffix .onnx (fp32 graph of
    the same fp16-rounded weights, metadata inside); re-record the fixture angles with the runtime."""
    import json

    from posebridge.models.checkpoint import save_checkpoint
    from posebridge.models.export import export_onnx

    meta.extra["weights"] = "fp16-rounded"
    model = model.half().float().eval()
    out = Path(out)
    path = save_checkpoint(out, model.half(), meta)
    model.float()
    export_onnx(model, meta, out.with_suffix(".onnx"))
    if fixture:
        from posebridge.inference.estimator import Estimator

        FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
        if not FIXTURE_CROP.exists():
            cv2.imwrite(str(FIXTURE_CROP), synthetic_face())
        est = Estimator.load(str(out.with_suffix(".onnx")), device="cpu")
        pose = est.predict_crops([cv2.imread(str(FIXTURE_CROP))])[0]
        FIXTURE_ANGLES.write_text(json.dumps({"model": str(Path(out).name), "crop": FIXTURE_CROP.name,
                                              "angles": [round(a, 4) for a in pose.angles],
                                              "stds": [round(a, 4) for a in pose.stds]}, indent=2) + "\n")
    return path


CONFIG = Path(__file__).resolve().parent / "configs" / "posebridge_small.toml"


def train_and_export(config: str | os.PathLike = CONFIG, overrides: Sequence[str] = (),
                     out: str | os.PathLike = ASSET, fixture: bool = True) -> int:
    """The one command behind the shipped model: train with `config`, then export the run's last
    checkpoint (end of the cosine schedule) to `out`. Prints the wall time of both steps."""
    import logging
    import sys
    import time

    from training.config import load_config
    from training.train import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    t0 = time.time()
    try:
        cfg = load_config(config, list(overrides))
        result = train(cfg)
        if result.last_path is None:
            raise ConfigError("training produced no checkpoint")
        t1 = time.time()
        path = export(result.last_path, out, fixture=fixture, root=cfg.data.options.get("root", DEFAULT_ROOT))
    except PoseBridgeError as exc:
        print(f"distill: error: {exc}", file=sys.stderr)
        return 2
    t2 = time.time()
    print(f"trained {cfg.run.out_dir} in {(t1 - t0) / 60:.1f} min, exported in {t2 - t1:.0f} s: "
          f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); total {(t2 - t0) / 60:.1f} min")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from posebridge.inference.estimator import parse_zooms

    ap = argparse.ArgumentParser(prog="python -m training.distill",
                                 description="Train and package the distilled student posebridge-small.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (training/configs/posebridge_small.toml) and export in one go")
    t.add_argument("--config", default=str(CONFIG), help="trainer TOML config")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    t.add_argument("--out", default=str(ASSET), help="where the packaged model goes")
    t.add_argument("--no-fixture", action="store_true", help="do not re-record the test fixture's angles")
    e = sub.add_parser("export", help="best.pt -> posebridge/assets/posebridge-small.pt")
    e.add_argument("checkpoint")
    e.add_argument("--out", default=str(ASSET))
    e.add_argument("--no-flip-average", action="store_true", help="do not average with the mirrored crop")
    e.add_argument("--tta-zooms", default=",".join(f"{z:g}" for z in TTA_ZOOMS), metavar="F,F,...",
                   help="test-time zoom views of the ROI, averaged (default %(default)s; 1 = the ROI only)")
    e.add_argument("--no-fixture", action="store_true", help="do not re-record the test fixture's angles")
    e.add_argument("--recalibrate", type=int, default=2048, metavar="N",
                   help="re-estimate BatchNorm statistics on N training crops (0 = keep the trained ones)")
    e.add_argument("--root", default=str(DEFAULT_ROOT), help="the aflw-yaw-crops folder (for recalibration)")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        return train_and_export(args.config, args.set, args.out, fixture=not args.no_fixture)
    try:
        zooms = parse_zooms(args.tta_zooms, "--tta-zooms")
        path = export(args.checkpoint, args.out, not args.no_flip_average, fixture=not args.no_fixture,
                      recalibrate=args.recalibrate, root=args.root, zooms=zooms)
    except (InputFileError, ConfigError) as exc:
        print(f"distill: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
