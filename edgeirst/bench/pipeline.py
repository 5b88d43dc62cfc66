"""``--pipeline SRC``: a model through the real runtime (capture, preprocess, infer,
post-process + tracker, JSONL sink) on a file or ``synthetic://`` source, not just the bare model.

``run_pipeline`` is the one call into ``edgeirst run``'s library form; per-stage times are the
Pipeline's ``StageTimes`` summary that the run returns.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeirst.bench.rows import Row
from edgeirst.runtime.backends import BackendOptions, BuildOptions
from edgeirst.runtime.pipeline import RunConfig, STAGES, run_stream
from edgeirst.runtime.sinks import SinkOptions



def run_pipeline(model: str | Path, source: str, backend: str, frames: int, threads: int = 0,
                 engine_options: dict[str, Any] | None = None, jsonl: str | None = None) -> Any:
    """Run ``model`` on ``source`` for ``frames`` frames as ``edgeirst run`` does; returns the
    run's ``Summary`` (fps, per-stage median/mean/p95 ms)."""

    build = BuildOptions(**(engine_options or {}))
    return run_stream(str(model), [source], BackendOptions(backend=backend, threads=threads, build=build),
                      SinkOptions(jsonl=jsonl), RunConfig(max_frames=frames, report_every=0))


def pipeline_row(row: Row, source: str, frames: int, threads: int = 0) -> tuple[Row, tuple[float, float]]:
    """The pipeline row of a measured model row: ``fps`` end to end (frames / wall time of the
    run, first frame included), ``latency_ms`` the sum of the median preprocess, infer,
    post-process and sink times (the pipeline thread's work per frame; capture runs in its own
    thread), ``stages`` every stage's median/mean/p95. Returns the row and its time window."""
    engine = {k: True for k in ("fp16", "int8") if row.backend == "tensorrt" and row.precision == k}
    out = dataclasses.replace(row, mode="pipeline", runs=0, rounds_ms=[], mem_mb=None, mem_kind=None, mtl=None,
                              note=None, **{k: None for k in ("latency_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms",
                                                             "max_ms", "iqr_ms", "fps", "iou", "niou", "pd", "fa",
                                                             "ap50", "eval_split", "watts", "fps_per_watt")})
    with tempfile.TemporaryDirectory(prefix="edgeirst-bench-") as tmp:
        start = time.monotonic()
        summary = run_pipeline(row.file, source, row.backend, frames, threads, engine, str(Path(tmp) / "out.jsonl"))
        window = (start, time.monotonic())
    stages = {s: summary.stages[s] for s in STAGES if s in summary.stages}
    out.stages = stages
    out.runs = summary.frames
    out.fps = round(float(summary.fps), 3)
    out.latency_ms = round(sum(stages[s]["median_ms"] for s in STAGES[1:] if s in stages), 3)
    out.note = f"{source}: {summary.frames} frames, {summary.detections} detections ({summary.stopped_by})"
    return out, window


__all__ = ["pipeline_row", "run_pipeline"]
