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

This module decides the forms; ``edgeirst.runtime.trt_api`` holds what each release's API has
(network flags, strong typing, calibrators) and the builders (``engine_build`` and the launcher's
``trtexec`` command) take their flags from it.

Device side: the standard library only, Python 3.8-clean.
"""

from __future__ import annotations

from typing import Optional, Tuple

from edgeirst.runtime.trt_versions import QDQ_MIN, version_tuple

def _at_least(trt_version: str, minimum: Tuple[int, int]) -> bool:
    return version_tuple(trt_version)[:2] >= minimum


def int8_form(trt_version: str) -> str:
    """``"qdq"``: INT8 from a QDQ model (TensorRT >= 8.6); ``"cache"``: from the float model and a
    calibration cache (older)."""
    return "qdq" if _at_least(trt_version, QDQ_MIN) else "cache"


def needs_static_shapes(dla_core: Optional[int]) -> bool:
    """The DLA takes no dynamic shapes: an engine with a DLA core is built for one input size."""
    return dla_core is not None and dla_core >= 0
