"""Calibration on real images, and the TensorRT calibration cache.

Images come from a SIRST-style split and go through ``edgeirst.preprocess.prepare`` with the
model's own metadata: the same letterbox and normalisation as inference (native resolution,
padded to the size divisor, for our dynamic models). Ranges are collected with onnxruntime's
calibrators one image per pass (frames differ in size, and the histogram calibrators cannot
stack ragged batches), then kept in onnxruntime's JSON range cache so that the accuracy guard
re-quantizes without calibrating again.

The TensorRT cache is the text format TensorRT 8.x's ``IInt8EntropyCalibrator2`` reads and
writes: a ``TRT-<version>-EntropyCalibration2`` header, then one ``<tensor>: <scale>`` line per
tensor, the scale (amax / 127) as the hex of its big-endian IEEE-754 float32 bits.
"""

from __future__ import annotations

import math
import re
import struct
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from edgeirst.preprocess import prepare

# JetPack 5.1.x ships TensorRT 8.5.2; the header must name the TensorRT that reads the cache
# (edgeirst's engine builder rewrites it to the running version, see engine_build).
DEFAULT_TRT_VERSION = "8.5.2"
CACHE_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def calibration_inputs(data: str | Path, split: str, n: int, meta: ModelMeta,
                       fixed: bool | None = None) -> list[np.ndarray]:
    """``n`` images spread evenly over ``split`` as 1xCxHxW float32 network inputs."""
    from edgeirst.data.sirst import SirstDataset

    ds = SirstDataset(Path(data).expanduser(), split)
    if len(ds) == 0:
        raise EdgeirstError(f"split {split!r} of {data} has no images to calibrate on")
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    return [prepare(ds[int(i)].image, meta, fixed=fixed)[0][None] for i in idx]


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
    bar = tqdm(total=len(inputs) * (1 if method == "minmax" else 2), desc=desc, unit="img", file=sys.stderr,
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


def trt_version_tag(version: str) -> str:
    """``"8.6.1"`` -> ``"8601"``, ``"10.14.1"`` -> ``"101401"`` (TensorRT's NV_TENSORRT_VERSION)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    major, minor, patch = parts[:3]
    if major < 1:
        raise EdgeirstError(f"cannot read a TensorRT version from {version!r}; expected e.g. 8.5.2")
    return f"{major}{minor:02d}{patch:02d}" if major >= 10 else f"{major}{minor}{patch:02d}"


def format_cache(scales: dict[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> str:
    """TensorRT calibration cache text for per-tensor scales (amax / 127)."""
    lines = [f"TRT-{trt_version_tag(trt_version)}-EntropyCalibration2"]
    for name in sorted(scales):
        s = float(scales[name])
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"scale of {name!r} must be finite and positive, got {s}")
        lines.append(f"{name}: {struct.pack('>f', s).hex()}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> tuple[str, str, dict[str, float]]:
    """``(version tag, calibrator, {tensor: scale})`` of a TensorRT calibration cache."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    m = CACHE_HEADER.match(lines[0].strip()) if lines else None
    if m is None:
        raise EdgeirstError("not a TensorRT calibration cache: the first line must read TRT-<version>-<calibrator>")
    scales = {}
    for ln in lines[1:]:
        name, sep, value = ln.rpartition(":")
        if not sep:
            raise EdgeirstError(f"bad calibration cache line {ln!r}; expected '<tensor>: <hex scale>'")
        scales[name.strip()] = struct.unpack(">f", bytes.fromhex(value.strip().rjust(8, "0")))[0]
    return m.group(1), m.group(2), scales


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
