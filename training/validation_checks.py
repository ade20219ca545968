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
- `score`: the selection measure, the mean of consensus mean, human_yaw and eye_roll;
- `roll_sweep`: near-frontal held-out crops (consensus |yaw|, |pitch| < 20, |roll| < 10) turned in the
  image plane by -75..+75 degrees in steps of 15 (black corners, as the runtime pads outside a frame),
  the truth turned exactly (Rz(theta) R): `gain_75` and `gain_45` (least-squares slope of predicted on
  true roll over |theta| <= 75 and <= 45), `err_60` (roll MAE where |true roll| >= 60) and `yaw_leak`
  (yaw MAE against the turned truth over the sweep);
- `yaw_calibration`: least-squares slope of predicted on consensus yaw per |yaw| band (0-30, 30-60,
  60-99) and over all, on the crops where the two teachers agree, and against the human yaw.

`--flip off|both|model` runs the network on the crop alone, on the crop and its mirror (averaged), or as
the model says; every check can be run both ways to decide whether a model may ship with flip off.

Writes a JSON (and prints a table); the figures of every run reported in docs/models.md come from here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from posebridge.errors import PoseBridgeError

AGREE_DEG = 5.0
EYE_YAW_LIMIT = 30.0
SWEEP_THETAS = tuple(range(-75, 76, 15))
SWEEP_CROPS = 150
YAW_BANDS = ((0.0, 30.0), (30.0, 60.0), (60.0, 99.0))


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
    flip: str = "model"
    roll_sweep: dict[str, float] = field(default_factory=dict)
    yaw_calibration: dict[str, float] = field(default_factory=dict)


def validation_split(configs: list, overrides: list[str] | None = None) -> tuple[Path, list[str]]:
    """The crop folder and the names of the crops that every one of these trainer configs (TOML paths or
    TrainConfig objects) holds out."""
    import copy

    from training.config import TrainConfig, apply_overrides, load_config
    from training.data import create_dataset, split_by_group

    root, common = None, None
    for config in configs:
        extra = list(overrides or []) + ["data.options.progress=false", "data.options.limit=0"]
        if isinstance(config, TrainConfig):
            cfg = copy.deepcopy(config)
            apply_overrides(cfg, extra)
        else:
            cfg = load_config(config, extra)
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


def _predict(est, crops: list) -> np.ndarray:
    return np.concatenate([np.array([p.angles for p in est.predict_crops(crops[i:i + 256])])
                           for i in range(0, len(crops), 256)]).reshape(-1, 3)


def slope(pred: np.ndarray, true: np.ndarray) -> float:
    """Least-squares slope of `pred` on `true` (with an intercept); NaN with fewer than 3 points."""
    if len(true) < 3 or np.ptp(true) == 0:
        return float("nan")
    return float(np.polyfit(true, pred, 1)[0])


def roll_sweep(est, crops: list, truth: np.ndarray, thetas=SWEEP_THETAS) -> dict[str, float]:
    """Near-frontal crops turned in the image plane by each theta; see the module docstring."""
    import cv2

    from posebridge.formats.rotation import rotate_in_plane

    a = np.abs(truth)
    frontal = np.flatnonzero((a[:, 0] < 20) & (a[:, 1] < 20) & (a[:, 2] < 10))
    pick = frontal[np.linspace(0, len(frontal) - 1, min(SWEEP_CROPS, len(frontal))).astype(int)]
    if len(pick) == 0:
        return {}
    turned, true = [], []
    for theta in thetas:
        for i in pick:
            c = crops[i]
            h, w = c.shape[:2]
            m = cv2.getRotationMatrix2D((w / 2, h / 2), -theta, 1.0)  # OpenCV's + angle: anticlockwise
            turned.append(cv2.warpAffine(c, m, (w, h), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT))
            true.append(rotate_in_plane(*truth[i], theta))
    pred, true = _predict(est, turned), np.array(true)
    theta = np.repeat(np.asarray(thetas, float), len(pick))
    in45 = np.abs(theta) <= 45
    big = np.abs(true[:, 2]) >= 60
    return {"crops": int(len(pick)), "gain_75": slope(pred[:, 2], true[:, 2]),
            "gain_45": slope(pred[in45, 2], true[in45, 2]),
            "err_60": float(np.abs(pred[big, 2] - true[big, 2]).mean()) if big.any() else float("nan"),
            "yaw_leak": float(np.abs(pred[:, 0] - true[:, 0]).mean()),
            "roll_mae": float(np.abs(pred[:, 2] - true[:, 2]).mean())}


def yaw_calibration(pred_yaw: np.ndarray, ref_yaw: np.ndarray, human_yaw: np.ndarray) -> dict[str, float]:
    """Slopes of predicted on reference yaw per |yaw| band and over all; and on the human yaw."""
    out = {"all": slope(pred_yaw, ref_yaw)}
    for lo, hi in YAW_BANDS:
        band = (np.abs(ref_yaw) >= lo) & (np.abs(ref_yaw) < hi)
        out[f"{lo:g}-{hi:g}"] = slope(pred_yaw[band], ref_yaw[band])
        out[f"{lo:g}-{hi:g}_n"] = int(band.sum())
    ok = np.abs(human_yaw) <= 99
    out["human"] = slope(pred_yaw[ok], human_yaw[ok])
    return out


def run_checks(model: str, root: Path, names: list[str], flip: str = "model") -> Checks:
    import cv2

    from posebridge.inference.estimator import Estimator
    from training.distill import read_teacher_labels

    labels = read_teacher_labels(root / "labels.csv")
    index = {n: i for i, n in enumerate(labels.names)}
    rows = [index[n] for n in names]
    model = str(model)
    backend = "onnx" if model.endswith(".onnx") else "torch"
    est = Estimator.load(model, device="cpu", backend=backend, threads=0, flip=flip)
    crops = [cv2.imread(str(root / "images" / n)) for n in names]
    pred = _predict(est, crops)
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
    sweep = roll_sweep(est, [crops[i] for i in np.flatnonzero(agree)], consensus[agree])
    calib = yaw_calibration(pred[agree, 0], consensus[agree, 0], human[agree])
    return Checks(model, len(names), cons, int(agree.sum()), human_yaw, eye_roll, int(ok_e.sum()), score,
                  est.flip_mode, sweep, calib)


def table(results: list[Checks]) -> str:
    """A fixed-width table of the checks, one row per model (and flip mode)."""
    lines = [f"{'model':<36}{'flip':>5}{'cons yaw':>9}{'pitch':>7}{'roll':>7}{'mean':>7}{'human yaw':>10}"
             f"{'eye roll':>9}{'score':>7}{'roll g75':>9}{'g45':>6}{'err60':>7}{'yawleak':>8}"
             f"{'yaw slope':>10}"]
    for r in results:
        c, w, k = r.consensus, r.roll_sweep, r.yaw_calibration
        lines.append(f"{Path(r.model).name[:35]:<36}{r.flip:>5}{c['yaw']:>9.2f}{c['pitch']:>7.2f}"
                     f"{c['roll']:>7.2f}{c['mean']:>7.2f}{r.human_yaw:>10.2f}{r.eye_roll:>9.2f}{r.score:>7.3f}"
                     f"{w.get('gain_75', np.nan):>9.3f}{w.get('gain_45', np.nan):>6.3f}"
                     f"{w.get('err_60', np.nan):>7.2f}{w.get('yaw_leak', np.nan):>8.2f}"
                     f"{k.get('all', np.nan):>10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.validation_checks",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="checkpoints (.pt) or exported graphs (.onnx)")
    ap.add_argument("--config", action="append", required=True,
                    help="trainer config(s) whose held-out crops to use (repeatable: the intersection)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--flip", default="model", choices=("model", "both", "off"),
                    help="mirror averaging for every model (default: as the model says)")
    args = ap.parse_args(argv)
    try:
        root, names = validation_split(args.config, args.set)
        results = [run_checks(m, root, names, args.flip) for m in args.models]
    except PoseBridgeError as exc:
        print(f"validation_checks: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(names)} held-out training crops ({root}); consensus where opentrack and mb05 agree "
          f"within {AGREE_DEG:g} deg")
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
