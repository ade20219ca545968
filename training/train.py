"""The trainer: `python -m training.train --config FILE [--set section.key=value ...] [--resume [CKPT]]`.

One run writes to `run.out_dir`: `config.toml` (resolved), `metrics.csv` (per epoch: lr, per-angle
train/validation loss and MAE), `loss_curves.png`, `last.pt` (every `run.checkpoint_every` epochs and
at the end, with the optimizer state for `--resume`), `best.pt` (best validation mean MAE) and
`summary.json`. Checkpoints are posebridge native checkpoints (bin centres, crop protocol, input
size, mean/std in the metadata) that `posebridge.models.load_checkpoint` and the Estimator read.

Multi-GPU: `torchrun --nproc_per_node=N -m training.train --config FILE` (DistributedDataParallel;
the batch size is per process). Mixed precision on CUDA when `run.amp` is true.

The loop is `training.trainer.Trainer`; its parts: training/runtime.py (device, DDP, seeding),
training/model_setup.py (network, init, checkpoint metadata), training/optim.py (optimizer, schedule),
training/meter.py (loss/MAE sums, validation pass), training/losses.py, training/export.py (shipping).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

import torch.distributed as dist

from posebridge.errors import PoseBridgeError
from training.config import TrainConfig, load_config
from training.data import DatasetFactory, create_dataset
from training.trainer import RunResult, Trainer


def train(cfg: TrainConfig, resume: str | None = None,
          datasets: DatasetFactory = create_dataset) -> RunResult:
    """Run (or resume, from a path or "auto" = out_dir/last.pt) one training run; `datasets(name,
    options)` builds its data."""
    trainer = Trainer(cfg, datasets=datasets)
    if resume:
        trainer.resume(Path(cfg.run.out_dir) / "last.pt" if resume == "auto" else resume)
    try:
        return trainer.fit()
    finally:
        if trainer.rt.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="TOML config file (see training/configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.epochs=5 --set data.options.root=DIR")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue a run from its last.pt (default: run.out_dir/last.pt)")
    p.add_argument("--init", metavar="CKPT", help="fine-tune: start from this posebridge checkpoint's "
                   "weights (same backbone and heads; sets model.pretrained)")
    p.add_argument("--pause-file", metavar="FILE",
                   help="wait before each step while FILE exists (run.pause_file)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        extra = ([f"model.pretrained={args.init}"] if args.init else []) + (
            [f"run.pause_file={args.pause_file}"] if args.pause_file else [])
        cfg = load_config(args.config, list(args.set) + extra)
        result = train(cfg, args.resume)
    except PoseBridgeError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if result.best_path:
        print(f"best: epoch {result.best_epoch}, validation mean MAE {result.best_val:.3f} "
              f"-> {result.best_path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
