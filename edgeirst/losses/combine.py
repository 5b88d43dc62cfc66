"""A weighted sum of criteria, for the multi-task models (MTUNet: 3*det + 1*seg; Light-SGMTLM:
1*saliency + 1*detection). Parts are prefixed with the term's name and include each term's
unweighted total."""

from __future__ import annotations

import torch
from torch import nn


class WeightedSum(nn.Module):
    def __init__(self, terms: dict[str, tuple[nn.Module, float]]):
        super().__init__()
        self.terms = nn.ModuleDict({name: crit for name, (crit, _) in terms.items()})
        self.weights = {name: float(w) for name, (_, w) in terms.items()}

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        total, parts = None, {}
        for name, crit in self.terms.items():
            loss, sub = crit(outputs, batch, epoch)
            weighted = self.weights[name] * loss
            total = weighted if total is None else total + weighted
            parts[name] = float(loss.detach())
            parts.update({f"{name}/{k}": v for k, v in sub.items()})
        return total, parts
