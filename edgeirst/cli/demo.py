"""``edgeirst demo``: the shipped default model on a synthetic infrared stream, saved as a video."""

from __future__ import annotations

import click

from edgeirst.cli.run import run_stream


@click.command(name="demo")
@click.option("--model", default="default", show_default=True, help="Model to run (.onnx, .pt, .engine or `default`).")
@click.option("--frames", default=150, show_default=True, type=click.IntRange(min=1), help="Frames to process.")
@click.option("--out", default="demo.mp4", show_default=True, help="Annotated video to write.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic scene.")
@click.option("--targets", default="1-3", show_default=True, help="Targets per frame (N or MIN-MAX).")
@click.option("--scr", default="8-15", show_default=True,
              help="Targets' signal-to-clutter ratio MIN-MAX. The default model (trained on real SIRST) finds few "
                   "targets below ~8; try 3-8 to see where it struggles.")
@click.option("--size", default="320x256", show_default=True, help="Frame size WxH.")
@click.option("--backend", default="auto", show_default=True, help="auto, onnxruntime, tensorrt or torch.")
@click.option("--track/--no-track", default=True, show_default=True, help="Temporal confirmation of targets.")
def command(model, frames, out, seed, targets, scr, size, backend, track):
    """Run MODEL on a synthetic stream: per-second FPS and detections, then a summary and a video."""
    source = f"synthetic://?seed={seed}&targets={targets}&scr={scr}&size={size}&fps=25"
    click.echo(f"demo: {model} on {source}, {frames} frames -> {out}")
    summary = run_stream(model, [source], backend, save=out, track=track, max_frames=frames, log=click.echo)
    click.echo(summary.text())
    click.echo(f"wrote {out}")
