"""Residual block with channel + spatial attention (MSHNet's and DNANet's ``Res_CBAM_block``)."""

import torch
from torch import nn

from edgeirst.models.layers.attention import ChannelAttention, SpatialAttention


class ResCBAMBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, channel then spatial attention, plus a (1x1-BN) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.ca = ChannelAttention(out_channels)
        self.sa = SpatialAttention()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.ca(out) * out
        out = self.sa(out) * out
        return self.relu(out + residual)


def res_stage(in_channels: int, out_channels: int, blocks: int = 1) -> nn.Sequential:
    """``blocks`` ResCBAM blocks, the first changing the channel count."""
    layers = [ResCBAMBlock(in_channels, out_channels)]
    layers += [ResCBAMBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)
