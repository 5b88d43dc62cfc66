"""Conv-BN-Act, the YOLOv5/YOLOv8 ``Conv``: the one convolution block all families share."""

from __future__ import annotations

from torch import nn


def autopad(k: int, d: int = 1) -> int:
    """'Same' padding for an odd kernel ``k`` with dilation ``d``."""
    return d * (k - 1) // 2


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation (SiLU by default, ``act=None`` for none)."""

    def __init__(self, c_in: int, c_out: int, k: int | tuple[int, int] = 1, s: int = 1, p: int | tuple[int, int] | None = None,
                 g: int = 1, d: int = 1, act: type[nn.Module] | None = nn.SiLU):
        super().__init__()
        if p is None:
            p = tuple(autopad(ki, d) for ki in k) if isinstance(k, tuple) else autopad(k, d)
        self.conv = nn.Conv2d(c_in, c_out, k, s, p, dilation=d, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))
