"""Model metadata: what travels inside every checkpoint and ONNX file.

A model file is self-describing: the registry name and kwargs rebuild the network, the input
geometry and normalisation drive preprocessing, ``decode``/``decode_args`` drive
post-processing, and the training data and metrics say where it came from. The same JSON is
stored in a ``.pt`` checkpoint (key ``"meta"``), in ONNX ``metadata_props`` (key
``"edgeirst"``) and beside a TensorRT plan (``<engine>.json``). No torch here: the runtime
reads it on a device that has no PyTorch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from edgeirst import __version__
from edgeirst.errors import EdgeirstError

ONNX_KEY = "edgeirst"
FORMAT = 1  # metadata format this version writes and reads; a newer one is refused
# Fields without which a model would run with silent defaults and wrong results.
REQUIRED = ("name", "input_size", "size_divisor", "in_chans", "mean", "std", "outputs", "decode", "threshold")
# The decoders ``edgeirst.postprocess.decode_outputs`` implements; the box decoders output boxes
# (their pixel metrics use the boxes rasterised) rather than a probability map.
BOX_DECODERS = ("centernet", "yolov5", "yolov8")
DECODERS = ("cluster",) + BOX_DECODERS


@dataclass
class ModelMeta:
    """Everything a consumer needs to run and interpret a model without its source code.

    Attributes:
        name: registry name (``edgeirst zoo`` lists them).
        kwargs: keyword arguments that rebuild the network with ``create_model(name, **kwargs)``.
        input_size: nominal input ``[height, width]`` (the exported/trained size).
        dynamic: the network accepts any height/width that is a multiple of ``size_divisor``.
        size_divisor: input sides must be multiples of this.
        in_chans: input channels (1 for infrared).
        mean, std: per-channel normalisation applied to pixels scaled to [0, 1].
        outputs: names of the inference outputs, in ONNX output order.
        decode: how outputs become targets: ``cluster`` (segmentation map, 8-connected
            components), ``centernet`` (heatmap peaks + sizes), ``yolov5`` (anchor boxes) or
            ``yolov8`` (anchor-free DFL boxes).
        decode_args: decoder parameters (strides, anchors, reg_max, ...).
        tasks: what the model does: ``segmentation`` and/or ``detection``.
        threshold: default score threshold for targets.
        memory_per_pixel: onnxruntime CPU memory per input pixel in bytes, measured at export;
            the runtime scales down frames too large for the memory it has.
        train: how the weights were produced (data, split, epochs, wall time, hardware...).
        metrics: validation metrics of these weights (iou, niou, pd, fa, ap50, ap, split...).
        quant: how the weights were quantized (``edgeirst quantize``: precision, target,
            calibration set, the FP32 metrics it was checked against); empty for FP32 models.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 256)
    dynamic: bool = True
    size_divisor: int = 32
    in_chans: int = 1
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    outputs: tuple[str, ...] = ("seg",)
    decode: str = "cluster"
    decode_args: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ("segmentation",)
    threshold: float = 0.5
    memory_per_pixel: float | None = None
    train: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    quant: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    format: int = 1

    def __post_init__(self) -> None:
        self.input_size = tuple(int(v) for v in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.outputs = tuple(self.outputs)
        self.tasks = tuple(self.tasks)
        if self.decode not in DECODERS:
            raise EdgeirstError(f"unknown decoder {self.decode!r}; expected one of {DECODERS}")

    def to_dict(self) -> dict[str, Any]:
        """The metadata as its JSON holds it (tuples as lists, at any depth), so a checkpoint and
        the ONNX exported from it carry equal metadata."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_plain))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMeta":
        """Validated metadata. Refused: fields this version does not know, a newer format, and
        missing fields that change what the model computes (running with defaults instead
        would silently change its accuracy)."""
        if not isinstance(d, dict) or "name" not in d:
            raise EdgeirstError("model metadata is missing or has no 'name'; was this file made by edgeirst?")
        fmt = d.get("format", 1)
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise EdgeirstError(f"model {d['name']!r} has metadata format {fmt}, newer than this edgeirst reads "
                                f"({FORMAT}); upgrade edgeirst (pip install -U edgeirst)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EdgeirstError(f"model {d['name']!r} has metadata field(s) this edgeirst does not know: "
                                f"{', '.join(unknown)}; it was made by another version (upgrade edgeirst)")
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise EdgeirstError(f"model {d['name']!r} metadata lacks required field(s) {', '.join(missing)}; "
                                "re-export it with `edgeirst export`")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "ModelMeta":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise EdgeirstError(f"model metadata is not valid JSON: {e}") from None
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> "ModelMeta":
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    """A numpy scalar or array in the metadata (a metric, a size) as the Python value JSON holds."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} in model metadata is not JSON-serialisable")
