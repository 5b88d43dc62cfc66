"""The TensorRT policy: which form of a model each TensorRT version builds from, and the rules
every builder obeys. ``quantize``, ``deploy``, the launcher and the engine builders ask it; none
decides alone.

| TensorRT | INT8 | FP16 | network |
|---|---|---|---|
| < 8.6 | float ONNX + calibration cache (``INT8`` + ``FP16`` flags) | float ONNX + ``FP16`` flag | weakly typed |
| 8.6 - 9.x | QDQ ONNX (explicit quantization, ``INT8`` + ``FP16`` flags) | float ONNX + ``FP16`` flag | weakly typed |
| 10.x | QDQ ONNX | float ONNX + ``FP16`` flag (deprecated, still there) | INT8: strongly typed |
| >= 11 | QDQ ONNX | FP16 ONNX (``quantize --precision fp16``) | strongly typed only |

A strongly typed network takes every tensor's type from the ONNX: no precision flags, no
calibrator. The QDQ model must then be TensorRT's layout: int8 Q/DQ with zero point 0 and
per-channel weight scales on the output-channel axis (``edgeirst.quantize.qdq_check`` checks
it on the host; the device needs no ``onnx``). A model quantized for onnxruntime's CPU kernels
(uint8 activations, non-zero zero points) is not that layout.

The DLA runs static shapes only: an engine with a DLA core is built for one input size
(min = opt = max), the largest frame the bundle is set up for.

Device side: the standard library only, Python 3.8-clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from edgeirst.runtime.trt_versions import QDQ_MIN, version_tuple

# TensorRT 10 builds strongly typed networks (the STRONGLY_TYPED network flag); a QDQ INT8 model is built that way.
STRONGLY_TYPED_MIN = (10, 0)
# TensorRT 11 builds strongly typed networks only: BuilderFlag.INT8/FP16 and the calibrators are gone.
STRONGLY_TYPED_ONLY_MIN = (11, 0)

PRECISIONS = ("fp32", "fp16", "int8")
# What a model file must be for a form (``EngineForm.model``).
QDQ_INT8, FLOAT, FP16_ONNX = "qdq-int8", "float", "fp16-onnx"


@dataclass(frozen=True)
class EngineForm:
    """How one precision is built on one TensorRT version.

    ``model``: the ONNX the engine is built from (``qdq-int8``: a QDQ model in TensorRT's
    layout; ``float``: the FP32 export; ``fp16-onnx``: an FP16 export). ``strongly_typed``:
    the network takes its types from the ONNX (TensorRT's ``STRONGLY_TYPED`` network flag,
    trtexec ``--stronglyTyped``). ``builder_flags``: ``BuilderFlag`` names to set (weakly typed
    only). ``calibration_cache``: INT8 scales come from a calibration cache (TensorRT < 8.6).
    """

    precision: str
    model: str
    strongly_typed: bool
    builder_flags: Tuple[str, ...]
    calibration_cache: bool = False


def _at_least(trt_version: str, minimum: Tuple[int, int]) -> bool:
    return version_tuple(trt_version)[:2] >= minimum


def int8_form(trt_version: str) -> str:
    """``"qdq"``: INT8 from a QDQ model (TensorRT >= 8.6); ``"cache"``: from the float model and a
    calibration cache (older)."""
    return "qdq" if _at_least(trt_version, QDQ_MIN) else "cache"


def fp16_form(trt_version: str) -> str:
    """``"onnx"``: FP16 from an FP16 ONNX, strongly typed (TensorRT >= 11); ``"flag"``: from the float
    model with the FP16 builder flag (older)."""
    return "onnx" if _at_least(trt_version, STRONGLY_TYPED_ONLY_MIN) else "flag"


def engine_form(precision: str, trt_version: str) -> EngineForm:
    """The form ``precision`` takes on ``trt_version``; see the module docstring's table."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    typed_only = _at_least(trt_version, STRONGLY_TYPED_ONLY_MIN)
    if precision == "int8":
        if int8_form(trt_version) == "cache":
            return EngineForm("int8", FLOAT, False, ("INT8", "FP16"), calibration_cache=True)
        if _at_least(trt_version, STRONGLY_TYPED_MIN):
            return EngineForm("int8", QDQ_INT8, True, ())
        return EngineForm("int8", QDQ_INT8, False, ("INT8", "FP16"))
    if precision == "fp16":
        return EngineForm("fp16", FP16_ONNX, True, ()) if typed_only else EngineForm("fp16", FLOAT, False, ("FP16",))
    return EngineForm("fp32", FLOAT, typed_only, ())


def engine_flags(precision: str, trt_version: str, dla_core: Optional[int] = None) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(network flags, builder flags)`` by TensorRT name for our builder: ``STRONGLY_TYPED`` where
    the form is strongly typed; the precision flags where it is not; ``GPU_FALLBACK`` with a DLA
    core (layers the DLA cannot run go to the GPU)."""
    form = engine_form(precision, trt_version)
    network = ("STRONGLY_TYPED",) if form.strongly_typed else ()
    builder = form.builder_flags
    if dla_core is not None:
        if precision == "fp32":
            raise ValueError("the DLA runs FP16 or INT8 only")
        builder = builder + ("GPU_FALLBACK",)
    return network, builder


def trtexec_flags(precision: str, trt_version: str, dla_core: Optional[int] = None) -> Tuple[str, ...]:
    """The same decision as ``engine_flags`` in trtexec's words."""
    network, builder = engine_flags(precision, trt_version, dla_core)
    words = {"STRONGLY_TYPED": "--stronglyTyped", "INT8": "--int8", "FP16": "--fp16",
             "GPU_FALLBACK": "--allowGPUFallback"}
    dla = (f"--useDLACore={int(dla_core)}",) if dla_core is not None else ()
    return tuple(words[f] for f in network + builder) + dla


def needs_static_shapes(dla_core: Optional[int]) -> bool:
    """The DLA takes no dynamic shapes: an engine with a DLA core is built for one input size."""
    return dla_core is not None and dla_core >= 0


def shape_profile(max_hw: Tuple[int, int], min_hw: Tuple[int, int], dla_core: Optional[int] = None
                  ) -> Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int]]:
    """``(min, opt, max)`` input sizes of the optimisation profile: ``min_hw`` .. ``max_hw`` on the
    GPU, ``max_hw`` three times on the DLA (static)."""
    if needs_static_shapes(dla_core):
        return tuple(max_hw), tuple(max_hw), tuple(max_hw)
    return tuple(min_hw), tuple(max_hw), tuple(max_hw)
