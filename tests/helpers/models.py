"""Small networks for tests that compare backends and exports."""

from __future__ import annotations

import torch

from posebridge.inference.meta import ModelMeta
from posebridge.models.network import build_model


def spread_model(backbone: str = "mobilenet_v3_small", size: int = 96, seed: int = 0):
    """A random-init network made to answer differently for different crops: BatchNorm statistics are
    re-estimated on noise (else a random init maps every input to the same features) and the heads
    scaled up, so angles differ by degrees between crops and a comparison means something."""
    torch.manual_seed(seed)
    net = build_model(backbone)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the passes below
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, size, size))
        for fc in (net.fc_yaw, net.fc_pitch, net.fc_roll):
            fc.weight.mul_(10.0)
    return net.eval(), ModelMeta(name="tiny", backbone=backbone, input_size=size)
