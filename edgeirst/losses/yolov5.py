"""YOLOv5's ComputeLoss for Light-SGMTLM's anchor-based heads.

Targets from ``edgeirst.losses.targets.yolov5_targets`` (anchor ratio < 4, two neighbouring
cells). Per level: box loss 1 - GIoU (the paper's choice; YOLOv5 uses CIoU) of the decoded
boxes xy = 2*sigmoid - 0.5, wh = (2*sigmoid)^2 * anchor; objectness BCE over every cell with
the (detached, clamped) GIoU as target at matched cells, weighted by ``balance`` per level;
class BCE at matched cells (one class: target 1, which trains the class logit that
``decode_yolov5`` multiplies into the score). Gains box 0.05, obj 1.0, cls 0.5, scaled as
YOLOv5's train.py does: box and cls by 3 / levels, obj by (image size / 640)^2 * 3 / levels
(``scale_gains``); YOLOv5's extra C / 80 factor on cls is left out, so the one class logit still
trains. Unlike YOLOv5 the total is not multiplied by the batch size.
Level layout: (A * (5 + C)) x H x W raw logits, anchors in input pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.losses.box import giou
from edgeirst.losses.targets import yolov5_targets


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


class YOLOv5Loss(nn.Module):
    def __init__(self, levels: tuple[str, ...], strides: tuple[float, ...], anchors: list[list[float]],
                 num_classes: int = 1, anchor_t: float = 4.0, box: float = 0.05, obj: float = 1.0,
                 cls: float = 0.5, balance: tuple[float, ...] | None = None, scale_gains: bool = True):
        super().__init__()
        self.levels, self.strides, self.num_classes, self.anchor_t = tuple(levels), tuple(strides), num_classes, anchor_t
        self.anchors = [torch.tensor(a, dtype=torch.float32).view(-1, 2) for a in anchors]
        self.gains = (box, obj, cls)
        default = [4.0, 1.0, 0.4] if len(levels) == 3 else [4.0, 1.0, 0.25, 0.06, 0.02]
        self.balance = tuple(balance) if balance is not None else tuple(default[:len(levels)])
        self.scale_gains = scale_gains

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict, epoch: int):
        preds = []
        for name, anc in zip(self.levels, self.anchors):
            p = outputs[name]
            bsz, _, h, w = p.shape
            preds.append(p.view(bsz, len(anc), 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2))
        device = preds[0].device
        matches = yolov5_targets([b.to(device) for b in batch["boxes"]], [p.shape[2:4] for p in preds],
                                 list(self.strides), [a.to(device) for a in self.anchors], self.anchor_t)
        zero = preds[0].sum() * 0
        lbox, lobj, lcls = zero, zero, zero
        for p, m, bal in zip(preds, matches, self.balance):
            tobj = torch.zeros_like(p[..., 4])
            if len(m.b):
                ps = p[m.b, m.a, m.gj, m.gi]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * m.anchor
                g = giou(xywh_to_xyxy(torch.cat([pxy, pwh], 1)), xywh_to_xyxy(m.box))
                lbox = lbox + (1 - g).mean()
                tobj[m.b, m.a, m.gj, m.gi] = g.detach().clamp(0).to(tobj.dtype)
                tcls = torch.zeros_like(ps[:, 5:])
                tcls[:, 0] = 1.0  # one target class
                lcls = lcls + F.binary_cross_entropy_with_logits(ps[:, 5:], tcls)
            lobj = lobj + bal * F.binary_cross_entropy_with_logits(p[..., 4], tobj)
        box, obj, cls = self.gains
        if self.scale_gains:
            nl, size = len(self.levels), max(batch["image"].shape[-2:])
            box, cls, obj = box * 3 / nl, cls * 3 / nl, obj * (size / 640) ** 2 * 3 / nl
        lbox, lobj, lcls = box * lbox, obj * lobj, cls * lcls
        parts = {"box": float(lbox.detach()), "obj": float(lobj.detach()), "cls": float(lcls.detach())}
        return lbox + lobj + lcls, parts
