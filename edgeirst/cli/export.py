"""`edgeirst export CHECKPOINT --out model.onnx`"""

from __future__ import annotations

import json

import click


@click.command("export")
@click.argument("checkpoint")
@click.option("--out", required=True, type=click.Path(), help="Output .onnx file.")
@click.option("--size", type=(int, int), metavar="H W", help="Export input size (default: the training size).")
@click.option("--static", is_flag=True, help="Fixed input shape (TensorRT without profiles); default dynamic H/W.")
@click.option("--opset", default=17, show_default=True, help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True, help="Compare onnxruntime with torch on a random input.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(checkpoint, out, size, static, opset, check, as_json):
    """Export a self-describing checkpoint (a .pt file, `default` or another shipped model's name)
    to ONNX, metadata inside (metadata_props['edgeirst'])."""
    from edgeirst.checkpoint import load_checkpoint
    from edgeirst.export import export_onnx, parity
    from edgeirst.runtime.backends import resolve_model

    model, meta, _ = load_checkpoint(resolve_model(checkpoint, "torch"))
    path = export_onnx(model, meta, out, input_size=size, dynamic=not static, opset=opset)
    result = {"onnx": str(path), "outputs": list(meta.outputs), "input_size": list(size or meta.input_size)}
    if check:
        result["max_abs_diff"] = parity(model, path, tuple(size or meta.input_size))
    if as_json:
        click.echo(json.dumps(result))
    else:
        diff = f", max |torch - onnxruntime| = {result['max_abs_diff']:.2e}" if check else ""
        click.echo(f"wrote {path}{diff}")
