"""``edgeirst run MODEL --source ...``: detect targets on live or recorded streams.

A thin shell over ``edgeirst.runtime.pipeline.run_stream``: options become three objects
(``BackendOptions`` with its TensorRT ``BuildOptions``, ``SinkOptions``, ``RunConfig``), the
run and engine options through ``edgeirst.cli.stream_options``, as ``deploy``'s.
"""

from __future__ import annotations

import json
import sys

import click

from edgeirst.cli.options import threads
from edgeirst.cli.stream_options import engine_options, pop_run_config, run_options
from edgeirst.errors import EdgeirstError
from edgeirst.runtime.backends import BackendOptions, BuildOptions
from edgeirst.runtime.pipeline import run_stream
from edgeirst.runtime.sinks import SinkOptions

# exit status after a signal, as a shell reports a process killed by it
EXIT_STATUS = {"interrupted": 130, "terminated": 143}


def finish(summary, as_json: bool) -> None:
    """Print a run's summary (JSON on stdout or text on stderr), then its error line, and exit
    with the status its end calls for (2 after an error, 130/143 after SIGINT/SIGTERM)."""
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
    else:
        click.echo(summary.text(), err=True)
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
        sys.exit(2)
    if summary.stopped_by in EXIT_STATUS:
        sys.exit(EXIT_STATUS[summary.stopped_by])


@click.command(name="run")
@click.argument("model")
@click.option("--source", "-s", "sources", multiple=True, required=True,
              help="Camera index or /dev/videoN[?fourcc=Y16], video file, image folder or glob, rtsp://..., "
                   "GStreamer pipeline (with '!'), csi://N, synthetic://?seed=3&targets=2&fps=30. Repeat to batch "
                   "several sources into one inference call.")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "onnxruntime", "tensorrt", "torch", "ort", "trt"]), help="Inference backend.")
@click.option("--jsonl", metavar="FILE|-", help="Write one JSON line per processed frame ('-' = stdout).")
@click.option("--save", metavar="OUT.mp4", help="Write an annotated video (mp4v .mp4 or MJPG .avi).")
@click.option("--save-dir", metavar="DIR", help="Image sources: write one annotated image per input image into DIR, "
                                                 "under its own file name (never the input folder).")
@click.option("--show", is_flag=True, help="Show annotated frames in a window (q quits).")
@click.option("--serve", metavar="HOST:PORT", help="Serve an MJPEG preview, e.g. 127.0.0.1:8080.")
@run_options
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames per source.")
@click.option("--threads", type=threads(0), default=0, help="Inference threads (0 = backend default).")
@click.option("--providers", help="onnxruntime providers: auto, cpu, cuda, tensorrt (comma separated).")
@click.option("--fp16", is_flag=True, help="FP16 on TensorRT (engine build or onnxruntime's TensorRT provider).")
@click.option("--int8", is_flag=True, help="TensorRT engine build: INT8 (from a QDQ model, or with --calibration-cache).")
@click.option("--calibration-cache", type=click.Path(exists=True, dir_okay=False),
              help="TensorRT 8.x INT8 calibration cache for the engine build.")
@engine_options
@click.option("--quiet", "-q", is_flag=True, help="No per-second progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def command(model, sources, backend, jsonl, save, save_dir, show, serve, max_frames, threads, providers, fp16, int8,
            calibration_cache, dla_core, workspace_mb, quiet, as_json, **settings):
    """Detect targets in MODEL (.pt, .onnx, .engine or `default`) on one or more streams."""

    if as_json and jsonl == "-":
        raise EdgeirstError("--json and --jsonl - both write to stdout; send the JSON lines to a file")
    build = BuildOptions(fp16=fp16, int8=int8, calibration_cache=calibration_cache, dla_core=dla_core,
                         workspace_mb=workspace_mb)
    summary = run_stream(model, list(sources),
                         BackendOptions(backend=backend, threads=threads, providers=providers, build=build),
                         SinkOptions(jsonl=jsonl, save=save, show=show, serve=serve, save_dir=save_dir),
                         pop_run_config(settings, max_frames=max_frames, report_every=0 if quiet else 1.0))
    finish(summary, as_json)
