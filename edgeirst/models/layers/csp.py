"""YOLOv5 cross-stage-partial blocks: ``Bottleneck`` and ``C3``.

Light-SGMTLM's CSPF (saliency feature fusion) and CSPS (saliency head body) are C3 blocks, as in
the authors' official code (``C3`` from their YOLOv5 ``CSPdarknet``), so they are built from this
one class rather than given separate implementations.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.models.layers.conv import ConvBNAct


class Bottleneck(nn.Module):
    """1x1 -> 3x3 Conv-BN-SiLU with an identity shortcut when shapes allow (YOLOv5 ``Bottleneck``)."""

    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, e: float = 0.5):
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, hidden, 1)
        self.cv2 = ConvBNAct(hidden, c_out, 3)
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with three convs (YOLOv5 ``C3``): half the channels go through ``n``
    bottlenecks, half bypass them, and a 1x1 fuses both."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True, e: float = 0.5):
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = ConvBNAct(c_in, hidden, 1)
        self.cv2 = ConvBNAct(c_in, hidden, 1)
        self.cv3 = ConvBNAct(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))
