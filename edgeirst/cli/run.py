"""``edgeirst run MODEL --source ...``: detect targets on live or recorded streams."""

from __future__ import annotations

import json
import sys

import click

from edgeirst.errors import EdgeirstError


def parse_agc(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise EdgeirstError(f"--agc expects LOW,HIGH percentiles (e.g. 0.5,99.5), got {text!r}") from None
    if not 0 <= lo < hi <= 100:
        raise EdgeirstError(f"--agc percentiles must satisfy 0 <= LOW < HIGH <= 100, got {text!r}")
    return lo, hi


def parse_confirm(text: str) -> tuple[int, int]:
    try:
        m, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise EdgeirstError(f"--confirm expects M/N (e.g. 3/5), got {text!r}") from None
    if not 1 <= m <= n:
        raise EdgeirstError(f"--confirm M/N needs 1 <= M <= N, got {text!r}")
    return m, n


def build_sinks(jsonl, save, show, serve, fps, agc, n_sources):
    from pathlib import Path

    from edgeirst.runtime.sinks import JsonlSink, PreviewSink, ShowSink, VideoSink

    sinks = []
    try:
        if jsonl:
            sinks.append(JsonlSink(jsonl))
        if save:
            if n_sources == 1:
                sinks.append(VideoSink(save, fps, agc))
            else:  # one file per source: out_0.mp4, out_1.mp4, ...
                p = Path(save)
                sinks += [_SourceFilter(i, VideoSink(str(p.with_name(f"{p.stem}_{i}{p.suffix}")), fps, agc))
                          for i in range(n_sources)]
        if show:
            sinks.append(ShowSink(agc))
        if serve:
            sinks.append(PreviewSink(serve, agc))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


class _SourceFilter:
    def __init__(self, index, sink):
        self.index, self.sink = index, sink

    def write(self, result):
        if result.source_index == self.index:
            self.sink.write(result)

    def close(self):
        self.sink.close()


def run_stream(model, sources, backend="auto", jsonl=None, save=None, show=False, serve=None, track=True,
               threshold=None, max_frames=None, agc=None, fixed=None, gate=8.0, confirm=(3, 5), threads=0,
               providers=None, fp16=False, quiet=False, log=None, engine_options=None):
    """Library form of ``edgeirst run``: returns the run's Summary."""
    from edgeirst.runtime import load_backend
    from edgeirst.runtime.pipeline import Pipeline, RunConfig
    from edgeirst.runtime.sources import open_source
    from edgeirst.runtime.tracker import TrackerConfig

    if not sources:
        raise EdgeirstError("give at least one --source (camera index, video, image folder, rtsp://, csi://N, "
                            "GStreamer pipeline or synthetic://)")
    options = {}
    if threads:
        options["threads"] = threads
    if providers:
        options["providers"] = providers
    if fp16:
        options["fp16"] = True
    options.update(engine_options or {})
    be = load_backend(model, backend, **options)
    captures = []
    try:
        for s in sources:
            captures.append(open_source(s))
        fps = next((c.reader.fps for c in captures if getattr(c.reader, "fps", None)), None) or 25.0
        sinks = build_sinks(jsonl, save, show, serve, fps, agc, len(sources))
        if serve and not quiet:
            (log or _stderr)(f"preview: {sinks[-1].server.url}")
        cfg = RunConfig(threshold=threshold, track=track, agc=agc, fixed=fixed, max_frames=max_frames,
                        tracker=TrackerConfig(gate=gate, m=confirm[0], n=confirm[1]), report_every=0 if quiet else 1.0)
        return Pipeline(be, captures, sinks, cfg, log).run()
    finally:
        for c in captures:
            c.stop()
        be.close()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@click.command(name="run")
@click.argument("model")
@click.option("--source", "-s", "sources", multiple=True, required=True,
              help="Camera index or /dev/videoN[?fourcc=Y16], video file, image folder or glob, rtsp://..., "
                   "GStreamer pipeline (with '!'), csi://N, synthetic://?seed=3&targets=2&fps=30. Repeat to batch "
                   "several sources into one inference call.")
@click.option("--backend", default="auto", show_default=True, help="auto, onnxruntime, tensorrt or torch.")
@click.option("--jsonl", metavar="FILE|-", help="Write one JSON line per processed frame ('-' = stdout).")
@click.option("--save", metavar="OUT.mp4", help="Write an annotated video (mp4v .mp4 or MJPG .avi).")
@click.option("--show", is_flag=True, help="Show annotated frames in a window (q quits).")
@click.option("--serve", metavar="HOST:PORT", help="Serve an MJPEG preview, e.g. 127.0.0.1:8080.")
@click.option("--track/--no-track", default=True, show_default=True,
              help="Report only targets confirmed by the temporal tracker, with track IDs.")
@click.option("--confirm", default="3/5", show_default=True, help="Tracker M/N: confirm after M hits in N frames.")
@click.option("--gate", default=8.0, show_default=True, help="Tracker gate: largest centroid jump in pixels.")
@click.option("--threshold", type=float, help="Score threshold (default: the model's).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames per source.")
@click.option("--agc", metavar="LOW,HIGH", help="16-bit automatic gain percentiles (default 0.5,99.5).")
@click.option("--fixed-size", is_flag=True, default=None,
              help="Scale frames to the model's input size instead of padding (implied with several sources).")
@click.option("--threads", type=int, default=0, help="Inference threads (0 = backend default).")
@click.option("--providers", help="onnxruntime providers: auto, cpu, cuda, tensorrt (comma separated).")
@click.option("--fp16", is_flag=True, help="FP16 on TensorRT (engine build or onnxruntime's TensorRT provider).")
@click.option("--int8", is_flag=True, help="TensorRT engine build: INT8 (from a QDQ model, or with --calibration-cache).")
@click.option("--calibration-cache", type=click.Path(exists=True, dir_okay=False),
              help="TensorRT 8.x INT8 calibration cache for the engine build.")
@click.option("--dla-core", type=int, help="TensorRT engine build: run on this DLA core (GPU fallback on).")
@click.option("--workspace-mb", type=int, help="TensorRT engine build: workspace limit in MiB (default 1024).")
@click.option("--quiet", "-q", is_flag=True, help="No per-second progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def command(model, sources, backend, jsonl, save, show, serve, track, confirm, gate, threshold, max_frames, agc,
            fixed_size, threads, providers, fp16, int8, calibration_cache, dla_core, workspace_mb, quiet, as_json):
    """Detect targets in MODEL (.pt, .onnx, .engine or `default`) on one or more streams."""
    if as_json and jsonl == "-":
        raise EdgeirstError("--json and --jsonl - both write to stdout; send the JSON lines to a file")
    engine = {k: v for k, v in (("int8", int8 or None), ("calibration_cache", calibration_cache),
                                ("dla_core", dla_core), ("workspace_mb", workspace_mb)) if v is not None}
    summary = run_stream(model, list(sources), backend, jsonl, save, show, serve, track, threshold, max_frames,
                         parse_agc(agc), fixed_size, gate, parse_confirm(confirm), threads, providers, fp16, quiet,
                         engine_options=engine)
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
    else:
        _stderr(summary.text())
    if summary.stopped_by == "interrupted":
        sys.exit(130)
