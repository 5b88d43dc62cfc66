"""The accuracy guard: evaluate the quantized model against its FP32 source on a val split, and
find the nodes whose quantization costs most when the drop is over budget.

Evaluation is ``edgeirst.evaluate.evaluate_backend`` through the onnxruntime backend: the same
loop as ``edgeirst eval``. Sensitivity is per node and measured, not guessed: both models run on
a few val images with every activation saved (onnxruntime's ``qdq_loss_debug``), and a node's
cost is how many dB of signal-to-quantization-noise ratio (against the FP32 activations) are
lost between its input and its output.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeirst.data.sirst import SirstDataset
from edgeirst.evaluate import evaluate_backend
from edgeirst.metrics import METRICS
from edgeirst.quantize.calibration import array_reader
from edgeirst.runtime import load_backend

KEYS = ("iou", "niou", "pd", "fa", "ap50", "ap")


def evaluate(model: Path, data: str, split: str, progress: bool = True, session_hints: dict | None = None) -> dict:
    """Val metrics of an ONNX model (``edgeirst eval`` on onnxruntime), under ``session_hints``
    (the CPU session settings it will ship with) when given, else those of its metadata."""

    with load_backend(model, "onnxruntime", providers="cpu", session_hints=session_hints) as be:
        metrics, _ = evaluate_backend(be, SirstDataset(Path(data).expanduser(), split), progress=progress)
    out = {k: (None if isinstance(metrics.get(k), float) and math.isnan(metrics[k]) else metrics.get(k))
           for k in (*KEYS, "images", "targets", "threshold")}
    out["split"] = split
    return out


def drops(fp32: dict, quant: dict, keys: Sequence[str]) -> dict[str, float]:
    """How much worse ``quant`` is than ``fp32`` per metric (positive = worse), by METRICS direction."""
    out = {}
    for k in keys:
        a, b = fp32.get(k), quant.get(k)
        if a is None or b is None:
            out[k] = math.inf if a is not None else 0.0
            continue
        out[k] = (a - b) if METRICS[k].higher_is_better else (b - a)
    return out


def within(drop: dict[str, float], budget: dict[str, float]) -> bool:
    return all(drop.get(k, 0.0) <= v + 1e-12 for k, v in budget.items())


def _sqnr(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    a = np.concatenate([r.reshape(-1) for r in ref]).astype(np.float64)
    b = np.concatenate([g.reshape(-1) for g in got]).astype(np.float64)
    eps = np.finfo(np.float32).eps
    return 20 * math.log10(max(np.linalg.norm(a), eps) / max(np.linalg.norm(a - b), eps))


def node_sensitivity(float_model: Path, qdq_model: Path, inputs: Sequence[np.ndarray],
                     nodes: Sequence[tuple[str, Sequence[str], Sequence[str]]]) -> dict[str, float]:
    """dB of SQNR each node loses: SQNR(FP32 vs QDQ) at its input minus at its output.

    ``nodes`` are ``(name, inputs, outputs)`` of the float graph; activations are matched by
    tensor name (the QDQ model keeps the float tensor names on its dequantized values).
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import collect_activations, modify_model_output_intermediate_tensors

    name = onnx.load(str(float_model), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="edgeirst-sens-") as tmp:
        acts = []
        for i, m in enumerate((float_model, qdq_model)):
            aug = Path(tmp) / f"aug{i}.onnx"
            modify_model_output_intermediate_tensors(str(m), str(aug))
            acts.append(collect_activations(str(aug), array_reader(name, list(inputs))))
    ref, got = acts
    sqnr_cache: dict[str, float] = {}

    def sqnr(t: str) -> float | None:
        if t not in sqnr_cache:
            sqnr_cache[t] = _sqnr(ref[t], got[t]) if t in ref and t in got and len(ref[t]) == len(got[t]) else None
        return sqnr_cache[t]

    out = {}
    for n, ins, outs in nodes:
        before = [s for s in (sqnr(t) for t in ins) if s is not None]
        after = [s for s in (sqnr(t) for t in outs) if s is not None]
        if not after:
            continue
        start = min(before) if before else 200.0  # the graph input is exact
        out[n] = max(0.0, start - min(after))
    return out


def summary(decisions: Sequence[dict]) -> list[str]:
    """Per-node decisions counted: one line per precision, the op types with their counts."""
    counts: dict[str, dict[str, int]] = {}
    for d in decisions:
        ops = counts.setdefault(d["precision"], {})
        ops[d["op"]] = ops.get(d["op"], 0) + 1
    return [f"  {precision:>5}  " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]))
            for precision, ops in sorted(counts.items())]


def report(decisions: Sequence[dict], file=sys.stderr) -> None:
    """Print per-node decisions, one line each."""
    for d in decisions:
        extra = f", loses {d['sqnr_drop_db']:.1f} dB" if d.get("sqnr_drop_db") is not None else ""
        print(f"  {d['precision']:>5}  {d['op']:<10} {d['node']}  ({d['reason']}{extra})", file=file)
