"""The pipeline in-process: several sources in one inference call, progress lines, stopping."""

from __future__ import annotations

import contextlib
import threading

from edgeirst.runtime import load_backend
from edgeirst.runtime.pipeline import Pipeline, RunConfig
from edgeirst.runtime.sinks import Sink
from edgeirst.runtime.sources import open_source
from test_runtime_helpers import onnx_variant, tiny_meta


@contextlib.contextmanager
def opened(*specs):
    """Sources opened for a test and stopped after it: who opens a source closes it."""
    captures = [open_source(s) for s in specs]
    try:
        yield captures
    finally:
        for c in captures:
            c.stop()


class Collect(Sink):
    """A real sink that keeps results in memory."""

    def __init__(self):
        self.results, self.closed = [], False

    def write(self, result):
        self.results.append(result)

    def close(self):
        self.closed = True


def test_two_sources_share_one_batched_inference(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    model = onnx_variant(base, "dynbatch.onnx", meta=tiny_meta(input_size=(64, 64)), dynamic_batch=True)
    sink = Collect()
    with load_backend(model) as be:
        assert be.inputs[0].shape[0] == "batch"
        with opened("synthetic://?seed=1&size=64x48&frames=4", "synthetic://?seed=2&size=96x64&frames=6") as srcs:
            summary = Pipeline(be, srcs, [sink], RunConfig(track=False, report_every=0, threshold=0.0)).run()
        assert list(be._buffers) == [(1, 1, 64, 64)]  # the last steps had only the longer source left
    assert summary.frames == 10 and not sink.closed  # the pipeline closes nothing it was given
    per_src = {}
    for r in sink.results:
        per_src.setdefault(r.source_index, []).append(r.frame.index)
        h, w = r.frame.image.shape[:2]
        for d in r.detections:  # threshold 0: the letterboxed frame maps back into source pixels
            assert 0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h
    assert per_src == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3, 4, 5]}
    # the summary counts what a field user asks of an empty scene: detections and frames with any
    assert summary.detections == sum(len(r.detections) for r in sink.results)
    assert summary.frames_with_detections == sum(1 for r in sink.results if r.detections)
    assert "per frame" in summary.text() and "of frames with any" in summary.text()
    infer = summary.stages["infer"]
    assert infer["median_ms"] > 0


def test_batch_buffer_while_both_sources_run(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    model = onnx_variant(base, "dynbatch.onnx", meta=tiny_meta(input_size=(64, 64)), dynamic_batch=True)
    with load_backend(model) as be:
        with opened("synthetic://?seed=1&size=64x48&frames=3", "synthetic://?seed=2&size=96x64&frames=3") as srcs:
            Pipeline(be, srcs, [], RunConfig(report_every=0)).run()
        assert list(be._buffers) == [(2, 1, 64, 64)]  # one call for both frames


def test_progress_lines_and_stop_from_another_thread(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    model = onnx_variant(base, "plain.onnx")
    lines = []
    with load_backend(model) as be:
        with opened("synthetic://?size=64x64") as srcs:
            pipe = Pipeline(be, srcs, [Collect()], RunConfig(report_every=0.01), log=lines.append)
            timer = threading.Timer(0.8, pipe.stop, args=("test stop",))
            timer.start()
            summary = pipe.run()
    assert summary.stopped_by == "test stop" and summary.frames > 2
    assert lines and all(" fps | ms: capture" in ln and "dropped 0" in ln and "infer" in ln for ln in lines)
    assert "test stop" in summary.text() and "median" in summary.text()


class _Ahead(Pipeline):
    """The pipeline as it runs, noting at each inference how many frames it has taken from its
    sources beyond the batch being inferred."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.taken, self.ahead = 0, []

    def _gather(self, active, counts):
        idx, frames = super()._gather(active, counts)
        self.taken += len(frames)
        return idx, frames

    def _infer(self, prepared):
        self.ahead.append(self.taken - (len(self.ahead) + 1))  # one source: one frame per batch
        return super()._infer(prepared)


def test_file_sources_are_read_ahead_of_inference_and_live_ones_just_in_time(tmp_path_factory):
    model = onnx_variant(tmp_path_factory.getbasetemp(), "plain.onnx")
    sink = Collect()
    with load_backend(model) as be:
        with opened("synthetic://?seed=1&size=64x64&frames=6") as srcs:
            pipe = _Ahead(be, srcs, [sink], RunConfig(report_every=0))
            summary = pipe.run()
        # the next frame is taken before this one's inference (the last has none after it)
        assert pipe.ahead == [1, 1, 1, 1, 1, 0]
        assert summary.frames == 6 and [r.frame.index for r in sink.results] == list(range(6))
        with opened("synthetic://?seed=1&size=64x64&fps=200&realtime=1") as srcs:
            assert srcs[0].live
            pipe = _Ahead(be, srcs, [Collect()], RunConfig(report_every=0, max_frames=5))
            summary = pipe.run()
        assert pipe.ahead == [0] * 5 and summary.frames == 5  # a live frame is taken when it can be used
