"""MTUNet's weighted smooth Dice loss for the segmentation head.

Per-pixel weights w = 10 on target pixels and 0.1 on background (MTUNet's 10 / 0.1), then

    loss = 1 - (2 * sum(w*p*g) + s) / (sum(w*p) + sum(w*g) + s),   s = 1,

summed over the whole batch. ``p`` probabilities, ``g`` the {0,1} mask.
"""

from __future__ import annotations

import torch
from torch import nn


def weighted_dice_loss(pred: torch.Tensor, target: torch.Tensor, fg_weight: float = 10.0,
                       bg_weight: float = 0.1, smooth: float = 1.0) -> torch.Tensor:
    w = torch.where(target > 0.5, fg_weight, bg_weight).to(pred.dtype)
    inter = (w * pred * target).sum()
    return 1 - (2 * inter + smooth) / ((w * pred).sum() + (w * target).sum() + smooth)


class WeightedDice(nn.Module):
    """Criterion: weighted Dice on ``outputs['seg']``."""

    def __init__(self, fg_weight: float = 10.0, bg_weight: float = 0.1):
        super().__init__()
        self.fg_weight, self.bg_weight = fg_weight, bg_weight

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        loss = weighted_dice_loss(outputs["seg"], batch["mask"], self.fg_weight, self.bg_weight)
        return loss, {"dice": float(loss.detach())}
