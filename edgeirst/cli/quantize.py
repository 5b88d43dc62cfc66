"""``edgeirst quantize MODEL --precision int8 --data DIR --out model.int8.onnx``"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgeirst.io import allow_replacing_models
from edgeirst.quantize import OverBudget, QuantConfig, parse_max_drop, quantize_model
from edgeirst.quantize.guard import report, summary


def _metrics_line(name: str, m: dict | None) -> str:
    if not m:
        return f"  {name:<5} not checked"
    fa = m.get("fa")
    return (f"  {name:<5} IoU {m['iou']:.4f}  nIoU {m['niou']:.4f}  Pd {m['pd']:.4f}  "
            f"Fa {'n/a' if fa is None else format(fa * 1e6, '.1f') + 'e-6'}  AP50 {m['ap50']:.4f}")


@click.command("quantize")
@click.argument("model")
@click.option("--precision", type=click.Choice(["int8", "fp16"]), default="int8", show_default=True,
              help="int8: QDQ calibrated on real images; fp16: half-precision weights and activations (IO fp32).")
@click.option("--target", type=click.Choice(["cpu", "tensorrt"]), default="cpu", show_default=True,
              help="cpu: onnxruntime's fastest layout (uint8 activations, int8 where it pays); "
                   "tensorrt: symmetric int8 QDQ for an explicit-INT8 engine (+ a TensorRT 8.x calibration cache).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="SIRST-style dataset folder for calibration and the accuracy check (needed for int8).")
@click.option("--split", default="train", show_default=True, help="Calibration split.")
@click.option("--calib-images", type=click.IntRange(1, 100000), default=64, show_default=True,
              help="Calibration images, spread evenly over the split.")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True, help="Activation range calibration.")
@click.option("--val-split", default="val", show_default=True,
              help="Split the INT8/FP16 model is checked on against FP32 (`none`: no check, no fallback).")
@click.option("--max-drop", default="iou=0.01,pd=0.01", show_default=True,
              help="Accuracy budget: largest allowed absolute drop per metric (a rise for Fa).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output .onnx file.")
@click.option("--overwrite", is_flag=True,
              help="Replace a file at --out that holds another kind of model (a .pt checkpoint, a TensorRT engine).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--verbose", "-v", is_flag=True, help="List every node's decision (int8 or float, and why).")
def command(model: str, precision: str, target: str, data_dir: Path | None, split: str, calib_images: int,
            method: str, val_split: str, max_drop: str, out: Path, overwrite: bool, as_json: bool, quiet: bool,
            verbose: bool) -> None:
    """Quantize MODEL (an .onnx from `edgeirst export`, `default` or a shipped model's name) to
    INT8 (QDQ) or FP16, checked against the FP32 model on --val-split."""

    if overwrite:
        allow_replacing_models()
    val = None if val_split.lower() in ("none", "") else val_split
    cfg = QuantConfig(precision=precision, target=target, data=str(data_dir) if data_dir else None, split=split,
                      calib_images=calib_images, method=method, val_split=val, max_drop=parse_max_drop(max_drop))
    try:
        result = quantize_model(model, out, cfg, progress=not quiet)
    except OverBudget as e:  # measured, not a usage error: exit 1
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        changed = [d for d in result.decisions if d["precision"] != precision]
        click.echo(f"per-node decisions ({len(result.decisions) - len(changed)} {precision}, {len(changed)} float"
                   f"{'' if verbose else '; -v lists every node and why'}):", err=True)
        if verbose:
            report(result.decisions, file=sys.stderr)
        else:
            click.echo("\n".join(summary(result.decisions)), err=True)
        click.echo(f"wrote {result.path} ({result.precision}, target {result.target}, "
                   f"{result.path.stat().st_size / 2**20:.2f} MiB)")
        if result.calibration_cache:
            click.echo(f"wrote {result.calibration_cache} (TensorRT 8.x calibration cache)")
        if result.metrics_quant:
            click.echo(f"val [{val}]:")
            click.echo(_metrics_line("FP32", result.metrics_fp32))
            click.echo(_metrics_line(precision.upper(), result.metrics_quant))
            if result.kept_float:
                click.echo(f"kept float by the accuracy guard: {', '.join(result.kept_float)}")
