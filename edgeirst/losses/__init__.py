"""Losses and the per-model training criteria.

``build_criterion(name, spec, **options)`` returns a criterion: called as
``criterion(outputs, batch, epoch)`` with the model's output dict and the collated batch
(``image`` BxCxHxW, ``mask`` Bx1xHxW float {0,1}, ``boxes`` list of Kx4 [x1,y1,x2,y2] tensors in
input pixels), it returns ``(total_loss, {part_name: float})``. Label assignment lives here and in
``edgeirst.train.targets``, never in the heads.

| model | criterion | options |
|---|---|---|
| mshnet | SLS at every scale (``MultiScaleSLS``) | warm_epochs |
| dnanet | SoftIoU averaged over ``seg`` and the deep-supervision outputs | |
| mtunet, mtunet-siwd | det_weight * CenterNet + seg_weight * weighted Dice (3, 1) | det_weight, seg_weight, size_weight, offset_weight, fg_weight, bg_weight |
| mtunet-det | CenterNet focal + 0.1 * size (+ offset) | size_weight, offset_weight |
| mtunet-seg | weighted Dice (10 / 0.1) | fg_weight, bg_weight |
| light-sgmtlm(-tiny) | saliency_weight * (BCE + 1 - SSIM) + det_weight * YOLOv5 loss (1, 1) | saliency_weight, det_weight, anchor_t, box, obj, cls, balance, scale_gains |
| mlsa-yolov8 | YOLOv8 loss with DotD (stride 4, 8) / CIoU assignment | mean_target_size, dotd_strides, topk, alpha, beta, radius, box, cls, dfl |

``mean_target_size`` is accepted (and ignored) by every model, since the trainer always passes it.
"""

from __future__ import annotations

from torch import nn

from edgeirst.errors import EdgeirstError
from edgeirst.losses.centernet import CenterNetLoss
from edgeirst.losses.combine import WeightedSum
from edgeirst.losses.dice import WeightedDice
from edgeirst.losses.multiscale_sls import MultiScaleSLS
from edgeirst.losses.saliency import SaliencyLoss
from edgeirst.losses.soft_iou import DeepSupervisionSoftIoU
from edgeirst.losses.yolov5 import YOLOv5Loss
from edgeirst.losses.yolov8 import MLSAYOLOv8Loss
from edgeirst.models.base import ModelSpec

_DET = ("size_weight", "offset_weight")
_SEG = ("fg_weight", "bg_weight")
_OPTIONS = {
    "mshnet": ("warm_epochs",),
    "dnanet": (),
    "mtunet": ("det_weight", "seg_weight") + _DET + _SEG,
    "mtunet-siwd": ("det_weight", "seg_weight") + _DET + _SEG,
    "mtunet-det": _DET,
    "mtunet-seg": _SEG,
    "light-sgmtlm": ("saliency_weight", "det_weight", "anchor_t", "box", "obj", "cls", "balance", "scale_gains"),
    "light-sgmtlm-tiny": ("saliency_weight", "det_weight", "anchor_t", "box", "obj", "cls", "balance", "scale_gains"),
    "mlsa-yolov8": ("mean_target_size", "dotd_strides", "topk", "alpha", "beta", "radius", "box", "cls", "dfl"),
}


def _pick(options: dict, *keys: str) -> dict:
    return {k: options[k] for k in keys if options.get(k) is not None}


def _get(options: dict, key: str, default):
    value = options.get(key)
    return default if value is None else value


def _decode_arg(spec: ModelSpec, name: str, key: str):
    try:
        return spec.decode_args[key]
    except KeyError:
        raise EdgeirstError(f"model {name!r} declares no decode_args[{key!r}], which its loss needs") from None


def build_criterion(name: str, spec: ModelSpec, **options) -> nn.Module:
    """The paper's training criterion for registry model ``name`` (see the table above)."""
    if name not in _OPTIONS:
        raise EdgeirstError(f"no training criterion for model {name!r} (known: {', '.join(sorted(_OPTIONS))})")
    unknown = sorted(set(options) - set(_OPTIONS[name]) - {"mean_target_size"})
    if unknown:
        raise EdgeirstError(f"unknown loss option(s) {', '.join(unknown)} for {name!r}; "
                            f"accepted: {', '.join(_OPTIONS[name]) or 'none'}")
    if name == "mshnet":
        return MultiScaleSLS(spec.aux, _get(options, "warm_epochs", 5))
    if name == "dnanet":
        return DeepSupervisionSoftIoU(spec.aux)
    if name == "mtunet-det":
        return CenterNetLoss(**_pick(options, *_DET))
    if name == "mtunet-seg":
        return WeightedDice(**_pick(options, *_SEG))
    if name in ("mtunet", "mtunet-siwd") and spec.tasks == ("segmentation",):  # heads=("seg",): seg pre-training
        return WeightedDice(**_pick(options, *_SEG))
    if name in ("mtunet", "mtunet-siwd") and spec.tasks == ("detection",):
        return CenterNetLoss(**_pick(options, *_DET))
    if name in ("mtunet", "mtunet-siwd"):
        return WeightedSum({"det": (CenterNetLoss(**_pick(options, *_DET)), _get(options, "det_weight", 3.0)),
                            "seg": (WeightedDice(**_pick(options, *_SEG)), _get(options, "seg_weight", 1.0))})
    if name.startswith("light-sgmtlm"):
        saliency = next((a for a in spec.aux if "saliency" in a), "saliency")
        det = YOLOv5Loss(_decode_arg(spec, name, "levels"), _decode_arg(spec, name, "strides"),
                         _decode_arg(spec, name, "anchors"), spec.decode_args.get("num_classes", 1),
                         **_pick(options, "anchor_t", "box", "obj", "cls", "balance", "scale_gains"))
        return WeightedSum({"saliency": (SaliencyLoss(saliency), _get(options, "saliency_weight", 1.0)),
                            "det": (det, _get(options, "det_weight", 1.0))})
    return MLSAYOLOv8Loss(_decode_arg(spec, name, "levels"), _decode_arg(spec, name, "strides"),
                          spec.decode_args.get("reg_max", 16), spec.decode_args.get("num_classes", 1),
                          **_pick(options, *_OPTIONS["mlsa-yolov8"]))


__all__ = ["build_criterion"]
