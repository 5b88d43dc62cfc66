"""A local contrast channel: each pixel's difference from its neighbourhood's mean, in units of
the neighbourhood's spread (a floor keeps flat skies from amplifying their noise).

A target eight grey levels above a flat sky (another sensor's gain) and one eighty levels above
NUAA-SIRST's clutter look alike here, where the grey levels alone tell them apart by a factor of
ten. Computed inside the network (separable average pools), so every backend runs it and the
runtime's preprocessing stays the same. The spread is the mean squared deviation from the
centre's local mean, not E[x^2] - E[x]^2, which cancels catastrophically in half precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LocalContrast(nn.Module):
    """x (Nx1xHxW, normalised grey) -> (x - box(x)) / sqrt(box((x - box(x))^2) + floor^2), Nx1xHxW.

    ``window``: the box's side in pixels (odd; larger than the targets); ``floor``: the smallest
    spread divided by, in the network input's units. Edges average the pixels inside the frame.
    """

    def __init__(self, window: int = 31, floor: float = 0.035):
        super().__init__()
        if not isinstance(window, int) or isinstance(window, bool) or window < 3 or window % 2 == 0:
            raise ValueError(f"local contrast window must be an odd whole number of pixels >= 3, got {window!r}")
        if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not floor > 0:
            raise ValueError(f"local contrast floor must be a number > 0, got {floor!r}")
        self.window, self.floor = window, float(floor)

    def _box(self, x: torch.Tensor) -> torch.Tensor:
        k, p = self.window, self.window // 2
        x = F.avg_pool2d(x, (1, k), 1, (0, p), count_include_pad=False)
        return F.avg_pool2d(x, (k, 1), 1, (p, 0), count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self._box(x)
        return d * torch.rsqrt(self._box(d * d) + self.floor * self.floor)

    def beside(self, x: torch.Tensor) -> torch.Tensor:
        """x (NxCxHxW) -> Nx(C+1)xHxW: the input with the contrast of its channels' mean beside it."""
        return torch.cat([x, self(x.mean(1, keepdim=True))], 1)


def contrast_input(window: int, floor: float, in_chans: int) -> tuple[LocalContrast | None, int]:
    """The optional contrast channel of a model built with ``contrast=window`` (0: none) and the
    channel count its first layer then takes. Call ``module.beside(x)`` when it is not None."""
    if not window:
        return None, in_chans
    return LocalContrast(window, floor), in_chans + 1
