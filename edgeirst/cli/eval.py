"""``edgeirst eval``: IoU, nIoU, Pd, Fa, AP50 and AP of a model or of saved predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from edgeirst.cli.options import FiniteFloatRange
from edgeirst.data.sirst import describe_sources, open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend, evaluate_predictions
from edgeirst.io import check_output
from edgeirst.metrics import METRICS, write_roc
from edgeirst.runtime import load_backend

KEYS = ("iou", "niou", "pd", "fa", "ap50", "ap", "fa_per_frame", "fa_frames", "images", "targets", "threshold")


def _plain(metrics: dict) -> dict:
    """Metrics as JSON-safe values: undefined (nan) becomes null."""
    return {k: (None if isinstance(metrics[k], float) and math.isnan(metrics[k]) else metrics[k]) for k in KEYS}


def _table(metrics: dict, source: str, where: str) -> str:
    m = _plain(metrics)
    fmt = {"iou": ".4f", "niou": ".4f", "pd": ".4f", "fa": ".3e", "ap50": ".4f", "ap": ".4f", "fa_per_frame": ".3f",
           "fa_frames": ".3f"}
    lines = [f"{source} on {where}: {m['images']} images, {m['targets']} targets, threshold {m['threshold']:g}"]
    for k, f in fmt.items():
        lines.append(f"  {METRICS[k].label:<9} {'n/a' if m[k] is None else format(m[k], f)}")
    return "\n".join(lines)


@click.command("eval")
@click.argument("model", required=False)
@click.option("--data", "data_dirs", required=True, multiple=True, type=click.Path(path_type=Path),
              help="SIRST-style dataset folder (images/, masks/, idx_427/); repeat to score several as one set.")
@click.option("--split", "splits", default=("val",), show_default=True, multiple=True,
              help="Split to evaluate (a list in idx_427/, a list file's path, or 'all' = every image); "
                   "one for every --data or one per --data.")
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="Folder of saved predictions <id>.png (8-bit, value/255 = probability) instead of a model.")
@click.option("--threshold", type=FiniteFloatRange(0, 1, max_open=True), default=None,
              help="Foreground threshold on the probability (default: the model's own, 0.5 for predictions).")
@click.option("--roc", "roc_path", type=click.Path(path_type=Path), default=None,
              help="Write the Pd-Fa curve to this CSV and a PNG plot beside it.")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "onnxruntime", "tensorrt", "torch", "ort", "trt"]), help="Runtime backend for MODEL.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the metrics.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(model: str | None, data_dirs: tuple[Path, ...], splits: tuple[str, ...], predictions: Path | None, threshold: float | None,
            roc_path: Path | None, backend: str, as_json: bool, quiet: bool) -> None:
    """Evaluate MODEL (a .pt, .onnx or .engine file, or `default`) or saved --predictions on a split
    (or on several datasets' splits as one set). Background-only images count: they add false alarms."""

    if (model is None) == (predictions is None):
        raise EdgeirstError("give either a MODEL (.pt, .onnx, .engine or `default`) or --predictions DIR "
                            + ("(got both)" if model else "(got neither)"))
    if predictions is not None and not predictions.is_dir():
        raise EdgeirstError(f"predictions folder {predictions} does not exist; expected a folder of <id>.png maps")
    dataset = open_datasets(list(data_dirs), list(splits))
    if dataset is None:
        raise EdgeirstError("every --split is 'none': nothing to evaluate")
    if predictions is not None and len(data_dirs) > 1:
        raise EdgeirstError("--predictions scores one dataset; give one --data")
    where = describe_sources(list(data_dirs), list(splits))
    if predictions is not None:
        source = str(predictions)
        metrics, roc = evaluate_predictions(dataset, predictions, 0.5 if threshold is None else threshold,
                                            progress=not quiet)
    else:
        source = model
        with load_backend(model, backend) as runner:
            if roc_path is not None:
                check_output(roc_path, kind=None)  # before the evaluation: --roc may not replace the model (or data)
            metrics, roc = evaluate_backend(runner, dataset, threshold, progress=not quiet)
    # the metrics first: a --roc file that cannot be written must not lose them
    if as_json:
        click.echo(json.dumps(_plain(metrics)))
    else:
        click.echo(_table(metrics, source, where))
    if roc_path is not None:
        written = write_roc(roc, roc_path, png=True)
        click.echo("wrote " + ", ".join(str(p) for p in written), err=True)
