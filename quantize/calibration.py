"""Calibration ranges on real images, and the scales of the TensorRT calibration cache.

Images come from ``edgeirst.runtime.calibration.calibration_inputs`` (a SIRST-style split
through ``edgeirst.preprocess.prepare`` with the model's own metadata: the same letterbox and
normalisation as inference: native resolution, padded to the size divisor, for our dynamic
models). Ranges are collected with onnxruntime's
calibrators one image per pass (frames differ in size, and the histogram calibrators cannot
stack ragged batches), then kept in onnxruntime's JSON range cache so that the accuracy guard
re-quantizes without calibrating again.

The TensorRT cache's text format lives in ``edgeirst.runtime.calibration`` (the engine builder
reads it); ``scales_from_ranges`` gives the per-tensor scales written into it.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.progress import progress_bar


def array_reader(name: str, arrays: Sequence[np.ndarray]):
    """An onnxruntime ``CalibrationDataReader`` feeding prepared inputs to input ``name``."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(arrays)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {name: x}

        def __len__(self) -> int:
            return len(arrays)

    return _Reader()


def ort_method(method: str):
    """onnxruntime's CalibrationMethod for a method name."""
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]


def collect_ranges(model: Path, inputs: Sequence[np.ndarray], method: str, symmetric: bool = False,
                   progress: bool = True, desc: str = "calibrate"):
    """Activation ranges (onnxruntime ``TensorsData``) of every float tensor of ``model``.

    ``minmax`` is onnxruntime's MinMaxCalibrater, one image per pass. ``entropy`` and
    ``percentile`` start from those ranges and build fixed-range histograms of |x| here
    (``threshold_histograms``): onnxruntime's own histogram calibrators grow their bins
    whenever a frame exceeds the range seen so far (to ~30,000 bins on our models), after which
    their pure-Python KL search takes minutes per tensor and fails on near-empty histograms.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import TensorsData

    name = onnx.load(str(model), load_external_data=False).graph.input[0].name
    bar = progress_bar(total=len(inputs) * (1 if method == "minmax" else 2), desc=desc, unit="img", file=sys.stderr,
               disable=not progress, leave=False)
    with bar, tempfile.TemporaryDirectory(prefix="edgeirst-calib-") as tmp:
        calibrator = create_calibrator(model, [], augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=CalibrationMethod.MinMax)
        try:
            for x in inputs:
                calibrator.collect_data(array_reader(name, [x]))
                bar.update()
            ranges = calibrator.compute_data()
        finally:
            del calibrator
        if method == "minmax":
            return ranges
        lo_hi = {k: tuple(float(np.asarray(v).reshape(-1)[0]) for v in td.range_value) for k, td in ranges.items()}
        thresholds = threshold_histograms(model, name, inputs, lo_hi, method, Path(tmp), bar.update)
    data = {}
    for k, (lo, hi) in lo_hi.items():
        t = thresholds.get(k, max(abs(lo), abs(hi)))
        lo_t, hi_t = (-t, t) if symmetric else (max(lo, -t), min(hi, t))
        data[k] = (np.array(lo_t, np.float32), np.array(hi_t, np.float32), np.zeros(1, np.int64),
                   np.array([0.0, max(t, 1e-12)], np.float32))
    return TensorsData(ort_method(method), data)


def threshold_histograms(model: Path, input_name: str, inputs: Sequence[np.ndarray], ranges: dict[str, tuple],
                         method: str, tmp: Path, tick=lambda: None, bins: int = 2048,
                         percentile: float = 99.99) -> dict[str, float]:
    """Per-tensor clipping thresholds on |x| from 2048-bin histograms over [0, amax].

    ``entropy`` is TensorRT's EntropyCalibration2 rule: the threshold whose 128-level
    quantized distribution has the least KL divergence from the clipped one (candidates every
    16 bins from 128 up). ``percentile`` keeps ``percentile`` % of |x| unclipped.
    """
    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

    aug = tmp / "all_tensors.onnx"
    modify_model_output_intermediate_tensors(str(model), str(aug))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(aug), so, providers=["CPUExecutionProvider"])
    suffix = "_ReshapedSavedOutput"
    names = [o.name for o in sess.get_outputs()]
    hists = {k: np.zeros(bins, np.int64) for k in ranges}
    for x in inputs:
        for out_name, value in zip(names, sess.run(None, {input_name: x})):
            k = out_name[: -len(suffix)] if out_name.endswith(suffix) else None
            if k in hists:
                amax = max(abs(ranges[k][0]), abs(ranges[k][1]))
                if amax > 0:
                    hists[k] += np.histogram(np.abs(value), bins=bins, range=(0.0, amax))[0]
        tick()
    out = {}
    for k, h in hists.items():
        amax = max(abs(ranges[k][0]), abs(ranges[k][1]))
        if amax <= 0 or h.sum() == 0:
            continue
        edges = np.linspace(0.0, amax, bins + 1)
        if method == "percentile":
            cdf = np.cumsum(h) / h.sum()
            out[k] = float(edges[min(int(np.searchsorted(cdf, percentile / 100.0)) + 1, bins)])
        else:
            out[k] = float(edges[_kl_threshold_bin(h)])
    return out


def _kl_threshold_bin(hist: np.ndarray, levels: int = 128, step: int = 16) -> int:
    """TensorRT-style entropy calibration: the bin count i (>= levels) minimising KL(P_i || Q_i)."""
    best, best_i = np.inf, len(hist)
    nz = hist > 0
    for i in range(levels, len(hist) + 1, step):
        p = hist[:i].astype(np.float64)
        p[-1] += hist[i:].sum()  # clipped mass folds into the last bin
        idx = np.arange(i) * levels // i  # which of the `levels` quantized bins each bin falls in
        counts = np.bincount(idx, weights=hist[:i], minlength=levels)
        nonzero = np.bincount(idx, weights=nz[:i], minlength=levels)
        q = np.where(nz[:i], counts[idx] / np.maximum(nonzero[idx], 1), 0.0)
        if p.sum() == 0 or q.sum() == 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
        if kl < best:
            best, best_i = kl, i
    return best_i


def save_ranges(ranges, path: Path) -> Path:
    """Write ranges as onnxruntime's JSON calibration cache (``quantize_static`` reads it back)."""
    from onnxruntime.quantization.calibrate import save_tensors_data

    save_tensors_data(ranges, path)
    return path





def scales_from_ranges(ranges, tensors: Sequence[str] | None = None) -> dict[str, float]:
    """Symmetric int8 scales (max(|lo|, |hi|) / 127) of calibrated tensors; all-zero tensors
    (nothing to quantize) get the smallest positive float32 scale TensorRT accepts."""
    out = {}
    for name, td in ranges.items():
        if tensors is not None and name not in tensors:
            continue
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
        amax = max(abs(lo), abs(hi))
        if not math.isfinite(amax):
            raise EdgeirstError(f"calibration of tensor {name!r} produced a non-finite range ({lo}, {hi})")
        out[name] = amax / 127.0 if amax > 0 else float(np.finfo(np.float32).tiny)
    return out
