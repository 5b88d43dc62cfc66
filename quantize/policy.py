"""Which nodes run in int8, per target, and why.

``cpu`` (onnxruntime's MLAS kernels, measured on a Sapphire Rapids VM with AVX512-VNNI and AMX,
onnxruntime 1.31; benchmarks/RESULTS.md has the numbers):

* A QLinearConv is fast only on MLAS's symmetric-weight "indirect convolution" path, which needs
  int8 weights with zero point 0, one group, input channels a multiple of 4 and output channels
  a multiple of 4 and at least 16 (``MlasConvSymPackWSize``). Every other shape falls back to
  im2col + a generic uint8 GEMM + requantization, which on this CPU runs *slower* than the fp32
  convolution (8->8 channels 3x3 at 256x256: 6.4 vs 3.0 ms; 2->1 channel 7x7: 5.0 vs 1.7 ms).
  Those convolutions stay float: they are "too small to pay".
* int8 activations are uint8 (asymmetric): MLAS on x86 has no int8-activation convolution
  kernel, which is why symmetric S8S8 QDQ (TensorRT's layout) ran 1.4-2x slower than fp32 here.
* Element-wise attention products, reductions, resizes and pools between the convolutions stay
  float: in int8 they measured no faster once their extra Q/DQ passes are paid, and under
  onnxruntime's NHWC layout their channel broadcasts run several times slower.

``tensorrt`` follows TensorRT's Q/DQ placement rules (developer guide, "Q/DQ Layer-Placement
Recommendations"): quantize the *inputs* of weighted layers (activation per tensor, weights per
output channel, int8, zero point 0), never their outputs, and let TensorRT propagate the scales
through pools, Concat and Resize. A residual Add whose other input is the output of an int8
convolution gets a Q/DQ on that other input: TensorRT then fuses the Add into the convolution
in int8. Attention stays float (Sigmoid, the products it scales, its 1x1 pooled convs' Add),
as NVIDIA ModelOpt leaves it. Convolutions with fewer than 16 input or output channels run in
int8 only where TensorRT has kernels for them (one group, a side a multiple of 8, a square
kernel, the other side >= 16 or the graph input): the same 97 of the default's 126 convolutions
ModelOpt's ONNX PTQ quantizes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from edgeirst.quantize.graph import NodeInfo

CPU_OPS = ("Conv",)
TENSORRT_OPS = ("Conv", "ConvTranspose")  # quantize_static's op types; residual Adds get their Q/DQ afterwards
TRT_MIN_CHANNELS = 16  # TensorRT's int8 convolution kernels; smaller sides need the exceptions of trt_int8_conv
FP16_SENSITIVE = ("Resize", "ReduceMean", "ReduceSum", "Softmax", "Exp", "Log", "Pow", "Sqrt", "Div")


def mlas_fast_conv(n: NodeInfo) -> tuple[bool, str]:
    """Whether onnxruntime's x86 int8 convolution runs ``n`` on its fast symmetric path."""
    if n.in_channels is None:
        return False, "weights are not a constant"
    if n.op != "Conv":
        return False, f"{n.op} has no fast int8 CPU kernel"
    if n.groups != 1:
        return False, f"grouped ({n.groups} groups): no fast int8 kernel"
    cin, cout = n.in_channels, n.out_channels
    if cin % 4:
        return False, f"{cin} input channels (int8 kernel needs a multiple of 4)"
    if cout < 16 or cout % 4:
        return False, f"{cout} output channels (int8 kernel needs >= 16, a multiple of 4)"
    return True, f"{cin}->{cout} channels, {'x'.join(map(str, n.kernel))}: fast int8 kernel"


def conv_merges(nodes: Sequence[NodeInfo]) -> list[tuple[list[str], str]]:
    """Groups of convolutions reading the same tensor that miss the fast int8 kernel one by one
    but meet it stacked (e.g. a 24->8 3x3 conv and its 24->8 1x1 shortcut: one 24->16 conv).
    Returns ``(names, merged name)`` pairs; ``graph.merge_convs`` does the (exact) rewrite."""
    by_input: dict[str, list[NodeInfo]] = {}
    for n in nodes:
        if n.op == "Conv" and n.in_channels is not None and not mlas_fast_conv(n)[0]:
            by_input.setdefault(n.inputs[0], []).append(n)
    out = []
    for group in by_input.values():
        if len(group) < 2:
            continue
        stacked = replace(group[0], out_channels=sum(g.out_channels for g in group),
                          kernel=max(g.kernel for g in group))
        if mlas_fast_conv(stacked)[0]:
            prefix = os.path.commonprefix([g.name for g in group]).rstrip("/")
            out.append(([g.name for g in group], f"{prefix[:prefix.rfind('/')] if '/' in prefix else prefix}/MergedConv"))
    return out


WIDEN_MIN_TAPS = 64  # input channels x kernel taps per output pixel


def conv_widenings(nodes: Sequence[NodeInfo], full_hw: tuple[int, int]) -> list[tuple[str, int]]:
    """Convolutions that miss the fast int8 kernel only by having fewer than 16 output channels,
    are heavy enough per output pixel (>= ``WIDEN_MIN_TAPS`` input channels x taps: an 8->8 3x3
    conv has 72) and run at half the input resolution or more: MTUNet-SIWD's 32->4 3x3
    segmentation conv at 256x256 (4.5 ms in float, about 1.7 ms widened in int8), MSHNet w0.5's
    8->8 3x3 convs at full resolution, DNANet w0.25's 4- and 8-output 3x3 convs at full and half
    resolution. Zero filters pad them to 16 outputs; ``graph.widen_conv`` does the (exact)
    rewrite. Widening the lighter 8->1 1x1 heads (8 taps) as well gained nothing measurable
    (AMD EPYC VM, benchmarks/RESULTS.md).
    Returns ``(name, new output channels)`` pairs."""
    out = []
    for n in nodes:
        if n.op != "Conv" or n.in_channels is None or n.groups != 1 or n.in_channels % 4 or n.out_channels >= 16:
            continue
        if n.in_channels * _kernel_taps(n) < WIDEN_MIN_TAPS or n.out_hw is None or n.out_hw[0] * n.out_hw[1] * 4 < full_hw[0] * full_hw[1]:
            continue
        widened = replace(n, out_channels=16)
        if mlas_fast_conv(widened)[0]:
            out.append((n.name, 16))
    return out


SPLIT_MIN_TAPS = 25  # kernel taps of a 2-3 input, 1 output float conv worth splitting per input channel


def conv_input_splits(nodes: Sequence[NodeInfo]) -> list[str]:
    """Float convolutions with 2 or 3 input channels, one output and a large kernel: CBAM's 2->1
    7x7 spatial attention ([mean, max] -> one map), which no int8 kernel takes (input channels not
    a multiple of 4). MLAS runs them as an im2col GEMM with a single output row; one
    single-channel convolution per input channel, summed (``graph.split_conv_inputs``), ran 15%
    faster under ORT_ENABLE_EXTENDED (0.97 -> 0.82 ms at 256x256) and the default INT8 model
    0.5-0.7 ms (2.5%) faster. The FP32 export keeps the single conv: under ORT_ENABLE_ALL, where
    FP32 models run, the split was 3% slower (AMD EPYC VM, benchmarks/RESULTS.md)."""
    return [n.name for n in nodes if n.op == "Conv" and n.groups == 1 and n.out_channels == 1
            and n.in_channels in (2, 3) and _kernel_taps(n) >= SPLIT_MIN_TAPS]


def _kernel_taps(n: NodeInfo) -> int:
    """Kernel positions per output pixel (9 for a 3x3 kernel; 1 where the kernel is unknown)."""
    taps = 1
    for k in n.kernel or ():
        taps *= k
    return taps


def select(nodes: Sequence[NodeInfo], target: str) -> tuple[list[str], list[str], list[dict]]:
    """``(op_types_to_quantize, nodes_to_exclude, decisions)`` for ``target``.

    ``decisions`` has one entry per node of a quantizable op type: where it runs and why. On
    ``cpu`` a Relu that is the only consumer of an int8 convolution is quantized too (its entry
    has ``"follows": conv``): with uint8 activations the quantizer folds it into the convolution's
    output range, so conv1 -> Relu -> conv2 stays in int8 instead of paying a DQ, a float Relu
    and a Q. Every other Relu stays float.
    """
    decisions: list[dict] = []
    exclude: list[str] = []
    if target != "cpu":
        return _select_tensorrt(nodes)
    int8_outputs = {}
    for n in nodes:
        if n.op in CPU_OPS:
            ok, why = mlas_fast_conv(n)
            decisions.append({"node": n.name, "op": n.op, "precision": "int8" if ok else "float", "reason": why})
            if ok:
                int8_outputs[n.outputs[0]] = n.name
            else:
                exclude.append(n.name)
    consumers: dict[str, int] = {}
    for n in nodes:
        for i in n.inputs:
            consumers[i] = consumers.get(i, 0) + 1
    for n in nodes:
        if n.op != "Relu":
            continue
        conv = int8_outputs.get(n.inputs[0])
        if conv is not None and consumers[n.inputs[0]] == 1:
            decisions.append({"node": n.name, "op": n.op, "precision": "int8", "follows": conv,
                              "reason": f"folded into the output range of int8 {conv}"})
        else:
            exclude.append(n.name)
    return list(CPU_OPS) + ["Relu"], exclude, decisions


def trt_int8_conv(n: NodeInfo, graph_input: str | None = None) -> tuple[bool, str]:
    """Whether TensorRT runs convolution ``n`` in int8 (see the module docstring)."""
    if n.in_channels is None:
        return False, "weights are not a constant"
    cin, cout = n.in_channels, n.out_channels
    shape = f"{cin}->{cout} channels, {'x'.join(map(str, n.kernel))}"
    if cin >= TRT_MIN_CHANNELS and cout >= TRT_MIN_CHANNELS:
        return True, f"{shape}: TensorRT int8 kernel"
    if n.groups == 1 and (cin % 8 == 0 or cout % 8 == 0) and len(set(n.kernel)) <= 1 \
            and (max(cin, cout) >= TRT_MIN_CHANNELS or n.inputs[0] == graph_input):
        return True, f"{shape}: TensorRT int8 kernel (a side a multiple of 8)"
    if n.groups > 1 and cout % 8 == 0 and all(k >= 3 for k in n.kernel):
        return True, f"{shape}, {n.groups} groups: TensorRT int8 grouped kernel"
    return False, f"{shape}: no TensorRT int8 kernel for so few channels"


def _select_tensorrt(nodes: Sequence[NodeInfo]) -> tuple[list[str], list[str], list[dict]]:
    """``select`` for ``tensorrt``: convolutions by ``trt_int8_conv``; residual Adds fused into an int8
    convolution get ``"qdq_input"``, the tensor whose Q/DQ ``graph.insert_qdq`` adds."""
    graph_input = nodes[0].inputs[0] if nodes else None
    readers: dict[str, list[NodeInfo]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    producer = {o: n for n in nodes for o in n.outputs}
    decisions, exclude, int8_convs = [], [], {}
    for n in nodes:
        if n.op in TENSORRT_OPS:
            ok, why = trt_int8_conv(n, graph_input)
            decisions.append({"node": n.name, "op": n.op, "precision": "int8" if ok else "float", "reason": why})
            if ok:
                int8_convs[n.outputs[0]] = n.name
            else:
                exclude.append(n.name)
    for n in nodes:
        if n.op != "Add" or len(n.inputs) != 2 or any(r.op == "Sigmoid" for r in readers.get(n.outputs[0], [])):
            continue  # an Add into a Sigmoid is attention: float
        convs = [i for i in n.inputs if i in int8_convs and len(readers[i]) == 1]
        other = [i for i in n.inputs if i not in convs]
        if len(convs) == 1 and len(other) == 1 and other[0] in producer:
            decisions.append({"node": n.name, "op": n.op, "precision": "int8", "qdq_input": other[0],
                              "reason": f"residual input quantized: TensorRT fuses the Add into int8 {int8_convs[convs[0]]}"})
    return list(TENSORRT_OPS), exclude, decisions
