"""Light-SGMTLM: Liu et al., "Enhancing Infrared Small Target Detection: A Saliency-Guided
Multi-Task Learning Approach", IEEE T-ITS 26(3), 2025.

A YOLOv5x-style detector whose backbone is five SIWD blocks (3->80->160->320->640->1280, Table I;
strides 2..32). The neck follows the authors' released code (kindyux/Saliency-Guided-Multi-Task,
``nets/yolo_salience_only_swin.py``: the Swin-backbone variant, whose neck we keep): an FPN
top-down over the last three stages (1x1 lateral halving channels, upsample x2, concat, C3 with
n=4 as YOLOv5x), continued one level further onto the stride-4 stage, where a C3 fuses it with
the backbone (CSPF). That stride-4 map feeds the saliency head (upsample x4 to input
resolution, C3 n=2 (CSPS), 1x1 -> 8, 1x1 -> 1, sigmoid) and is carried back down by a PAN
(3x3 stride-2 conv, concat, C3) to strides 8/16/32, where a YOLOv5 anchor head predicts boxes.
The saliency map is trained (BCE + 1-SSIM) and never exported: ``spec.aux``.

Choices: bilinear x2 upsampling and C3 shortcuts in the neck as the released code; no SPPF (the
released neck has none, and without it the count matches the paper: 45.6M vs 45.53M);
``light-sgmtlm-tiny`` divides every backbone width by ten (8..128) and the neck follows, depth
kept. Anchors (input pixels) are k-means (1-IoU) of the 424 eight-connected target masks of
NUAA-SIRST train+val (median 5x5 px, 95th percentile 16x11 px), three per level, smallest at
stride 8; the YOLOv5 COCO anchors (10x13 and up) would be larger than almost every target.
Complexity at 320x320, 3-channel input (paper in brackets): light-sgmtlm 45.66M params,
21.13 GMACs (45.53M, 19.68); light-sgmtlm-tiny 0.466M, 0.222 GMACs (0.49M, 0.26). The paper's
"GFLOPs" are thop MACs; thop also counts BN (2 per element) and bilinear resizing (11 per
output element), which our conv/matmul count leaves out: +0.32 G full, +0.032 G tiny (0.254,
matching 0.26). The full-resolution saliency head costs 5.3 GMACs of the 21.1 in training;
it is not exported, so the deployed graph does ~15.8 GMACs.
``contrast=W`` (ours, off by default): MSHNet's local contrast channel (``layers.contrast``)
beside the grey input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.base import ModelSpec, scaled
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset
from edgeirst.models.layers.contrast import contrast_input
from edgeirst.models.layers.conv import ConvBNAct
from edgeirst.models.layers.csp import C3
from edgeirst.models.layers.siwd import SIWD
from edgeirst.models.layers.yolo_head import YOLOv5Head

# k-means of NUAA-SIRST (train+val) target sizes, [w, h] pairs in input pixels, per stride 8/16/32.
SIRST_ANCHORS = ([3, 3, 3, 4, 4, 3], [4, 5, 6, 4, 6, 5], [8, 8, 12, 8, 18, 12])
STRIDES = (8, 16, 32)


def _up(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class SaliencyHead(nn.Module):
    """Stride-4 features -> saliency probability at input resolution (CSPS, 1x1 -> 8, 1x1 -> 1)."""

    def __init__(self, c_in: int, depth: int = 2, upsample: int = 4):
        super().__init__()
        hidden = max(4, c_in // 2)
        self.upsample = upsample
        self.csps = C3(c_in, hidden, depth)
        self.squeeze = nn.Conv2d(hidden, 8, 1, bias=False)
        self.out = nn.Conv2d(8, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.squeeze(self.csps(_up(x, self.upsample)))))


class LightSGMTLM(nn.Module):
    def __init__(self, in_chans: int = 1, width: float = 1.0, channels: tuple[int, ...] = (80, 160, 320, 640, 1280),
                 depth: int = 4, saliency_depth: int = 2, num_classes: int = 1,
                 anchors: tuple[list[float], ...] = SIRST_ANCHORS, contrast: int = 0, contrast_floor: float = 0.035):
        super().__init__()
        if len(channels) != 5 or len(anchors) != 3 or len({len(a) for a in anchors}) != 1:
            raise ValueError("expected 5 backbone widths and 3 levels of anchors with the same count")
        c = [scaled(ch, width) for ch in channels]
        self.spec = ModelSpec(
            tasks=("detection",), decode="yolov5", outputs=("p3", "p4", "p5"), aux=("saliency",), size_divisor=32,
            decode_args={"levels": ["p3", "p4", "p5"], "strides": list(STRIDES),
                         "anchors": [list(a) for a in anchors], "num_classes": num_classes})
        self.contrast, in_chans = contrast_input(contrast, contrast_floor, in_chans)
        self.stages = nn.ModuleList(SIWD(ci, co) for ci, co in zip([in_chans] + c[:-1], c))
        # FPN top-down: s32 -> s16 -> s8, then onto s4 (CSPF)
        self.lat5 = ConvBNAct(c[4], c[3], 1)
        self.top4 = C3(2 * c[3], c[3], depth)
        self.lat4 = ConvBNAct(c[3], c[2], 1)
        self.top3 = C3(2 * c[2], c[2], depth)
        self.lat3 = ConvBNAct(c[2], c[1], 1)
        self.cspf = C3(2 * c[1], c[1], depth)
        self.saliency = SaliencyHead(c[1], saliency_depth)
        # PAN bottom-up: s4 -> s8 -> s16 -> s32
        self.down2 = ConvBNAct(c[1], c[1], 3, 2)
        self.out3 = C3(2 * c[1], c[2], depth)
        self.down3 = ConvBNAct(c[2], c[2], 3, 2)
        self.out4 = C3(2 * c[2], c[3], depth)
        self.down4 = ConvBNAct(c[3], c[3], 3, 2)
        self.out5 = C3(2 * c[3], c[4], depth)
        self.head = YOLOv5Head((c[2], c[3], c[4]), STRIDES, len(anchors[0]) // 2, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.contrast is not None:
            x = self.contrast.beside(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        _, f4, f8, f16, f32 = feats
        l5 = self.lat5(f32)
        l4 = self.lat4(self.top4(torch.cat([_up(l5), f16], 1)))
        l3 = self.lat3(self.top3(torch.cat([_up(l4), f8], 1)))
        s4 = self.cspf(torch.cat([_up(l3), f4], 1))
        p3 = self.out3(torch.cat([self.down2(s4), l3], 1))
        p4 = self.out4(torch.cat([self.down3(p3), l4], 1))
        p5 = self.out5(torch.cat([self.down4(p4), l5], 1))
        out = self.head([p3, p4, p5])
        out["saliency"] = self.saliency(s4)
        return out


def _create_light_sgmtlm(**kwargs) -> LightSGMTLM:
    return LightSGMTLM(**kwargs)


def light_sgmtlm(**kwargs) -> LightSGMTLM:
    return _create_light_sgmtlm(**kwargs)


def light_sgmtlm_tiny(**kwargs) -> LightSGMTLM:
    return _create_light_sgmtlm(**{"channels": (8, 16, 32, 64, 128), **kwargs})


# YOLOv5 hyper-parameters (SGD 0.01, momentum 0.937, wd 5e-4, 3 warm-up epochs); bf16 on a CPU
# with native bf16 trains light-sgmtlm-tiny 1.65x faster (NCHW: see edgeirst.train.config).
_YOLOV5 = dict(optimizer="sgd", lr=0.01, batch=16, size=320, weight_decay=5e-4, momentum=0.937, schedule="cosine",
               warmup_epochs=3, cpu_bf16=True)
_KEEP = ("head.convs", "saliency.out")
ENTRIES = (
    ModelEntry("light-sgmtlm", light_sgmtlm, Preset(epochs=300, note="YOLOv5 defaults", **_YOLOV5),
               criterion="light_sgmtlm", paper=PaperFigures(45.53, 19.68, 320, "paper (thop MACs)"), keep=_KEEP),
    # The channel-reduced variant needs 600-1200 epochs (paper).
    ModelEntry("light-sgmtlm-tiny", light_sgmtlm_tiny, Preset(epochs=1000, note="paper: 600-1200 ep", **_YOLOV5),
               criterion="light_sgmtlm", paper=PaperFigures(0.49, 0.26, 320, "paper (thop MACs)"), keep=_KEEP),
)
