"""CenterNet head (Zhou et al., "Objects as Points", 2019).

Per output a 3x3 conv (head_conv channels) -> ReLU -> 1x1 conv, on stride-1 or stride-s features:
``heatmap`` (sigmoid probabilities, bias initialised to -2.19 as CenterNet), ``wh`` (box width
and height in input pixels) and optionally ``offset`` (sub-pixel centre offset, in cells).
"""

from __future__ import annotations

import torch
from torch import nn


def _branch(c_in: int, head_conv: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, head_conv, 3, padding=1), nn.ReLU(), nn.Conv2d(head_conv, c_out, 1))


class CenterNetHead(nn.Module):
    def __init__(self, c_in: int, num_classes: int = 1, head_conv: int = 64, offset: bool = True):
        super().__init__()
        self.heatmap = _branch(c_in, head_conv, num_classes)
        self.wh = _branch(c_in, head_conv, 2)
        self.offset = _branch(c_in, head_conv, 2) if offset else None
        nn.init.constant_(self.heatmap[-1].bias, -2.19)

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("heatmap", "wh", "offset") if self.offset is not None else ("heatmap", "wh")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"heatmap": torch.sigmoid(self.heatmap(x)), "wh": self.wh(x)}
        if self.offset is not None:
            out["offset"] = self.offset(x)
        return out
