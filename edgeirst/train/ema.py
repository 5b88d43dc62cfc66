"""Exponential moving average of a model's weights (as YOLOv5/Ultralytics and timm keep one).

The averaged weights are what validation scores and what checkpoints ship: on a dataset of a
few hundred images the raw weights of any single epoch are noisy, and picking the best of them
on 85 validation images overfits the choice. The decay ramps up over the first updates
(``decay * (1 - exp(-updates / ramp))``), so early random weights are forgotten quickly.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def ema_decay_for(total_steps: int, window: float) -> float:
    """Decay whose averaging window (1 / (1 - decay) steps) is ``window`` of the run's steps."""
    steps = max(10.0, window * total_steps)
    return 1.0 - 1.0 / steps


class ModelEMA:
    """``ema.update(model)`` after each optimiser step; ``ema.module`` is the averaged copy."""

    def __init__(self, model: nn.Module, decay: float, ramp: float = 100.0, updates: int = 0):
        self.module = copy.deepcopy(getattr(model, "module", model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.ramp, self.updates = decay, ramp, updates

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = getattr(model, "module", model).state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach(), alpha=1.0 - d)
            else:  # BN's num_batches_tracked
                value.copy_(source[name])


__all__ = ["ModelEMA", "ema_decay_for"]
