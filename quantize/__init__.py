"""edgeirst.quantize: INT8 (QDQ) and FP16 quantization of exported ONNX models, and TensorRT
calibration caches.

``quantize_model(model, out, QuantConfig(...))`` calibrates on real images through
``edgeirst.preprocess.prepare``, writes QDQ for a target (``cpu``: onnxruntime's fastest
layout; ``tensorrt``: symmetric int8 for an explicit-INT8 engine), checks the result against
the FP32 model on a val split and keeps sensitive nodes float when the drop is over budget.
``write_calibration_cache`` writes the TensorRT 8.x ``IInt8EntropyCalibrator2`` cache of an FP32
model. Needs onnx and onnxruntime (the ``train`` extra).
"""

from edgeirst.quantize.config import OverBudget, QuantConfig, QuantResult, parse_max_drop
from edgeirst.quantize.model import quantize_model, write_calibration_cache

__all__ = ["OverBudget", "QuantConfig", "QuantResult", "parse_max_drop", "quantize_model", "write_calibration_cache"]
