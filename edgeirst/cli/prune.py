"""``edgeirst prune MODEL --data DIR (--ratio R | --target-gflops G | --target-params N) --out pruned.pt``"""

from __future__ import annotations

import json
import math

import click

from edgeirst.cli.options import POSITIVE_FLOAT, FiniteFloatRange, threads

ROWS = (("params", "params", "{:,}"), ("gmacs", "GMACs", "{:.3f}"), ("iou", "IoU", "{:.4f}"), ("niou", "nIoU", "{:.4f}"),
        ("pd", "Pd", "{:.4f}"), ("fa", "Fa", "{:.2e}"), ("ap50", "AP50", "{:.4f}"))


def table(result: dict) -> str:
    """Before/after as an aligned text table."""
    before, after = result["before"], result["after"]
    lines = [f"{'':<8}{'before':>14}{'after':>14}"]
    for key, label, fmt in ROWS:
        if key in before:
            cell = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)  # noqa: E731
            lines.append(f"{label:<8}{cell(before[key]):>14}{cell(after[key]):>14}")
    lines.append(f"GMACs at {result['count_size']}x{result['count_size']}; metrics on the validation split")
    return "\n".join(lines)


@click.command("prune")
@click.argument("model")
@click.option("--data", type=click.Path(file_okay=False), help="Dataset for fine-tuning and validation (SIRST-style).")
@click.option("--split", default="train", show_default=True, help="Fine-tuning split.")
@click.option("--val-split", default="val", show_default=True, help="Validation split ('none' to skip).")
@click.option("--ratio", type=FiniteFloatRange(0, 1, max_open=True), help="Fraction of channels to remove.")
@click.option("--target-gflops", type=POSITIVE_FLOAT, help="Prune until the model does at most this many GMACs at --count-size.")
@click.option("--target-params", type=POSITIVE_FLOAT, help="Prune until the model has at most this many parameters.")
@click.option("--importance", default="l1", show_default=True, type=click.Choice(["l1", "bn-scale", "taylor"]),
              help="Channel importance: L1 norm of weights, BN scale, or first-order Taylor (needs --data).")
@click.option("--keep", multiple=True, metavar="PREFIX",
              help="Also keep these layers' channels (module-name prefix, repeatable; the heads always are).")
@click.option("--steps", default=1, show_default=True, type=click.IntRange(min=1), help="Prune in this many steps, each fine-tuned.")
@click.option("--finetune-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Epochs of the model's own training after each step (best epoch on --val-split).")
@click.option("--lr", type=POSITIVE_FLOAT, help="Fine-tuning learning rate (default: the model's training rate).")
@click.option("--batch", type=click.IntRange(min=1), help="Fine-tuning batch size (default: the model's).")
@click.option("--threads", type=threads(1), help="CPU threads for PyTorch.")
@click.option("--count-size", default=320, show_default=True, type=click.IntRange(min=16), help="Square input for counting GMACs.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Pruned checkpoint to write (.pt).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(model, data, split, val_split, ratio, target_gflops, target_params, importance, keep, steps, finetune_epochs, lr,
            batch, threads, count_size, out, as_json):
    """Structured pruning of MODEL (a .pt, `default` or a shipped name): channels removed with
    torch-pruning's dependency graph (heads kept), fine-tuned, written as a self-describing
    checkpoint that eval, export and run load like any other."""
    from edgeirst.prune import PruneConfig, prune_run

    cfg = PruneConfig(model=model, out=out, data=data, split=split,
                      val_split=None if val_split.lower() == "none" else val_split, ratio=ratio,
                      target_gmacs=target_gflops, target_params=target_params, importance=importance, steps=steps,
                      finetune_epochs=finetune_epochs, count_size=count_size, lr=lr, batch=batch, threads=threads,
                      keep=tuple(keep))
    result = prune_run(cfg, progress=not as_json, log=lambda line: click.echo(line, err=True))
    click.echo(json.dumps(result) if as_json else f"{table(result)}\nwrote {out}")
