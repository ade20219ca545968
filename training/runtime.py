"""Where and how a run executes: the device, the process's rank in a DistributedDataParallel group,
mixed precision, CPU threads, and the seeding of every random generator."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from posebridge.errors import ConfigError
from training.config import TrainConfig


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
