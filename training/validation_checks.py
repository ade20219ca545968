"""How posebridge-small's recipe is chosen without ever looking at AFLW2000: measures of a model on the
validation split of the training crops (the crops the trainer holds out, by the same split).

    python -m training.validation_checks --config training/configs/posebridge_small.toml \
        [--config training/configs/posebridge_small_v2.toml ...] MODEL [MODEL ...]

MODEL is a checkpoint (.pt) or an exported graph (.onnx). The crops used are those every given config
holds out (recipes that keep different crops split them a little differently; the intersection was
trained on by none of the compared models). For each model it reports, on those crops:

- `consensus`: MAE (yaw, pitch, roll, mean) against the mean of the two best teachers (opentrack and
  3DDFA_V2 mb05) on the crops where they agree within `AGREE_DEG` on every angle: the teachers' shared
  answer where it is trustworthy;
- `human_yaw`: yaw MAE against AFLW's human yaw annotation (independent of every teacher; its own
  spread against the AFLW2000 annotation of the same faces is about 5.5 degrees, so it ranks models
  rather than measuring them);
- `eye_roll`: roll MAE against the angle of the line through the human-annotated eye centres
  (landmarks21.csv), on faces with |human yaw| < 30 and both eyes annotated: a human check of roll;
- `score`: the selection measure, the mean of consensus mean, human_yaw and eye_roll.

Writes a JSON (and prints a table); the figures of every run reported in docs/models.md come from here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posebridge.errors import PoseBridgeError

AGREE_DEG = 5.0
EYE_YAW_LIMIT = 30.0


@dataclass
class Checks:
    model: str
    crops: int
    consensus: dict[str, float]
    consensus_n: int
    human_yaw: float
    eye_roll: float
    eye_roll_n: int
    score: float


def validation_split(configs: list[str], overrides: list[str] | None = None) -> tuple[Path, list[str]]:
    """The crop folder and the names of the crops that every one of these trainer configs holds out."""
    from training.config import load_config
    from training.data import create_dataset, split_by_group

    root, common = None, None
    for config in configs:
        cfg = load_config(config, list(overrides or []) + ["data.options.progress=false",
                                                           "data.options.limit=0"])
        cfg.data.options["load_images"] = False
        base = create_dataset(cfg.data.train, cfg.data.options)
        _, val_idx = split_by_group(base.groups, cfg.data.val_fraction, cfg.run.seed)
        names = {base.records[i].group + ".jpg" for i in val_idx}
        common = names if common is None else common & names
        root = Path(cfg.data.options.get("root", ""))
    return root, sorted(common or set())


def eye_line_roll(root: Path, names: list[str]) -> np.ndarray:
    """Degrees of the line through the annotated eye centres (NaN where an eye is not annotated)."""
    table = {r["image"]: r for r in csv.DictReader((root / "landmarks21.csv").open(newline=""))}
    out = np.full(len(names), np.nan)
    for i, n in enumerate(names):
        r = table.get(n)
        if r is None:
            continue
        lx, ly = float(r["left_eye_center_x"]), float(r["left_eye_center_y"])
        rx, ry = float(r["right_eye_center_x"]), float(r["right_eye_center_y"])
        if min(lx, ly, rx, ry) >= 0:
            out[i] = np.degrees(np.arctan2(ry - ly, rx - lx))  # image y is down: clockwise = + roll
    return out


def run_checks(model: str, root: Path, names: list[str]) -> Checks:
    import cv2

    from posebridge.inference.estimator import Estimator
    from training.distill import read_teacher_labels

    labels = read_teacher_labels(root / "labels.csv")
    index = {n: i for i, n in enumerate(labels.names)}
    rows = [index[n] for n in names]
    backend = "onnx" if model.endswith(".onnx") else "torch"
    est = Estimator.load(model, device="cpu", backend=backend, threads=0)
    crops = [cv2.imread(str(root / "images" / n)) for n in names]
    pred = np.concatenate([np.array([p.angles for p in est.predict_crops(crops[i:i + 256])])
                           for i in range(0, len(crops), 256)])
    ot, mb = labels.teachers["opentrack"][rows], labels.teachers["tddfa_mb05"][rows]
    agree = np.all(np.abs(ot - mb) < AGREE_DEG, axis=1) & np.all(np.abs(ot) <= 99, axis=1)
    consensus = (ot + mb) / 2
    err = np.abs(pred[agree] - consensus[agree]).mean(axis=0)
    human = labels.aflw_yaw[rows]
    ok_h = np.abs(human) <= 99
    human_yaw = float(np.abs(pred[ok_h, 0] - human[ok_h]).mean())
    eye = eye_line_roll(root, names)
    ok_e = np.isfinite(eye) & (np.abs(human) < EYE_YAW_LIMIT)
    eye_roll = float(np.abs(pred[ok_e, 2] - eye[ok_e]).mean())
    cons = {"yaw": float(err[0]), "pitch": float(err[1]), "roll": float(err[2]), "mean": float(err.mean())}
    score = float(np.mean([cons["mean"], human_yaw, eye_roll]))
    return Checks(model, len(names), cons, int(agree.sum()), human_yaw, eye_roll, int(ok_e.sum()), score)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.validation_checks",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="checkpoints (.pt) or exported graphs (.onnx)")
    ap.add_argument("--config", action="append", required=True,
                    help="trainer config(s) whose held-out crops to use (repeatable: the intersection)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    try:
        root, names = validation_split(args.config, args.set)
        results = [run_checks(m, root, names) for m in args.models]
    except PoseBridgeError as exc:
        print(f"validation_checks: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(names)} held-out training crops ({root}); consensus where opentrack and mb05 agree "
          f"within {AGREE_DEG:g} deg")
    print(f"{'model':<44}{'cons yaw':>9}{'pitch':>7}{'roll':>7}{'mean':>7}{'human yaw':>10}{'eye roll':>9}"
          f"{'score':>7}")
    for r in results:
        c = r.consensus
        print(f"{Path(r.model).name[:43]:<44}{c['yaw']:>9.2f}{c['pitch']:>7.2f}{c['roll']:>7.2f}"
              f"{c['mean']:>7.2f}{r.human_yaw:>10.2f}{r.eye_roll:>9.2f}{r.score:>7.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
