"""``edgeirst demo``: the shipped default model on a synthetic infrared stream, saved as a video."""

from __future__ import annotations

import click

from edgeirst.cli.options import SIZE, parse_range
from edgeirst.cli.run import finish
from edgeirst.runtime.backends import BackendOptions
from edgeirst.runtime.pipeline import RunConfig, run_stream
from edgeirst.runtime.sinks import SinkOptions


@click.command(name="demo")
@click.argument("model", default="default")
@click.option("--model", "model_option", hidden=True, help="Old spelling of the MODEL argument.")
@click.option("--frames", default=150, show_default=True, type=click.IntRange(min=1), help="Frames to process.")
@click.option("--out", default="demo.mp4", show_default=True, type=click.Path(dir_okay=False), help="Annotated video to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the synthetic scene.")
@click.option("--targets", default="1-3", show_default=True, help="Targets per frame (N or MIN-MAX).")
@click.option("--scr", default="8-15", show_default=True,
              help="Targets' signal-to-clutter ratio MIN-MAX. The default model (trained on real SIRST) finds few "
                   "targets below ~8; try 3-8 to see where it struggles.")
@click.option("--size", default="320x256", show_default=True, type=SIZE, help="Frame size N or WxH (width x height).")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "onnxruntime", "tensorrt", "torch"]), help="Inference backend.")
@click.option("--track/--no-track", default=True, show_default=True, help="Temporal confirmation of targets.")
def command(model, model_option, frames, out, seed, targets, scr, size, backend, track):
    """Run MODEL (.onnx, .pt, .engine or a shipped name; default: `default`) on a synthetic stream:
    per-second FPS and detections, then a summary and a video."""
    if model_option:
        click.echo(f"warning: --model is the old spelling; the model is the first argument: edgeirst demo "
                   f"{model_option}", err=True)
        model = model_option

    t_lo, t_hi = parse_range(targets, "--targets", int)
    s_lo, s_hi = parse_range(scr, "--scr")
    h, w = size
    source = f"synthetic://?seed={seed}&targets={t_lo}-{t_hi}&scr={s_lo:g}-{s_hi:g}&size={w}x{h}&fps=25"
    click.echo(f"demo: {model} on {source}, {frames} frames -> {out}")
    summary = run_stream(model, [source], BackendOptions(backend=backend), SinkOptions(save=out),
                         RunConfig(track=track, max_frames=frames), log=click.echo)
    if not summary.error:
        click.echo(f"wrote {out}")
    finish(summary, as_json=False)
