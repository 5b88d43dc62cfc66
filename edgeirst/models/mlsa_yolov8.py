"""MLSA-YOLOv8: Li & Wang, YOLOv8 with a high-resolution tiny head and multi-scale label assignment.

YOLOv8 (Ultralytics ``yolov8.yaml``: Conv, C2f, SPPF backbone; PAN-FPN neck) with an extra
stride-4 level: the top-down path continues to P2 and the bottom-up path starts there (the
Ultralytics ``yolov8-p2.yaml`` layout), so four decoupled anchor-free DFL heads (reg_max 16) see
P2..P5. The paper's multi-scale label assignment (DotD on the high-resolution heads, CIoU on the
low-resolution ones) is training-side and lives with the losses, not here.
Choices: scale n (Ultralytics ``width`` 0.25, ``depth`` 0.33, max channels 1024; ``width=0.5``
gives s), one class, nearest x2 upsampling and BN eps 1e-3 / momentum 0.03 as Ultralytics.
Outputs: raw logits ``p2``..``p5``, each (4 * 16 + 1) x H/s x W/s for strides 4, 8, 16, 32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.base import ModelSpec
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset
from edgeirst.models.layers.c2f import SPPF, C2f
from edgeirst.models.layers.conv import ConvBNAct
from edgeirst.models.layers.yolov8_head import YOLOv8Head

STRIDES = (4, 8, 16, 32)


class YOLOv8Backbone(nn.Module):
    """Ultralytics YOLOv8 backbone; returns the P2, P3, P4 and P5 (after SPPF) features."""

    def __init__(self, in_chans: int, c: dict[int, int], n: dict[int, int]):
        super().__init__()
        self.stem = ConvBNAct(in_chans, c[64], 3, 2)
        self.stage2 = nn.Sequential(ConvBNAct(c[64], c[128], 3, 2), C2f(c[128], c[128], n[3], True))
        self.stage3 = nn.Sequential(ConvBNAct(c[128], c[256], 3, 2), C2f(c[256], c[256], n[6], True))
        self.stage4 = nn.Sequential(ConvBNAct(c[256], c[512], 3, 2), C2f(c[512], c[512], n[6], True))
        self.stage5 = nn.Sequential(ConvBNAct(c[512], c[1024], 3, 2), C2f(c[1024], c[1024], n[3], True),
                                    SPPF(c[1024], c[1024], 5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p2 = self.stage2(self.stem(x))
        p3 = self.stage3(p2)
        p4 = self.stage4(p3)
        return [p2, p3, p4, self.stage5(p4)]


class PANP2(nn.Module):
    """PAN-FPN over P2..P5: top-down to stride 4, then bottom-up back to stride 32 (``yolov8-p2.yaml``)."""

    def __init__(self, c: dict[int, int], n: dict[int, int]):
        super().__init__()
        self.td4 = C2f(c[1024] + c[512], c[512], n[3])
        self.td3 = C2f(c[512] + c[256], c[256], n[3])
        self.td2 = C2f(c[256] + c[128], c[128], n[3])
        self.down2 = ConvBNAct(c[128], c[128], 3, 2)
        self.bu3 = C2f(c[128] + c[256], c[256], n[3])
        self.down3 = ConvBNAct(c[256], c[256], 3, 2)
        self.bu4 = C2f(c[256] + c[512], c[512], n[3])
        self.down4 = ConvBNAct(c[512], c[512], 3, 2)
        self.bu5 = C2f(c[512] + c[1024], c[1024], n[3])

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p2, p3, p4, p5 = feats
        t4 = self.td4(torch.cat([self._up(p5), p4], 1))
        t3 = self.td3(torch.cat([self._up(t4), p3], 1))
        o2 = self.td2(torch.cat([self._up(t3), p2], 1))
        o3 = self.bu3(torch.cat([self.down2(o2), t3], 1))
        o4 = self.bu4(torch.cat([self.down3(o3), t4], 1))
        o5 = self.bu5(torch.cat([self.down4(o4), p5], 1))
        return [o2, o3, o4, o5]


class MLSAYOLOv8(nn.Module):
    def __init__(self, in_chans: int = 1, width: float = 0.25, depth: float = 0.33, max_channels: int = 1024,
                 num_classes: int = 1, reg_max: int = 16):
        super().__init__()
        c = {k: int(math.ceil(min(k, max_channels) * width / 8) * 8) for k in (64, 128, 256, 512, 1024)}
        n = {k: max(round(k * depth), 1) for k in (3, 6)}
        self.levels = tuple(f"p{int(math.log2(s))}" for s in STRIDES)
        self.spec = ModelSpec(tasks=("detection",), decode="yolov8", outputs=self.levels, size_divisor=32,
                              decode_args={"levels": list(self.levels), "strides": list(STRIDES),
                                           "reg_max": reg_max, "num_classes": num_classes})
        self.backbone = YOLOv8Backbone(in_chans, c, n)
        self.neck = PANP2(c, n)
        self.head = YOLOv8Head((c[128], c[256], c[512], c[1024]), STRIDES, num_classes, reg_max)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.levels, self.head(self.neck(self.backbone(x)))))


def _create_mlsa_yolov8(**kwargs) -> MLSAYOLOv8:
    return MLSAYOLOv8(**kwargs)


def mlsa_yolov8(**kwargs) -> MLSAYOLOv8:
    return _create_mlsa_yolov8(**kwargs)


ENTRIES = (
    ModelEntry("mlsa-yolov8", mlsa_yolov8,
               # Ultralytics defaults: SGD 0.01, momentum 0.937, wd 5e-4, 3 warm-up epochs.
               Preset("sgd", 0.01, 300, 16, 320, 5e-4, 0.937, "cosine", 3, "Ultralytics defaults"),
               criterion="mlsa_yolov8",
               paper=PaperFigures(None, None, 320, "no paper figures on hand; ours is scale n (width 0.25, depth 0.33), "
                                                   "the Ultralytics yolov8n-p2 layout with 1 class (yolov8n-p2 with 80 "
                                                   "classes: 3.354M params)"),
               keep=("head.box", "head.cls")),
)
