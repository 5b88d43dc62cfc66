"""``quantize_model`` and ``write_calibration_cache``: an exported FP32 model in, a
self-describing INT8 (QDQ) or FP16 model out, checked against the FP32 model on a val split."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

# the submodules by their own names, not through the package whose __init__ imports this file
import edgeirst.quantize.calibration as calibration
import edgeirst.quantize.graph as graph
import edgeirst.quantize.guard as guard
import edgeirst.quantize.policy as policy
from edgeirst.errors import EdgeirstError
from edgeirst.io import ONNX, check_output, os_error, refuse_input_as_output, write_text
from edgeirst.meta import ModelMeta
from edgeirst.quantize.config import OverBudget, QuantConfig, QuantResult
from edgeirst.quantize.fp16 import convert_fp16
from edgeirst.quantize.int8 import quantize_int8
from edgeirst.quantize.qdq_check import require_tensorrt_layout
from edgeirst.runtime.backends import resolve_model
from edgeirst.runtime.backends.onnxruntime import session_options
from edgeirst.runtime.calibration import DEFAULT_TRT_VERSION, calibration_inputs, format_cache

# Session settings the quantized CPU model runs fastest with, carried in its metadata and
# applied by edgeirst's onnxruntime backend (benchmarks/quantize_speed.py measures them):
# ORT_ENABLE_EXTENDED keeps onnxruntime from re-laying the graph out (NCHWc for the float convs,
# NHWC for the int8 ones, with transposes and slow channel broadcasts between the attention ops);
# without EnsureUniqueDQForNodeUnit a tensor read by several float ops is dequantized once,
# not once per reader (outputs are bit-identical either way).
CPU_SESSION_HINTS: dict = {"graph_optimization_level": "extended", "disabled_optimizers": ["EnsureUniqueDQForNodeUnit"]}
# Which layout wins depends on the model: ORT_ENABLE_ALL's NHWC int8 convolutions and NCHWc
# bilinear upsampling pay off where wide int8 decoders meet Resize (MTUNet-SIWD: 0.71x of FP32
# vs 0.89x under EXTENDED), not among MSHNet's attention broadcasts. Each INT8 model is timed
# under these and records the fastest; the first stays unless another is clearly faster.
CPU_SESSION_CANDIDATES: tuple[dict, ...] = (
    CPU_SESSION_HINTS,
    {"graph_optimization_level": "all", "disabled_optimizers": ["EnsureUniqueDQForNodeUnit", "NchwcTransformer"]},
    {"graph_optimization_level": "all", "disabled_optimizers": ["EnsureUniqueDQForNodeUnit"]},
)
CLEARLY_FASTER = 0.95  # another candidate must take at most this fraction of the first one's time


def fastest_session_hints(model: Path, x, candidates: Sequence[dict] = CPU_SESSION_CANDIDATES, rounds: int = 20,
                          reps: int = 3) -> tuple[dict, dict[int, float]]:
    """Time ``model`` on input ``x`` (one real image) under each hint set, interleaved, one
    intra-op thread; return the fastest hint set and each candidate's median ms by index."""

    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(model), session_options(ort, 1, h), providers=["CPUExecutionProvider"],
                                     disabled_optimizers=list(h.get("disabled_optimizers", [])))
                for h in candidates]
    name = sessions[0].get_inputs()[0].name
    for s in sessions:
        for _ in range(2):  # the first runs allocate
            s.run(None, {name: x})
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):  # interleaved: every candidate sees the same machine states
        for i, s in enumerate(sessions):
            for _ in range(reps):
                t0 = time.perf_counter()
                s.run(None, {name: x})
                times[i].append((time.perf_counter() - t0) * 1e3)
    med = {i: float(np.median(t)) for i, t in enumerate(times)}
    best = min(med, key=med.get)
    if med[best] > CLEARLY_FASTER * med[0]:
        best = 0
    return dict(candidates[best]), med


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _resolve(model: str | Path, out: str | Path, suffix: str | None = ".onnx",
             kind: str | None = ONNX) -> tuple[Path, Path]:
    """The input model file and the output path, refusing an output that is the input."""

    src = resolve_model(model, "onnxruntime")
    dst = Path(out).expanduser()
    if suffix and dst.suffix.lower() != suffix:
        raise EdgeirstError(f"output {dst} must be a {suffix} file")
    if dst.is_dir():
        raise EdgeirstError(f"output {dst} is a directory; pass a file name ending in .onnx")
    refuse_input_as_output(dst, src, option="output")
    check_output(dst, kind)  # now, not after calibrating: a link, or a model of another kind, is refused
    return src, dst


@dataclass
class _Job:
    """One quantization: what every step reads."""

    src: Path  # the FP32 model given
    dst: Path  # the file to write
    float_model: Path  # ``src`` after onnxruntime's pre-processing (and the CPU rewrites)
    nodes: Sequence[graph.NodeInfo]
    meta: ModelMeta
    cfg: QuantConfig
    tmpdir: Path
    progress: bool
    session: dict | None = None  # the onnxruntime CPU settings the result ships with: the guard checks under them


@dataclass
class _Rewrites:
    """What ``_cpu_rewrites`` changed: convolutions stacked (new name -> the merged ones), channel
    reductions rewritten, convolutions widened (name -> outputs), convolutions split per input."""

    merged: dict[str, list[str]] = field(default_factory=dict)
    reductions: int = 0
    widened: dict[str, int] = field(default_factory=dict)
    split: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.merged or self.reductions or self.widened or self.split)


@dataclass
class _Checked:
    """The accuracy guard's outcome: the model kept, its metrics against FP32's on the val split
    (None without a guard), whether they hold the budget, and the nodes it kept float."""

    path: Path
    fp32: dict | None = None
    got: dict | None = None
    within: bool | None = None
    kept: list[str] = field(default_factory=list)


def quantize_model(model: str | Path, out: str | Path, cfg: QuantConfig | None = None,
                   progress: bool = True) -> QuantResult:
    """Quantize ``model`` (an ``edgeirst export`` ONNX file or a shipped name) into ``out``.

    INT8: calibrate on ``cfg.calib_images`` real images of ``cfg.split``, write QDQ for
    ``cfg.target``, then (with ``cfg.val_split``) compare with the FP32 model on the val split;
    over budget, keep the most sensitive nodes float (at most half of them) until the drop holds;
    when it never does, raise ``OverBudget`` with the drops and write nothing. FP16: convert,
    then the same check.
    """
    cfg = (cfg or QuantConfig()).check()
    src, dst = _resolve(model, out)
    proto, meta = graph.load_edgeirst_onnx(src)
    with tempfile.TemporaryDirectory(prefix="edgeirst-quant-") as tmp:
        try:
            return _quantize_in(Path(tmp), src, dst, meta, cfg, progress)
        except OSError as e:  # the working copies in tmp (the output itself is written by edgeirst.io)
            raise os_error(e, e.filename or f"{tmp} (quantize's working copies)") from None


def _quantize_in(tmpdir: Path, src: Path, dst: Path, meta: ModelMeta, cfg: QuantConfig,
                 progress: bool) -> QuantResult:
    """The quantization itself, its working copies in ``tmpdir``."""
    float_model = graph.preprocess(src, tmpdir / "float.onnx")
    job = _Job(src, dst, float_model, graph.describe_nodes(graph_proto(float_model), meta), meta, cfg, tmpdir,
               progress)
    if cfg.precision == "int8":
        rewrites = _Rewrites()
        if cfg.target == "cpu":
            rewritten, rewrites = _cpu_rewrites(float_model, job.nodes, meta, tmpdir / "float_cpu.onnx")
            if rewrites:
                job = replace(job, float_model=rewritten, nodes=graph.describe_nodes(graph_proto(rewritten), meta))
        result = _int8(job, rewrites)
    else:
        result = _fp16(job)
    return result


def _cpu_rewrites(float_model: Path, nodes: Sequence[graph.NodeInfo], meta: ModelMeta,
                  out: Path) -> tuple[Path, _Rewrites]:
    """Exact float rewrites for onnxruntime's CPU kernels: stack sibling convolutions that only
    together reach the fast int8 kernel (``policy.conv_merges``), widen heavy narrow ones with
    zero filters (``policy.conv_widenings``), turn channel reductions into a 1x1 Conv / Split +
    Max (``graph.channel_reductions``) and split the float 2->1 attention convs per input
    channel (``policy.conv_input_splits``). Returns the model and what changed."""
    import onnx

    proto = graph_proto(float_model)
    merged = {}
    for names, new in policy.conv_merges(nodes):
        if graph.mergeable(proto, names):
            graph.merge_convs(proto, names, new)
            merged[new] = list(names)
    stacked = {n for names in merged.values() for n in names}
    widened = {}
    for name, width in policy.conv_widenings(nodes, tuple(meta.input_size)):
        if name not in stacked:
            graph.widen_conv(proto, name, width)
            widened[name] = width
    reductions = graph.channel_reductions(proto, graph.tensor_channels(proto, meta))
    split = [name for name in policy.conv_input_splits(nodes) if name not in stacked
             and graph.split_conv_inputs(proto, name)]
    rewrites = _Rewrites(merged, reductions, widened, split)
    if not rewrites:
        return float_model, rewrites
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out, rewrites


def graph_proto(path: Path):
    import onnx

    return onnx.load(str(path))


def _check(job: _Job, candidate: Path, fp32: dict | None) -> tuple[dict, dict, bool]:
    """(fp32 metrics, candidate metrics, within budget) on the val split."""
    cfg = job.cfg
    if fp32 is None:
        fp32 = guard.evaluate(job.src, cfg.data, cfg.val_split, job.progress)
    got = guard.evaluate(candidate, cfg.data, cfg.val_split, job.progress, job.session)
    d = guard.drops(fp32, got, list(cfg.max_drop))
    return fp32, got, guard.within(d, cfg.max_drop)


def _fallback_sizes(n: int, rounds: int) -> list[int]:
    """Cumulative numbers of nodes to keep float per round, doubling up to half of ``n`` in at most
    ``rounds`` rounds (n = 106: 2, 4, 7, 14, 27, 53). Never all: a model with every node float is
    the FP32 model, not a quantized one."""
    half = n // 2
    if half < 1 or rounds < 1:
        return []
    return sorted({-(-half // 2 ** (rounds - r)) for r in range(1, rounds + 1)})


def _weight_groups(nodes: Sequence[graph.NodeInfo]) -> dict[str, list[str]]:
    """Each node with a weight input -> the nodes sharing that weight (itself included), in graph
    order: a module applied twice (MSHNet's channel attention runs fc1/fc2 on the average and the
    max pool) is two Conv nodes over one initializer, which is quantized for both or neither."""
    users: dict[str, list[str]] = {}
    for n in nodes:
        if len(n.inputs) > 1 and n.op in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            users.setdefault(n.inputs[1], []).append(n.name)
    return {name: group for group in users.values() for name in group}


def _most_sensitive(ranked: Sequence[str], k: int, nodes: Sequence[graph.NodeInfo]) -> list[str]:
    """The first nodes of ``ranked`` to keep float, at most ``k``, each with the nodes sharing its
    weight (kept float alone, its weight would still be quantized for the others and it would read
    the int8 copy): whole groups in rank order while they fit (the first group always). Only
    ``ranked`` nodes join a group: the others are float already."""
    groups, candidates = _weight_groups(nodes), set(ranked)
    kept: list[str] = []
    for name in ranked:
        if name in kept:
            continue
        group = [g for g in groups.get(name, [name]) if g in candidates and g not in kept] or [name]
        if kept and len(kept) + len(group) > k:
            break
        kept += [name] + [g for g in group if g != name]
    return kept


def _guarded(job: _Job, first: Path, candidates: list[str], decisions: list[dict], build) -> _Checked:
    """Check ``first`` against FP32 on the val split; over budget, rank ``candidates`` by measured
    SQNR loss and rebuild with the worst few, then twice as many, ... (at most half) kept float
    until it holds. Still over budget with half of them float: ``OverBudget``, nothing written."""
    cfg = job.cfg
    _say(job.progress, f"checking against FP32 on [{cfg.val_split}]")
    fp32, got, within = _check(job, first, None)
    if within:
        return _Checked(first, fp32, got, within)
    val_inputs = calibration_inputs(cfg.data, cfg.val_split, 8, job.meta)
    by_name = {n.name: n for n in job.nodes}
    loss = guard.node_sensitivity(job.float_model, first, val_inputs,
                                  [(c, by_name[c].inputs[:1], by_name[c].outputs) for c in candidates])
    ranked = sorted(candidates, key=lambda c: -loss.get(c, -1.0))
    for d in decisions:
        d["sqnr_drop_db"] = loss.get(d["node"])
    path, kept = first, []
    for r, k in enumerate(_fallback_sizes(len(ranked), cfg.max_fallback_rounds), 1):
        kept = _most_sensitive(ranked, k, job.nodes)
        _say(job.progress, f"over budget ({_drop_text(fp32, got, cfg)}); round {r}: keeping the {len(kept)} most "
                           f"sensitive node(s) float")
        path = build(kept, r)
        fp32, got, within = _check(job, path, fp32)
        if within:
            break
    if not within:
        raise OverBudget(f"the {job.meta.name} {cfg.precision} model stays "
                         f"outside the accuracy budget on [{cfg.val_split}] even with {len(kept)} of {len(ranked)} "
                         f"nodes (the most sensitive) kept float: {_drop_text(fp32, got, cfg)}; nothing written "
                         "(a larger --max-drop, more --calib-images or another --method may hold it)",
                         guard.drops(fp32, got, list(cfg.max_drop)), kept, len(ranked))
    for d in decisions:
        if d["node"] in kept:
            d.update(precision="float", reason="kept float by the accuracy guard")
    return _Checked(path, fp32, got, within, kept)


def _finish(job: _Job, checked: _Checked, quant: dict, decisions: list[dict],
            trt_cache: Path | None = None) -> QuantResult:
    """Write the checked model to ``job.dst`` with the metadata and return the result."""
    cfg, meta, fp32, got = job.cfg, job.meta, checked.fp32, checked.got
    drops = guard.drops(fp32, got, list(cfg.max_drop)) if got else {}
    quant.update(kept_float=checked.kept, source=job.src.name)
    if got is not None:
        quant["checked"] = {"split": cfg.val_split, "metrics_fp32": fp32, "drops": drops, "max_drop": cfg.max_drop,
                            "within_budget": bool(checked.within)}
    else:
        quant["checked"] = None  # no guard ran: `metrics` stays empty rather than claim the FP32 numbers
    metrics = dict(got) if got else {}
    if metrics and meta.metrics.get("in_training") and meta.metrics.get("split", cfg.val_split) == cfg.val_split:
        metrics["in_training"] = True  # checked on a split the FP32 model was trained on: not a held-out figure
    graph.write_model(graph_proto(checked.path), meta.replace(metrics=metrics, quant=quant), job.dst)
    return QuantResult(job.dst, quant["precision"], cfg.target, trt_cache, fp32, got, checked.kept, decisions,
                       checked.within if got is not None else None, drops)


def _int8(job: _Job, rewrites: _Rewrites) -> QuantResult:
    cfg = job.cfg
    ops, exclude, decisions = policy.select(job.nodes, cfg.target)
    for d in decisions:
        if d["node"] in rewrites.merged:
            d["reason"] += f"; stacked from {' + '.join(rewrites.merged[d['node']])}"
        if d["node"] in rewrites.widened:
            d["reason"] += f"; zero filters widen it to {rewrites.widened[d['node']]} outputs, sliced back"
    inputs = calibration_inputs(cfg.data, cfg.split, cfg.calib_images, job.meta)
    _say(job.progress, f"calibrating on {len(inputs)} images of {cfg.data} [{cfg.split}] ({cfg.method})")
    ranges = calibration.collect_ranges(job.float_model, inputs, cfg.method, symmetric=cfg.target == "tensorrt",
                                        progress=job.progress)
    cache = calibration.save_ranges(ranges, job.tmpdir / "ranges.json")

    residual = {d["node"]: d["qdq_input"] for d in decisions if "qdq_input" in d}
    scales = calibration.scales_from_ranges(ranges, set(residual.values()))

    def build(keep_float: list[str], attempt: int) -> Path:
        followers = [d["node"] for d in decisions if d.get("follows") in keep_float]  # their Relus go float too
        adds = [(node, t, scales[t]) for node, t in residual.items() if node not in keep_float and t in scales]
        return quantize_int8(job.float_model, job.tmpdir / f"q{attempt}.onnx", cache, cfg.method, cfg.target, ops,
                             exclude + keep_float + followers, adds)

    checked = _Checked(build([], 0))
    hints = None
    if cfg.target == "cpu":  # timed before the guard, which then checks the model as it will run
        hints, med = fastest_session_hints(checked.path, inputs[0])
        _say(job.progress, "session layout: " + ", ".join(
            f"{_hint_text(h)} {med[i]:.1f} ms" for i, h in enumerate(CPU_SESSION_CANDIDATES)) +
            f" -> {_hint_text(hints)}")
        job = replace(job, session=hints)
    if cfg.val_split:
        candidates = [d["node"] for d in decisions if d["precision"] == "int8" and "follows" not in d]
        checked = _guarded(job, checked.path, candidates, decisions, build)
        for d in decisions:
            if d.get("follows") in checked.kept:
                d.update(precision="float", reason=f"follows {d['follows']}, kept float")
    quant = {"precision": "int8", "target": cfg.target, "format": "QDQ",
             "activations": "uint8 asymmetric" if cfg.target == "cpu" else "int8 symmetric",
             "weights": "int8 symmetric per-channel",
             "calibration": {"data": str(cfg.data), "split": cfg.split, "images": len(inputs), "method": cfg.method},
             "int8_nodes": sum(d["precision"] == "int8" and "follows" not in d for d in decisions),
             "int8_convs": sum(d["precision"] == "int8" and d["op"] in ("Conv", "ConvTranspose") for d in decisions),
             "convs": sum(n.op in ("Conv", "ConvTranspose") for n in job.nodes),
             "merged_convs": rewrites.merged, "widened_convs": rewrites.widened,
             "channel_reductions_rewritten": rewrites.reductions, "split_convs": list(rewrites.split)}
    if hints is not None:
        quant["onnxruntime"] = hints
    if cfg.target == "tensorrt":  # what TensorRT's explicit INT8 takes; a failure here is our bug, said in one line
        require_tensorrt_layout(checked.path, f"the model quantized from {job.src.name}")
    trt_cache = _write_trt_cache(ranges, job.src, job.dst.with_suffix(".calib")) if cfg.target == "tensorrt" else None
    return _finish(job, checked, quant, decisions, trt_cache)


def _drop_text(fp32: dict, got: dict, cfg: QuantConfig) -> str:
    """``iou -0.0042 (budget 0.01), fa +2.07e-05 (budget 1e-05)``: how each budgeted metric changed
    from FP32 (a budget bounds a fall, or Fa's rise)."""
    d = guard.drops(fp32, got, list(cfg.max_drop))
    change = {k: (-v if guard.METRICS[k].higher_is_better else v) + 0.0 for k, v in d.items()}  # no "-0"
    return ", ".join(f"{k} {change[k]:+.4g} (budget {cfg.max_drop[k]:g})" for k in d)


def _hint_text(hints: dict) -> str:
    off = [o for o in hints.get("disabled_optimizers", []) if o != "EnsureUniqueDQForNodeUnit"]
    return hints.get("graph_optimization_level", "all") + "".join(f" -{o}" for o in off)


def _fp16(job: _Job) -> QuantResult:
    cfg = job.cfg
    block_ops = list(policy.FP16_SENSITIVE)
    decisions = [{"node": n.name, "op": n.op, "precision": "float" if n.op in block_ops else "fp16",
                  "reason": "fp16-sensitive op type" if n.op in block_ops else "fp16"} for n in job.nodes]

    def build(keep_float: list[str], attempt: int) -> Path:
        return convert_fp16(job.float_model, job.tmpdir / f"h{attempt}.onnx", block_ops, keep_float)

    checked = _Checked(build([], 0))
    if cfg.val_split:
        candidates = [d["node"] for d in decisions if d["precision"] == "fp16"]
        checked = _guarded(job, checked.path, candidates, decisions, build)
    quant = {"precision": "fp16", "target": cfg.target, "io": "float32", "float_ops": block_ops, "calibration": None}
    return _finish(job, checked, quant, decisions)


def _write_trt_cache(ranges, src: Path, out: Path, trt_version: str = DEFAULT_TRT_VERSION) -> Path:
    """The TensorRT 8.x calibration cache of the FP32 model ``src`` from calibrated ranges."""
    proto = graph_proto(src)
    tensors = {proto.graph.input[0].name} | {o for n in proto.graph.node for o in n.output}
    scales = calibration.scales_from_ranges(ranges, tensors)
    if not scales:
        raise EdgeirstError(f"no calibrated tensor of {src.name} matched the model's tensors")
    return write_text(out, format_cache(scales, trt_version))


def write_calibration_cache(model: str | Path, out: str | Path, data: str, split: str = "train",
                            calib_images: int = 64, progress: bool = True,
                            trt_version: str = DEFAULT_TRT_VERSION, method: str = "entropy") -> Path:
    """TensorRT ``IInt8EntropyCalibrator2`` cache of an FP32 ONNX model (TensorRT 8.x devices
    without explicit quantization), calibrated on real images through ``prepare``.

    ``trt_version`` goes into the header (TensorRT ignores a cache made for another version;
    edgeirst's engine builder rewrites the header to the running version).
    """
    cfg = QuantConfig(data=data, split=split, calib_images=calib_images, method=method, val_split=None).check()
    src, dst = _resolve(model, out, suffix=None, kind=None)
    _, meta = graph.load_edgeirst_onnx(src)
    inputs = calibration_inputs(cfg.data, cfg.split, cfg.calib_images, meta)
    _say(progress, f"calibrating on {len(inputs)} images of {cfg.data} [{cfg.split}] ({cfg.method}, symmetric)")
    ranges = calibration.collect_ranges(src, inputs, cfg.method, symmetric=True, progress=progress)
    return _write_trt_cache(ranges, src, dst, trt_version)
