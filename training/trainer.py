"""The training loop: `Trainer` builds a run's data, model and optimizer from a TrainConfig, runs (or
resumes) its epochs with per-epoch validation, and writes the run folder (config.toml, metrics.csv,
loss_curves.png, last.pt / best.pt, snapshots, summary.json). The data comes from a dataset factory,
`training.data.create_dataset` unless the caller passes another (a study passes a caching one)."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from posebridge.errors import ConfigError, InputFileError
from posebridge.models.checkpoint import read_checkpoint, save_checkpoint
from training.config import TrainConfig, dump_toml
from training.data import DatasetFactory, View, create_dataset, split_by_group
from training.losses import box_loss, flip_consistency_loss, mirror_pairs, pose_loss
from training.meter import Meter, evaluate
from training.model_setup import bins_from_config, check_input_size, make_meta, make_model
from training.optim import lr_factor, make_optimizer
from training.plots import plot_curves
from training.runtime import Runtime, setup_runtime
from training.transforms import Transform

log = logging.getLogger("training")


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

    def __init__(self, cfg: TrainConfig, runtime: Runtime | None = None,
                 datasets: DatasetFactory = create_dataset) -> None:
        """`datasets(name, options)` builds the training and validation data (`data.train`, `data.val`)."""
        self.cfg = cfg
        self.datasets = datasets
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
        self.train_base = self.datasets(cfg.data.train, cfg.data.options)
        if len(self.train_base) == 0:
            raise ConfigError(f"data.train: dataset {cfg.data.train!r} has no usable samples")
        train_t, test_t = Transform.from_config(cfg, True), Transform.from_config(cfg, False)
        if cfg.data.val:
            self.val_base = self.datasets(cfg.data.val, cfg.data.val_options)
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
