"""The YOLOv8 decoupled, anchor-free head (Ultralytics ``Detect``), without its decoding.

Per level two branches of two 3x3 ConvBNAct and a 1x1 conv: box (4 * reg_max DFL logits, the
distance of each side from the cell centre as a distribution over ``reg_max`` bins) and class
(C logits). Each level returns the raw concatenation (4 * reg_max + C) x H x W; the DFL
integral, the grid and NMS live in ``edgeirst.postprocess.decode_yolov8``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct


class YOLOv8Head(nn.Module):
    def __init__(self, channels: tuple[int, ...], strides: tuple[int, ...], num_classes: int = 1, reg_max: int = 16):
        super().__init__()
        self.num_classes, self.reg_max, self.strides = num_classes, reg_max, tuple(strides)
        c_box = max(16, channels[0] // 4, reg_max * 4)  # widths from the first (highest-resolution) level
        c_cls = max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(
            nn.Sequential(ConvBNAct(c, c_box, 3), ConvBNAct(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1))
            for c in channels)
        self.cls = nn.ModuleList(
            nn.Sequential(ConvBNAct(c, c_cls, 3), ConvBNAct(c_cls, c_cls, 3), nn.Conv2d(c_cls, num_classes, 1))
            for c in channels)
        self.reset_bias()

    @torch.no_grad()
    def reset_bias(self, image_size: int = 640) -> None:
        """Ultralytics' prior: box logits 1.0; class logits for ~5 objects per ``image_size`` image."""
        for box, cls, s in zip(self.box, self.cls, self.strides):
            box[-1].bias.fill_(1.0)
            cls[-1].bias.fill_(math.log(5 / self.num_classes / (image_size / s) ** 2))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat([box(f), cls(f)], 1) for f, box, cls in zip(feats, self.box, self.cls)]
