"""A study's spec: the `[study]` table of a study config (its variants, seeds and output folders), how it
is read and checked, each run's name and resolved trainer config, and the digest that tells whether a
stored run was trained with the same settings (what `--resume` relies on). The format is described in
training/study.py."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from posebridge.errors import ConfigError
from posebridge.inference.meta import ANGLES
from posebridge.tomlconfig import apply, apply_overrides, coerce, dump_toml, load_toml
from training.config import TrainConfig, validate

COLUMNS = (*ANGLES, "mean")  # the MAE entries of every run's result: per angle and their mean
# run settings that do not change what is trained: a resumed run may differ in these
COSMETIC = (("run", "progress"), ("run", "log_every"), ("run", "stop_after"), ("run", "checkpoint_every"),
            ("run", "num_threads"), ("data", "num_workers"), ("eval", "batch_size"), ("run", "pause_file"),
            ("run", "progress"))


@dataclass
class Variant:
    key: str
    label: str
    set: list[str] = field(default_factory=list)


@dataclass
class StudySpec:
    name: str = "study"
    title: str = "Study"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str = "docs/comparison/study"
    runs: str = "runs/study"
    reference: str = ""  # paired differences against this variant ("" = the first)
    recalibrate_bn: int = 2048
    note: str = ""  # one paragraph printed under the title
    checks: bool = False  # validation checks per run and over steps (training/study_checks.py)
    checks_with: list[str] = field(default_factory=list)  # more trainer configs whose held-out crops count
    checks_flip: list[str] = field(default_factory=lambda: ["both", "off"])
    reference_model: str = ""  # a model measured once on the same crops (the line to beat)
    reference_label: str = "reference"
    variants: list[Variant] = field(default_factory=list)


def _variant(table: object, i: int) -> Variant:
    where = f"study.variants[{i}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table with key, label and set")
    unknown = set(table) - {"key", "label", "set"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key (known: key, label, set)")
    if not isinstance(table.get("key"), str) or not table["key"]:
        raise ConfigError(f"{where}.key: expected a non-empty string")
    key = table["key"]
    if not key.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}.key: {key!r} must be letters, digits, '_' or '-' (it names files)")
    label = coerce(table.get("label", key), str, f"{where}.label")
    sets = coerce(table.get("set", []), list[str], f"{where}.set")
    return Variant(key, label, sets)


def load_study(path: str | Path, overrides: list[str] = ()) -> tuple[StudySpec, TrainConfig]:
    """A study config: its `[study]` table and the shared trainer settings (+ `--set` overrides)."""
    raw = load_toml(path)
    table = raw.pop("study", None)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [study] table (see training/study.py)")
    variants = table.pop("variants", [])
    spec = StudySpec()
    try:
        apply(spec, table, "study")
        spec.variants = [_variant(v, i) for i, v in enumerate(variants)]
        base = TrainConfig()
        apply(base, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    apply_overrides(base, list(overrides))
    validate(base)
    if not spec.variants:
        raise ConfigError(f"{path}: study.variants: no variant to run")
    keys = [v.key for v in spec.variants]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: study.variants: duplicate key")
    if spec.reference and spec.reference not in keys:
        raise ConfigError(f"{path}: study.reference: {spec.reference!r} is not a variant ({', '.join(keys)})")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(f"{path}: study.seeds: expected distinct seeds")
    for v in spec.variants:  # every variant's settings must be valid before anything trains
        run_config(base, spec, v, spec.seeds[0])
    return spec, base


def run_name(variant: Variant, seed: int) -> str:
    return f"{variant.key}_s{seed}"


def run_config(base: TrainConfig, spec: StudySpec, variant: Variant, seed: int) -> TrainConfig:
    cfg = copy.deepcopy(base)
    try:
        apply_overrides(cfg, variant.set)
    except ConfigError as exc:
        raise ConfigError(f"study variant {variant.key!r}: {exc}") from None
    validate(cfg)
    cfg.run.seed = seed
    cfg.run.name = f"{spec.name}-{run_name(variant, seed)}"
    cfg.run.out_dir = str(Path(spec.runs) / run_name(variant, seed))
    cfg.model.name = cfg.model.name or cfg.run.name
    return cfg


def _substance(cfg: TrainConfig) -> str:
    c = copy.deepcopy(cfg)
    default = TrainConfig()
    for section, key in COSMETIC:
        setattr(getattr(c, section), key, getattr(getattr(default, section), key))
    return dump_toml(c)


def config_digest(cfg: TrainConfig) -> str:
    """A short hash of the settings that change what is trained (COSMETIC ones left out)."""
    return hashlib.sha256(_substance(cfg).encode()).hexdigest()[:16]


def check_same_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume or reuse a run trained with other settings than the study's now."""
    stored = run_dir / "config.toml"
    if not stored.is_file():
        return
    old = TrainConfig()
    apply(old, load_toml(stored))
    if _substance(old) != _substance(cfg):
        a, b = _substance(old).splitlines(), _substance(cfg).splitlines()
        diff = next((f"{x!r} -> {y!r}" for x, y in zip(a, b, strict=False) if x != y), "")
        raise ConfigError(f"{run_dir}: trained with other settings than this study's ({diff}); remove the "
                          "folder to start it again")
