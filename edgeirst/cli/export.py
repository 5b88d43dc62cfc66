"""`edgeirst export CHECKPOINT --out model.onnx`"""

from __future__ import annotations

import json

import click

from edgeirst.checkpoint import load_checkpoint
from edgeirst.cli.options import SIZE
from edgeirst.export import export_onnx, parity
from edgeirst.io import ONNX, allow_replacing_models, check_output, refuse_input_as_output
from edgeirst.preprocess import refuse_size_over_memory
from edgeirst.weights import resolve_model


@click.command("export")
@click.argument("checkpoint")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .onnx file.")
@click.option("--size", type=SIZE, help="Export input size N or WxH (width x height; default: the training size).")
@click.option("--static", is_flag=True, help="Fixed input shape (TensorRT without profiles); default dynamic H/W.")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(11, 20), help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True, help="Compare onnxruntime with torch on a random input.")
@click.option("--overwrite", is_flag=True,
              help="Replace a file at --out that holds another kind of model (a .pt checkpoint, a TensorRT engine).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(checkpoint, out, size, static, opset, check, overwrite, as_json):
    """Export a self-describing checkpoint (a .pt file, `default` or another shipped model's name)
    to ONNX, metadata inside (metadata_props['edgeirst'])."""

    source = resolve_model(checkpoint, "torch")
    refuse_input_as_output(out, source)
    if overwrite:
        allow_replacing_models()
    check_output(out, ONNX)  # before the export: a link or another kind of model is refused now
    model, meta, _ = load_checkpoint(source)
    if size:
        refuse_size_over_memory(size, meta, "--size", "give a smaller --size")
    path = export_onnx(model, meta, out, input_size=size, dynamic=not static, opset=opset)
    result = {"onnx": str(path), "outputs": list(meta.outputs), "input_size": list(size or meta.input_size)}
    if check:
        result["max_abs_diff"] = parity(model, path, tuple(size or meta.input_size))
    if as_json:
        click.echo(json.dumps(result))
    else:
        diff = f", max |torch - onnxruntime| = {result['max_abs_diff']:.2e}" if check else ""
        click.echo(f"wrote {path}{diff}")
