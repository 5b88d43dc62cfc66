"""FP16 weights and activations with onnxruntime's float16 converter.

Inputs and outputs stay float32 (``keep_io_types``): every edgeirst backend feeds float32 and
reads float32. Ops whose range or precision fp16 hurts (Resize coordinates, reductions, Div/Exp
style arithmetic; ``policy.FP16_SENSITIVE``) stay float32 by op type, and the accuracy guard can
keep more nodes float32 by name. On a CPU onnxruntime runs the fp16 graph through inserted casts
(it has few fp16 kernels there); the point of this file is a GPU or TensorRT.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def convert_fp16(float_model: Path, out: Path, block_ops: Sequence[str], block_nodes: Sequence[str] = ()) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    proto = onnx.load(str(float_model))
    half = convert_float_to_float16(proto, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(block_ops),
                                    node_block_list=list(block_nodes))
    onnx.save(half, str(out))
    return out
