"""YOLOv8 blocks (Ultralytics ``nn/modules/block.py``): Bottleneck, C2f and SPPF, on ConvBNAct."""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct


class Bottleneck(nn.Module):
    """Two kxk ConvBNAct with an identity shortcut when ``shortcut`` and the widths match."""

    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, k: tuple[int, int] = (3, 3), e: float = 0.5):
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, hidden, k[0])
        self.cv2 = ConvBNAct(hidden, c_out, k[1])
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with two convolutions: 1x1 split in two halves, ``n`` bottlenecks chained on
    the second half, every intermediate concatenated and fused by a 1x1.

    YOLOv8's ``cv1`` (one 1x1 conv to 2c channels, then ``chunk(2)``) is written as two 1x1
    convs to c channels each (``cv0``, ``cv1``): the same function, parameters and MACs, and a
    graph torch-pruning can prune (it cannot follow a chunk; its YOLOv8 example does the same)."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False, e: float = 0.5):
        super().__init__()
        self.c = int(c_out * e)
        self.cv0 = ConvBNAct(c_in, self.c, 1)
        self.cv1 = ConvBNAct(c_in, self.c, 1)
        self.cv2 = ConvBNAct((2 + n) * self.c, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, (3, 3), 1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv0(x), self.cv1(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained kxk max-pools (5, 9, 13 receptive fields) concatenated."""

    def __init__(self, c_in: int, c_out: int, k: int = 5):
        super().__init__()
        hidden = c_in // 2
        self.cv1 = ConvBNAct(c_in, hidden, 1)
        self.cv2 = ConvBNAct(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))
