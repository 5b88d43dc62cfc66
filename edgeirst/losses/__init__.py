"""Losses and the per-model training criteria.

``build_criterion(kind, spec, **options)`` (``kind`` = the model entry's ``criterion``) returns a criterion: called as
``criterion(outputs, batch, epoch)`` with the model's output dict and the collated batch
(``image`` BxCxHxW, ``mask`` Bx1xHxW float {0,1}, ``boxes`` list of Kx4 [x1,y1,x2,y2] tensors in
input pixels), it returns ``(total_loss, {part_name: float})``. Label assignment lives here and in
``edgeirst.losses.targets``, never in the heads.

| key (models) | criterion | options |
|---|---|---|
| multiscale_sls (mshnet) | SLS at every scale (``MultiScaleSLS``) | warm_epochs |
| soft_iou_deep_supervision (dnanet) | SoftIoU averaged over ``seg`` and the deep-supervision outputs | |
| mtunet (mtunet, -det, -seg, -siwd) | det_weight * CenterNet + seg_weight * weighted Dice (3, 1), or the one of them the model's heads need | det_weight, seg_weight, size_weight, offset_weight, fg_weight, bg_weight |
| centernet | CenterNet focal + 0.1 * size (+ offset) | size_weight, offset_weight |
| weighted_dice | class-weighted Dice (target 10 / background 0.1) | fg_weight, bg_weight |
| light_sgmtlm (light-sgmtlm, -tiny) | saliency_weight * (BCE + 1 - SSIM) + det_weight * YOLOv5 loss (1, 1) | saliency_weight, det_weight, anchor_t, box, obj, cls, balance, scale_gains |
| mlsa_yolov8 (mlsa-yolov8) | YOLOv8 loss with DotD (stride 4, 8) / CIoU assignment | mean_target_size, dotd_strides, topk, alpha, beta, radius, box, cls, dfl |

``mean_target_size`` is accepted (and ignored) by every model, since the trainer always passes it.
"""

from __future__ import annotations

from collections.abc import Callable

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
_YOLOV5 = ("saliency_weight", "det_weight", "anchor_t", "box", "obj", "cls", "balance", "scale_gains")
_YOLOV8 = ("dotd_strides", "topk", "alpha", "beta", "radius", "box", "cls", "dfl")


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


def _mtunet(spec: ModelSpec, name: str, options: dict) -> nn.Module:
    """CenterNet and/or weighted Dice, following the model's heads (seg-only = pre-training)."""
    det = CenterNetLoss(**_pick(options, *_DET))
    seg = WeightedDice(**_pick(options, *_SEG))
    if spec.tasks == ("segmentation",):
        return seg
    if spec.tasks == ("detection",):
        return det
    return WeightedSum({"det": (det, _get(options, "det_weight", 3.0)), "seg": (seg, _get(options, "seg_weight", 1.0))})


def _light_sgmtlm(spec: ModelSpec, name: str, options: dict) -> nn.Module:
    saliency = next((a for a in spec.aux if "saliency" in a), "saliency")
    det = YOLOv5Loss(_decode_arg(spec, name, "levels"), _decode_arg(spec, name, "strides"),
                     _decode_arg(spec, name, "anchors"), spec.decode_args.get("num_classes", 1),
                     **_pick(options, "anchor_t", "box", "obj", "cls", "balance", "scale_gains"))
    return WeightedSum({"saliency": (SaliencyLoss(saliency), _get(options, "saliency_weight", 1.0)),
                        "det": (det, _get(options, "det_weight", 1.0))})


def _mlsa_yolov8(spec: ModelSpec, name: str, options: dict) -> nn.Module:
    return MLSAYOLOv8Loss(_decode_arg(spec, name, "levels"), _decode_arg(spec, name, "strides"),
                          spec.decode_args.get("reg_max", 16), spec.decode_args.get("num_classes", 1),
                          **_pick(options, "mean_target_size", *_YOLOV8))


# criterion key (a ModelEntry's ``criterion``) -> (builder(spec, name, options), accepted options)
CRITERIA: dict[str, tuple[Callable[[ModelSpec, str, dict], nn.Module], tuple[str, ...]]] = {
    "multiscale_sls": (lambda spec, name, o: MultiScaleSLS(spec.aux, _get(o, "warm_epochs", 5)), ("warm_epochs",)),
    "soft_iou_deep_supervision": (lambda spec, name, o: DeepSupervisionSoftIoU(spec.aux), ()),
    "centernet": (lambda spec, name, o: CenterNetLoss(**_pick(o, *_DET)), _DET),
    "weighted_dice": (lambda spec, name, o: WeightedDice(**_pick(o, *_SEG)), _SEG),
    "mtunet": (_mtunet, ("det_weight", "seg_weight") + _DET + _SEG),
    "light_sgmtlm": (_light_sgmtlm, _YOLOV5),
    "mlsa_yolov8": (_mlsa_yolov8, _YOLOV8),
}


def build_criterion(kind: str, spec: ModelSpec, name: str | None = None, **options) -> nn.Module:
    """The training criterion ``kind`` (a key of ``CRITERIA``; a model's ``model_entry(name).criterion``)
    for a model with ``spec``. ``name`` only labels error messages."""
    name = name or kind
    if kind not in CRITERIA:
        raise EdgeirstError(f"no training criterion {kind!r} (known: {', '.join(sorted(CRITERIA))})")
    builder, accepted = CRITERIA[kind]
    unknown = sorted(set(options) - set(accepted) - {"mean_target_size"})
    if unknown:
        raise EdgeirstError(f"unknown loss option(s) {', '.join(unknown)} for {name!r}; "
                            f"accepted: {', '.join(accepted) or 'none'}")
    return builder(spec, name, options)


def criterion_for(model: str, spec: ModelSpec, **options) -> nn.Module:
    """The criterion of registry model ``model`` (its entry's ``criterion``)."""
    from edgeirst.models import model_entry

    return build_criterion(model_entry(model).criterion, spec, name=model, **options)


__all__ = ["CRITERIA", "build_criterion", "criterion_for"]
