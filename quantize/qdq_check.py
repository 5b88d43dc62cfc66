"""The host-side check of a QDQ model against TensorRT's explicit-INT8 layout
(``edgeirst.runtime.trt_policy``): int8 Q/DQ only, every zero point 0, per-channel weight scales
on the output-channel axis (Conv: 0, ConvTranspose: 1). ``quantize --target tensorrt`` checks
what it writes; ``deploy`` checks an INT8 model before bundling it for TensorRT. Needs onnx (the
device does not run it).

A model quantized for onnxruntime's CPU kernels (``quantize --target cpu``: uint8 activations
with non-zero zero points) fails it: TensorRT's ONNX parser refuses uint8 QuantizeLinear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError, missing_extra

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}  # the output-channel axis of the weights


def _load(model):
    try:
        import onnx
    except ImportError:
        raise missing_extra("onnx (to check a quantized model's layout)", "train") from None

    return onnx.load(str(model), load_external_data=False) if isinstance(model, (str, Path)) else model


def tensorrt_layout_problems(model) -> list[str]:
    """What keeps ``model`` (a path or ModelProto) from TensorRT's explicit-INT8 layout, one line
    per kind of problem with its count; empty when it has that layout (or no Q/DQ at all)."""
    proto = _load(model)  # first: without onnx, one line naming the extra
    import onnx
    from onnx import numpy_helper

    g = proto.graph
    init = {i.name: i for i in g.initializer}
    constants = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    readers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)

    def value(name: str):
        if name in init:
            return numpy_helper.to_array(init[name])
        if name in constants:
            return numpy_helper.to_array(constants[name].attribute[0].t)
        return None

    not_int8: dict[str, int] = {}
    nonzero = 0
    bad_axis: list[str] = []
    for n in g.node:
        if n.op_type not in QDQ_OPS:
            continue
        zp = value(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if zp is None:  # no zero point: uint8 by the ONNX standard
            dtype = "uint8 (no zero point)"
        else:
            dtype = "int8" if zp.dtype == np.int8 else str(zp.dtype)
            # a Q and its DQ share one zero point: count the Q nodes and the DQs of constant weights
            nonzero += bool(np.any(zp != 0)) and (n.op_type == "QuantizeLinear" or n.input[0] in init)
        if dtype != "int8":
            key = f"{n.op_type} {dtype}"
            not_int8[key] = not_int8.get(key, 0) + 1
        if n.op_type != "DequantizeLinear" or n.input[0] not in init:
            continue
        scale = value(n.input[1])
        for r in readers.get(n.output[0], []):
            want = WEIGHT_AXIS.get(r.op_type)
            if want is None or len(r.input) < 2 or r.input[1] != n.output[0] or scale is None or scale.size == 1:
                continue
            axis = next((onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 1)
            weight = init[n.input[0]]
            axis = axis + len(weight.dims) if axis < 0 else axis
            if axis != want or scale.size != weight.dims[want]:
                bad_axis.append(r.name)
    problems = [f"{count} {what} node(s) (TensorRT takes int8 only; biases stay float)"
                if "int32" in what else f"{count} {what} node(s) (TensorRT takes int8 only)"
                for what, count in sorted(not_int8.items(), key=lambda kv: ("int32" in kv[0], kv[0][0] == "D", kv[0]))]
    if nonzero:
        problems.append(f"{nonzero} non-zero zero point(s) (TensorRT takes symmetric quantization, zero point 0)")
    if bad_axis:
        problems.append(f"{len(bad_axis)} weight(s) scaled per channel on an axis other than the output channels "
                        f"(first: {bad_axis[0]})")
    return problems


def has_qdq(model) -> bool:
    """The model holds Q/DQ nodes (it is quantized)."""
    return any(n.op_type in QDQ_OPS for n in _load(model).graph.node)


def require_tensorrt_layout(model, name: str) -> None:
    """Raise one EdgeirstError line when ``model`` is not in TensorRT's layout."""
    problems = tensorrt_layout_problems(model)
    if problems:
        raise EdgeirstError(f"{name} is not in TensorRT's INT8 layout: {'; '.join(problems)}")
