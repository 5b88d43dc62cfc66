"""Pyramid pooling (PSPNet, Zhao et al. 2017) and the PSP segmentation head.

Adaptive average pooling is written as two matrix products with averaging matrices built from
the input size (``P_h @ x @ P_w^T``): identical to ``adaptive_avg_pool2d`` but exportable to ONNX
at any size, whereas the exporter rejects bins that do not divide the input (e.g. 320 / 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct


def _pool_matrix(n: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """``bins x n`` matrix averaging the cells of ``adaptive_avg_pool`` (start floor(i*n/b), end ceil((i+1)*n/b))."""
    pos = torch.arange(n, device=like.device, dtype=like.dtype)
    i = torch.arange(bins, device=like.device, dtype=like.dtype)
    start = torch.floor(i * n / bins)
    end = torch.ceil((i + 1) * n / bins)
    m = ((pos[None] >= start[:, None]) & (pos[None] < end[:, None])).to(like.dtype)
    return m / m.sum(1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` as two matmuls (ONNX-exportable at any input size)."""
    h, w = x.shape[-2:]
    return _pool_matrix(h, bins, x) @ x @ _pool_matrix(w, bins, x).transpose(0, 1)


class PyramidPooling(nn.Module):
    """x concatenated with, per bin, pool -> 1x1 conv-ReLU -> bilinear upsample: C + len(bins)*c_bin channels.

    The bin convs have a bias and no BN: BN over a 1x1 pooled map is undefined for batch 1.
    """

    def __init__(self, c_in: int, c_bin: int = 16, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        self.convs = nn.ModuleList(nn.Sequential(nn.Conv2d(c_in, c_bin, 1), nn.ReLU()) for _ in bins)
        self.out_channels = c_in + len(bins) * c_bin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pyramid = [F.interpolate(conv(adaptive_avg_pool(x, b)), size=size, mode="bilinear", align_corners=True)
                   for b, conv in zip(self.bins, self.convs)]
        return torch.cat([x] + pyramid, 1)


class PSPHead(nn.Module):
    """Pyramid pooling -> 3x3 Conv-BN-ReLU -> 1x1 to 2 classes (background, target) -> softmax.

    Returns ``{"seg": P(target)}`` as B x 1 x H x W. The classifier's bias starts at P(target) =
    ``prior`` (RetinaNet's prior initialisation, as CenterNet's heatmap bias of -2.19): targets are
    ~0.01% of an infrared frame's pixels, and a Dice loss that starts from P = 0.5 everywhere spends
    its first epochs only lowering the background (measured on SIRST, mtunet-siwd w0.25 seg
    pre-training: val IoU 0.01 after 4 epochs from P = 0.5).
    """

    def __init__(self, c_in: int, c_bin: int = 16, mid: int = 16, bins: tuple[int, ...] = (1, 2, 3, 6),
                 prior: float = 0.01):
        super().__init__()
        self.ppm = PyramidPooling(c_in, c_bin, bins)
        self.conv = ConvBNAct(self.ppm.out_channels, mid, 3, act=nn.ReLU)
        self.classify = nn.Conv2d(mid, 2, 1)
        nn.init.constant_(self.classify.bias, 0.0)
        nn.init.constant_(self.classify.bias[1:], math.log(prior / (1 - prior)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.classify(self.conv(self.ppm(x)))
        return {"seg": torch.softmax(logits, 1)[:, 1:2]}
