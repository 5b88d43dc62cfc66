"""Rows of the bench: one per model x backend x precision at one size, what each row runs,
and why a row that cannot run here says ``n/a: <reason>`` instead of failing the bench.

| backend | fp32 | fp16 | bf16 | int8 |
|---|---|---|---|---|
| onnxruntime | the ONNX file | ``quantize`` fp16 | not run | ``quantize`` int8 (target cpu: U8S8) |
| torch | the checkpoint | CUDA autocast | autocast (CPU: AMX/AVX-512 bf16; CUDA) | not run |
| tensorrt | engine from the ONNX | engine, fp16 flag | not run | engine from ``quantize`` int8 (target tensorrt: S8S8 QDQ) |

"not run" combinations are left out of the table with one note; a row that cannot run on this
machine (no TensorRT, no CUDA for fp16, no quantize yet) stays, with ``n/a: <reason>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeirst.bench.models import ModelFiles, ModelSource
from edgeirst.data.synth import SynthConfig, synth_image
from edgeirst.errors import EdgeirstError
from edgeirst.preprocess import prepare
from edgeirst.runtime import load_backend
from edgeirst.runtime.backends import tensorrt_available

BACKENDS = ("onnxruntime", "torch", "tensorrt")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
METRIC_KEYS = ("iou", "niou", "pd", "fa", "ap50", "fa_per_frame", "fa_frames")
# combinations edgeirst never runs, on any machine: left out of the table, named in one note
UNSUPPORTED = {
    ("torch", "int8"): "int8 runs on onnxruntime/tensorrt (a QDQ model from edgeirst quantize)",
    ("onnxruntime", "bf16"): "bf16 is a torch autocast precision",
    ("tensorrt", "bf16"): "bf16 is a torch autocast precision",
}


@dataclass
class Row:
    """One result. ``mode``: ``model`` (bare inference of one batch) or ``pipeline`` (``edgeirst
    run`` end to end). Latencies in ms over the timed runs (after warm-up): ``latency_ms`` is the
    median; ``rounds_ms`` the median of each interleaved round. ``fps`` = batch / median latency
    (pipeline rows: frames / wall time of the run). ``mem_mb``: rise of the process's peak RSS
    (``mem_kind`` rss) or of torch's CUDA allocation (cuda) while the row loaded and warmed up.
    ``gflops``: multiply-adds (GMACs, as the papers and ``edgeirst zoo`` count) at size x size."""

    model: str
    weights: str
    backend: str
    precision: str
    size: int
    batch: int = 1
    mode: str = "model"
    network: str | None = None
    device: str | None = None
    params: int | None = None
    gflops: float | None = None
    file: str | None = None
    file_mb: float | None = None
    runs: int = 0
    latency_ms: float | None = None
    mean_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    iqr_ms: float | None = None
    rounds_ms: list[float] = field(default_factory=list)
    fps: float | None = None
    mem_mb: float | None = None
    mem_kind: str | None = None
    iou: float | None = None
    niou: float | None = None
    pd: float | None = None
    fa: float | None = None
    ap50: float | None = None
    fa_per_frame: float | None = None
    fa_frames: float | None = None
    eval_split: str | None = None
    recorded: dict[str, Any] | None = None  # the val metrics in the model's metadata (not measured by the bench)
    watts: float | None = None
    fps_per_watt: float | None = None
    stages: dict[str, dict[str, float]] | None = None
    mtl: dict[str, Any] | None = None
    note: str | None = None
    machine: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.note is None or not self.note.startswith("n/a")

    @property
    def label(self) -> str:
        return f"{self.model} {self.backend} {self.precision}" + (" pipeline" if self.mode == "pipeline" else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def torch_cuda() -> bool:
    """torch imports and sees a CUDA GPU (imports torch)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def unavailable(src: ModelSource, backend: str, precision: str, data: str | None, cuda: bool) -> str | None:
    """Why ``backend`` x ``precision`` cannot run ``src`` here (``n/a: ...``), or None."""

    has_torch = importlib.util.find_spec("torch") is not None
    if src.weights == "random" and not has_torch:
        return "n/a: random-weight variants need torch to build (pip install 'edgeirst[train]')"
    if backend == "tensorrt" and not tensorrt_available():
        return "n/a: tensorrt does not import here (needs TensorRT and pycuda or cuda-python on an NVIDIA GPU)"
    if backend == "torch":
        if not has_torch:
            return "n/a: torch is not installed (pip install 'edgeirst[train]')"
        if src.checkpoint is None and src.weights != "random":
            return "n/a: torch rows need a .pt checkpoint"
        if precision == "fp16" and not cuda:
            return "n/a: fp16 on torch needs CUDA (on CPU use bf16 autocast)"
        return None
    if backend == "onnxruntime" and src.onnx is None and not has_torch:
        return "n/a: exporting to ONNX needs torch (pip install 'edgeirst[train]')"
    if precision in ("int8", "fp16") and precision != src.precision and not (backend == "tensorrt" and precision == "fp16"):
        if precision == "int8" and not data:
            return "n/a: int8 needs --data DIR to calibrate"
    return None


def plan_rows(sources: list[ModelSource], backends: list[str], precisions: list[str], size: int, batch: int,
              data: str | None, cuda: bool) -> tuple[list[Row], list[str]]:
    """Every model x backend x precision, in that order, with ``note`` set where a row cannot run
    here; combinations edgeirst never runs (``UNSUPPORTED``) are left out and returned as notes."""
    rows = []
    for src in sources:
        network = src.name + (f" {src.kwargs}" if src.kwargs else "")
        for backend in backends:
            # a quantized file has one precision, its own, whatever --precisions asks
            for precision in precisions if src.precision == "fp32" else [src.precision]:
                if (backend, precision) in UNSUPPORTED:
                    continue
                rows.append(Row(src.label, src.weights, backend, precision, size, batch, network=network,
                                note=unavailable(src, backend, precision, data, cuda)))
    notes = [f"not run: {b} {p} ({why})" for (b, p), why in UNSUPPORTED.items() if b in backends and p in precisions]
    if not rows:
        raise EdgeirstError("nothing to run: " + "; ".join(notes))
    return rows, notes


def prepare_file(row: Row, src: ModelSource, files: ModelFiles, data: str | None, calib_images: int,
                 progress: bool) -> Path:
    """Make (or take from the cache) the model file ``row`` runs."""
    if row.backend == "torch":
        return files.checkpoint(src)
    if row.precision == "fp32" or src.precision != "fp32" or (row.backend == "tensorrt" and row.precision == "fp16"):
        return files.onnx(src)
    target = "tensorrt" if row.backend == "tensorrt" else "cpu"
    return files.quantized(src, row.precision, target, data, calib_images=calib_images, progress=progress)


class RowRunner:
    """A loaded row: the backend, one input batch, and ``__call__`` = one timed inference."""

    def __init__(self, row: Row, backend: Any, batch: np.ndarray, autocast: Callable[[], Any] | None) -> None:
        self.row, self.backend, self.batch = row, backend, batch
        self._autocast = autocast or contextlib.nullcontext
        self.meta = backend.meta

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with self._autocast():
            return self.backend.infer(batch)

    def __call__(self) -> None:
        self.infer(self.batch)

    def close(self) -> None:
        self.backend.close()


def input_batch(meta: Any, size: int, batch: int, seed: int = 0) -> np.ndarray:
    """``batch`` copies of one synthetic infrared frame (``edgeirst.data.synth``) prepared by
    ``edgeirst.preprocess.prepare`` at size x size: the input every row of a bench sees."""

    image, _ = synth_image(SynthConfig(height=size, width=size, seed=seed), np.random.default_rng(seed))
    x, _ = prepare(image, meta.replace(input_size=(size, size)), fixed=True)
    return np.ascontiguousarray(np.repeat(x[None], batch, axis=0))


def load_runner(row: Row, threads: int, cuda: bool, seed: int = 0) -> RowRunner:
    """Load ``row.file`` on ``row.backend`` through ``edgeirst.runtime.load_backend``."""

    autocast = None
    if row.backend == "onnxruntime":
        import onnxruntime as ort

        gpu = "CUDAExecutionProvider" in ort.get_available_providers()
        be = load_backend(row.file, "onnxruntime", providers="cuda" if gpu else "cpu", threads=threads)
        row.device = "cuda" if gpu else "cpu"
    elif row.backend == "torch":
        import torch

        device = "cuda" if cuda else "cpu"
        be = load_backend(row.file, "torch", device=device, threads=threads)
        row.device = device
        if row.precision in ("fp16", "bf16"):
            dtype = torch.float16 if row.precision == "fp16" else torch.bfloat16
            autocast = lambda: torch.autocast(device_type=device, dtype=dtype)  # noqa: E731
    else:
        flags = {"fp16": row.precision == "fp16", "int8": row.precision == "int8"}
        be = load_backend(row.file, "tensorrt", **{k: v for k, v in flags.items() if v})
        row.device = "cuda"
    try:
        return RowRunner(row, be, input_batch(be.meta, row.size, row.batch, seed), autocast)
    except BaseException:
        be.close()
        raise


__all__ = ["BACKENDS", "METRIC_KEYS", "PRECISIONS", "UNSUPPORTED", "Row", "RowRunner", "input_batch", "load_runner",
           "plan_rows", "prepare_file", "unavailable"]
