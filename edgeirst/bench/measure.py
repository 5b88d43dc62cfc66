"""``run_bench``: plan the rows, make their model files, load and warm each one up, time them
interleaved, score the trained ones on a dataset, run the pipeline rows, stamp the machine.

Every row sees the same settings: size, batch, threads, warm-up, the same synthetic input frame
and the same interleaved schedule (``edgeirst.bench.timing``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edgeirst.bench.memory import PeakMemory
from edgeirst.bench.models import ModelFiles, ModelSource, resolve_models
from edgeirst.bench.mtl import attach_mtl, describe_mtl, mtl_models
from edgeirst.bench.pipeline import pipeline_row
from edgeirst.bench.power import BURST_S, PowerMonitor
from edgeirst.bench.rows import BACKENDS, METRIC_KEYS, PRECISIONS, Row, RowRunner, load_runner, plan_rows, \
    prepare_file, torch_cuda
from edgeirst.bench.timing import latency_stats, run_interleaved, schedule
from edgeirst.data.sirst import open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend
from edgeirst.machine import machine_stamp
from edgeirst.progress import progress_bar
from edgeirst.runtime.backends.onnxruntime import session_hints, session_notes
from edgeirst.runtime.sources import make_reader

BACKEND_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt", "pytorch": "torch"}


@dataclass
class BenchConfig:
    """What to bench and how. ``models``: ``all``, ``shipped`` or a comma list (see
    ``edgeirst.bench.models.resolve_models``); ``None`` with ``mtl_ratio`` = only the MTL rows.
    ``rounds``: interleaved rounds (None = min(runs, 10)); ``settle_ms``: idle before each chunk
    (see ``edgeirst.bench.timing.run_interleaved``). ``data``/``split``: score trained
    models on this dataset (INT8 calibration uses its ``train`` split). ``pipeline``: a source
    for the end-to-end rows. ``cache``: where exports and quantized models are kept."""

    models: str | None = "shipped"
    backends: tuple[str, ...] = ("onnxruntime",)
    precisions: tuple[str, ...] = ("fp32",)
    size: int = 256
    batch: int = 1
    runs: int = 20
    warmup: int = 3
    rounds: int | None = None
    settle_ms: float = 200.0
    threads: int = 0
    seed: int = 0
    data: str | list[str] | None = None  # several datasets are scored as one set
    split: str | list[str] = "val"  # one for every dataset, or one per dataset
    pipeline: str | None = None
    pipeline_frames: int = 100
    mtl_ratio: bool = False
    cache: str | None = None
    calib_images: int = 64

    def __post_init__(self) -> None:
        self.backends = tuple(BACKEND_ALIASES.get(b, b) for b in self.backends)
        for kind, values, known in (("backend", self.backends, BACKENDS), ("precision", self.precisions, PRECISIONS)):
            bad = [v for v in values if v not in known]
            if bad:
                raise EdgeirstError(f"unknown {kind} {bad[0]!r}; expected one of {', '.join(known)}")
            if not values:
                raise EdgeirstError(f"no {kind} given; expected one or more of {', '.join(known)}")
        for name, value, low in (("runs", self.runs, 1), ("warmup", self.warmup, 0), ("batch", self.batch, 1),
                                 ("size", self.size, 16), ("threads", self.threads, 0),
                                 ("pipeline_frames", self.pipeline_frames, 1)):
            if value < low:
                raise EdgeirstError(f"{name} must be at least {low}, got {value}")
        if self.settle_ms < 0:
            raise EdgeirstError(f"settle_ms must be at least 0, got {self.settle_ms}")
        if self.rounds is not None and self.rounds < 1:
            raise EdgeirstError(f"rounds must be at least 1, got {self.rounds}")
        if not self.models and not self.mtl_ratio:
            raise EdgeirstError("nothing to bench: give --models (all, shipped or names) or --mtl-ratio")

    @property
    def n_rounds(self) -> int:
        return min(self.runs, self.rounds or min(self.runs, 10))

    def describe(self) -> str:
        return (f"settings: {self.size}x{self.size}, batch {self.batch}, {self.runs} timed runs per row in "
                f"{self.n_rounds} interleaved rounds ({self.settle_ms:g} ms idle before each chunk) after "
                f"{max(1, self.warmup)} warm-up run(s), threads {self.threads or 'library default'}, seed {self.seed}")


@dataclass
class BenchResult:
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    mtl: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    settings: str = ""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _sources(cfg: BenchConfig) -> list[ModelSource]:
    sources = resolve_models(cfg.models) if cfg.models else []
    if cfg.mtl_ratio:
        have = {s.label for s in sources}
        sources += [s for s in resolve_models(",".join(mtl_models())) if s.label not in have]
    return sources


def _na(e: EdgeirstError) -> str:
    text = str(e)
    return text if text.startswith("n/a") else f"n/a: {text}"


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return progress_bar(total=total, desc=desc, file=sys.stderr, disable=not progress, dynamic_ncols=True, leave=False)


def _check_inputs(cfg: BenchConfig) -> Any:
    dataset = None
    if cfg.data:
        dataset = open_datasets(cfg.data, cfg.split)
    if cfg.pipeline:
        make_reader(cfg.pipeline)  # a bad source is a user error now, not after the timing
    return dataset


def _prepare(rows: list[Row], sources: dict[str, ModelSource], files: ModelFiles, cfg: BenchConfig,
             progress: bool) -> None:
    todo = [r for r in rows if r.ok]
    with _bar(len(todo), "prepare", progress) as bar:
        for row in todo:
            bar.set_postfix_str(row.label)
            try:
                path = prepare_file(row, sources[row.model], files, _first(cfg.data), cfg.calib_images, progress)
            except EdgeirstError as e:
                row.note = _na(e)
            else:
                row.file = str(path)
                row.file_mb = round(Path(path).stat().st_size / 1e6, 3)
            bar.update()


def _load(rows: list[Row], cfg: BenchConfig, cuda: bool, progress: bool) -> list[RowRunner]:
    runners = []
    todo = [r for r in rows if r.ok]
    with _bar(len(todo), "load + warm up", progress) as bar:
        for row in todo:
            bar.set_postfix_str(row.label)
            runner = None
            try:
                with PeakMemory(cuda and row.backend == "torch") as mem:
                    runner = load_runner(row, cfg.threads, cuda, cfg.seed)
                    for _ in range(max(1, cfg.warmup)):
                        runner()
            except EdgeirstError as e:
                if runner is not None:
                    runner.close()
                row.note = _na(e)
            else:
                row.mem_mb = None if mem.mb is None else round(mem.mb, 1)
                row.mem_kind = mem.kind
                row.recorded = {k: v for k, v in runner.meta.metrics.items() if k in (*METRIC_KEYS, "split")} or None
                runners.append(runner)
            bar.update()
    return runners


def _time(runners: list[RowRunner], cfg: BenchConfig, progress: bool, notes: list[str]) -> None:
    plan = schedule(len(runners), cfg.runs, cfg.n_rounds, cfg.seed)
    bar = _bar(cfg.runs * len(runners), "timing", progress)

    def tick(r: int, row: int, count: int, done: bool) -> None:
        if done:
            bar.update(count)
        else:
            bar.set_description(f"round {r + 1}/{len(plan)}")
            bar.set_postfix_str(runners[row].row.label)

    try:
        timed = run_interleaved(runners, plan, tick, cfg.settle_ms / 1e3)
    finally:
        bar.close()
    for i, runner in enumerate(runners):
        row, st = runner.row, latency_stats(timed.flat(i))
        row.runs = st["n"]
        row.latency_ms, row.mean_ms, row.p90_ms, row.p99_ms, row.min_ms, row.max_ms, row.iqr_ms = (
            round(st[k], 3) for k in ("median", "mean", "p90", "p99", "min", "max", "iqr"))
        row.rounds_ms = [round(v, 3) for v in timed.round_medians(i)]
        row.fps = round(row.batch * 1e3 / st["median"], 3)
    monitor, why = PowerMonitor.start()
    if why:
        notes.append(why)
    if monitor:
        try:
            for runner in progress_bar(runners, desc="power", file=sys.stderr, disable=not progress, leave=False):
                _set_watts(runner.row, monitor.burst(runner, BURST_S, cfg.settle_ms / 1e3))
        finally:
            monitor.stop()
        notes.append(f"power: tegrastats board watts while each row ran back to back for {BURST_S:g} s after the "
                     "timed rounds; FPS/W = FPS / W")


def _set_watts(row: Row, watts: float | None) -> None:
    if watts is not None and watts > 0:
        row.watts = round(watts, 3)
        row.fps_per_watt = round(row.fps / watts, 3) if row.fps else None


def _score(runners: list[RowRunner], sources: dict[str, ModelSource], dataset: Any, cfg: BenchConfig,
           progress: bool) -> None:
    for runner in runners:
        if not sources[runner.row.model].trained:
            continue
        metrics, _ = evaluate_backend(runner, dataset, progress=progress)
        for k in METRIC_KEYS:
            setattr(runner.row, k, metrics.get(k))
        runner.row.eval_split = cfg.split if isinstance(cfg.split, str) else "+".join(cfg.split)


def _first(data: str | list[str] | None) -> str | None:
    """The dataset whose train split calibrates INT8 rows (the first of several)."""
    return data if data is None or isinstance(data, str) else data[0]


def _pipelines(rows: list[Row], cfg: BenchConfig, cuda: bool, log: Callable[[str], None]) -> list[Row]:
    out = []
    monitor, _ = PowerMonitor.start()
    try:
        for row in rows:
            autocast = row.backend == "torch" and row.precision != "fp32"  # run_stream has no autocast
            if row.latency_ms is None or autocast or (row.backend == "torch" and cuda):  # nor a torch device option
                continue
            log(f"pipeline: {row.label} on {cfg.pipeline}, {cfg.pipeline_frames} frames")
            prow, (start, _) = pipeline_row(row, cfg.pipeline, cfg.pipeline_frames, cfg.threads)
            if monitor:
                _set_watts(prow, monitor.watts_since(start))
            out.append(prow)
    finally:
        if monitor:
            monitor.stop()
    return out


def run_bench(cfg: BenchConfig, progress: bool = True, prepare_only: bool = False,
              log: Callable[[str], None] | None = None) -> BenchResult:
    """Run the bench ``cfg`` describes. ``prepare_only``: make every row's model file (exports,
    quantized models) into the cache and stop before loading or timing anything."""
    log = log or _stderr
    sources = _sources(cfg)
    by_label = {s.label: s for s in sources}
    dataset = _check_inputs(cfg)
    files = ModelFiles(cfg.cache, cfg.size, cfg.seed)
    info = {s.label: files.describe(s) for s in sources}  # also checks --size against each model
    cuda = "torch" in cfg.backends and torch_cuda()
    rows, notes = plan_rows(sources, list(cfg.backends), list(cfg.precisions), cfg.size, cfg.batch, _first(cfg.data),
                            cuda)
    for row in rows:
        d = info[row.model]
        row.params = d["params"]
        row.gflops = None if d["macs"] is None else round(d["macs"] / 1e9, 3)
    result = BenchResult(rows, notes=notes, settings=cfg.describe())
    _prepare(rows, by_label, files, cfg, progress)
    if prepare_only:
        result.notes.append(f"prepared {sum(r.file is not None for r in rows)} model file(s) in {files.root}")
        return result
    runners = _load(rows, cfg, cuda, progress)
    result.notes += session_notes([(r.row.model, session_hints(r.meta)) for r in runners
                                   if r.row.backend == "onnxruntime" and r.row.device == "cpu"])
    try:
        if runners:
            _time(runners, cfg, progress, result.notes)
        if dataset is not None:
            _score(runners, by_label, dataset, cfg, progress)
    finally:
        for r in runners:
            r.close()
    if cfg.pipeline:
        rows += _pipelines(list(rows), cfg, cuda, log)
    result.mtl = attach_mtl(rows)
    result.notes += [describe_mtl(m) for m in result.mtl]
    if cfg.mtl_ratio and not result.mtl:
        result.notes.append("MTL ratio: not measured (a joint model or one of its single-task forms has no timing)")
    result.machine = {**machine_stamp(), "bench_settings": cfg.describe()}
    for row in rows:
        row.machine = result.machine
    return result


__all__ = ["BenchConfig", "BenchResult", "run_bench"]
