"""Box similarities on ``[..., 4]`` xyxy tensors (broadcasting, so N x 4 pairs or B x M x A grids).

* ``giou``: IoU - |C \\ (A u B)| / |C|, C the smallest enclosing box (Rezatofighi et al.).
* ``ciou``: Ultralytics ``bbox_iou(..., CIoU=True)``: IoU - (rho^2 / c^2 + alpha * v), rho the
  distance between centres, c the enclosing box diagonal, v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2,
  alpha = v / (v - IoU + 1) (no gradient through alpha).
* ``dotd``: Dot Distance (Xu et al. 2021), exp(-D / S): D the Euclidean distance between the
  centres, S the mean absolute target size of the training set. The paper takes
  S = sqrt(mean box area); edgeirst's trainer passes the mean of sqrt(w * h) per target, which
  differs only by the spread of sizes and is the same for a set of equal targets.
"""

from __future__ import annotations

import math

import torch


def _parts(a: torch.Tensor, b: torch.Tensor, eps: float):
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    wa, ha = ax2 - ax1, (ay2 - ay1).clamp_min(eps)
    wb, hb = bx2 - bx1, (by2 - by1).clamp_min(eps)
    inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_min(0) * \
            (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_min(0)
    union = wa * ha + wb * hb - inter + eps
    cw = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    ch = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    return inter / union, union, cw, ch, (wa, ha, wb, hb)


def iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Plain IoU of xyxy boxes."""
    return _parts(a, b, eps)[0]


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Generalised IoU of xyxy boxes, in [-1, 1]."""
    overlap, union, cw, ch, _ = _parts(a, b, eps)
    c_area = cw * ch + eps
    return overlap - (c_area - union) / c_area


def ciou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of xyxy boxes (Ultralytics definition)."""
    overlap, _, cw, ch, (wa, ha, wb, hb) = _parts(a, b, eps)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b[..., 0] + b[..., 2] - a[..., 0] - a[..., 2]) ** 2 + (b[..., 1] + b[..., 3] - a[..., 1] - a[..., 3]) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(wb / hb) - torch.atan(wa / ha)) ** 2
    with torch.no_grad():
        alpha = v / (v - overlap + (1 + eps))
    return overlap - (rho2 / c2 + v * alpha)


def dotd(a: torch.Tensor, b: torch.Tensor, mean_size: float) -> torch.Tensor:
    """Dot Distance exp(-||centre(a) - centre(b)|| / mean_size), in (0, 1]."""
    dx = (a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) / 2
    dy = (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) / 2
    return torch.exp(-torch.sqrt(dx * dx + dy * dy + 1e-12) / mean_size)
