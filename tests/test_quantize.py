"""edgeirst quantize: a freshly built MSHNet (width 0.25) exported with edgeirst.export, calibrated
on the synthetic SIRST-layout fixture, quantized for each target and run through edgeirst's
onnxruntime backend; the TensorRT calibration cache; FP16; metadata; the accuracy guard; user
errors. The TensorRT calibrator tests need tensorrt and a GPU and skip without them."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from test_runtime_helpers import run_cli

pytest.importorskip("onnx")
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory) -> Path:
    """MSHNet width 0.25, random init (seed 0), exported by edgeirst.export at 64x64, dynamic H/W."""
    torch = pytest.importorskip("torch")
    from edgeirst.checkpoint import meta_for
    from edgeirst.export import export_onnx
    from edgeirst.models import create_model

    torch.manual_seed(0)
    model = create_model("mshnet", width=0.25).eval()
    meta = meta_for("mshnet", model, kwargs={"width": 0.25}, input_size=(64, 64), threshold=0.5)
    return export_onnx(model, meta, tmp_path_factory.mktemp("quant") / "mshnet_w025.onnx")


def _quantize(fp32_onnx, synth_root, out, **cfg):
    from edgeirst.quantize import QuantConfig, quantize_model

    cfg = {"data": str(synth_root), "calib_images": 6, "val_split": None, **cfg}
    return quantize_model(fp32_onnx, out, QuantConfig(**cfg), progress=False)


def _qdq(path: Path):
    """(activation Q zero points, {conv name: (weight dtype, weight zero points, weight scale count)})."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    act_zps = [init[n.input[2]] for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in init]
    convs = {}
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] in producer and producer[n.input[1]].op_type == "DequantizeLinear":
            dq = producer[n.input[1]]
            convs[n.name] = (init[dq.input[0]].dtype, init[dq.input[2]], init[dq.input[1]].size)
    return act_zps, convs, m


def _run(path: Path, image: np.ndarray) -> np.ndarray:
    from edgeirst.preprocess import prepare
    from edgeirst.runtime import load_backend

    with load_backend(path, "onnxruntime") as be:
        x, _ = prepare(image, be.meta)
        return be.infer(x[None])["seg"]


def _sample(synth_root):
    from edgeirst.data import SirstDataset

    return SirstDataset(synth_root, "val")[0].image


def test_cpu_target_is_uint8_activations_and_symmetric_int8_weights(fp32_onnx, synth_root, tmp_path):
    r = _quantize(fp32_onnx, synth_root, tmp_path / "cpu.onnx", target="cpu")
    assert (tmp_path / "cpu.onnx").stat().st_mode & 0o777 == 0o644  # written like every edgeirst file, not 0600
    assert not list(tmp_path.glob(".*.tmp"))
    act_zps, convs, _ = _qdq(r.path)
    assert act_zps and all(z.dtype == np.uint8 for z in act_zps)
    assert convs, "no convolution was quantized"
    for name, (wtype, wzp, n_scales) in convs.items():
        assert wtype == np.int8 and not np.any(wzp), name  # symmetric: zero point 0
        assert n_scales > 1 and n_scales == wzp.size, name  # per output channel
    # the CPU policy quantizes exactly the convolutions it reported as int8
    int8 = {d["node"] for d in r.decisions if d["precision"] == "int8" and d["op"] == "Conv"}
    assert set(convs) == int8
    relus = [d for d in r.decisions if d["op"] == "Relu" and d["precision"] == "int8"]
    assert relus and all(d["follows"] in int8 for d in relus)  # folded into their conv's output range
    assert any(d["precision"] == "float" and "output channels" in d["reason"] for d in r.decisions)
    out = _run(r.path, _sample(synth_root))
    ref = _run(fp32_onnx, _sample(synth_root))
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.9


def test_tensorrt_target_follows_tensorrts_qdq_placement(fp32_onnx, synth_root, tmp_path):
    """Symmetric int8 on the inputs of the convolutions TensorRT has int8 kernels for (weights per
    output channel), nothing on their outputs, float biases, attention float, a residual Add's
    other input quantized; the file passes the TensorRT layout check."""
    from edgeirst.quantize.qdq_check import tensorrt_layout_problems
    from edgeirst.runtime.calibration import parse_cache

    r = _quantize(fp32_onnx, synth_root, tmp_path / "trt.onnx", target="tensorrt", method="entropy")
    act_zps, convs, m = _qdq(r.path)
    assert tensorrt_layout_problems(r.path) == []
    assert act_zps and all(z.dtype == np.int8 and not np.any(z) for z in act_zps)
    int8 = {d["node"] for d in r.decisions if d["op"] == "Conv" and d["precision"] == "int8"}
    n_conv = sum(n.op_type == "Conv" for n in m.graph.node)
    assert set(convs) == int8 and 2 * len(convs) >= n_conv, (len(convs), n_conv)
    assert all(w == np.int8 and not np.any(z) for w, z, _ in convs.values())  # per channel: the layout check
    q = ModelMeta.from_json({p.key: p.value for p in m.metadata_props}["edgeirst"]).quant
    assert (q["int8_convs"], q["convs"]) == (len(convs), n_conv)
    producer = {o: n for n in m.graph.node for o in n.output}
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in producer and producer[n.input[0]].op_type == "Conv"
                   for n in m.graph.node)  # inputs only
    assert not any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear"
                   for n in m.graph.node if n.op_type in ("Sigmoid", "Mul") for i in n.input)  # attention float
    fused = [d for d in r.decisions if d["op"] == "Add" and d["precision"] == "int8"]
    assert fused, "no residual Add fused into an int8 convolution"
    for d in fused:
        add = next(n for n in m.graph.node if n.name == d["node"])
        kinds = [producer[i].op_type for i in add.input]
        assert kinds.count("DequantizeLinear") == 1 and kinds.count("Conv") == 1, kinds
    assert r.calibration_cache is not None and r.calibration_cache.is_file()
    _, calibrator, scales = parse_cache(r.calibration_cache.read_text())
    assert calibrator == "EntropyCalibration2" and "images" in scales
    out, ref = _run(r.path, _sample(synth_root)), _run(fp32_onnx, _sample(synth_root))
    assert np.isfinite(out).all() and np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.9


def test_qdq_check_names_what_tensorrt_cannot_take(fp32_onnx, synth_root, tmp_path):
    """The shipped CPU INT8 default: uint8 activations, non-zero zero points, int32 biases; a weight
    scaled per channel on the wrong axis is found too."""
    import onnx

    from edgeirst.quantize.qdq_check import require_tensorrt_layout, tensorrt_layout_problems
    from edgeirst.weights import shipped_model

    problems = tensorrt_layout_problems(shipped_model("default-int8"))
    quantizers = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(shipped_model("default-int8"))).graph.node)
    assert quantizers > 50  # every one uint8: the CPU target's activations
    assert problems[0] == f"{quantizers} QuantizeLinear uint8 node(s) (TensorRT takes int8 only)", problems
    assert any(re.match(r"[1-9]\d* non-zero zero point\(s\)", p) for p in problems)
    assert any("int32" in p for p in problems)
    assert tensorrt_layout_problems(shipped_model("default")) == []  # no Q/DQ at all
    r = _quantize(fp32_onnx, synth_root, tmp_path / "trt.onnx", target="tensorrt", calib_images=2)
    m = onnx.load(str(r.path))
    _, convs, _ = _qdq(r.path)
    producer = {o: n for n in m.graph.node for o in n.output}
    conv = next(n for n in m.graph.node if n.name in convs)
    dq = producer[conv.input[1]]
    del dq.attribute[:]
    dq.attribute.append(onnx.helper.make_attribute("axis", 1))
    assert tensorrt_layout_problems(m) == [f"1 weight(s) scaled per channel on an axis other than the output "
                                           f"channels (first: {conv.name})"]
    with pytest.raises(EdgeirstError, match="not in TensorRT's INT8 layout"):
        require_tensorrt_layout(m, "model")


def test_fallback_keeps_at_most_half_float():
    from edgeirst.quantize.model import _fallback_sizes

    assert _fallback_sizes(106, 6) == [2, 4, 7, 14, 27, 53]
    assert _fallback_sizes(10, 6) == [1, 2, 3, 5] and _fallback_sizes(1, 6) == [] and _fallback_sizes(40, 1) == [20]


def test_a_node_kept_float_takes_the_nodes_sharing_its_weight_along():
    """MSHNet's channel attention runs fc1/fc2 on the average and the max pool: two Conv nodes over
    one weight. Keeping one float alone would leave it reading the int8 copy the other needs."""
    from edgeirst.quantize.graph import describe_nodes, load_edgeirst_onnx
    from edgeirst.quantize.model import _most_sensitive
    from edgeirst.weights import resolve_model

    nodes = describe_nodes(*load_edgeirst_onnx(resolve_model("default", "onnxruntime")))
    fc2 = "/model/middle/middle.1/ca/fc2/Conv"
    pair = [fc2, "/model/middle/middle.1/ca/fc2_1/Conv"]
    other = next(n.name for n in nodes if n.op == "Conv" and "/ca/" not in n.name)
    ranked = [fc2, other, pair[1]]
    assert _most_sensitive(ranked, 1, nodes) == pair  # the first group always, whole
    assert _most_sensitive(ranked, 2, nodes) == pair  # the next does not fit
    assert _most_sensitive([other, fc2, pair[1]], 2, nodes) == [other]  # the pair would cross the limit: stop
    assert _most_sensitive(ranked, 3, nodes) == pair + [other]
    assert _most_sensitive([fc2, other], 3, nodes) == [fc2, other]  # a sibling no candidate is float already


def test_cpu_rewrites_are_exact_and_reach_the_fast_int8_kernel(fp32_onnx, synth_root, tmp_path):
    """Stacked sibling convolutions, rewritten channel reductions and split attention convs compute
    what the export does."""
    import onnx
    import onnxruntime as ort

    from edgeirst.preprocess import prepare
    from edgeirst.quantize import graph, policy
    from edgeirst.quantize.model import _cpu_rewrites

    proto, meta = graph.load_edgeirst_onnx(fp32_onnx)
    nodes = graph.describe_nodes(proto, meta)
    path, rewrites = _cpu_rewrites(fp32_onnx, nodes, meta, tmp_path / "rewritten.onnx")
    merged, reductions, split = rewrites.merged, rewrites.reductions, rewrites.split
    assert merged and reductions > 0
    new_nodes = graph.describe_nodes(onnx.load(str(path)), meta)
    fast = {n.name for n in new_nodes if policy.mlas_fast_conv(n)[0]}
    assert set(merged) <= fast  # each stack now meets the int8 kernel; its parts did not
    assert not {p for parts in merged.values() for p in parts} & {n.name for n in new_nodes}
    ops = {n.op for n in new_nodes}
    assert "ReduceMean" not in ops and "ReduceMax" not in ops
    # the 2->1 7x7 spatial-attention convs: one single-channel conv per input, summed, no Concat left
    by_name = {n.name: n for n in nodes}
    assert split and all(by_name[n].in_channels == 2 and by_name[n].out_channels == 1 for n in split)
    names = {n.name for n in new_nodes}
    assert not set(split) & names and all({f"{n}/in0", f"{n}/in1"} <= names for n in split)
    assert len([n for n in new_nodes if n.op == "Concat"]) == len([n for n in nodes if n.op == "Concat"]) - len(split)
    x = prepare(_sample(synth_root), meta)[0][None]
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
            for p in (fp32_onnx, path))
    assert np.abs(a - b).max() < 1e-5


@pytest.mark.parametrize("channels", [2, 3])
def test_split_conv_inputs_without_a_concat_splits_the_input(channels):
    """A 2- or 3-input 7x7 conv whose input is not a Concat gets a Split; the sum of the
    single-channel convs (bias once) equals the conv."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgeirst.quantize import graph

    rng = np.random.default_rng(channels)
    w = rng.standard_normal((1, channels, 7, 7)).astype(np.float32)
    proto = helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="sa", pads=[3] * 4)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 32, 32])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([0.5], np.float32), "b")]),
        opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, channels, 32, 32)).astype(np.float32)
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    graph.split_conv_inputs(proto, "sa")
    onnx.checker.check_model(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Split"] + ["Conv"] * channels + ["Add" if channels == 2 else "Sum"]
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(got - want).max() < 1e-4


def test_widening_takes_mshnets_8_channel_3x3_convs_not_its_1x1_heads(tmp_path):
    """MSHNet w0.5 has 8->8 3x3 convs (72 taps per output pixel) at full resolution: widened to
    16 they run int8 (5% of the whole model on the AMD EPYC VM); its 8->1 1x1 heads (8 taps) and
    the 2->1 7x7 attention convs (2 input channels) are not widened."""
    torch = pytest.importorskip("torch")

    from edgeirst.checkpoint import meta_for
    from edgeirst.export import export_onnx
    from edgeirst.models import create_model
    from edgeirst.quantize import graph, policy

    torch.manual_seed(0)
    model = create_model("mshnet", width=0.5).eval()
    meta = meta_for("mshnet", model, kwargs={"width": 0.5}, input_size=(64, 64), threshold=0.5)
    proto, meta = graph.load_edgeirst_onnx(export_onnx(model, meta, tmp_path / "mshnet.onnx"))
    nodes = {n.name: n for n in graph.describe_nodes(proto, meta)}
    wide = dict(policy.conv_widenings(list(nodes.values()), (64, 64)))
    assert "/model/enc0/enc0.0/conv1/Conv" in wide and set(wide.values()) == {16}
    for name in wide:
        n = nodes[name]
        assert n.out_channels < 16 and n.in_channels * int(np.prod(n.kernel)) >= policy.WIDEN_MIN_TAPS
        assert n.out_hw[0] * 2 >= 64
    heads = [n for n in nodes if "/heads" in n and nodes[n].op == "Conv"]
    attention = [n for n in nodes if n.endswith("/sa/conv/Conv")]
    assert heads and attention and not (set(heads) | set(attention)) & set(wide)


@pytest.mark.slow  # 10 s: a quantization and two sessions (keeps the default run under 10 minutes)
def test_heavy_narrow_convs_are_widened_exactly_and_run_int8(synth_root, tmp_path):
    """MTUNet-SIWD's 32->4 3x3 segmentation conv at full resolution misses the fast int8 kernel
    by its 4 outputs: zero filters widen it to 16, a Slice (after its Relu) gives the 4 back;
    float outputs are unchanged and the widened conv is quantized."""
    torch = pytest.importorskip("torch")
    import onnx
    import onnxruntime as ort

    from edgeirst.checkpoint import meta_for
    from edgeirst.export import export_onnx
    from edgeirst.models import create_model
    from edgeirst.preprocess import prepare
    from edgeirst.quantize import graph, policy
    from edgeirst.quantize.model import _cpu_rewrites

    torch.manual_seed(0)
    model = create_model("mtunet-siwd", width=0.25).eval()
    meta = meta_for("mtunet-siwd", model, kwargs={"width": 0.25}, input_size=(64, 64), threshold=0.5)
    src = export_onnx(model, meta, tmp_path / "siwd.onnx")
    proto, meta = graph.load_edgeirst_onnx(src)
    nodes = graph.describe_nodes(proto, meta)
    wide = dict(policy.conv_widenings(nodes, (64, 64)))
    assert "/model/seg/conv/conv/Conv" in wide and set(wide.values()) == {16}
    by_name = {n.name: n for n in nodes}
    assert all(by_name[n].out_channels < 16 and by_name[n].out_hw == (64, 64) for n in wide)
    path, rewrites = _cpu_rewrites(src, nodes, meta, tmp_path / "rewritten.onnx")
    widened = rewrites.widened
    assert widened == wide
    new_nodes = {n.name: n for n in graph.describe_nodes(onnx.load(str(path)), meta)}
    assert all(policy.mlas_fast_conv(new_nodes[n])[0] for n in wide)
    x = prepare(_sample(synth_root), meta)[0][None]
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})
            for p in (src, path))
    assert all(np.abs(u - v).max() < 1e-5 for u, v in zip(a, b))
    result = _quantize(src, synth_root, tmp_path / "siwd.int8.onnx")
    assert result.to_dict()["decisions"] and any(
        d["node"] in wide and d["precision"] == "int8" and "widen" in d["reason"] for d in result.decisions)
    _, convs, _ = _qdq(result.path)
    assert set(wide) <= set(convs)


def test_calibration_cache_is_written_and_parses(fp32_onnx, synth_root, tmp_path):
    import onnx

    from edgeirst.quantize import write_calibration_cache
    from edgeirst.runtime.calibration import parse_cache, trt_version_tag

    path = write_calibration_cache(fp32_onnx, tmp_path / "model.calib", str(synth_root), "train", calib_images=4,
                                   progress=False, trt_version="8.6.1")
    text = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644
    lines = text.splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert all(re.fullmatch(r".+: [0-9a-f]{8}", ln) for ln in lines[1:])
    tag, _, scales = parse_cache(text)
    assert tag == "8601" and trt_version_tag("10.14.1") == "101401"
    assert len(scales) == len(lines) - 1  # one scale per tensor, no repeats
    m = onnx.load(str(fp32_onnx))
    tensors = {m.graph.input[0].name} | {o for n in m.graph.node for o in n.output}
    assert set(scales) <= tensors and {"images", "seg"} <= set(scales)
    assert all(math.isfinite(s) and s > 0 for s in scales.values())
    # the input is normalised pixels: its amax / 127 is the largest |(p - mean) / std| / 127
    meta = ModelMeta.from_json({p.key: p.value for p in m.metadata_props}["edgeirst"])
    assert scales["images"] <= max(abs((0 - meta.mean[0]) / meta.std[0]), abs((1 - meta.mean[0]) / meta.std[0])) / 127 * 1.01


def test_fp16_output_runs_and_keeps_io_float32(fp32_onnx, synth_root, tmp_path):
    import onnx

    r = _quantize(fp32_onnx, synth_root, tmp_path / "fp16.onnx", precision="fp16")
    m = onnx.load(str(r.path))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer)
    out, ref = _run(r.path, _sample(synth_root)), _run(fp32_onnx, _sample(synth_root))
    assert out.dtype == np.float32 and np.abs(out - ref).max() < 2e-2


def test_metadata_says_precision_target_calibration_and_checked_metrics(fp32_onnx, synth_root, tmp_path):
    from edgeirst.runtime import load_backend

    r = _quantize(fp32_onnx, synth_root, tmp_path / "m.onnx", val_split="val", calib_images=5)
    with load_backend(r.path) as be:
        meta = be.meta
    assert meta.name == "mshnet" and meta.kwargs == {"width": 0.25}
    q = meta.quant
    assert q["precision"] == "int8" and q["target"] == "cpu"
    assert q["calibration"] == {"data": str(synth_root), "split": "train", "images": 5, "method": "minmax"}
    assert q["checked"]["split"] == "val" and set(q["checked"]["metrics_fp32"]) >= {"iou", "pd", "fa"}
    assert meta.metrics == r.metrics_quant and meta.metrics["images"] == 4
    assert r.within_budget is not None and set(r.drops) == {"iou", "pd"}
    # the guard measured the model under the session settings it ships with: `eval` agrees
    from edgeirst.quantize.guard import evaluate

    measured = evaluate(r.path, str(synth_root), "val", progress=False)
    assert measured == {k: meta.metrics[k] for k in measured}


def test_session_hints_option_replaces_the_metadatas_settings():
    """The quantize guard checks candidates under the settings the model will ship with
    (``session_hints``); ``{}`` opens a plain session, ``None`` the metadata's."""
    import onnxruntime as ort

    from edgeirst.runtime import load_backend

    with load_backend("default-int8", "onnxruntime", providers="cpu") as recorded, \
            load_backend("default-int8", "onnxruntime", providers="cpu", session_hints={}) as plain:
        assert recorded.meta.quant["onnxruntime"]["graph_optimization_level"] == "extended"
        assert recorded.session.get_session_options().graph_optimization_level == \
            ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        assert plain.session.get_session_options().graph_optimization_level == \
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.mark.slow  # 15 s: two guarded quantizations (keeps the default run under 10 minutes)
def test_a_model_trained_on_the_val_split_passes_that_on(fp32_onnx, synth_root, tmp_path):
    """The FP32 model's val metrics say ``in_training`` (the shipped default trained on
    train+val): the INT8 model's, measured on that same split, say so too; on another split not."""
    from edgeirst.quantize import graph
    from edgeirst.runtime import load_backend

    proto, meta = graph.load_edgeirst_onnx(fp32_onnx)
    src = graph.write_model(proto, meta.replace(metrics={"iou": 0.5, "split": "val", "in_training": True}),
                            tmp_path / "trained_on_val.onnx")
    on_val = _quantize(src, synth_root, tmp_path / "a.onnx", val_split="val", calib_images=4)
    on_train = _quantize(src, synth_root, tmp_path / "b.onnx", val_split="train", calib_images=4)
    with load_backend(on_val.path) as a, load_backend(on_train.path) as b:
        assert a.meta.metrics["in_training"] is True and a.meta.metrics["split"] == "val"
        assert "in_training" not in b.meta.metrics and b.meta.metrics["split"] == "train"


def test_eval_and_run_accept_the_quantized_model(fp32_onnx, synth_root, tmp_path):
    r = _quantize(fp32_onnx, synth_root, tmp_path / "q.onnx")
    p = run_cli("eval", r.path, "--data", synth_root, "--split", "val", "--json", "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["images"] == 4
    p = run_cli("run", r.path, "--source", synth_root / "images", "--jsonl", "-", "--max-frames", "2", "-q")
    assert p.returncode == 0, p.stderr
    assert len([ln for ln in p.stdout.splitlines() if ln.startswith("{")]) == 2


# Real SIRST val images on which INT8 of the default model (calibrated on the first 8 train
# images) loses IoU, measured once: the guard then has work to do, deterministically.
HARD_VAL = ("Misc_332", "Misc_132", "Misc_98", "Misc_187", "Misc_135", "Misc_122", "Misc_51", "Misc_358",
            "Misc_168", "Misc_252", "Misc_215", "Misc_340")


@pytest.fixture(scope="module")
def sirst_subset(sirst_root, tmp_path_factory) -> Path:
    """HARD_VAL as the val split and the first 8 SIRST train images, in their own SIRST-layout folder."""
    from edgeirst.data.sirst import read_split, resolve_split

    root = tmp_path_factory.mktemp("sirst_hard")
    for sub in ("images", "masks", "idx"):
        (root / sub).mkdir()
    splits = {"val": list(HARD_VAL), "train": read_split(resolve_split(sirst_root, "train"))[:8]}
    for split, ids in splits.items():
        (root / "idx" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for i in ids:
            for sub in ("images", "masks"):
                for f in (sirst_root / sub).glob(f"{i}[._]*"):
                    (root / sub / f.name).symlink_to(f)
    return root


@pytest.mark.slow  # 25-55 s on the 2-core VM: several quantize + eval rounds of the shipped model
def test_guard_keeps_the_most_sensitive_nodes_float_until_the_budget_holds(sirst_subset, tmp_path):
    """The shipped default on real images with a zero IoU/nIoU budget: INT8 loses a little on these
    images, so the guard must rank nodes by measured SQNR loss and keep the worst float, re-checking,
    never more than half of them; still over budget then, it writes nothing and says the drops."""
    from edgeirst.quantize import OverBudget, QuantConfig, quantize_model

    cfg = QuantConfig(data=str(sirst_subset), calib_images=8, val_split="val", max_drop={"iou": 0.0, "niou": 0.0},
                      max_fallback_rounds=4)
    out = tmp_path / "g.onnx"
    try:
        r = quantize_model("default", out, cfg, progress=False)
    except OverBudget as e:
        assert not out.exists() and not list(tmp_path.iterdir())
        assert max(e.drops.values()) > 0 and "nothing written" in str(e) and "kept float" in str(e)
        # the last round: half, not all (whole weight-sharing pairs, so one fewer where a pair would cross it)
        assert e.candidates > 10 and e.candidates // 2 - 1 <= len(e.kept_float) <= e.candidates // 2
        return
    assert r.kept_float, f"INT8 did not lose IoU/nIoU on these images ({r.drops}); the guard was not exercised"
    scored = [d for d in r.decisions if d.get("sqnr_drop_db") is not None]
    assert len(scored) > 10 and all(d["sqnr_drop_db"] >= 0 for d in scored)
    worst = max(scored, key=lambda d: d["sqnr_drop_db"])
    assert worst["node"] == r.kept_float[0]  # the most sensitive node goes first
    kept = [d for d in r.decisions if d["node"] in r.kept_float]
    assert all(d["precision"] == "float" and d["reason"] == "kept float by the accuracy guard" for d in kept)
    _, convs, _ = _qdq(r.path)
    assert not set(r.kept_float) & set(convs)  # really float in the file
    assert r.within_budget and all(v <= 1e-12 for v in r.drops.values())


@pytest.mark.slow  # about 40 s: one quantize + two evals + the sensitivity pass
def test_over_budget_writes_nothing_and_says_the_drops(sirst_subset, tmp_path):
    """No fallback round allowed and a zero budget these images miss (see the test above): the
    guard raises OverBudget with the measured drops, and no file appears."""
    from edgeirst.quantize import OverBudget, QuantConfig, quantize_model

    cfg = QuantConfig(data=str(sirst_subset), calib_images=8, val_split="val", max_drop={"iou": 0.0, "niou": 0.0},
                      max_fallback_rounds=0)
    with pytest.raises(OverBudget, match="nothing written") as e:
        quantize_model("default", tmp_path / "g.onnx", cfg, progress=False)
    assert max(e.value.drops.values()) > 0 and e.value.kept_float == [] and e.value.candidates > 10
    assert not list(tmp_path.iterdir())


def test_cli_summarises_decisions_lists_them_with_v_and_writes_the_model(fp32_onnx, synth_root, tmp_path):
    out = tmp_path / "cli.int8.onnx"
    args = ("quantize", fp32_onnx, "--data", synth_root, "--calib-images", "4", "--val-split", "none", "--out", out, "-q")
    p = run_cli(*args, timeout=120)
    assert p.returncode == 0, p.stderr
    assert out.is_file() and f"wrote {out}" in p.stdout
    counted = re.findall(r"^\s+(int8|float)\s+(\w+ \d+(?:, \w+ \d+)*)$", p.stderr, re.M)  # "  int8  Conv 12, Relu 9"
    assert sorted(precision for precision, _ in counted) == ["float", "int8"] and len(p.stderr.splitlines()) == 3
    verbose = run_cli(*args, "-v", timeout=120)  # one line per node: precision, op, node (reason)
    nodes = re.findall(r"^\s+(int8|float)\s+(\w+)\s+\S+\s+\(", verbose.stderr, re.M)
    assert len(nodes) > 3
    for precision, ops in counted:
        for part in ops.split(", "):
            op, n = part.split(" ")
            assert nodes.count((precision, op)) == int(n), (precision, op)


@pytest.mark.parametrize("case", ["missing-data", "not-onnx", "no-metadata", "int8-without-data", "bad-method",
                                  "output-is-input", "bad-budget"])
def test_bad_inputs_give_one_line_and_exit_2(case, fp32_onnx, synth_root, tmp_path):
    import onnx

    args = [fp32_onnx, "--data", synth_root, "--out", tmp_path / "o.onnx"]
    if case == "missing-data":
        args[2] = tmp_path / "nope"
    elif case == "not-onnx":
        bogus = tmp_path / "model.onnx"
        bogus.write_text("not a protobuf")
        args[0] = bogus
    elif case == "no-metadata":
        m = onnx.load(str(fp32_onnx))
        del m.metadata_props[:]
        args[0] = tmp_path / "bare.onnx"
        onnx.save(m, str(args[0]))
    elif case == "int8-without-data":
        args = [fp32_onnx, "--out", tmp_path / "o.onnx"]
    elif case == "bad-method":
        args += ["--method", "kl"]
    elif case == "output-is-input":
        copy = tmp_path / "same.onnx"
        shutil.copy(fp32_onnx, copy)
        args = [copy, "--data", synth_root, "--out", tmp_path / "." / "same.onnx"]
    elif case == "bad-budget":
        args += ["--max-drop", "iou=abc"]
    p = run_cli("quantize", *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr


def test_config_checks_where_values_enter():
    from edgeirst.quantize import QuantConfig, parse_max_drop

    assert parse_max_drop("iou=0.02, fa=1e-6") == {"iou": 0.02, "fa": 1e-6}
    for bad in ("iou", "speed=1", "iou=x"):
        with pytest.raises(EdgeirstError):
            parse_max_drop(bad)
    with pytest.raises(EdgeirstError, match="precision"):
        QuantConfig(precision="int4", data=".").check()
    with pytest.raises(EdgeirstError, match="--data"):
        QuantConfig(precision="fp16").check()


def test_budget_line_shows_each_change_at_its_own_scale():
    """Fa lives at 1e-6: a rise of 2e-5 over a 1e-5 budget must not print as 0.0000."""
    from edgeirst.quantize import QuantConfig
    from edgeirst.quantize.model import _drop_text

    cfg = QuantConfig(max_drop={"iou": 0.01, "pd": 0.011, "fa": 1e-5})
    text = _drop_text({"iou": 0.6778, "pd": 0.9381, "fa": 1.6e-6}, {"iou": 0.6736, "pd": 0.9381, "fa": 2.22e-5}, cfg)
    assert text == "iou -0.0042 (budget 0.01), pd +0 (budget 0.011), fa +2.06e-05 (budget 1e-05)"


def test_cache_header_is_retargeted_to_the_running_tensorrt():
    from edgeirst.runtime.calibration import retarget_cache

    cache = b"TRT-8502-EntropyCalibration2\nimages: 3c010204\n"
    assert retarget_cache(cache, "8.6.1") == b"TRT-8601-EntropyCalibration2\nimages: 3c010204\n"
    with pytest.raises(EdgeirstError):
        retarget_cache(b"images: 3c010204\n", "8.6.1")


@pytest.mark.trt
@pytest.mark.skipif(not HAS_TRT, reason="tensorrt is not installed (Jetson / GPU machines only)")
def test_tensorrt_calibrates_from_images_then_replays_the_cache(fp32_onnx, synth_root, tmp_path):
    import tensorrt as trt

    from edgeirst.runtime.calibration import parse_cache
    from edgeirst.runtime.engine_build import BuildOptions, engine_from_onnx

    if int(trt.__version__.split(".")[0]) >= 10:
        pytest.skip("implicit INT8 calibration is TensorRT 8.x only")
    cache = tmp_path / "calib.cache"
    opts = BuildOptions(int8=True, calibration_cache=str(cache), calibration_data=str(synth_root),
                        calibration_images=4, max_hw=(128, 128))
    engine_from_onnx(fp32_onnx, tmp_path / "a.engine", opts)
    tag, calibrator, scales = parse_cache(cache.read_text())
    assert calibrator == "EntropyCalibration2" and scales
    replay = BuildOptions(int8=True, calibration_cache=str(cache), max_hw=(128, 128))
    before = cache.read_bytes()
    engine_from_onnx(fp32_onnx, tmp_path / "b.engine", replay)  # no images needed now
    assert cache.read_bytes() == before
