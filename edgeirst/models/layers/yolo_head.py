"""YOLOv5 anchor-based detection head (v5, not the anchor-free v8 head).

One 1x1 conv per pyramid level, returning raw logits laid out as ``(A*(5+C)) x H x W`` with
channel order per anchor [x, y, w, h, objectness, class...], which is exactly what
``edgeirst.postprocess.decode_yolov5`` reads. No sigmoid, no grid decoding here: decoding is
post-processing and the loss lives with the trainer.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class YOLOv5Head(nn.Module):
    """Per-level 1x1 convs; biases initialised as YOLOv5 ``Detect._initialize_biases``."""

    def __init__(self, in_channels: tuple[int, ...], strides: tuple[int, ...], num_anchors: int = 3,
                 num_classes: int = 1, names: tuple[str, ...] | None = None):
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError("one stride per input level")
        self.names = tuple(names or (f"p{int(math.log2(s))}" for s in strides))
        self.na, self.nc = num_anchors, num_classes
        self.no = 5 + num_classes
        self.convs = nn.ModuleList(nn.Conv2d(c, num_anchors * self.no, 1) for c in in_channels)
        with torch.no_grad():
            for conv, s in zip(self.convs, strides):
                b = conv.bias.view(num_anchors, self.no)
                b[:, 4] += math.log(8 / (640 / s) ** 2)  # ~8 objects per 640 image
                b[:, 5:] += math.log(0.6 / (num_classes - 0.99))

    def forward(self, feats: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: conv(f) for name, conv, f in zip(self.names, self.convs, feats)}
