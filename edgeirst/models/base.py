"""What every model declares, so training, eval, export and the runtime need no per-model cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A model's contract with the rest of edgeirst.

    Attributes:
        tasks: ``("segmentation",)``, ``("detection",)`` or both.
        decode: how inference outputs become targets (see ``edgeirst.postprocess``):
            ``cluster``, ``centernet``, ``yolov5`` or ``yolov8``.
        outputs: names of the inference outputs, in export order (``forward`` returns them and
            possibly more: auxiliary outputs that only losses use, e.g. deep supervision).
        aux: names of the auxiliary outputs (trained, never exported).
        size_divisor: input height and width must be multiples of this.
        decode_args: parameters the decoder needs (strides, anchors, reg_max, levels...).
    """

    tasks: tuple[str, ...]
    decode: str
    outputs: tuple[str, ...]
    aux: tuple[str, ...] = ()
    size_divisor: int = 32
    decode_args: dict[str, Any] = field(default_factory=dict)


def scaled(channels: int, width: float, minimum: int = 4) -> int:
    """Channel count scaled by a width multiplier, kept divisible by 4 and at least ``minimum``."""
    return max(minimum, int(round(channels * width / 4)) * 4)
