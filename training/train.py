"""The trainer: `python -m training.train --config FILE [--set section.key=value ...] [--resume [CKPT]]`.

One run writes to `run.out_dir`: `config.toml` (resolved), `metrics.csv` (per epoch: lr, per-angle
train/validation loss and MAE), `loss_curves.png`, `last.pt` (every `run.checkpoint_every` epochs and
at the end, with the optimizer state for `--resume`), `best.pt` (best validation mean MAE) and
`summary.json`. Checkpoints are posebridge native checkpoints (bin centres, crop protocol, input
size, mean/std in the metadata) that `posebridge.models.load_checkpoint` and the Estimator read.

Multi-GPU: `torchrun --nproc_per_node=N -m training.train --config FILE` (DistributedDataParallel;
the batch size is per process). Mixed precision on CUDA when `run.amp` is true.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from posebridge.errors import ConfigError, InputFileError, PoseBridgeError
from posebridge.inference.meta import ANGLES, CropSpec, ModelMeta
from posebridge.models.bins import BinSpec
from posebridge.models.checkpoint import read_checkpoint, save_checkpoint
from posebridge.models.network import PoseNet, build_model
from training.config import TrainConfig, dump_toml, load_config
from training.data import PoseDataset, View, create_dataset, split_by_group
from training.losses import box_loss, pose_loss
from training.plots import plot_curves
from training.transforms import Transform

log = logging.getLogger("training")


# ----------------------------------------------------------------------------- runtime


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    amp: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(cfg: TrainConfig) -> Runtime:
    if cfg.run.num_threads > 0:
        torch.set_num_threads(cfg.run.num_threads)
        import cv2

        cv2.setNumThreads(cfg.run.num_threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want = cfg.run.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device: {cfg.run.device!r} requested but CUDA is not available")
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if want.startswith("cuda"):
            torch.cuda.set_device(local)
            want = f"cuda:{local}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if want.startswith("cuda") else "gloo")
    device = torch.device(want)
    seed_everything(cfg.run.seed, cfg.run.deterministic)
    return Runtime(device, rank, world, amp=cfg.run.amp and device.type == "cuda")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- model


def bins_from_config(cfg: TrainConfig) -> dict[str, BinSpec]:
    m = cfg.model
    return {a: BinSpec(m.num_bins, m.bin_width, m.bin_low, "center") for a in ANGLES}


def xavier_init(module: nn.Module) -> None:
    """The seed's Xavier initialisation of every convolution and linear layer (biases zero)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def load_pretrained(model: PoseNet, path: str) -> int:
    """Copy every tensor of a local torchvision ImageNet state_dict whose name and shape match
    (the classifier `fc.*` / `classifier.6.*` never do). Returns how many were loaded."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError(path, "pretrained weight file not found") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user-input error
        raise InputFileError(path, f"not a readable torch state_dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise InputFileError(path, f"no tensor matches the {model.backbone_name} trunk")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def make_model(cfg: TrainConfig) -> PoseNet:
    model = build_model(cfg.model.backbone, bins_from_config(cfg), box_head=cfg.model.box_head)
    if cfg.model.init == "xavier":
        xavier_init(model)
    if cfg.model.pretrained:
        # an ImageNet file fills the trunk (heads keep their init); a posebridge checkpoint (its
        # "state_dict" entry) with the same heads fills everything, i.e. fine-tuning
        n = load_pretrained(model, cfg.model.pretrained)
        log.info("pretrained init: %d tensors from %s", n, cfg.model.pretrained)
    return model


def check_input_size(model: PoseNet, size: int, device: torch.device) -> None:
    """Fail early, naming the field, when the backbone cannot take this input size (AlexNet < 63 px)."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size, device=device))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"model.input_size: {size} is too small for {model.backbone_name} "
                          f"({first})") from None
    finally:
        model.train(was_training)


def make_meta(cfg: TrainConfig, dataset: PoseDataset | None = None) -> ModelMeta:
    t = Transform.from_config(cfg, train=False)
    crop = CropSpec(protocol=cfg.model.crop_protocol, margin=round(t.effective_margin(), 4))
    return ModelMeta(
        name=cfg.model.name or cfg.run.name,
        backbone=cfg.model.backbone,
        bins=bins_from_config(cfg),
        input_size=cfg.model.input_size,
        crop=crop,
        provenance={"source": "trained with posebridge training.train", "notes": f"run {cfg.run.name}"},
        extra={"train_dataset": cfg.data.train, "train_resize": cfg.resize,
               "loss": cfg.loss.kind, "train_samples": len(dataset) if dataset is not None else 0,
               "box_head": cfg.model.box_head},
    )


# ----------------------------------------------------------------------------- evaluation


class Meter:
    """Sums of per-angle loss and absolute error over samples with a valid label."""

    def __init__(self) -> None:
        self.loss = dict.fromkeys(ANGLES, 0.0)
        self.err = dict.fromkeys(ANGLES, 0.0)
        self.n = dict.fromkeys(ANGLES, 0)
        self.total, self.batches = 0.0, 0
        self.box_err, self.box_n = torch.zeros(3), 0

    def add_box(self, err: torch.Tensor, n: int) -> None:
        self.box_err += err.cpu() * n
        self.box_n += n

    def add(self, total: torch.Tensor, parts: dict, angles: torch.Tensor) -> None:
        self.total += float(total.detach())
        self.batches += 1
        for i, a in enumerate(ANGLES):
            p = parts[a]
            k = int(p.valid.sum())
            if k:
                self.loss[a] += float(p.total.detach()) * k
                self.err[a] += float((p.pred[p.valid] - angles[:, i].to(p.pred.device)[p.valid]).abs().sum())
                self.n[a] += k

    def row(self, prefix: str) -> dict:
        out: dict[str, float] = {}
        for a in ANGLES:
            n = self.n[a]
            out[f"{prefix}_loss_{a}"] = self.loss[a] / n if n else math.nan
            out[f"{prefix}_mae_{a}"] = self.err[a] / n if n else math.nan
        maes = [out[f"{prefix}_mae_{a}"] for a in ANGLES if self.n[a]]
        out[f"{prefix}_loss"] = self.total / self.batches if self.batches else math.nan
        out[f"{prefix}_mae"] = float(np.mean(maes)) if maes else math.nan
        if self.box_n:  # box head: mean |error| of dx, dy (fractions of the crop side) and log scale
            for name, e in zip(("dx", "dy", "dlogs"), (self.box_err / self.box_n).tolist(), strict=True):
                out[f"{prefix}_box_{name}"] = e
        return out


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, bins: dict[str, BinSpec], cfg: TrainConfig,
             device: torch.device, prefix: str = "val", progress: bool = False) -> dict:
    """Per-angle loss and MAE of `model` (eval mode) over a loader of View items."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    meter = Meter()
    for batch in tqdm(loader, desc=prefix, leave=False, disable=not progress):
        x, y = batch["image"].to(device), batch["angles"]
        outputs = model(x, with_box=cfg.model.box_head)
        total, parts = pose_loss(outputs, y.to(device), bins, cfg.loss.kind, cfg.loss.alpha,
                                 cfg.loss.target, cfg.loss.soft_sigma, tuple(cfg.loss.weights))
        if cfg.model.box_head:
            _, err = box_loss(outputs[3], batch["box"])
            meter.add_box(err, len(x))
        meter.add(total, parts, y)
    model.train(was_training)
    return meter.row(prefix)


# ----------------------------------------------------------------------------- trainer


def lr_factor(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int,
              time_fraction: float = 0.0) -> float:
    """The schedule's multiplier at `step`; with a time budget, cosine follows the larger of the step
    fraction and the elapsed-time fraction."""
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "cosine":
        t = min(1.0, (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps))
        t = max(t, min(1.0, time_fraction))
        return 0.5 * (1 + math.cos(math.pi * t))
    if o.schedule == "step":
        return o.gamma ** ((step // max(1, steps_per_epoch)) // max(1, o.step_epochs))
    return 1.0


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)


def wait_while(pause_file: str, poll_s: float = 2.0) -> float:
    """Wait while `pause_file` exists (a shared machine being timed); returns the seconds waited."""
    if not pause_file or not os.path.exists(pause_file):
        return 0.0
    t0 = time.time()
    log.info("pause file %s exists: waiting", pause_file)
    while os.path.exists(pause_file):
        time.sleep(poll_s)
    log.info("pause file gone after %.0f s: continuing", time.time() - t0)
    return time.time() - t0


def mirror_pairs(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                 box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's first half and its mirror images (yaw, roll and the box's dx negated): the same
    number of rows, half as many faces; row i + n is row i mirrored."""
    n = len(x) // 2
    sign = torch.tensor([-1.0, 1.0, -1.0], dtype=y.dtype)
    box_sign = torch.tensor([-1.0, 1.0, 1.0], dtype=box.dtype)
    x = torch.cat([x[:n], x[:n].flip(-1)])
    return (x, torch.cat([y[:n], y[:n] * sign]), torch.cat([w[:n], w[:n]]),
            torch.cat([box[:n], box[:n] * box_sign]))


def flip_consistency_loss(outputs: tuple[torch.Tensor, ...], bins: dict[str, BinSpec]) -> torch.Tensor:
    """Mean squared difference (degrees^2) between each face's decoded angles and its mirror image's
    (yaw and roll negated), over the pairs `mirror_pairs` built."""
    from posebridge.models.bins import decode

    terms = []
    for out, a in zip(outputs[:3], ANGLES, strict=True):
        pred, _ = decode(out.float(), bins[a])
        n = len(pred) // 2
        mirrored = -pred[n:2 * n] if a in ("yaw", "roll") else pred[n:2 * n]
        terms.append(((pred[:n] - mirrored) ** 2).mean())
    return torch.stack(terms).mean()


@dataclass
class RunResult:
    out_dir: Path
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.nan
    best_path: Path | None = None
    last_path: Path | None = None


class Trainer:
    """Builds data, model and optimizer from a TrainConfig and runs (or resumes) the epochs."""

    def __init__(self, cfg: TrainConfig, runtime: Runtime | None = None) -> None:
        self.cfg = cfg
        self.rt = runtime or setup_runtime(cfg)
        self.out = Path(cfg.run.out_dir)
        self.bins = bins_from_config(cfg)
        self._build_data()
        self.model = make_model(cfg).to(self.rt.device)
        self.memory_format = torch.channels_last if cfg.run.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        check_input_size(self.model, cfg.model.input_size, self.rt.device)
        self.meta = make_meta(cfg, self.train_base)
        self.net: nn.Module = self.model
        if self.rt.world > 1:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.eager_net, self.compile_checked = self.net, not cfg.run.compile
        if cfg.run.compile:
            self.net = torch.compile(self.net, dynamic=False)
        self.optimizer = make_optimizer(cfg, self.model)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.rt.amp)
        self.history: list[dict] = []
        self.start_epoch, self.step = 0, 0
        self.best_val, self.best_epoch = math.inf, -1
        self.elapsed, self.out_of_time = 0.0, False  # training seconds so far (time budget)

    # -- data
    def _build_data(self) -> None:
        cfg = self.cfg
        self.train_base = create_dataset(cfg.data.train, cfg.data.options)
        if len(self.train_base) == 0:
            raise ConfigError(f"data.train: dataset {cfg.data.train!r} has no usable samples")
        train_t, test_t = Transform.from_config(cfg, True), Transform.from_config(cfg, False)
        if cfg.data.val:
            self.val_base = create_dataset(cfg.data.val, cfg.data.val_options)
            train_idx, val_idx = list(range(len(self.train_base))), list(range(len(self.val_base)))
        else:
            self.val_base = self.train_base
            train_idx, val_idx = split_by_group(self.train_base.groups, cfg.data.val_fraction, cfg.run.seed)
        self.split = {"train": len(train_idx), "val": len(val_idx)}
        self.train_view = View(self.train_base, train_idx, train_t, cfg.run.seed, cfg.data.repeat)
        self.val_view = View(self.val_base, val_idx, test_t, cfg.run.seed) if val_idx else None
        if self.rt.main:
            log.info("%s", self.train_base.summary())
            log.info("split by source group: %d train / %d validation samples", len(train_idx), len(val_idx))

    def _loader(self, view: View, epoch: int, train: bool) -> DataLoader:
        view.set_epoch(epoch)
        cfg = self.cfg
        if train and self.rt.world > 1:
            sampler = DistributedSampler(view, self.rt.world, self.rt.rank, shuffle=True, seed=cfg.run.seed)
            sampler.set_epoch(epoch)
        elif train:
            g = torch.Generator().manual_seed(cfg.run.seed * 100003 + epoch)
            sampler = RandomSampler(view, generator=g)
        else:
            sampler = SequentialSampler(view)
        return DataLoader(view, batch_size=cfg.optim.batch_size if train else cfg.eval.batch_size,
                          sampler=sampler, num_workers=cfg.data.num_workers, drop_last=False,
                          pin_memory=self.rt.device.type == "cuda",
                          persistent_workers=False)

    def steps_per_epoch(self) -> int:
        n = math.ceil(len(self.train_view) / self.rt.world / self.cfg.optim.batch_size)
        cap = self.cfg.optim.max_steps_per_epoch
        return min(n, cap) if cap > 0 else n

    # -- checkpoints
    def _training_state(self, epoch: int) -> dict:
        return {
            "epoch": epoch, "step": self.step, "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "best_val": self.best_val, "best_epoch": self.best_epoch,
            "history": self.history, "config": self.cfg.to_dict(), "elapsed": self.elapsed,
        }  # fmt: skip

    def save(self, path: Path, epoch: int) -> Path:
        return save_checkpoint(path, self.model, self.meta, training=self._training_state(epoch))

    def _save_best(self, epoch: int, same_as: Path | None) -> Path:
        """best.pt: a hard link to this epoch's last.pt when there is one (no second copy on disk;
        last.pt is later replaced by rename, which leaves the link intact), else a fresh save."""
        best = self.out / "best.pt"
        if same_as is not None:
            tmp = best.with_name("best.pt.link")
            try:
                tmp.unlink(missing_ok=True)
                os.link(same_as, tmp)
                os.replace(tmp, best)
                return best
            except OSError:
                pass
        return self.save(best, epoch)

    def resume(self, path: str | Path) -> None:
        payload = read_checkpoint(path)
        state = payload.get("training")
        if not isinstance(state, dict):
            raise InputFileError(path, "checkpoint has no trainer state (not a last.pt from training.train)")
        old = state.get("config", {}).get("model", {})
        for key in ("backbone", "input_size", "num_bins", "bin_width", "bin_low"):
            if key in old and old[key] != getattr(self.cfg.model, key):
                raise ConfigError(f"model.{key}: {getattr(self.cfg.model, key)!r} differs from the resumed "
                                  f"checkpoint's {old[key]!r} ({path})")
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.step = int(state["epoch"]) + 1, int(state["step"])
        self.best_val, self.best_epoch = float(state["best_val"]), int(state["best_epoch"])
        self.history = list(state.get("history", []))
        self.elapsed = float(state.get("elapsed", 0.0))
        if self.rt.main:
            log.info("resumed %s after epoch %d (step %d)", path, state["epoch"], self.step)

    # -- loop
    def train_epoch(self, epoch: int, total_steps: int) -> dict:
        from tqdm import tqdm

        cfg, rt = self.cfg, self.rt
        torch.manual_seed(cfg.run.seed * 100003 + epoch)  # dropout etc.: a function of the epoch
        self.net.train()
        loader = self._loader(self.train_view, epoch, train=True)
        n_steps = self.steps_per_epoch()
        meter = Meter()
        bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", leave=False,
                   disable=not (cfg.run.progress and rt.main), dynamic_ncols=True)
        budget = cfg.optim.time_budget_min * 60
        t_start, elapsed0 = time.time(), self.elapsed
        lr = cfg.optim.lr * lr_factor(cfg, self.step, total_steps, n_steps,
                                      elapsed0 / budget if budget else 0.0)
        for i, batch in enumerate(loader):
            if i >= n_steps:
                break
            t_start += wait_while(cfg.run.pause_file)  # paused time is not training time
            self.elapsed = elapsed0 + time.time() - t_start
            if budget and self._time_is_up(self.elapsed >= budget):
                self.out_of_time = True
                break
            frac = self.elapsed / budget if budget else 0.0
            lr = cfg.optim.lr * lr_factor(cfg, self.step, total_steps, n_steps, frac)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x = batch["image"].to(rt.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            y = batch["angles"]
            sample_w, box_t = batch["weights"], batch["box"]
            if cfg.loss.flip_consistency > 0:
                x, y, sample_w, box_t = mirror_pairs(x, y, sample_w, box_t)
                x = x.contiguous(memory_format=self.memory_format)
            with torch.autocast("cuda", dtype=torch.float16, enabled=rt.amp):
                outputs = self._forward(x)
            total, parts = pose_loss(tuple(o.float() for o in outputs), y.to(rt.device), self.bins,
                                     cfg.loss.kind, cfg.loss.alpha, cfg.loss.target, cfg.loss.soft_sigma,
                                     tuple(cfg.loss.weights), sample_w.to(rt.device))
            if cfg.loss.flip_consistency > 0:
                total = total + cfg.loss.flip_consistency * flip_consistency_loss(outputs, self.bins)
            if cfg.model.box_head:
                b_loss, b_err = box_loss(outputs[3], box_t)
                total = total + cfg.loss.box_weight * b_loss
                meter.add_box(b_err, len(x))
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if cfg.optim.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            meter.add(total.detach(), parts, y)
            bar.update(1)
            if cfg.run.log_every and self.step % cfg.run.log_every == 0 and rt.main:
                log.info("step %d (epoch %d, %d/%d)  loss %.4g  train MAE %.3f  lr %.3g  %.0f s",
                         self.step, epoch + 1, i + 1, n_steps, float(total.detach()),
                         meter.row("t")["t_mae"], lr, self.elapsed)
            if bar.disable is False:
                bar.set_postfix(loss=f"{float(total.detach()):.3f}", mae=f"{meter.row('t')['t_mae']:.2f}",
                                lr=f"{lr:.2g}")
        bar.close()
        self.elapsed = elapsed0 + time.time() - t_start
        row = meter.row("train")
        row["lr"] = lr
        return row

    def _forward(self, x: torch.Tensor):
        """The training forward. A compiled network that cannot be built (torch.compile needs a working C++
        compiler on CPU) falls back to eager mode with one warning instead of ending the run."""
        box = self.cfg.model.box_head
        if self.compile_checked:
            return self.net(x, with_box=box)
        try:
            outputs = self.net(x, with_box=box)
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            lines = str(exc).strip().splitlines()
            log.warning("run.compile: torch.compile failed (%s); training in eager mode instead",
                        lines[0][:200] if lines else type(exc).__name__)
            self.net = self.eager_net
            outputs = self.net(x, with_box=box)
        self.compile_checked = True
        return outputs

    def _time_is_up(self, mine: bool) -> bool:
        """All processes stop together: any rank out of time stops every rank."""
        if self.rt.world == 1:
            return mine
        flag = torch.tensor([1.0 if mine else 0.0], device=self.rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def fit(self) -> RunResult:
        cfg, rt = self.cfg, self.rt
        if rt.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.toml").write_text(dump_toml(cfg))
        total_steps = cfg.optim.epochs * self.steps_per_epoch()
        result = RunResult(self.out)
        t0 = time.time()
        for epoch in range(self.start_epoch, cfg.optim.epochs):
            t_epoch = time.time()
            row = {"epoch": epoch + 1, **self.train_epoch(epoch, total_steps)}
            stop_now = bool(cfg.run.stop_after) and epoch + 1 - self.start_epoch >= cfg.run.stop_after
            last = epoch == cfg.optim.epochs - 1 or self.out_of_time or stop_now
            if rt.main:
                if self.val_view is not None and ((epoch + 1) % cfg.run.val_every == 0 or last):
                    row.update(evaluate(self.model, self._loader(self.val_view, epoch, False), self.bins,
                                        cfg, rt.device, "val", progress=cfg.run.progress))
                row["seconds"] = round(time.time() - t_epoch, 2)
                self.history.append(row)
                score = row.get("val_mae", math.nan)
                if self.val_view is None:
                    score = row["train_mae"]  # no validation split: best = lowest training MAE
                improved = not math.isnan(score) and score < self.best_val
                if improved:
                    self.best_val, self.best_epoch = score, epoch + 1
                saved = None
                if (epoch + 1) % cfg.run.checkpoint_every == 0 or last:
                    saved = result.last_path = self.save(self.out / "last.pt", epoch)
                if cfg.run.snapshot_every and ((epoch + 1) % cfg.run.snapshot_every == 0 or last):
                    snap = self.out / "snapshots" / f"step_{self.step:06d}.pt"
                    save_checkpoint(snap, self.model, self.meta)
                if improved:
                    result.best_path = self._save_best(epoch, saved)
                self._write_logs(plot=saved is not None or last)
                log.info("epoch %d/%d  %s", epoch + 1, cfg.optim.epochs, _fmt(row))
            if rt.world > 1:
                dist.barrier()
            if stop_now and epoch != cfg.optim.epochs - 1:
                if rt.main:
                    log.info("stopping after %d epoch(s) as asked (run.stop_after); --resume continues",
                             cfg.run.stop_after)
                break
            if self.out_of_time:
                if rt.main:
                    log.info("time budget of %.1f min reached after epoch %d", cfg.optim.time_budget_min,
                             epoch + 1)
                break
        if rt.main:
            result.history, result.best_epoch, result.best_val = self.history, self.best_epoch, self.best_val
            result.best_path = self.out / "best.pt" if (self.out / "best.pt").exists() else None
            result.last_path = self.out / "last.pt" if (self.out / "last.pt").exists() else None
            summary = {
                "run": cfg.run.name, "backbone": cfg.model.backbone, "loss": cfg.loss.kind,
                "dataset": self.train_base.summary(), "split": self.split, "best_epoch": self.best_epoch,
                "best_val_mae": self.best_val, "epochs_run": len(self.history),
                "train_seconds": round(self.elapsed, 1), "steps": self.step,
                "seconds": round(time.time() - t0, 1), "device": str(rt.device), "world_size": rt.world,
                "threads": torch.get_num_threads(),
            }  # fmt: skip
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return result

    def _write_logs(self, plot: bool = True) -> None:
        keys: list[str] = []
        for r in self.history:
            keys += [k for k in r if k not in keys]
        with (self.out / "metrics.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            for r in self.history:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        if not plot:  # the figure follows the checkpoints (drawing it every epoch costs ~0.5 s)
            return
        c = self.cfg
        title = f"{c.run.name} ({c.model.backbone}, {c.loss.kind} loss)"
        plot_curves(self.history, self.out / "loss_curves.png", title=title)


def _fmt(row: dict) -> str:
    keys = ["train_loss", "train_mae", "val_mae", "val_mae_yaw", "val_mae_pitch", "val_mae_roll", "lr",
            "seconds"]
    return "  ".join(f"{k}={row[k]:.4g}" for k in keys if k in row and not math.isnan(row[k]))


def train(cfg: TrainConfig, resume: str | None = None) -> RunResult:
    """Run (or resume, from a path or "auto" = out_dir/last.pt) one training run."""
    trainer = Trainer(cfg)
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


def export_weights(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """Copy a trainer checkpoint without its optimizer state (optionally fp16 weights) for shipping."""
    from posebridge.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(src)
    if half:
        model = model.half()
    meta.extra = {**meta.extra, "exported_from": Path(src).name, "fp16": half}
    return save_checkpoint(dst, model, meta)
