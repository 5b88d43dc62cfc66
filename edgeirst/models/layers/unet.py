"""U-Net backbone (Ronneberger et al.): encoder-decoder returning full-resolution features.

Encoder stages halve the resolution and double the channels (max-pool + double conv, or a
stride-2 block such as SIWD); decoder stages upsample (bilinear x2), halve the channels with a
1x1 conv, concatenate the skip and apply a double conv. Convs are Conv-BN-ReLU.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct
from edgeirst.models.layers.siwd import SIWD


class DoubleConv(nn.Sequential):
    """Two 3x3 Conv-BN-ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(ConvBNAct(c_in, c_out, 3, act=nn.ReLU), ConvBNAct(c_out, c_out, 3, act=nn.ReLU))


class PoolDown(nn.Sequential):
    """Max-pool 2x2, then a double conv (the classic U-Net encoder stage)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(c_in, c_out))


class UpStage(nn.Module):
    """Bilinear x2 (align_corners, as Pytorch-UNet), 1x1 Conv-BN-ReLU to half, concat skip, double conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.reduce = ConvBNAct(c_in, c_in // 2, 1, act=nn.ReLU)
        self.conv = DoubleConv(c_in // 2 + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))
        return self.conv(torch.cat([skip, x], 1))


DOWN_BLOCKS: dict[str, Callable[[int, int], nn.Module]] = {"maxpool": PoolDown, "siwd": SIWD}


class UNetBackbone(nn.Module):
    """``in_chans`` x H x W -> ``channels[0]`` x H x W features (H, W multiples of 2**(len(channels)-1))."""

    def __init__(self, in_chans: int = 1, channels: tuple[int, ...] = (64, 128, 256, 512, 1024), down: str = "maxpool"):
        super().__init__()
        if down not in DOWN_BLOCKS:
            raise ValueError(f"unknown down block {down!r}; expected one of {sorted(DOWN_BLOCKS)}")
        self.out_channels = channels[0]
        self.stem = DoubleConv(in_chans, channels[0])
        self.downs = nn.ModuleList(DOWN_BLOCKS[down](ci, co) for ci, co in zip(channels[:-1], channels[1:]))
        self.ups = nn.ModuleList(UpStage(ci, cs, cs) for ci, cs in zip(channels[:0:-1], channels[-2::-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return x
