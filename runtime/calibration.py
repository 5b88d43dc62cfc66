"""TensorRT INT8 calibration data: the calibration cache format and the calibration images.

The engine builder (``engine_build``) reads and retargets caches and calibrates from images;
``edgeirst.quantize`` writes caches from onnxruntime's ranges. Both use this module, so the
format lives at the lower of the two layers (the runtime, which also runs on the device).

The cache is the text format TensorRT 8.x's ``IInt8EntropyCalibrator2`` reads and writes: a
``TRT-<version>-EntropyCalibration2`` header, then one ``<tensor>: <scale>`` line per tensor,
the scale (amax / 127) as the hex of its big-endian IEEE-754 float32 bits.

Calibration images come from a SIRST-style split and go through ``edgeirst.preprocess.prepare``
with the model's own metadata: the same letterbox and normalisation as inference.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from edgeirst.data.sirst import SirstDataset
from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from edgeirst.preprocess import prepare, refuse_over_memory

# JetPack 5.1.x ships TensorRT 8.5.2; the header must name the TensorRT that reads the cache
# (the engine builder rewrites it to the running version with ``retarget_cache``).
DEFAULT_TRT_VERSION = "8.5.2"
CACHE_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def calibration_inputs(data: Union[str, Path], split: str, n: int, meta: ModelMeta,
                       fixed: Optional[bool] = None) -> List[np.ndarray]:
    """``n`` images spread evenly over ``split`` as 1xCxHxW float32 network inputs."""
    ds = SirstDataset(Path(data).expanduser(), split)
    if len(ds) == 0:
        raise EdgeirstError(f"split {split!r} of {data} has no images to calibrate on")
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    samples = [ds[int(i)] for i in idx]
    if not ((not meta.dynamic) if fixed is None else fixed):  # images at their own resolution
        for s in samples:
            refuse_over_memory(s.image, meta, f"calibration image {s.id}")
    return [prepare(s.image, meta, fixed=fixed)[0][None] for s in samples]


def trt_version_tag(version: str) -> str:
    """``"8.6.1"`` -> ``"8601"``, ``"10.14.1"`` -> ``"101401"`` (TensorRT's NV_TENSORRT_VERSION)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    major, minor, patch = parts[:3]
    if major < 1:
        raise EdgeirstError(f"cannot read a TensorRT version from {version!r}; expected e.g. 8.5.2")
    return f"{major}{minor:02d}{patch:02d}" if major >= 10 else f"{major}{minor}{patch:02d}"


def format_cache(scales: Dict[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> str:
    """TensorRT calibration cache text for per-tensor scales (amax / 127)."""
    lines = [f"TRT-{trt_version_tag(trt_version)}-EntropyCalibration2"]
    for name in sorted(scales):
        s = float(scales[name])
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"scale of {name!r} must be finite and positive, got {s}")
        lines.append(f"{name}: {struct.pack('>f', s).hex()}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> Tuple[str, str, Dict[str, float]]:
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


def retarget_cache(data: bytes, trt_version: str) -> bytes:
    """A calibration cache with its header set to the running TensorRT version.

    TensorRT ignores a cache whose ``TRT-<version>-`` header names another version and then
    wants images; the per-tensor scales themselves do not depend on the 8.x version."""
    head, sep, rest = data.partition(b"\n")
    m = CACHE_HEADER.match(head.decode(errors="replace").strip())
    if m is None:
        raise EdgeirstError("calibration cache has no TRT-<version>-<calibrator> header; write it with "
                            "`edgeirst quantize --target tensorrt` or edgeirst.quantize.write_calibration_cache")
    return f"TRT-{trt_version_tag(trt_version)}-{m.group(2)}".encode() + sep + rest
