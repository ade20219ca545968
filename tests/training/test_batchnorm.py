"""training.batchnorm: the statistics are re-estimated exactly (a cumulative average over the batches),
the momentum is restored and the model left in eval mode."""

from __future__ import annotations

import torch
from torch import nn

from training.batchnorm import reestimate_batchnorm


def test_running_mean_is_the_average_over_the_batches():
    bn = nn.BatchNorm2d(3, momentum=0.01)
    model = nn.Sequential(bn)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 5, 5, generator=g) + k for k in range(3)]
    assert reestimate_batchnorm(model, batches)
    want = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, want, atol=1e-6)
    assert bn.momentum == 0.01 and not model.training


def test_a_model_without_batchnorm_reads_no_batch():
    def never():
        raise AssertionError("a batch was read")
        yield  # pragma: no cover

    assert reestimate_batchnorm(nn.Sequential(nn.Linear(2, 2)), never()) is False
