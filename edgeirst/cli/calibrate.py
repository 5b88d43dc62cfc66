"""`edgeirst calibrate MODEL --data DIR --split S --max-fa-per-frame F --out M2`"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeirst.checkpoint import write_with_meta
from edgeirst.cli.options import PROBABILITY, FiniteFloatRange
from edgeirst.confidence import threshold_for_budget
from edgeirst.data.sirst import describe_sources, open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend, fit_confidence
from edgeirst.io import CHECKPOINT, ONNX, check_output, refuse_input_as_output
from edgeirst.runtime import load_backend
from edgeirst.weights import resolve_model

# A fine sweep: calibrated confidences spread over (0, 1), and the budget's point may fall anywhere.
SWEEP = tuple(round(0.02 * k, 2) for k in range(1, 50))


@click.command("calibrate")
@click.argument("model")
@click.option("--data", "data_dirs", required=True, multiple=True, type=click.Path(path_type=Path),
              help="Validation dataset folder; repeat to calibrate on several sources (targets and background frames).")
@click.option("--split", "splits", default=("val",), show_default=True, multiple=True,
              help="Split (or a list file's path), one for every --data or one per --data.")
@click.option("--max-fa-per-frame", "budget", default=0.1, show_default=True, type=FiniteFloatRange(0, 100),
              help="False-alarm budget: the operating threshold is the lowest that keeps false alarms per frame "
                   "within it on these images.")
@click.option("--threshold", type=PROBABILITY, default=None,
              help="Use this confidence threshold instead of choosing one for the budget.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The calibrated model (same format as MODEL: .pt or .onnx).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(model: str, data_dirs: tuple[Path, ...], splits: tuple[str, ...], budget: float,
            threshold: float | None, out: Path, as_json: bool, quiet: bool) -> None:
    """Give a segmentation MODEL scores that rank: a confidence per target learned on validation
    images (its logit, not its saturated probability), and the threshold that meets a false-alarm
    budget, both written into a copy of the model's metadata."""
    source = resolve_model(model, "auto")
    if source.suffix.lower() not in (".pt", ".onnx"):
        raise EdgeirstError(f"{source}: calibrate writes .pt or .onnx models; calibrate the ONNX an engine was built from")
    refuse_input_as_output(out, source)
    check_output(out, CHECKPOINT if source.suffix.lower() == ".pt" else ONNX)  # a link is refused now, not after the work
    dataset = open_datasets(list(data_dirs), list(splits))
    if dataset is None:
        raise EdgeirstError("every --split is 'none': nothing to calibrate on")
    with load_backend(str(source), "torch" if source.suffix.lower() == ".pt" else "onnxruntime") as runner:
        calib = fit_confidence(runner, dataset, progress=not quiet)
        runner.meta = runner.meta.replace(decode_args={**runner.meta.decode_args, "confidence": calib})
        metrics, roc = evaluate_backend(runner, dataset, threshold=0.5, roc_thresholds=SWEEP, progress=not quiet)
    chosen = threshold
    if chosen is None:
        point = threshold_for_budget(roc, budget)
        if point is None:
            worst = min(r["fa_per_frame"] for r in roc)
            raise EdgeirstError(f"no threshold keeps false alarms within {budget:g} per frame on these images "
                                f"(fewest: {worst:.3f} at threshold {SWEEP[-1]:g}); raise --max-fa-per-frame")
        chosen = point["threshold"]
    where = describe_sources(list(data_dirs), list(splits))
    calib = {**calib, "data": where, "max_fa_per_frame": None if threshold is not None else budget}
    meta = runner.meta.replace(decode_args={**runner.meta.decode_args, "confidence": calib}, threshold=float(chosen))
    at = next((r for r in roc if r["threshold"] == chosen), None)
    written = write_with_meta(source, meta, out)
    result = {"out": str(written), "threshold": chosen, "confidence": calib,
              "at_threshold": at, "at_0.5": {k: metrics[k] for k in ("iou", "pd", "fa", "fa_per_frame", "fa_frames")}}
    if as_json:
        click.echo(json.dumps(result))
    else:
        c = calib
        click.echo(f"confidence fitted on {c['components']} components ({c['true']} true targets) of {where}")
        if at is not None:
            click.echo(f"threshold {chosen:g}: Pd {at['pd']:.4f}, IoU {at['iou']:.4f}, "
                       f"{at['fa_per_frame']:.3f} false alarms per frame, {at['fa_frames']:.3f} of frames with any")
        click.echo(f"wrote {written}")
