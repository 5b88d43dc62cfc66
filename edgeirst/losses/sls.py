"""Scale and Location Sensitive loss (MSHNet, Liu et al. CVPR 2024), as in the official code.

SIoU = alpha * IoU with alpha = (min(|P|,|G|) + d) / (max(|P|,|G|) + d), d = ((|P|-|G|)/2)^2
(the scale term), plus a location term on the mask centres in polar coordinates:
1 - min(r_p, r_g)/max(r_p, r_g) + 4/pi^2 * (atan(y_p/x_p) - atan(y_g/x_g))^2.
Before ``warm_epochs`` only the plain soft IoU is used. Inputs are probabilities.
"""

from __future__ import annotations

import math

import torch


def location_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over the batch of the polar-coordinate centre penalty. pred/target: Bx1xHxW."""
    _, _, h, w = pred.shape
    xs = torch.arange(w, device=pred.device, dtype=pred.dtype).view(1, 1, 1, w) / w
    ys = torch.arange(h, device=pred.device, dtype=pred.dtype).view(1, 1, h, 1) / h
    px, py = (xs * pred).mean(dim=(1, 2, 3)), (ys * pred).mean(dim=(1, 2, 3))
    tx, ty = (xs * target).mean(dim=(1, 2, 3)), (ys * target).mean(dim=(1, 2, 3))
    angle = (4 / math.pi ** 2) * (torch.atan(py / (px + eps)) - torch.atan(ty / (tx + eps))) ** 2
    rp = torch.sqrt(px * px + py * py + eps)
    rt = torch.sqrt(tx * tx + ty * ty + eps)
    length = torch.minimum(rp, rt) / (torch.maximum(rp, rt) + eps)
    return (1 - length + angle).mean()


def sls_loss(pred: torch.Tensor, target: torch.Tensor, warm: bool = False, with_location: bool = True) -> torch.Tensor:
    """SLS loss for probabilities ``pred`` and binary ``target`` (Bx1xHxW).

    An image without targets (a background-only crop) has no IoU and no centre: the official
    code's terms give it a constant loss and no gradient, so false alarms there would go
    unpunished. Its term is ``1 - 1 / (1 + |P|)`` instead (the soft IoU of an empty target with
    a smoothing of 1), which falls to 0 only when it predicts nothing, and it takes no part in
    the location term.
    """
    inter = (pred * target).sum(dim=(1, 2, 3))
    ps, ts = pred.sum(dim=(1, 2, 3)), target.sum(dim=(1, 2, 3))
    empty = ts == 0
    iou = inter / (ps + ts - inter).clamp_min(1e-6)
    clean = 1.0 / (1.0 + ps)  # the score of a background-only image: 1 when nothing is predicted
    if warm:
        return 1 - torch.where(empty, clean, iou).mean()
    d = ((ps - ts) / 2) ** 2
    alpha = (torch.minimum(ps, ts) + d) / (torch.maximum(ps, ts) + d).clamp_min(1e-6)
    loss = 1 - torch.where(empty, clean, alpha * iou).mean()
    if with_location and not bool(empty.all()):
        keep = ~empty
        loss = loss + location_loss(pred[keep], target[keep]) * keep.float().mean()
    return loss
