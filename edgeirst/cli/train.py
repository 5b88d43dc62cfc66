"""`edgeirst train NAME --data DIR ...`"""

from __future__ import annotations

import json

import click

from edgeirst.cli.options import parse_kv
from edgeirst.metrics import METRICS


@click.command("train")
@click.argument("name")
@click.option("--data", required=True, type=click.Path(), help="Dataset root (SIRST-style: images/, masks/, split lists).")
@click.option("--split", default="train", show_default=True, help="Training split.")
@click.option("--val-split", default="val", show_default=True, help="Validation split used to pick best.pt ('none' to skip).")
@click.option("--out", default="runs/train", show_default=True, type=click.Path(), help="Output folder (best.pt, last.pt, results.csv).")
@click.option("--epochs", type=int, help="Epochs (default: the model's paper preset).")
@click.option("--batch", type=int, help="Batch size per process (default: preset).")
@click.option("--lr", type=float, help="Base learning rate (default: preset).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw", "adagrad"]), help="Optimizer (default: preset).")
@click.option("--schedule", type=click.Choice(["cosine", "poly", "constant"]), help="LR schedule (default: preset).")
@click.option("--size", type=int, help="Training crop size in pixels (default: preset).")
@click.option("--width", type=float, help="Model width multiplier.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Extra model keyword argument (repeatable).")
@click.option("--loss-arg", "loss_args", multiple=True, metavar="KEY=VALUE", help="Loss option, e.g. det_weight=3 (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--init", help="Initialise matching weights from a checkpoint or a shipped model such as `default` (pretrain/fine-tune).")
@click.option("--resume", type=click.Path(), help="Resume from a last.pt.")
@click.option("--nproc", default=1, show_default=True, help="Data-parallel processes (gloo on CPU, nccl on CUDA).")
@click.option("--val-every", default=1, show_default=True, help="Validate every N epochs.")
@click.option("--val-metric", default="iou", show_default=True, type=click.Choice(list(METRICS)), help="Metric that selects best.pt.")
@click.option("--threshold", default=0.5, show_default=True, help="Score threshold stored in the model and used for validation.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for PyTorch (default: torch's choice).")
@click.option("--augment", default="strong", show_default=True, type=click.Choice(["none", "basic", "strong"]),
              help="Augmentation: basic = scale, crop, flips, brightness/contrast; strong adds transpose, gamma, noise, blur.")
@click.option("--ema", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Average the weights (EMA) over this fraction of all steps; validation and checkpoints use the average. 0 = off.")
@click.option("--channels-last/--no-channels-last", default=None, help="Memory format (default: the model's measured choice).")
@click.option("--bf16/--no-bf16", "cpu_bf16", default=None, help="bf16 autocast on CPUs with native bf16 (default: the model's measured choice).")
@click.option("--max-steps", type=int, help="Stop each epoch after N steps (smoke tests).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def command(name, data, split, val_split, out, epochs, batch, lr, optimizer, schedule, size, width, model_args, loss_args,
            device, workers, seed, init, resume, nproc, val_every, val_metric, threshold, amp, threads, augment, ema,
            channels_last, cpu_bf16, max_steps, as_json):
    """Train model NAME (see `edgeirst zoo`) with its paper preset, every field overridable."""
    from edgeirst.train import TrainConfig
    from edgeirst.train.trainer import train

    kwargs = parse_kv(model_args)
    if width is not None:
        kwargs["width"] = width
    cfg = TrainConfig(model=name, data=data, out=out, split=split, val_split=None if val_split.lower() == "none" else val_split,
                      model_kwargs=kwargs, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer, schedule=schedule,
                      size=size, workers=workers, seed=seed, device=device, amp=amp, val_every=val_every,
                      val_metric=val_metric, init=init, resume=resume, nproc=nproc, threshold=threshold,
                      loss_options=parse_kv(loss_args), max_steps=max_steps, threads=threads, augment=augment, ema=ema,
                      channels_last=channels_last, cpu_bf16=cpu_bf16)
    summary = train(cfg)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"best: {summary['best']} (epoch {summary['best_epoch']}), last: {summary['last']}, {summary['wall_s']} s")
