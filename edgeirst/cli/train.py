"""`edgeirst train NAME --data DIR ...` and `edgeirst train --resume RUN/last.pt`"""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from edgeirst.cli import Terminated
from edgeirst.cli.options import DEVICE, POSITIVE_FLOAT, PROBABILITY, FiniteFloatRange, one_or_list, parse_kv, threads
from edgeirst.errors import EdgeirstError
from edgeirst.metrics import METRICS
from edgeirst.train import TrainConfig

# CLI parameter -> TrainConfig field, where the names differ
_FIELDS = {"name": "model", "model_args": "model_kwargs", "loss_args": "loss_options"}
_RECIPE = ("negatives", "target_crops", "hard_crops", "clutter_crops", "copy_paste", "faint", "mine", "synth_targets", "synth_scr", "levels")  # None: TrainConfig's default (off)


@click.command("train")
@click.argument("name", required=False)
@click.option("--data", multiple=True, type=click.Path(),
              help="Dataset root (SIRST-style: images/, masks/, split lists); repeat to train on several at once.")
@click.option("--split", multiple=True, default=("train",), show_default=True,
              help="Training split ('all' = every image, or a list file's path); one for all --data or one per --data.")
@click.option("--val-split", multiple=True, default=("val",), show_default=True,
              help="Validation split(s) that pick best.pt, scored as one set; one per --data ('none' leaves one out).")
@click.option("--negatives", type=PROBABILITY, help="Share of each batch drawn from background-only images (empty masks).")
@click.option("--target-crops", type=PROBABILITY, help="Probability that a training crop is placed on a target.")
@click.option("--hard-crops", type=PROBABILITY,
              help="Probability that a background crop is centred on one of the frame's brightest small blobs.")
@click.option("--clutter-crops", type=PROBABILITY,
              help="Probability that a crop of an image with targets, when not placed on one, is centred on one of "
                   "its brightest small blobs away from them (lamps, windows, glints of the targets' own scenes).")
@click.option("--copy-paste", type=PROBABILITY,
              help="Probability that a background crop gets 1-3 real targets pasted in (varied SCR and size).")
@click.option("--faint", type=PROBABILITY,
              help="Probability that a crop's contrast is scaled down 2-20x around its median (faint targets "
                   "on flat skies, as other sensors show them).")
@click.option("--synth-targets", type=PROBABILITY,
              help="Probability that a crop gets 1-3 synthetic targets (points, spots, elongated; PSF sigma 1-4 px, "
                   "the demo's shapes) rendered onto its real clutter at a signal-to-clutter ratio of 3-15.")
@click.option("--synth-scr", nargs=2, type=FiniteFloatRange(0.5, 100), metavar="LO HI",
              help="Signal-to-clutter ratios of --synth-targets, drawn uniformly  [default: 3 15]")
@click.option("--levels", type=PROBABILITY,
              help="Probability that a crop's grey levels get another camera's gain and offset: contrast 0.5-2.5x "
                   "around its median, the median moved to 0.05-0.75 of the range (dark night skies, hazy ones).")
@click.option("--mine", type=PROBABILITY,
              help="Probability that a crop is centred on one of the model's own false alarms in that image "
                   "(mined on the training images before the first epoch, refreshed after each validation).")
@click.option("--teacher", metavar="MODEL",
              help="Distil a segmentation model (a shipped name such as `default`, or a checkpoint) into this one: "
                   "its dense map learns the teacher's probabilities beside its own loss.")
@click.option("--distill-weight", default=1.0, show_default=True, type=POSITIVE_FLOAT,
              help="Weight of the distillation term (with --teacher).")
@click.option("--out", default="runs/train", show_default=True, type=click.Path(), help="Output folder (best.pt, last.pt, results.csv).")
@click.option("--exist-ok", is_flag=True, help="Replace a run already in --out (default: refuse).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default: the model's paper preset).")
@click.option("--batch", type=click.IntRange(min=1), help="Batch size per process (default: preset).")
@click.option("--lr", type=POSITIVE_FLOAT, help="Base learning rate (default: preset).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw", "adagrad"]), help="Optimizer (default: preset).")
@click.option("--schedule", type=click.Choice(["cosine", "poly", "constant"]), help="LR schedule (default: preset).")
@click.option("--size", type=click.IntRange(min=8), help="Training crop size in pixels, square (default: preset).")
@click.option("--width", type=POSITIVE_FLOAT, help="Model width multiplier.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Extra model keyword argument (repeatable).")
@click.option("--loss-arg", "loss_args", multiple=True, metavar="KEY=VALUE", help="Loss option, e.g. det_weight=3 (repeatable).")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", default=0, show_default=True, type=threads(0), help="DataLoader worker processes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--init", help="Initialise matching weights from a checkpoint or a shipped model such as `default` (pretrain/fine-tune).")
@click.option("--resume", type=click.Path(dir_okay=False), help="Continue a run from its last.pt, with the settings it was started with.")
@click.option("--nproc", default=1, show_default=True, type=threads(1), help="Data-parallel processes (gloo on CPU, nccl on CUDA).")
@click.option("--val-every", default=1, show_default=True, type=click.IntRange(min=1), help="Validate every N epochs.")
@click.option("--val-metric", default="iou", show_default=True, type=click.Choice(list(METRICS)), help="Metric that selects best.pt.")
@click.option("--threshold", default=0.5, show_default=True, type=PROBABILITY, help="Score threshold stored in the model and used for validation.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA.")
@click.option("--threads", type=threads(1), help="CPU threads for PyTorch (default: torch's choice).")
@click.option("--augment", default="strong", show_default=True, type=click.Choice(["none", "basic", "strong"]),
              help="Augmentation: basic = scale, crop, flips, brightness/contrast; strong adds transpose, gamma, noise, blur.")
@click.option("--ema", default=0.1, show_default=True, type=PROBABILITY,
              help="Average the weights (EMA) over this fraction of all steps; validation and checkpoints use the average. 0 = off.")
@click.option("--channels-last/--no-channels-last", default=None, help="Memory format (default: the model's measured choice).")
@click.option("--bf16/--no-bf16", "cpu_bf16", default=None, help="bf16 autocast on CPUs with native bf16 (default: the model's measured choice).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop each epoch after N steps (smoke tests).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def command(ctx: click.Context, name, data, val_split, model_args, loss_args, width, resume, as_json, **options):
    """Train model NAME (see `edgeirst zoo`) with its paper preset, every field overridable.
    `edgeirst train --resume RUN/last.pt` continues a run with the settings it was started with."""
    from edgeirst.train.trainer import train

    if options.get("teacher") is None and ctx.get_parameter_source("distill_weight") == ParameterSource.COMMANDLINE \
            and not resume:
        raise EdgeirstError("--distill-weight weighs the teacher's term; give --teacher MODEL with it")
    kwargs = parse_kv(model_args)
    if width is not None:
        kwargs["width"] = width
    options = {k: v for k, v in options.items() if not (k in _RECIPE and v is None)}
    if "synth_scr" in options and options["synth_scr"][0] > options["synth_scr"][1]:
        raise EdgeirstError(f"--synth-scr: LO {options['synth_scr'][0]:g} is above HI {options['synth_scr'][1]:g}")
    options["split"] = one_or_list(options["split"])
    val = one_or_list(val_split)
    values = dict(options, model=name, data=one_or_list(data), model_kwargs=kwargs,
                  loss_options=parse_kv(loss_args), val_split=None if isinstance(val, str) and val.lower() == "none" else val)
    if resume:
        given = {_FIELDS.get(p, p): values[_FIELDS.get(p, p)] for p in ctx.params
                 if p not in ("resume", "as_json") and ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE
                 and _FIELDS.get(p, p) in values}
        if width is not None or model_args:
            given["model_kwargs"] = kwargs
        cfg = TrainConfig.for_resume(resume, **given)
    else:
        if not name or not data:
            raise EdgeirstError("missing " + " and ".join(n for n, v in (("NAME", name), ("--data", data)) if not v)
                                + "; usage: edgeirst train NAME --data DIR (or edgeirst train --resume RUN/last.pt)")
        cfg = TrainConfig(**values)

    try:
        summary = train(cfg)
    except (KeyboardInterrupt, Terminated):
        last = Path(cfg.out) / "last.pt"
        if last.is_file():
            click.echo(f"training stopped; {last} holds the last finished epoch: continue with "
                       f"`edgeirst train --resume {last}`", err=True)
        raise
    if as_json:
        click.echo(json.dumps(summary))
    else:
        best = (f"best: {summary['best']} (epoch {summary['best_epoch']})" if summary["best"]
                else "no validation split, no best.pt")
        click.echo(f"{best}, last: {summary['last']}, {summary['wall_s']} s")
