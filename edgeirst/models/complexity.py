"""Model complexity as the papers report it: parameters and multiply-adds.

Papers in this field quote "GFLOPs" that are really GMACs (thop / ptflops count one
multiply-add as one operation), so ``count_macs`` returns multiply-adds:
``torch.utils.flop_counter.FlopCounterMode`` counts FLOPs = 2 * MACs of convolutions and
matrix products (BN, activations, pooling and resizing are not counted, as in thop's convention
for the layers that matter), and we halve it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: int | tuple[int, int] = 320, in_chans: int = 1) -> int:
    """Multiply-adds of one forward pass on a 1 x in_chans x H x W input (``size`` = H = W or (H, W)).

    Divide by 1e9 for the "GFLOPs" the papers quote. Runs in eval mode under ``no_grad`` and
    restores the model's training flag.
    """
    h, w = (size, size) if isinstance(size, int) else size
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, in_chans, h, w, dtype=param.dtype if param is not None else torch.float32,
                        device=param.device if param is not None else "cpu")
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)


__all__ = ["count_macs", "count_params"]
