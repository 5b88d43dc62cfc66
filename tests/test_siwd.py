"""SIWD block: the paper's conv-weight count, geometry, and that all branches carry signal."""

import pytest
import torch
from torch import nn

from edgeirst.models.layers.siwd import SIWD


def conv_weights(m: nn.Module) -> int:
    return sum(c.weight.numel() for c in m.modules() if isinstance(c, nn.Conv2d))


@pytest.mark.parametrize("c_in,c_out", [(3, 80), (80, 160), (160, 320), (8, 16), (1, 8), (64, 128)])
def test_conv_weights_match_paper_formula(c_in, c_out):
    assert conv_weights(SIWD(c_in, c_out)) == (21 * c_in + 2 * c_out) * c_out // 4


@pytest.mark.parametrize("hw", [(32, 32), (24, 40), (30, 18)])
def test_halves_resolution(hw):
    y = SIWD(4, 16)(torch.randn(2, 4, *hw))
    assert y.shape == (2, 16, hw[0] // 2, hw[1] // 2)


def test_every_branch_gets_gradient():
    m = SIWD(4, 16)
    m(torch.randn(1, 4, 16, 16)).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_rejects_channels_not_divisible_by_four():
    with pytest.raises(ValueError):
        SIWD(3, 10)
