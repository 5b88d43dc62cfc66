"""DNANet's SoftIoU loss and its deep-supervision average (Li et al., official code).

SoftIoU(p, g) = 1 - (sum(p*g) + s) / (sum(p) + sum(g) - sum(p*g) + s), s = 1, with the sums taken
over the whole batch as the official code does. ``p`` are probabilities (our models apply the
sigmoid; the official code applies it inside the loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_iou_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    inter = (pred * target).sum()
    return 1 - (inter + smooth) / (pred.sum() + target.sum() - inter + smooth)


def mask_like(mask: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """The {0,1} mask at ``pred``'s resolution (max-pooled, so a one-pixel target survives)."""
    if pred.shape[-2:] == mask.shape[-2:]:
        return mask
    return F.adaptive_max_pool2d(mask, pred.shape[-2:])


class DeepSupervisionSoftIoU(nn.Module):
    """SoftIoU averaged over ``seg`` and every auxiliary output in ``names``."""

    def __init__(self, names: tuple[str, ...] = ()):
        super().__init__()
        self.names = ("seg",) + tuple(n for n in names if n != "seg")

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        mask = batch["mask"]
        losses = [soft_iou_loss(outputs[n], mask_like(mask, outputs[n])) for n in self.names if n in outputs]
        loss = torch.stack(losses).mean()
        return loss, {"soft_iou": float(loss.detach())}
