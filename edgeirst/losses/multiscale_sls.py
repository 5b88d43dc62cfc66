"""MSHNet's criterion: the SLS loss on the fused map and on every scale."""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.losses.sls import sls_loss
from edgeirst.losses.soft_iou import mask_like


class MultiScaleSLS(nn.Module):
    """SLS on ``seg`` and on every scale in ``scales`` (mask max-pooled to the scale), averaged;
    plain soft IoU during the first ``warm_epochs``."""

    def __init__(self, scales: tuple[str, ...], warm_epochs: int = 5):
        super().__init__()
        self.scales = tuple(scales)
        self.warm_epochs = warm_epochs

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        mask = batch["mask"]
        warm = epoch < self.warm_epochs
        loss = sls_loss(outputs["seg"], mask, warm)
        for name in self.scales:
            loss = loss + sls_loss(outputs[name], mask_like(mask, outputs[name]), warm)
        loss = loss / (len(self.scales) + 1)
        return loss, {"sls": float(loss.detach())}
