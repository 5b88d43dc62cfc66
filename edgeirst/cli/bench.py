"""``edgeirst bench``: params, GMACs, latency, FPS, memory and accuracy of models across
backends and precisions, measured fairly (warm-up, interleaved rounds) and stamped with the
machine. Thin over ``edgeirst.bench.run_bench``."""

from __future__ import annotations

from pathlib import Path

import click

from edgeirst.bench import BenchConfig, run_bench
from edgeirst.bench.plot import INSTALL_HINT, plot_available, write_plot
from edgeirst.bench.report import check_outputs, format_table, to_csv, to_json, to_markdown, write_atomic
from edgeirst.cli.options import FiniteFloatRange, one_or_list, threads
from edgeirst.errors import EdgeirstError
from edgeirst.machine import describe


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in text.split(",") if t.strip())


@click.command(name="bench")
@click.option("--models", default=None, metavar="all|shipped|A,B",
              help="all (the nine zoo variants, random weights: speed only), shipped (trained models), or a comma "
                   "list of shipped names, zoo names (mtunet-siwd[det] picks heads; random:NAME when a shipped "
                   "model has that name) and .onnx/.pt files. "
                   "[default: shipped; none with --mtl-ratio]")
@click.option("--backends", default="onnxruntime", show_default=True, help="Comma list of onnxruntime, torch, tensorrt.")
@click.option("--precisions", default="fp32", show_default=True,
              help="Comma list of fp32, fp16, bf16, int8 (int8/fp16 ONNX models come from `edgeirst quantize`; "
                   "bf16/fp16 on torch are autocast).")
@click.option("--size", default=256, show_default=True, type=click.IntRange(16, 4096),
              help="Square input side for timing and GMACs.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 256), help="Frames per inference call.")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(min=1), help="Timed runs per row.")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(min=0),
              help="Untimed runs per row before timing (at least one is always run).")
@click.option("--rounds", default=None, type=click.IntRange(min=1),
              help="Interleaved rounds the runs are split into. [default: min(runs, 10)]")
@click.option("--settle", "settle_ms", default=200.0, show_default=True, type=FiniteFloatRange(0, 10000),
              help="Idle milliseconds before each interleaved chunk (untimed), so the previous row's spinning "
                   "worker threads are quiet.")
@click.option("--threads", default=0, show_default=True, type=threads(0),
              help="Intra-op threads for every row (0 = the library's default).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of random weights, input and row order.")
@click.option("--data", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="SIRST-style dataset: score trained models (IoU, nIoU, Pd, Fa, AP50, false alarms per frame, as "
                   "`edgeirst eval`); repeat to score several as one set; the first one's train split calibrates int8.")
@click.option("--split", multiple=True, default=("val",), show_default=True,
              help="Split to score with --data (or a list file's path); one for all or one per --data.")
@click.option("--pipeline", "pipeline", metavar="SRC",
              help="Also run each model end to end through `edgeirst run` on this source (file or synthetic://...): "
                   "FPS and per-stage times.")
@click.option("--pipeline-frames", default=100, show_default=True, type=click.IntRange(min=1),
              help="Frames per --pipeline run.")
@click.option("--mtl-ratio", is_flag=True,
              help="Measure MTUNet's claim: mtunet-det + mtunet-seg back to back vs mtunet, and the same for "
                   "mtunet-siwd (random weights).")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write the rows as a JSON list (each row with its machine stamp).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the rows as CSV.")
@click.option("--md", "md_path", type=click.Path(path_type=Path), help="Write the table as markdown.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path),
              help="Write a PNG: accuracy vs FPS (bubble area = GMACs, Pareto front) and latency bars. "
                   "Needs matplotlib: pip install 'edgeirst[plot]'.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for exported and quantized models (default: a folder in the system's temp dir).")
@click.option("--prepare-only", is_flag=True,
              help="Make every row's model file into the cache and stop (so that a timed run does no exporting).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(models, backends, precisions, size, batch, runs, warmup, rounds, settle_ms, threads, seed, data, split, pipeline,
            pipeline_frames, mtl_ratio, json_path, csv_path, md_path, plot_path, cache, prepare_only, quiet):
    """Compare models by params, GMACs, latency (median, p90, p99, IQR), FPS, memory and accuracy."""

    if models is None and not mtl_ratio:
        models = "shipped"
    inputs = [p for p in (models or "").split(",") if Path(p).suffix] + list(data) + \
        ([pipeline] if pipeline and Path(pipeline).exists() else [])
    outs = check_outputs({"--json": json_path, "--csv": csv_path, "--md": md_path, "--plot": plot_path}, inputs)
    if "--plot" in outs and not plot_available():
        click.echo(f"warning: --plot needs matplotlib, which is not installed: {INSTALL_HINT}; writing the tables only",
                   err=True)
    cfg = BenchConfig(models=models, backends=_split(backends), precisions=_split(precisions), size=size, batch=batch,
                      runs=runs, warmup=warmup, rounds=rounds, settle_ms=settle_ms, threads=threads, seed=seed,
                      data=one_or_list(data), split=one_or_list(split), pipeline=pipeline, pipeline_frames=pipeline_frames,
                      mtl_ratio=mtl_ratio, cache=str(cache) if cache else None)
    result = run_bench(cfg, progress=not quiet, prepare_only=prepare_only)
    if prepare_only:
        for r in result.rows:
            click.echo(f"{r.label}: {r.file or r.note}")
        click.echo("\n".join(result.notes))
        return
    rows = result.rows
    for option, path in outs.items():
        if option == "--json":
            write_atomic(path, to_json(rows))
        elif option == "--csv":
            write_atomic(path, to_csv(rows))
        elif option == "--md":
            write_atomic(path, to_markdown(rows, result.settings, result.notes))
        elif plot_available():
            write_plot(rows, path, title=f"{result.settings.removeprefix('settings: ')}\n{describe(result.machine)}")
    click.echo(format_table(rows, result.settings, result.notes))
    written = [str(p) for o, p in outs.items() if o != "--plot" or plot_available()]
    if written:
        click.echo("wrote " + ", ".join(written), err=True)
    if not any(r.latency_ms is not None for r in rows):
        raise EdgeirstError("no row could run here; the note column says why")
