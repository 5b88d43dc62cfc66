"""DNANet: Li et al., "Dense Nested Attention Network for Infrared Small Target Detection", TIP 2022.

A dense nested U-Net (DNIM: UNet++-style nodes with up and down cross connections) built from
ResCBAM blocks (CSAM: channel then spatial attention), a feature pyramid fusion of the last
node of every level, and deep supervision. Choices (from the official code, model_DNANet.py):
channels [16, 32, 64, 128, 256], blocks [2, 2, 2, 2] ("resnet_18"), bilinear align_corners
resampling (x0.5 for the down connections, not pooling), "deep supervision" mode: a 1x1 head on
X(0,1), X(0,2), X(0,3) and on the fused features. The official model has 4.697M params and
13.9 GMACs at 256x256 with 3-channel input.
Outputs are probabilities at full resolution: ``seg`` (fused) and auxiliary ``seg1``..``seg3``
(from the nested nodes X(0,1)..X(0,3)).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.models.base import ModelSpec, scaled
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset
from edgeirst.models.layers.dnim import DenseNestedInteraction, FeaturePyramidFusion


class DNANet(nn.Module):
    def __init__(self, in_chans: int = 1, width: float = 1.0, channels: tuple[int, ...] = (16, 32, 64, 128, 256),
                 blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        c = tuple(scaled(ch, width) for ch in channels)
        depth = len(c) - 1
        self.spec = ModelSpec(tasks=("segmentation",), decode="cluster", outputs=("seg", "seg_logit"),
                              aux=tuple(f"seg{j}" for j in range(1, depth)), size_divisor=2 ** depth)
        self.dnim = DenseNestedInteraction(in_chans, c, tuple(blocks))
        self.fpf = FeaturePyramidFusion(c)
        self.aux_heads = nn.ModuleList(nn.Conv2d(c[0], 1, 1) for _ in range(1, depth))
        self.head = nn.Conv2d(c[0], 1, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        nodes = self.dnim(x)
        logit = self.head(self.fpf(nodes))
        out = {"seg": torch.sigmoid(logit), "seg_logit": logit}  # the logit scores targets: it does not saturate
        for j, head in enumerate(self.aux_heads, 1):
            out[f"seg{j}"] = torch.sigmoid(head(nodes[(0, j)]))
        return out


def _create_dnanet(**kwargs) -> DNANet:
    return DNANet(**kwargs)


def dnanet(**kwargs) -> DNANet:
    return _create_dnanet(**kwargs)


ENTRIES = (
    ModelEntry("dnanet", dnanet,
               # Official code: Adagrad lr 0.05, batch 16, 1500 epochs, cosine to 1e-5, 256 crops.
               Preset("adagrad", 0.05, 1500, 16, 256, note="DNANet official: Adagrad 0.05, bs 16, 1500 ep, cosine"),
               criterion="soft_iou_deep_supervision",
               paper=PaperFigures(4.697, 13.9, 256, "official code (resnet_18, deep supervision)"),
               keep=("head", "aux_heads")),
)
