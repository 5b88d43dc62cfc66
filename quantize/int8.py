"""INT8 QDQ with onnxruntime's ``quantize_static``: the per-target layouts.

| target | activations | weights | other options |
|---|---|---|---|
| cpu | uint8, asymmetric (per tensor) | int8, symmetric, per channel | Relu folded into the Q range |
| tensorrt | int8, symmetric (zero point 0) | int8, symmetric, per channel | inputs only (no Q/DQ on outputs), float biases, dedicated Q/DQ pair per consumer, residual inputs by ``graph.insert_qdq`` |

Both read activation ranges from onnxruntime's JSON range cache written by
``calibration.save_ranges``, so re-quantizing with other nodes kept float costs no calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from edgeirst.quantize.calibration import ort_method
from edgeirst.quantize.graph import insert_qdq


def target_options(target: str, op_types: Sequence[str] = ()) -> dict:
    """``quantize_static`` keyword arguments of a target (types and extra options)."""
    from onnxruntime.quantization import QuantType

    if target == "cpu":
        return dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return dict(activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "DedicatedQDQPair": True,
                               "OpTypesToExcludeOutputQuantization": list(op_types),
                               "QuantizeBias": False})  # TensorRT's parser takes int8 Q/DQ only: biases stay float


def quantize_int8(float_model: Path, out: Path, ranges_cache: Path, method: str, target: str,
                  op_types: Sequence[str], exclude: Sequence[str],
                  input_qdq: Sequence[tuple[str, str, float]] = ()) -> Path:
    """Write the QDQ model of ``float_model`` (pre-processed) to ``out``; ``input_qdq`` adds an int8
    Q/DQ pair ``(node, input tensor, scale)`` per entry (TensorRT's residual inputs)."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    opts = target_options(target, op_types)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static warns about pre-processing we did on purpose
    try:
        quantize_static(str(float_model), str(out), calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(op_types), per_channel=True, reduce_range=False,
                        nodes_to_exclude=list(exclude), calibrate_method=ort_method(method),
                        calibration_cache_path=str(ranges_cache), **opts)
    finally:
        root.setLevel(level)
    if input_qdq:
        import onnx

        proto = onnx.load(str(out))
        for node, tensor, scale in input_qdq:
            insert_qdq(proto, node, tensor, scale)
        onnx.save(proto, str(out))
    return out
