"""Losses and the per-model training criteria.

``build_criterion(name, spec, **options)`` returns a ``Criterion``: called as
``criterion(outputs, batch, epoch)`` with the model's output dict and the collated batch
(``image`` BxCxHxW, ``mask`` Bx1xHxW float {0,1}, ``boxes`` list of Kx4 [x1,y1,x2,y2] tensors in
input pixels), it returns ``(total_loss, {part_name: float})``. Label assignment lives here and in
``edgeirst.train.targets``, never in the heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.errors import EdgeirstError
from edgeirst.losses.sls import sls_loss
from edgeirst.models.base import ModelSpec


class MultiScaleSLS(nn.Module):
    """MSHNet's criterion: SLS on the fused map and on every scale (mask max-pooled to the scale),
    averaged; plain soft IoU during the first ``warm_epochs``."""

    def __init__(self, scales: tuple[str, ...], warm_epochs: int = 5):
        super().__init__()
        self.scales = scales
        self.warm_epochs = warm_epochs

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        mask = batch["mask"]
        warm = epoch < self.warm_epochs
        loss = sls_loss(outputs["seg"], mask, warm)
        for name in self.scales:
            p = outputs[name]
            m = mask if p.shape[-2:] == mask.shape[-2:] else F.adaptive_max_pool2d(mask, p.shape[-2:])
            loss = loss + sls_loss(p, m, warm)
        loss = loss / (len(self.scales) + 1)
        return loss, {"sls": float(loss.detach())}


def build_criterion(name: str, spec: ModelSpec, **options) -> nn.Module:
    """The paper's training criterion for registry model ``name``."""
    if name == "mshnet":
        return MultiScaleSLS(spec.aux, options.get("warm_epochs", 5))
    raise EdgeirstError(f"no training criterion for model {name!r} yet")
