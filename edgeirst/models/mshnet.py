"""MSHNet: Liu et al., "Infrared Small Target Detection with Scale and Location Sensitivity", CVPR 2024.

A plain U-Net (ResCBAM blocks, channels 16..256, max-pool down, bilinear x2 up) with a
multi-scale head: a 1x1 conv per decoder scale, upsampled to full resolution, concatenated and
fused by a 3x3 conv. Trained with the Scale and Location Sensitive loss at every scale.
Choices (from the official code): 1x1 stem conv; blocks per stage [1, 2, 2, 2, 2];
align_corners bilinear upsampling. The official model has 4.066M params with 3-channel input.
``contrast=W`` (ours, off by default) adds a local contrast channel over a WxW box
(``layers.contrast``) beside the grey input, for scenes whose gain differs from the training data's.
Outputs are probabilities: ``seg`` (fused) and auxiliary ``seg0``..``seg3`` (per scale,
at 1, 1/2, 1/4, 1/8 resolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.base import ModelSpec, scaled
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset
from edgeirst.models.layers.contrast import contrast_input
from edgeirst.models.layers.resblock import res_stage


class MSHNet(nn.Module):
    def __init__(self, in_chans: int = 1, width: float = 1.0, channels: tuple[int, ...] = (16, 32, 64, 128, 256),
                 blocks: tuple[int, ...] = (2, 2, 2, 2), contrast: int = 0, contrast_floor: float = 0.035):
        super().__init__()
        c = [scaled(ch, width) for ch in channels]
        self.spec = ModelSpec(tasks=("segmentation",), decode="cluster", outputs=("seg", "seg_logit"),
                              aux=("seg0", "seg1", "seg2", "seg3"), size_divisor=16)
        self.pool = nn.MaxPool2d(2, 2)
        self.contrast, stem_in = contrast_input(contrast, contrast_floor, in_chans)
        self.stem = nn.Conv2d(stem_in, c[0], 1)
        self.enc0 = res_stage(c[0], c[0])
        self.enc1 = res_stage(c[0], c[1], blocks[0])
        self.enc2 = res_stage(c[1], c[2], blocks[1])
        self.enc3 = res_stage(c[2], c[3], blocks[2])
        self.middle = res_stage(c[3], c[4], blocks[3])
        self.dec3 = res_stage(c[3] + c[4], c[3], blocks[2])
        self.dec2 = res_stage(c[2] + c[3], c[2], blocks[1])
        self.dec1 = res_stage(c[1] + c[2], c[1], blocks[0])
        self.dec0 = res_stage(c[0] + c[1], c[0])
        self.heads = nn.ModuleList(nn.Conv2d(ch, 1, 1) for ch in c[:4])
        self.fuse = nn.Conv2d(4, 1, 3, 1, 1)

    @staticmethod
    def _up(x: torch.Tensor, factor: int) -> torch.Tensor:
        return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.contrast is not None:
            x = self.contrast.beside(x)
        e0 = self.enc0(self.stem(x))
        e1 = self.enc1(self.pool(e0))
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        m = self.middle(self.pool(e3))
        d3 = self.dec3(torch.cat([e3, self._up(m, 2)], 1))
        d2 = self.dec2(torch.cat([e2, self._up(d3, 2)], 1))
        d1 = self.dec1(torch.cat([e1, self._up(d2, 2)], 1))
        d0 = self.dec0(torch.cat([e0, self._up(d1, 2)], 1))
        masks = [head(d) for head, d in zip(self.heads, (d0, d1, d2, d3))]
        fused = self.fuse(torch.cat([masks[0]] + [self._up(mk, 2 ** i) for i, mk in enumerate(masks[1:], 1)], 1))
        out = {"seg": torch.sigmoid(fused), "seg_logit": fused}  # the logit scores targets: it does not saturate
        out.update({f"seg{i}": torch.sigmoid(mk) for i, mk in enumerate(masks)})
        return out


def _create_mshnet(**kwargs) -> MSHNet:
    return MSHNet(**kwargs)


def mshnet(**kwargs) -> MSHNet:
    return _create_mshnet(**kwargs)


ENTRIES = (
    ModelEntry("mshnet", mshnet,
               # Official code: Adagrad lr 0.05, batch 4, 400 epochs, 256 crops, 5 warm epochs.
               Preset("adagrad", 0.05, 400, 4, 256, note="MSHNet official: Adagrad 0.05, bs 4, 400 ep", channels_last=True),
               criterion="multiscale_sls",
               paper=PaperFigures(4.066, 6.0, 256, "official code"),
               keep=("heads", "fuse")),
)
