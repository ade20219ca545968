"""Overfit check (issue 3): ResNet-50 with the multi-loss memorises the nine 300W_LP samples.

Full-batch steps (all nine samples), 100 steps with a cosine schedule and a small input keep it to a
few minutes on a 2-core CPU while staying ResNet-50 (the seed's Xavier init, Adam, multi-loss with
alpha 1). 48 px rather than 32: at 32 px layer4 works on 1x1 maps, so batch norm sees only nine values
per channel and its eval-mode running variance (unbiased, x 9/8) no longer matches the training-mode
batch variance; the memorised set then scores ~3.5 degrees in eval mode against ~0.6 in training.
Asserted on the trainer's training MAE (as logged in metrics.csv) and on the saved checkpoint
re-evaluated in eval mode through training.evaluate.
"""

from __future__ import annotations

import pytest

from training.config import load_config
from training.evaluate import evaluate_checkpoint
from training.train import train


@pytest.mark.slow
def test_resnet50_multiloss_overfits_the_nine_300wlp_samples(tmp_path, shared):
    root = shared("data", "300w_lp-samples")
    cfg = load_config(None, [
        "data.train=w300lp", f"data.options.root={str(root)!r}", "model.backbone=resnet50",
        "model.input_size=48", "data.augment=false", "data.val_fraction=0.0", "optim.batch_size=9",
        "optim.epochs=100", "optim.lr=1e-3", "optim.schedule=cosine", "loss.kind=multi", "loss.alpha=1.0",
        "run.checkpoint_every=1000", f"run.out_dir={str(tmp_path)!r}", "run.progress=false",
        "run.num_threads=2",  # not whatever an earlier test left torch at: the float order, so the run
    ])  # fmt: skip        # (it failed once in the full suite after a one-thread test, passed alone)
    result = train(cfg)
    final = result.history[-1]
    assert final["train_mae"] < 3.0, [round(h["train_mae"], 2) for h in result.history]
    assert result.history[0]["train_mae"] > 8.0  # it really learned, it did not start there
    evaluated = evaluate_checkpoint(result.last_path, "w300lp", {"root": str(root)}, progress=False)
    assert evaluated.n == 9
    assert evaluated.mae["mean"] < 3.0, evaluated.mae
