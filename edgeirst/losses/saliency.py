"""Light-SGMTLM's saliency loss: BCE + (1 - SSIM) between the saliency map and the mask.

SSIM as pytorch-ssim: an 11x11 Gaussian window (sigma 1.5, normalised), zero padding,
C1 = 0.01^2, C2 = 0.03^2, the SSIM map averaged over every pixel. The mask is max-pooled to the
saliency map's resolution (a one-pixel target survives the downsampling).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.losses.soft_iou import mask_like


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """size x size Gaussian kernel that sums to 1."""
    g = torch.tensor([math.exp(-((x - size // 2) ** 2) / (2 * sigma ** 2)) for x in range(size)])
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: torch.Tensor, b: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of two BxCxHxW images in [0, 1]."""
    c = a.shape[1]
    win = gaussian_window(window_size, sigma).to(a).expand(c, 1, window_size, window_size)
    conv = lambda x: F.conv2d(x, win, padding=window_size // 2, groups=c)  # noqa: E731
    mu_a, mu_b = conv(a), conv(b)
    var_a = conv(a * a) - mu_a ** 2
    var_b = conv(b * b) - mu_b ** 2
    cov = conv(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return smap.mean()


def saliency_loss(pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE + (1 - SSIM) for a probability map ``pred`` (Bx1xhxw) and a mask at any resolution."""
    g = mask_like(mask, pred)
    bce = F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), g)
    return bce + 1 - ssim(pred, g)


class SaliencyLoss(nn.Module):
    """Criterion: ``saliency_loss`` on ``outputs[name]``."""

    def __init__(self, name: str = "saliency"):
        super().__init__()
        self.name = name

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        loss = saliency_loss(outputs[self.name], batch["mask"])
        return loss, {"saliency": float(loss.detach())}
