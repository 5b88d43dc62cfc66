"""CenterNet detection loss (Zhou et al., "Objects as Points"), as MTUNet's detection head uses it.

focal = -1/N * sum( (1-p)^a log(p)            where g = 1
                    (1-g)^b p^a log(1-p)      elsewhere ),  a = 2, b = 4, N = number of g = 1
on heatmap probabilities clamped to [1e-4, 1 - 1e-4]; size = mean |wh - wh*| over the two
components at the centre cells (input pixels); offset likewise when the model predicts it.
det = focal + 0.1 * size + 1.0 * offset.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.losses.targets import centernet_targets


def focal_loss(pred: torch.Tensor, gt: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of peaks (gt == 1)."""
    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).to(pred.dtype)
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred ** alpha * (1 - gt) ** beta * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


def gathered_l1(pred: torch.Tensor, index: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of ``pred`` (Bx2xHxW) at cells ``index`` (b, y, x) against ``target`` Nx2."""
    if target.numel() == 0:
        return pred.sum() * 0
    b, y, x = index
    return (pred[b, :, y, x] - target.to(pred)).abs().mean()


class CenterNetLoss(nn.Module):
    """Criterion on ``heatmap``, ``wh`` and optional ``offset`` outputs; the heatmap's stride is
    the input height over the heatmap height."""

    def __init__(self, size_weight: float = 0.1, offset_weight: float = 1.0):
        super().__init__()
        self.size_weight, self.offset_weight = size_weight, offset_weight

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        hm = outputs["heatmap"]
        stride = batch["image"].shape[-2] / hm.shape[-2]
        t = centernet_targets([b.to(hm.device) for b in batch["boxes"]], hm.shape[-2:], stride)
        gt = hm.new_zeros(hm.shape)
        gt[:, :1] = t.heatmap
        focal = focal_loss(hm, gt)
        size = gathered_l1(outputs["wh"], t.index, t.wh)
        loss = focal + self.size_weight * size
        parts = {"focal": float(focal.detach()), "size": float(size.detach())}
        if "offset" in outputs:
            off = gathered_l1(outputs["offset"], t.index, t.offset)
            loss = loss + self.offset_weight * off
            parts["offset"] = float(off.detach())
        return loss, parts
