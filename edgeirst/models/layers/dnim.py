"""DNANet's dense nested interaction module (DNIM) and feature pyramid fusion (FPF).

DNIM is a UNet++-style grid of nodes X(i, j) (i = depth, j = column). Column 0 is the encoder:
X(i, 0) = stage(maxpool(X(i-1, 0))). A nested node takes every earlier node of its own row,
the upsampled node below-left and (for i > 0) the downsampled node above:

    X(i, j) = stage(cat[X(i, 0..j-1), up(X(i+1, j-1)), down(X(i-1, j))])

Each stage is ResCBAM blocks (channel + spatial attention: the CSAM of the paper). As in the
official code (model_DNANet.py) up/down sampling is bilinear x2 / x0.5 with align_corners, the
concat order is the one above, and row 0 uses one block per node, row i > 0 ``blocks[i-1]``.

FPF upsamples the last node of every row X(i, depth-i), projected to the row-0 width by a 1x1
conv, to full resolution, concatenates them (deepest first) and fuses them with one stage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.models.layers.resblock import res_stage


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resampling by ``factor`` with align_corners, as the official DNANet ``nn.Upsample``."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)


class DenseNestedInteraction(nn.Module):
    """The DNIM grid. ``forward`` returns the nodes as a dict keyed by (row, column)."""

    def __init__(self, in_chans: int, channels: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        if len(blocks) != len(channels) - 1:
            raise ValueError(f"need one block count per level below the top: {len(channels) - 1}, got {len(blocks)}")
        self.depth = len(channels) - 1
        c = channels
        self.pool = nn.MaxPool2d(2, 2)
        nodes = {"conv0_0": res_stage(in_chans, c[0])}
        for i in range(1, self.depth + 1):
            nodes[f"conv{i}_0"] = res_stage(c[i - 1], c[i], blocks[i - 1])
        for j in range(1, self.depth + 1):
            for i in range(0, self.depth + 1 - j):
                c_in = c[i] * j + c[i + 1] + (c[i - 1] if i > 0 else 0)
                nodes[f"conv{i}_{j}"] = res_stage(c_in, c[i], blocks[i - 1] if i > 0 else 1)
        self.nodes = nn.ModuleDict(nodes)

    def forward(self, x: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
        out = {(0, 0): self.nodes["conv0_0"](x)}
        for k in range(1, self.depth + 1):  # one anti-diagonal per new encoder level, as the official code
            out[(k, 0)] = self.nodes[f"conv{k}_0"](self.pool(out[(k - 1, 0)]))
            for j in range(1, k + 1):
                i = k - j
                parts = [out[(i, m)] for m in range(j)] + [resize(out[(i + 1, j - 1)], 2.0)]
                if i > 0:
                    parts.append(resize(out[(i - 1, j)], 0.5))
                out[(i, j)] = self.nodes[f"conv{i}_{j}"](torch.cat(parts, 1))
        return out


class FeaturePyramidFusion(nn.Module):
    """Last node of every row -> 1x1 to the top width -> upsample to full resolution -> concat -> stage."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        self.depth = len(channels) - 1
        self.proj = nn.ModuleList(nn.Conv2d(channels[i], channels[0], 1) for i in range(1, self.depth + 1))
        self.fuse = res_stage(channels[0] * (self.depth + 1), channels[0])

    def forward(self, nodes: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
        d = self.depth
        parts = [resize(self.proj[i - 1](nodes[(i, d - i)]), float(2 ** i)) for i in range(d, 0, -1)]
        return self.fuse(torch.cat(parts + [nodes[(0, d)]], 1))
