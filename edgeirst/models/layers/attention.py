"""Channel and spatial attention (CBAM style), as used by DNANet's CSAM and MSHNet's blocks."""

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Average- and max-pooled channel descriptors through a shared bottleneck MLP, sigmoid."""

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc2(self.relu(self.fc1(self.avg(x))))
        m = self.fc2(self.relu(self.fc1(self.max(x))))
        return torch.sigmoid(a + m)


class SpatialAttention(nn.Module):
    """Channel-mean and channel-max maps through a kxk conv, sigmoid."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = torch.mean(x, dim=1, keepdim=True)
        mx, _ = torch.max(x, dim=1, keepdim=True)
        return torch.sigmoid(self.conv(torch.cat([avg, mx], dim=1)))
