"""SIWD: the light stride-2 backbone stage of Light-SGMTLM (Liu et al., IEEE T-ITS 2025).

Five branches see the input at stride 2: a 1x1 conv and three asymmetric "3x1 + 1x3" convs
(dilation 1, 3, 5), each C_out/4, whose concatenation is fused by a 1x1 to C_out/2; and a 1x1
shortcut to C_out/2. The two halves are concatenated to C_out. Conv weights:

    1x1 branch        C_in * C_out/4                    = 1/4  * C_in * C_out
    3 x (3x1 + 1x3)   3 * (3 + 3) * C_in * C_out/4      = 18/4 * C_in * C_out
    shortcut 1x1      C_in * C_out/2                    = 2/4  * C_in * C_out
    fuse 1x1          C_out * C_out/2                   = 1/2  * C_out^2
    total             (21/4 * C_in + 1/2 * C_out) * C_out   (the paper's count)

so every conv but the fuse sees the C_in input (stride 2 sits in each of them) and "3x1 + 1x3"
is a sum of two parallel convs (ACNet-style asymmetric pair), not a 3x1 -> 1x3 chain (which
would give C_out^2 terms in the asymmetric branches). Each conv is Conv-BN-SiLU (YOLOv5 ``Conv``).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct


class AsymmetricPair(nn.Module):
    """``3x1(x) + 1x3(x)`` with a shared dilation and stride, each Conv-BN-Act."""

    def __init__(self, c_in: int, c_out: int, s: int = 1, d: int = 1, act: type[nn.Module] | None = nn.SiLU):
        super().__init__()
        self.vertical = ConvBNAct(c_in, c_out, (3, 1), s, (d, 0), d=d, act=act)
        self.horizontal = ConvBNAct(c_in, c_out, (1, 3), s, (0, d), d=d, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vertical(x) + self.horizontal(x)


class SIWD(nn.Module):
    """C_in x H x W -> C_out x H/s x W/s (``s`` = 2 in the paper; H, W even)."""

    def __init__(self, c_in: int, c_out: int, s: int = 2, dilations: tuple[int, ...] = (1, 3, 5),
                 act: type[nn.Module] | None = nn.SiLU):
        super().__init__()
        if c_out % 4:
            raise ValueError(f"SIWD needs C_out divisible by 4, got {c_out}")
        quarter, half = c_out // 4, c_out // 2
        self.point = ConvBNAct(c_in, quarter, 1, s, act=act)
        self.pairs = nn.ModuleList(AsymmetricPair(c_in, quarter, s, d, act) for d in dilations)
        self.fuse = ConvBNAct(quarter * (1 + len(dilations)), half, 1, act=act)
        self.shortcut = ConvBNAct(c_in, half, 1, s, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = torch.cat([self.point(x)] + [pair(x) for pair in self.pairs], 1)
        return torch.cat([self.fuse(wide), self.shortcut(x)], 1)
