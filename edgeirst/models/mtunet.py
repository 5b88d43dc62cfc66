"""MTUNet: Chen et al., multi-task U-Net for infrared small target detection and segmentation.

One U-Net backbone (64..1024 channels, two 3x3 Conv-BN-ReLU per stage, max-pool down, bilinear
up) whose full-resolution 64-channel features are shared by a CenterNet detection head
(``heatmap`` + ``wh`` + ``offset``, stride 1, no NMS) and a PSP segmentation head (bins 1, 2, 3,
6; 64 -> 16 channels per bin). Trained with 3 * (focal a=2 b=4 + 0.1 * L1 size) + 1 * weighted
smooth Dice; the losses live in ``edgeirst.losses``.

Choices: decoder = bilinear x2 then a 1x1 conv halving channels (28.95M backbone; a transposed
conv gives 31.0M, further from the paper's 29.06M). The paper's MACs fix the heads: det - seg =
9.5 GMACs at 320 = three full-resolution 3x3(64->64) branches, so ``offset`` is on; full - det
= 1.9 GMACs = a 3x3 conv 128 -> 16 after the pyramid (then 1x1 -> 2 classes, softmax).
Measured at 320x320, 3-channel input (paper in brackets), params / GMACs:
mtunet 29.08M / 88.58 (29.06M / 88.78), mtunet-det 29.06M / 86.61 (29.06M / 86.85),
mtunet-seg 28.97M / 77.23 (29.05M / 77.38).
``mtunet-siwd`` (ours): the four encoder stages (max-pool + double conv) are stride-2 SIWD
blocks; same decoder and heads; registry default width 1.0 so it compares with ``mtunet``:
14.6M params, 71.2 GMACs at 320 (the full-resolution decoder dominates).
``contrast=W`` (ours, off by default): MSHNet's local contrast channel (``layers.contrast``)
beside the grey input, for any of the four.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeirst.models.base import ModelSpec, scaled
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset
from edgeirst.models.layers.centernet import CenterNetHead
from edgeirst.models.layers.contrast import contrast_input
from edgeirst.models.layers.ppm import PSPHead
from edgeirst.models.layers.unet import UNetBackbone

CENTERNET_ARGS = {"stride": 1, "topk": 100}


class MTUNet(nn.Module):
    """A backbone returning one feature map and named heads each returning a dict of outputs."""

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Module], spec: ModelSpec,
                 contrast: nn.Module | None = None):
        super().__init__()
        self.contrast = contrast
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.spec = spec

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.contrast is not None:
            x = self.contrast.beside(x)
        feats = self.backbone(x)
        out: dict[str, torch.Tensor] = {}
        for head in self.heads.values():
            out.update(head(feats))
        return out


def _create_mtunet(heads: tuple[str, ...] = ("det", "seg"), down: str = "maxpool", in_chans: int = 1,
                   width: float = 1.0, channels: tuple[int, ...] = (64, 128, 256, 512, 1024),
                   head_conv: int = 64, offset: bool = True, psp_bins: tuple[int, ...] = (1, 2, 3, 6),
                   contrast: int = 0, contrast_floor: float = 0.035) -> MTUNet:
    c = [scaled(ch, width) for ch in channels]
    local_contrast, in_chans = contrast_input(contrast, contrast_floor, in_chans)
    backbone = UNetBackbone(in_chans, tuple(c), down)
    modules: dict[str, nn.Module] = {}
    outputs: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    if "det" in heads:
        modules["det"] = CenterNetHead(c[0], 1, scaled(head_conv, width), offset)
        outputs += modules["det"].output_names
        tasks += ("detection",)
    if "seg" in heads:
        modules["seg"] = PSPHead(c[0], scaled(16, width), scaled(16, width), psp_bins)
        outputs += ("seg",)
        tasks += ("segmentation",)
    det = "det" in heads
    spec = ModelSpec(tasks=tasks, decode="centernet" if det else "cluster", outputs=outputs, size_divisor=16,
                     decode_args=dict(CENTERNET_ARGS) if det else {})
    return MTUNet(backbone, modules, spec, local_contrast)


def mtunet(**kwargs) -> MTUNet:
    return _create_mtunet(**{"heads": ("det", "seg"), **kwargs})


def mtunet_det(**kwargs) -> MTUNet:
    return _create_mtunet(**{"heads": ("det",), **kwargs})


def mtunet_seg(**kwargs) -> MTUNet:
    return _create_mtunet(**{"heads": ("seg",), **kwargs})


def mtunet_siwd(**kwargs) -> MTUNet:
    return _create_mtunet(**{"heads": ("det", "seg"), "down": "siwd", **kwargs})


# CenterNet-style Adam 5e-4; the paper does not give the schedule, we use cosine.
_ADAM = dict(optimizer="adam", lr=5e-4, epochs=200, batch=8, size=320)
_KEEP = ("heads.det.heatmap.2", "heads.det.wh.2", "heads.det.offset.2", "heads.seg.classify")
ENTRIES = (
    ModelEntry("mtunet", mtunet, Preset(note="CenterNet-style Adam 5e-4, cosine (MTUNet leaves it open)", **_ADAM),
               criterion="mtunet", paper=PaperFigures(29.06, 88.78, 320, "paper"), keep=_KEEP),
    ModelEntry("mtunet-det", mtunet_det, Preset(note="as mtunet", **_ADAM),
               criterion="mtunet", paper=PaperFigures(29.06, 86.85, 320, "paper"), keep=_KEEP),
    ModelEntry("mtunet-seg", mtunet_seg, Preset(note="as mtunet", **_ADAM),
               criterion="mtunet", paper=PaperFigures(29.05, 77.38, 320, "paper"), keep=_KEEP),
    # SIWD's small strided, dilated convolutions corrupt the heap in channels_last: NCHW, bf16.
    ModelEntry("mtunet-siwd", mtunet_siwd, Preset(note="as mtunet", cpu_bf16=True, **_ADAM),
               criterion="mtunet", paper=PaperFigures(None, None, 320, "ours (no paper figures): mtunet with SIWD encoder stages"),
               keep=_KEEP),
)
