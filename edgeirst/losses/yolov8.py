"""MLSA-YOLOv8's loss: Ultralytics' v8DetectionLoss with multi-scale label assignment.

Assignment (``edgeirst.losses.targets.multiscale_assign``): task-aligned, overlap = DotD on the
high-resolution heads (strides 4 and 8, S = ``mean_target_size``) and CIoU on the coarse ones.
Losses, each divided by the sum of the soft class targets: class BCE against the soft targets
over every anchor; box 1 - CIoU at positives, weighted by their target score; DFL (distribution
focal loss over ``reg_max`` bins of each side's distance, in strides) at positives. Gains box
7.5, cls 0.5, dfl 1.5 as Ultralytics; unlike Ultralytics the total is not multiplied by the
batch size. Level layout: (4 * reg_max + C) x H x W raw logits, sides measured from the cell
centre in strides (``decode_yolov8``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.losses.box import ciou
from edgeirst.losses.targets import anchor_points, multiscale_assign, pad_boxes


def dfl_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss: ``logits`` N x 4 x R, ``target`` N x 4 distances in bins (clamped
    to [0, R - 1.01]); cross-entropy to the two bins around the target, weighted by closeness.
    Returns N (mean over the four sides)."""
    r = logits.shape[-1]
    target = target.clamp(0, r - 1 - 0.01)
    left = target.long()
    wl = left + 1 - target
    ce = lambda k: F.cross_entropy(logits.reshape(-1, r), k.reshape(-1), reduction="none").view_as(target)  # noqa: E731
    return (ce(left) * wl + ce(left + 1) * (1 - wl)).mean(-1)


class MLSAYOLOv8Loss(nn.Module):
    def __init__(self, levels: tuple[str, ...], strides: tuple[float, ...], reg_max: int = 16,
                 num_classes: int = 1, mean_target_size: float = 4.0, dotd_strides: tuple[float, ...] = (4, 8),
                 topk: int = 10, alpha: float = 0.5, beta: float = 6.0, radius: float = 1.0,
                 box: float = 7.5, cls: float = 0.5, dfl: float = 1.5):
        super().__init__()
        self.levels, self.strides = tuple(levels), tuple(strides)
        self.reg_max, self.num_classes = reg_max, num_classes
        self.assign_args = dict(mean_size=mean_target_size, dotd_strides=tuple(dotd_strides), topk=topk,
                                alpha=alpha, beta=beta, radius=radius)
        self.gains = (box, cls, dfl)

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        feats = [outputs[n] for n in self.levels]
        r, device = self.reg_max, feats[0].device
        pred = torch.cat([f.flatten(2) for f in feats], 2).permute(0, 2, 1)  # B A (4R + C)
        bsz, n_anchor = pred.shape[:2]
        dist_logits = pred[..., :4 * r].reshape(bsz, n_anchor, 4, r)
        cls_logits = pred[..., 4 * r:]
        points, stride = anchor_points([f.shape[-2:] for f in feats], list(self.strides), device, pred.dtype)
        dist = dist_logits.softmax(-1) @ torch.arange(r, device=device, dtype=pred.dtype)  # B A 4, strides
        s = stride[:, None]
        pbox = torch.cat([points - dist[..., :2] * s, points + dist[..., 2:] * s], -1)

        gt, valid = pad_boxes(batch["boxes"], device)
        asg = multiscale_assign(cls_logits.detach().sigmoid(), pbox.detach(), points, stride, gt.to(pred.dtype),
                                valid, **self.assign_args)
        total = asg.scores.sum().clamp_min(1)
        lcls = F.binary_cross_entropy_with_logits(cls_logits, asg.scores, reduction="sum") / total
        lbox = ldfl = pred.sum() * 0
        if asg.fg.any():
            fg = asg.fg
            w = asg.scores.sum(-1)[fg]
            tb = asg.boxes[fg]
            lbox = ((1 - ciou(pbox[fg], tb)) * w).sum() / total
            pts, st = points.expand(bsz, -1, -1)[fg], stride.expand(bsz, -1)[fg][:, None]
            ltrb = torch.cat([pts - tb[:, :2], tb[:, 2:] - pts], -1) / st
            ldfl = (dfl_loss(dist_logits[fg], ltrb) * w).sum() / total
        gb, gc, gd = self.gains
        lbox, lcls, ldfl = gb * lbox, gc * lcls, gd * ldfl
        parts = {"box": float(lbox.detach()), "cls": float(lcls.detach()), "dfl": float(ldfl.detach()),
                 "positives": float(asg.fg.sum())}
        return lbox + lcls + ldfl, parts
