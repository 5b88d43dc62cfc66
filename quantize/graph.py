"""The ONNX side of quantization: read an edgeirst model, prepare it, describe its nodes, write
the result with its metadata.

Our exports have dynamic height/width. onnxruntime's ``quant_pre_process`` fails on them in
symbolic shape inference ("Incomplete symbolic shape inference": it cannot carry the symbolic
height/width through every op of our graphs; static exports pass, the shipped default.onnx does
not), so we skip that step (ONNX's own shape inference types every tensor of our graphs) and keep
the quantized model dynamic: QDQ scales do not depend on the frame size, and ``edgeirst run``/
``eval`` then feed every frame at its native resolution exactly as they do the FP32 model. Node
shapes for the per-node decisions come from ONNX shape inference on a copy fixed to
``meta.input_size``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError, EdgeirstWarning
from edgeirst.checkpoint import save_onnx
from edgeirst.meta import ONNX_KEY, ModelMeta
from edgeirst.runtime.backends.onnxruntime import no_metadata_error


def load_edgeirst_onnx(path: Path):
    """``(ModelProto, ModelMeta)`` of an ONNX file made by ``edgeirst export``; one clear error
    for a file that is not ONNX or carries no edgeirst metadata."""
    import onnx
    from google.protobuf.message import DecodeError

    if path.suffix.lower() != ".onnx":
        raise EdgeirstError(f"{path} is not an ONNX model (.onnx); quantize works on models made by "
                            "`edgeirst export` (export a .pt checkpoint first)")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as e:
        raise EdgeirstError(f"{path} is not a loadable ONNX model ({type(e).__name__}: {str(e)[:160]})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if ONNX_KEY not in props:
        raise no_metadata_error(path)
    meta = ModelMeta.from_json(props[ONNX_KEY])
    if meta.quant:
        raise EdgeirstError(f"{path} is already quantized ({meta.quant.get('precision')}); quantize the FP32 export")
    if len(proto.graph.input) != 1:
        raise EdgeirstError(f"{path} has {len(proto.graph.input)} inputs; edgeirst models take one image batch")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        raise EdgeirstError(f"{path} uses opset {opset}; per-channel QDQ needs opset >= 13 (re-export with --opset 17)")
    return proto, meta


def preprocess(src: Path, dst: Path) -> Path:
    """onnxruntime's quantization pre-processing (graph optimisation + ONNX shape inference),
    without symbolic shape inference, which our dynamic-size exports do not pass."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # onnxruntime logs a failed optimisation with its traceback and goes on without it: one
    # warning line instead (a failure that stops the work raises, and the CLI says it in one line)
    logger = logging.getLogger("onnxruntime.quantization.shape_inference")
    failed: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: failed.append(record.getMessage())
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True, skip_optimization=False,
                          skip_onnx_shape=False)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if failed:
        last = failed[-1].strip().splitlines()[-1:] or ["?"]
        warnings.warn(f"onnxruntime's graph optimisation of {src.name} failed ({last[0][:200]}); "
                      "quantizing the graph as exported", EdgeirstWarning, stacklevel=2)
    return dst


@dataclass(frozen=True)
class NodeInfo:
    """One node as the selection policies see it: op type, channels, kernel, output size."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    kernel: tuple[int, ...] = ()
    out_hw: tuple[int, int] | None = None


def tensor_channels(proto, meta: ModelMeta) -> dict[str, int]:
    """Channel count (dim 1) of every 4-D tensor, from ONNX shape inference at ``meta.input_size``."""
    return {k: s[1] for k, s in _shapes(proto, meta)[0].items() if len(s) == 4 and s[1] > 0}


def _shapes(proto, meta: ModelMeta):
    import onnx
    from onnx import shape_inference

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, meta.in_chans, *meta.input_size)):
        d.Clear()
        d.dim_value = int(v)
    fixed = shape_inference.infer_shapes(fixed)
    shapes = {}
    for vi in list(fixed.graph.value_info) + list(fixed.graph.output) + list(fixed.graph.input):
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
    return shapes, fixed


def describe_nodes(proto, meta: ModelMeta) -> list[NodeInfo]:
    """Every node with its channel counts and output size at ``meta.input_size`` (batch 1)."""
    import onnx

    shapes, fixed = _shapes(proto, meta)
    inits = {i.name: tuple(i.dims) for i in fixed.graph.initializer}
    out = []
    for n in fixed.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        oshape = shapes.get(n.output[0]) if n.output else None
        hw = (oshape[2], oshape[3]) if oshape and len(oshape) == 4 else None
        info = dict(name=n.name, op=n.op_type, inputs=tuple(n.input), outputs=tuple(n.output), out_hw=hw)
        if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and n.input[1] in inits:
            w = inits[n.input[1]]
            groups = int(attrs.get("group", 1))
            cin, cout = (w[1] * groups, w[0]) if n.op_type == "Conv" else (w[0], w[1] * groups)
            info.update(in_channels=cin, out_channels=cout, groups=groups, kernel=tuple(w[2:]))
        out.append(NodeInfo(**info))
    names = [n.name for n in out]
    if len(set(names)) != len(names) or not all(names):
        raise EdgeirstError("the model has unnamed or duplicate node names; re-export it with `edgeirst export`")
    return out


def write_model(proto, meta: ModelMeta, out: Path) -> Path:
    """Save ``proto`` with ``meta`` as its only ``edgeirst`` metadata entry, atomically."""
    save_onnx(proto, meta, out)
    return out


def _same_padded(node, kernel: tuple[int, ...]) -> bool:
    """A convolution whose output grid does not depend on its (odd) kernel size: explicit
    symmetric padding of k // 2, no dilation, no auto_pad."""
    import onnx

    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or any(d != 1 for d in a.get("dilations", [1, 1])):
        return False
    pads = list(a.get("pads", [0] * 2 * len(kernel)))
    return all(k % 2 == 1 for k in kernel) and pads == [k // 2 for k in kernel] * 2


def mergeable(proto, names: Sequence[str]) -> bool:
    """Whether convolutions ``names`` (same input) can become one convolution + Split exactly."""
    import onnx

    nodes = [n for n in proto.graph.node if n.name in set(names)]
    inits = {i.name: i for i in proto.graph.initializer}
    if len(nodes) != len(names) or len({n.input[0] for n in nodes}) != 1:
        return False
    strides = set()
    for n in nodes:
        if n.op_type != "Conv" or n.input[1] not in inits or (len(n.input) > 2 and n.input[2] not in inits):
            return False
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        if a.get("group", 1) != 1 or not _same_padded(n, tuple(inits[n.input[1]].dims[2:])):
            return False
        strides.add(tuple(a.get("strides", [1, 1])))
    return len(strides) == 1


def merge_convs(proto, names: Sequence[str], merged_name: str):
    """Replace convolutions ``names`` that read the same input by one convolution with their
    filters stacked (smaller kernels zero-padded to the largest) and a Split into the original
    outputs. Exact in float; lets onnxruntime run narrow convolutions on its wide int8 kernel."""
    import onnx
    from onnx import numpy_helper

    nodes = [n for n in proto.graph.node if n.name in set(names)]
    inits = {i.name: i for i in proto.graph.initializer}
    weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
    size = max(w.shape[2] for w in weights)
    stacked, biases = [], []
    for n, w in zip(nodes, weights):
        p = (size - w.shape[2]) // 2
        stacked.append(np.pad(w, ((0, 0), (0, 0), (p, p), (p, p))))
        biases.append(numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2]
                      else np.zeros(w.shape[0], w.dtype))
    big = nodes[[w.shape[2] for w in weights].index(size)]
    proto.graph.initializer.extend([
        numpy_helper.from_array(np.concatenate(stacked), f"{merged_name}.weight"),
        numpy_helper.from_array(np.concatenate(biases), f"{merged_name}.bias"),
        numpy_helper.from_array(np.array([w.shape[0] for w in weights], np.int64), f"{merged_name}.split")])
    conv = onnx.helper.make_node("Conv", [nodes[0].input[0], f"{merged_name}.weight", f"{merged_name}.bias"],
                                 [f"{merged_name}_output_0"], name=merged_name)
    conv.attribute.extend(big.attribute)
    split = onnx.helper.make_node("Split", [f"{merged_name}_output_0", f"{merged_name}.split"],
                                  [n.output[0] for n in nodes], name=f"{merged_name}/Split", axis=1)
    at = min(list(proto.graph.node).index(n) for n in nodes)
    for n in nodes:
        proto.graph.node.remove(n)
    proto.graph.node.insert(at, split)
    proto.graph.node.insert(at, conv)
    used = {i for n in proto.graph.node for i in n.input}
    for init in [i for i in proto.graph.initializer if i.name not in used]:
        proto.graph.initializer.remove(init)
    return proto


def widen_conv(proto, name: str, out_channels: int):
    """Give convolution ``name`` zero filters (and zero biases) up to ``out_channels`` outputs and
    slice its original channels back out, after its Relu when a Relu is its only reader (so the
    Relu still folds into the int8 convolution). Exact in float."""
    import onnx
    from onnx import numpy_helper

    conv = next(n for n in proto.graph.node if n.name == name)
    inits = {i.name: i for i in proto.graph.initializer}
    w = numpy_helper.to_array(inits[conv.input[1]])
    b = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) > 2 and conv.input[2] \
        else np.zeros(w.shape[0], w.dtype)
    extra = out_channels - w.shape[0]
    proto.graph.initializer.extend([
        numpy_helper.from_array(np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)]), f"{name}.wide_weight"),
        numpy_helper.from_array(np.concatenate([b, np.zeros(extra, b.dtype)]), f"{name}.wide_bias"),
        numpy_helper.from_array(np.array([0], np.int64), f"{name}.slice_start"),
        numpy_helper.from_array(np.array([w.shape[0]], np.int64), f"{name}.slice_end"),
        numpy_helper.from_array(np.array([1], np.int64), f"{name}.slice_axis")])
    readers = [n for n in proto.graph.node if conv.output[0] in n.input]
    graph_outputs = {o.name for o in proto.graph.output}
    last = readers[0] if len(readers) == 1 and readers[0].op_type == "Relu" and conv.output[0] not in graph_outputs \
        else conv  # slice after the Relu: Relu and Slice commute
    narrow = last.output[0]
    wide = f"{name}_wide_output_0"
    del conv.input[1:]
    conv.input.extend([f"{name}.wide_weight", f"{name}.wide_bias"])
    if last is conv:
        conv.output[0] = wide
    else:
        conv.output[0], last.input[0], last.output[0] = wide, wide, f"{last.name}_wide_output_0"
        wide = last.output[0]
    cut = onnx.helper.make_node("Slice", [wide, f"{name}.slice_start", f"{name}.slice_end", f"{name}.slice_axis"],
                                [narrow], name=f"{name}/Narrow")
    proto.graph.node.insert(list(proto.graph.node).index(last) + 1, cut)
    used = {i for n in proto.graph.node for i in n.input}
    for init in [i for i in proto.graph.initializer if i.name not in used]:
        proto.graph.initializer.remove(init)
    return proto


def split_conv_inputs(proto, name: str):
    """Replace convolution ``name`` (C input channels, one group) by C single-channel convolutions
    whose outputs are summed, the bias on the first. Where its input is a channel Concat of C
    tensors that only this conv reads (CBAM's [mean, max]), the Concat goes and each conv reads
    its tensor; otherwise a Split gives the planes. Exact up to float summation order. Returns
    False, changing nothing, where the weights are not an initializer."""
    import onnx
    from onnx import numpy_helper

    nodes = list(proto.graph.node)
    conv = next(n for n in nodes if n.name == name)
    inits = {i.name: i for i in proto.graph.initializer}
    if conv.input[1] not in inits:
        return False
    w = numpy_helper.to_array(inits[conv.input[1]])
    c = w.shape[1]
    src = next((n for n in nodes if conv.input[0] in n.output), None)
    readers = [n for n in nodes if conv.input[0] in n.input]
    axis = {a.name: onnx.helper.get_attribute_value(a) for a in src.attribute}.get("axis") if src is not None else None
    at = nodes.index(conv)
    new = []
    if src is not None and src.op_type == "Concat" and axis in (1, -3) and len(src.input) == c and readers == [conv] \
            and conv.input[0] not in {o.name for o in proto.graph.output}:
        planes = list(src.input)
        proto.graph.node.remove(src)
        at -= 1
    else:
        planes = [f"{name}/plane{i}" for i in range(c)]
        new.append(onnx.helper.make_node("Split", [conv.input[0]], planes, name=f"{name}/Split", axis=1))
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    parts = []
    for i, plane in enumerate(planes):
        weight = f"{name}.weight{i}"
        proto.graph.initializer.append(numpy_helper.from_array(w[:, i:i + 1].copy(), weight))
        bias = [conv.input[2]] if i == 0 and len(conv.input) > 2 and conv.input[2] else []
        parts.append(f"{name}/in{i}_output_0")
        new.append(onnx.helper.make_node("Conv", [plane, weight, *bias], [parts[-1]], name=f"{name}/in{i}", **attrs))
    new.append(onnx.helper.make_node("Add" if c == 2 else "Sum", parts, [conv.output[0]], name=f"{name}/Sum"))
    proto.graph.node.remove(conv)
    for k, m in enumerate(new):
        proto.graph.node.insert(at + k, m)
    used = {i for n in proto.graph.node for i in n.input}
    for init in [i for i in proto.graph.initializer if i.name not in used]:
        proto.graph.initializer.remove(init)
    return True


def channel_reductions(proto, channels: dict[str, int]) -> int:
    """Rewrite channel-axis ReduceMean / ReduceMax (CBAM spatial attention) into ops onnxruntime
    runs several times faster, exactly: mean = 1x1 Conv with weights 1/C (7x faster at 8x256x256),
    max = Split into C planes + variadic Max (1.8x). ``channels`` maps a tensor to its C.
    Returns the number of nodes rewritten."""
    import onnx
    from onnx import numpy_helper

    done = 0
    for n in list(proto.graph.node):
        if n.op_type not in ("ReduceMean", "ReduceMax") or len(n.input) != 1:
            continue  # opset >= 18 passes axes as an input; our exports are opset 17
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        c = channels.get(n.input[0])
        if list(a.get("axes", [])) not in ([1], [-3]) or a.get("keepdims", 1) != 1 or not c or c < 2:
            continue
        at = list(proto.graph.node).index(n)
        if n.op_type == "ReduceMean":
            w = f"{n.name}.weight"
            proto.graph.initializer.append(numpy_helper.from_array(np.full((1, c, 1, 1), 1.0 / c, np.float32), w))
            new = [onnx.helper.make_node("Conv", [n.input[0], w], [n.output[0]], name=f"{n.name}/AsConv")]
        else:
            planes = [f"{n.name}/plane{i}" for i in range(c)]
            new = [onnx.helper.make_node("Split", [n.input[0]], planes, name=f"{n.name}/Split", axis=1),
                   onnx.helper.make_node("Max", planes, [n.output[0]], name=f"{n.name}/Max")]
        proto.graph.node.remove(n)
        for k, m in enumerate(new):
            proto.graph.node.insert(at + k, m)
        done += 1
    return done


def insert_qdq(proto, node_name: str, tensor: str, scale: float):
    """Put an int8 QuantizeLinear/DequantizeLinear pair (zero point 0, ``scale``) between ``tensor``
    and node ``node_name``'s input of that name, for that reader alone (TensorRT's residual input)."""
    import onnx
    from onnx import numpy_helper

    node = next(n for n in proto.graph.node if n.name == node_name)
    base = f"{tensor}_{node_name}"
    proto.graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{base}_scale"),
                                    numpy_helper.from_array(np.array(0, np.int8), f"{base}_zero_point")])
    q = onnx.helper.make_node("QuantizeLinear", [tensor, f"{base}_scale", f"{base}_zero_point"], [f"{base}_quantized"],
                              name=f"{base}_QuantizeLinear")
    dq = onnx.helper.make_node("DequantizeLinear", [f"{base}_quantized", f"{base}_scale", f"{base}_zero_point"],
                               [f"{base}_dequantized"], name=f"{base}_DequantizeLinear")
    for k, name in enumerate(node.input):
        if name == tensor:
            node.input[k] = dq.output[0]
    at = list(proto.graph.node).index(node)
    proto.graph.node.insert(at, dq)
    proto.graph.node.insert(at, q)
    return proto
