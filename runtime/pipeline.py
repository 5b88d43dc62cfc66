"""The stream loop: capture -> preprocess (into the backend's input buffer) -> infer ->
post-process (``edgeirst.postprocess``) -> track -> sinks, with per-stage latency.

Several sources run in one process and share each inference call: one frame from each source
is letterboxed to the model's fixed input size and stacked into one batch.

``run_stream`` is the library form of ``edgeirst run`` (and ``demo``): it opens the model, the
sources and the sinks from three option objects, runs a ``Pipeline`` and closes what it opened.
A ``Pipeline`` closes nothing it was given.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgeirst.postprocess import decode_outputs
from edgeirst.preprocess import Letterbox, memory_pixel_budget, prepare
from edgeirst.errors import EdgeirstError
from edgeirst.runtime.backends import BackendOptions
from edgeirst.runtime.backends.base import Backend, OutOfMemory
from edgeirst.runtime.capture import Capture, Frame
from edgeirst.runtime.sinks import Detection, FrameResult, Sink, SinkOptions, open_sinks
from edgeirst.runtime.sources import open_source
from edgeirst.runtime.tracker import Tracker, TrackerConfig

# "copy" (host <-> device transfers) is reported apart from "infer" (compute) by backends that
# can tell them apart (TensorRT); CPU backends have no copies and report "infer" alone.
STAGES = ("capture", "preprocess", "copy", "infer", "postprocess", "sinks")


@dataclass
class RunConfig:
    """How a stream is run, from ``edgeirst run`` or ``deploy``'s command line to the device's
    ``edgeirst.toml`` (tables ``[run]`` and ``[tracker]``): the one home of these settings and
    their defaults. threshold: score threshold (None = the model's); track/tracker: temporal
    filtering; agc: 16-bit gain percentiles (None = 0.5, 100); fixed_size: scale frames to the
    model's input size instead of padding (None = only for a static model; forced with several
    sources); max_frames: stop after this many frames per source; report_every: seconds between
    progress lines (0 = none)."""

    threshold: float | None = None
    track: bool = True
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    agc: tuple[float, float] | None = None
    fixed_size: bool | None = None
    max_frames: int | None = None
    report_every: float = 1.0

    def __post_init__(self) -> None:
        t = self.threshold
        if t is not None and not (isinstance(t, (int, float)) and 0.0 <= t <= 1.0):
            raise EdgeirstError(f"threshold must be a number in [0, 1], got {t!r}")
        if self.agc is not None:
            agc = tuple(self.agc)
            if len(agc) != 2 or not all(isinstance(v, (int, float)) for v in agc) or not 0 <= agc[0] < agc[1] <= 100:
                raise EdgeirstError(f"agc must be two percentiles LOW, HIGH with 0 <= LOW < HIGH <= 100, got {self.agc!r}")
            self.agc = (float(agc[0]), float(agc[1]))
        if self.max_frames is not None and not (isinstance(self.max_frames, int) and self.max_frames >= 1):
            raise EdgeirstError(f"max_frames must be an integer >= 1, got {self.max_frames!r}")


WARM_UP = 2  # untimed inferences on the first batch before the stream's clock starts


@dataclass
class _Prepared:
    """One batch in the backend's input buffer, ready for the engine."""

    idx: list[int]
    frames: list[Frame]
    batch: np.ndarray
    boxes: list
    seconds: float  # preprocessing time of the whole batch


@dataclass
class _Inferred:
    """One batch between the engine and post-processing."""

    idx: list[int]
    frames: list[Frame]
    outputs: dict[str, np.ndarray]
    boxes: list


@dataclass
class _Tally:
    frames: int = 0
    detections: int = 0
    with_detections: int = 0
    last: list = field(default_factory=list)

    def add(self, results: list[FrameResult]) -> None:
        self.frames += len(results)
        self.detections += sum(len(r.detections) for r in results)
        self.with_detections += sum(1 for r in results if r.detections)
        self.last = results


class _Finisher:
    """Post-processing, tracking and the sinks of batch k in one worker thread while the pipeline
    thread preprocesses and infers batch k+1 (numpy, OpenCV and the engines release the GIL).
    Batches keep their order; at most one waits (a bounded hand-over); the worker's first error
    is raised in the pipeline thread, and ``close`` finishes every batch handed over."""

    def __init__(self, finish: Callable[[_Inferred], list[FrameResult]], tally: _Tally) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._finish, self._tally = finish, tally
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="postprocess", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is None:  # after an error the rest is drained, not written
                try:
                    self._tally.add(self._finish(item))
                except BaseException as e:  # noqa: BLE001 - handed to the pipeline thread
                    self.error = e

    def submit(self, inferred: _Inferred) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(inferred)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


class StageTimes:
    """Per-stage durations (seconds) of every processed frame."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {s: [] for s in STAGES}

    def add(self, stage: str, seconds: float) -> None:
        self.values[stage].append(seconds)

    def summary(self, since: int = 0) -> dict[str, dict[str, float]]:
        out = {}
        for s, v in self.values.items():
            a = np.asarray(v[since:], np.float64) * 1e3
            if len(a):
                out[s] = {"median_ms": round(float(np.median(a)), 3), "mean_ms": round(float(a.mean()), 3),
                          "p95_ms": round(float(np.percentile(a, 95)), 3)}
        return out


@dataclass
class Summary:
    frames: int
    seconds: float
    fps: float
    dropped: int
    reconnects: int
    detections: int
    stages: dict[str, dict[str, float]]
    stopped_by: str
    skipped: int = 0  # unreadable frames (e.g. a corrupt image in a folder), skipped
    error: str | None = None  # what ended the run early, if anything did
    frames_with_detections: int = 0  # on a background-only source: the frames with a false alarm
    frames_skipped: int = 0  # frames whose inference could not get its memory, skipped (one error line each)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        skipped = f", {self.skipped} unreadable skipped" if self.skipped else ""
        skipped += f", {self.frames_skipped} skipped (out of memory)" if self.frames_skipped else ""
        per_frame = (f" ({self.detections / self.frames:.3f} per frame, {self.frames_with_detections / self.frames:.1%} "
                     "of frames with any)") if self.frames else ""
        parts = [f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps), {self.detections} detections"
                 f"{per_frame}, {self.dropped} dropped{skipped}, {self.reconnects} reconnects ({self.stopped_by})"]
        for s, v in self.stages.items():
            parts.append(f"  {s:<11} median {v['median_ms']:8.2f} ms  mean {v['mean_ms']:8.2f}  p95 {v['p95_ms']:8.2f}")
        return "\n".join(parts)


class Pipeline:
    def __init__(self, backend: Backend, sources: list[Capture], sinks: list[Sink], config: RunConfig | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.sources = sources
        self.sinks = sinks
        self.cfg = config or RunConfig()
        self.meta = backend.meta
        self.fixed = True if len(sources) > 1 else self.cfg.fixed_size
        self.trackers = [Tracker(self.cfg.tracker) for _ in sources] if self.cfg.track else None
        self.times = StageTimes()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._stop = threading.Event()
        self.stopped_by = "end of stream"
        self.error: str | None = None
        self._budget: int | None = None
        self._budget_checked = 0
        self._warned_size = False
        self.frames_skipped = 0

    def stop(self, reason: str = "stopped") -> None:
        """End the run after the current frame (from any thread or a signal handler)."""
        self.stopped_by = reason
        self._stop.set()
        for c in self.sources:  # wakes a pipeline waiting on a stalled source
            c.request_stop()

    # -- one step -----------------------------------------------------------------------------
    def _gather(self, active: list[int], counts: list[int]) -> tuple[list[int], list[Frame]]:
        idx, frames = [], []
        for i in list(active):
            if self.cfg.max_frames is not None and counts[i] >= self.cfg.max_frames:
                active.remove(i)
                continue
            f = self.sources[i].read()
            if f is None:
                active.remove(i)
                continue
            idx.append(i)
            frames.append(f)
        return idx, frames

    def _pixel_cap(self, frames: list[Frame], fixed: bool) -> int | None:
        """The largest dynamic input that fits in memory, or None when the frames fit: a frame
        too large to infer at native size (say 8000x8000) is scaled down on purpose, with one
        warning, instead of exhausting memory."""
        if fixed:
            return None
        pixels = max(f.image.shape[0] * f.image.shape[1] for f in frames) * len(frames)
        if self._budget is None or pixels > self._budget_checked:
            self._budget = memory_pixel_budget(self.meta)
            self._budget_checked = pixels
        if self._budget is None or pixels <= self._budget:
            return None
        cap = max(1, self._budget // len(frames))
        if not self._warned_size:
            h, w = max((f.image.shape[:2] for f in frames), key=lambda hw: hw[0] * hw[1])
            self.log(f"warning: a {w}x{h} frame needs more memory at native size than is available; frames over "
                     f"{cap / 1e6:.1f} Mpixel are scaled down to fit (small targets may be lost): use --fixed-size "
                     "to run every frame at the model's input size, or crop the source")
            self._warned_size = True
        return cap

    def _prepare(self, idx: list[int], frames: list[Frame], report: bool = True) -> _Prepared | None:
        """Preprocess a batch into the backend's input buffer; None when it was skipped (out of
        memory: reported and counted unless ``report`` is false)."""
        t0 = time.perf_counter()
        meta = self.meta
        fixed = (not meta.dynamic) if self.fixed is None else self.fixed
        cap = self._pixel_cap(frames, fixed)
        hws = {Letterbox.plan(f.image.shape[:2], meta, fixed, cap).dst_hw for f in frames}
        if len(hws) > 1:  # dynamic model, sources of different sizes: one common input size
            fixed, hws, cap = True, {tuple(meta.input_size)}, None
        try:
            batch = self.backend.input_buffer((len(frames), meta.in_chans) + hws.pop())
            boxes = [prepare(f.image, meta, fixed, out=batch[k], agc=self.cfg.agc, max_pixels=cap)[1]
                     for k, f in enumerate(frames)]
        except (OutOfMemory, MemoryError) as e:
            if report:
                self._skip(frames, e)
            return None
        return _Prepared(idx, frames, batch, boxes, time.perf_counter() - t0)

    def _infer(self, prepared: _Prepared) -> _Inferred | None:
        """Run the engine on a prepared batch; None when it was skipped (out of memory)."""
        frames = prepared.frames
        t1 = time.perf_counter()
        try:
            outputs = self.backend.infer(prepared.batch)
        except (OutOfMemory, MemoryError) as e:  # this frame only: the stream goes on
            self._skip(frames, e)
            return None
        t2 = time.perf_counter()
        n = len(frames)
        for f in frames:  # per frame: a batch's shared stages are split evenly
            self.times.add("capture", f.capture_s)
            self.times.add("preprocess", prepared.seconds / n)
            split = self.backend.last_timing
            if "compute" in split:
                self.times.add("copy", (split.get("h2d", 0.0) + split.get("d2h", 0.0)) / n)
                self.times.add("infer", split["compute"] / n)
            else:
                self.times.add("infer", (t2 - t1) / n)
        return _Inferred(prepared.idx, frames, outputs, prepared.boxes)

    def _warm_up(self, idx: list[int], frames: list[Frame]) -> None:
        """Run the engine WARM_UP times on the first batch, untimed and unused, as trtexec and
        Ultralytics do: the first inferences of a session allocate and tune (tens of ms each on a
        CPU, more on a GPU), which would stall the first frames of a live source. A batch that
        does not fit in memory is left to the loop, which reports it."""
        prepared = self._prepare(idx, frames, report=False)
        if prepared is None:
            return
        for _ in range(WARM_UP):
            try:
                self.backend.infer(prepared.batch)
            except (OutOfMemory, MemoryError):
                return

    def _skip(self, frames: list[Frame], e: BaseException) -> None:
        self.frames_skipped += len(frames)
        h, w = frames[0].image.shape[:2]
        self.log(f"error: frame {frames[0].index} of {frames[0].source} ({w}x{h}) skipped: "
                 f"{e if isinstance(e, OutOfMemory) else 'out of memory'}")

    def _finish(self, inferred: _Inferred) -> list[FrameResult]:
        """Decode the outputs, track, write the sinks: in frame order, one batch at a time (the
        pipeline thread or the ``_Finisher``'s worker)."""
        meta, idx, frames, outputs, boxes = self.meta, inferred.idx, inferred.frames, inferred.outputs, inferred.boxes
        t2 = time.perf_counter()
        results = []
        for k, (i, f) in enumerate(zip(idx, frames)):
            pred = decode_outputs({n: v[k] for n, v in outputs.items()}, meta, boxes[k], self.cfg.threshold)
            t = pred.targets
            if self.trackers is not None:
                keep, ids = self.trackers[i].update(t)
            else:
                keep, ids = np.arange(len(t)), [None] * len(t)
            dets = [Detection(float(t.centroids[j, 0]), float(t.centroids[j, 1]), tuple(float(v) for v in t.boxes[j]),
                              float(t.areas[j]), float(t.scores[j]), tid) for j, tid in zip(keep.tolist(), ids)]
            results.append(FrameResult(f, dets, i))
        t3 = time.perf_counter()
        for r in results:
            for s in self.sinks:
                s.write(r)
        t4 = time.perf_counter()
        n = len(frames)
        for _ in frames:
            self.times.add("postprocess", (t3 - t2) / n)
            self.times.add("sinks", (t4 - t3) / n)
        return results

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> Summary:
        active = list(range(len(self.sources)))
        counts = [0] * len(self.sources)
        tally = _Tally()
        # post-processing and sinks overlap the next inference, unless a sink must stay in this thread
        finisher = None if any(s.main_thread for s in self.sinks) else _Finisher(self._finish, tally)
        last_frames, last_n = 0, 0
        pending: _Inferred | None = None  # inferred, not yet handed to the finisher
        restore = self._install_sigterm()
        start = last = time.perf_counter()
        try:
            try:
                # File-like sources (no live one): the next batch is taken before this one's
                # inference, so that their reader threads make the frame after it while the
                # engine runs (it releases the GIL) instead of while this thread preprocesses.
                # A live source is read just in time, so that its frames are the freshest.
                # Likewise a file-like source's inferred batch goes to the finisher after the next
                # batch is preprocessed, so that its post-processing (Python) runs during an inference.
                prefetch = not any(c.live for c in self.sources)
                idx, batch = self._gather(active, counts) if active else ([], [])
                if batch:
                    self._warm_up(idx, batch)
                    start = last = time.perf_counter()  # the stream's time starts at its first frame
                while batch and not self._stop.is_set():
                    prepared = self._prepare(idx, batch)
                    for i in idx:
                        counts[i] += 1
                    if pending is not None:
                        finisher.submit(pending)
                        pending = None
                    ahead = self._gather(active, counts) if prefetch and active else None
                    inferred = self._infer(prepared) if prepared is not None else None
                    if inferred is not None:
                        if finisher is not None and prefetch:
                            pending = inferred
                        elif finisher is not None:  # live: its results go out as soon as they exist
                            finisher.submit(inferred)
                        else:
                            tally.add(self._finish(inferred))
                    if any(getattr(s, "quit", False) for s in self.sinks):
                        self.stop("window closed")
                    now = time.perf_counter()
                    if self.cfg.report_every and now - last >= self.cfg.report_every:
                        self.log(self._progress(tally.frames - last_frames, now - last, last_n, tally.last))
                        last, last_frames, last_n = now, tally.frames, len(self.times.values["infer"])
                    if ahead is not None:
                        idx, batch = ahead
                    else:
                        idx, batch = self._gather(active, counts) if active and not self._stop.is_set() else ([], [])
            finally:
                if finisher is not None:
                    try:
                        if pending is not None:
                            finisher.submit(pending)
                    finally:
                        finisher.close()  # every batch inferred reaches the sinks; the worker's error is raised here
            if self.cfg.max_frames is not None and all(c >= self.cfg.max_frames for c in counts):
                self.stopped_by = "max frames"
        except KeyboardInterrupt:
            self.stopped_by = "interrupted"
        except EdgeirstError as e:  # a sink that cannot write (disk full), a frame the model refuses...
            self.stopped_by, self.error = "error", str(e)
        finally:
            restore()
        seconds = time.perf_counter() - start
        frames = tally.frames
        return Summary(frames, round(seconds, 3), round(frames / seconds, 2) if seconds > 0 else 0.0,
                       sum(c.dropped for c in self.sources), sum(c.reconnects for c in self.sources), tally.detections,
                       self.times.summary(), self.stopped_by, sum(c.skipped for c in self.sources),
                       self.error, tally.with_detections, self.frames_skipped)

    def _progress(self, n: int, dt: float, since: int, results: list[FrameResult]) -> str:
        st = self.times.summary(since)
        stages = " ".join(f"{s} {st[s]['median_ms']:.1f}" for s in STAGES if s in st)
        dropped = sum(c.dropped for c in self.sources)
        return (f"{n / dt:6.1f} fps | ms: {stages} | dropped {dropped} | "
                f"detections {sum(len(r.detections) for r in results)}")

    def _install_sigterm(self) -> Callable[[], None]:
        """SIGTERM ends the run like end of stream (sinks closed, video finalised)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.signal(signal.SIGTERM, lambda *_: self.stop("terminated"))
        return lambda: signal.signal(signal.SIGTERM, previous)


def run_stream(model: str, sources: list[str], backend: BackendOptions | None = None, sinks: SinkOptions | None = None,
               config: RunConfig | None = None, log: Callable[[str], None] | None = None) -> Summary:
    """Run ``model`` on ``sources`` until they end, ``config.max_frames`` or a stop signal;
    returns the run's Summary. The engine build is asked for batches of ``len(sources)``."""

    if not sources:
        raise EdgeirstError("give at least one --source (camera index, video, image folder, rtsp://, csi://N, "
                            "GStreamer pipeline or synthetic://)")
    backend = (backend or BackendOptions()).for_batch(len(sources))
    sinks = sinks or SinkOptions()
    config = config or RunConfig()
    sinks.check_against(sources)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    be = backend.load(model)
    captures: list[Capture] = []
    opened: list[Sink] = []
    try:
        for s in sources:
            captures.append(open_source(s))
        fps = next((c.reader.fps for c in captures if getattr(c.reader, "fps", None)), None) or 25.0
        opened = open_sinks(sinks, fps, config.agc, len(sources))
        if sinks.serve and config.report_every:
            log(f"preview: {opened[-1].server.url}")
        return Pipeline(be, captures, opened, config, log).run()
    finally:
        for c in captures:
            c.stop()
        for s in opened:
            s.close()
        be.close()
