"""Structured channel pruning with torch-pruning's dependency graph.

The graph keeps every coupled layer consistent: skip concatenations, DNANet's nested nodes,
CBAM/CSAM attention gates, SIWD's parallel asymmetric convolutions, CSP blocks and the heads.
The output channels of the layers a model's registry entry lists in ``keep`` (its heads: what
the decoder reads) are never pruned. ``prune_channels`` prunes a model in place by a ratio;
``prune_to_target`` searches the ratio that reaches a GMACs or parameter target;
``prune_run`` (the ``edgeirst prune`` command) iterates prune -> fine-tune with the model's own
trainer and loss, and writes a self-describing checkpoint whose structure travels inside.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgeirst.checkpoint import load_checkpoint, save_checkpoint
from edgeirst.data.sirst import SirstDataset
from edgeirst.errors import EdgeirstError, missing_extra
from edgeirst.evaluate import evaluate_backend
from edgeirst.io import CHECKPOINT, check_output, refuse_input_as_output
from edgeirst.models import model_entry
from edgeirst.models.complexity import count_macs, count_params
from edgeirst.runtime.backends.torch import TorchBackend
from edgeirst.train import TrainConfig
from edgeirst.weights import resolve_model

IMPORTANCES = ("l1", "bn-scale", "taylor")


@dataclass(frozen=True)
class Complexity:
    params: int
    gmacs: float

    @classmethod
    def of(cls, model: nn.Module, size: int, in_chans: int = 1) -> "Complexity":
        return cls(count_params(model), count_macs(model, size, in_chans) / 1e9)


def _import_tp():
    try:
        import torch_pruning as tp
    except ImportError:
        raise missing_extra("torch-pruning", "train") from None
    return tp


def kept_layers(model: nn.Module, name: str, keep: tuple[str, ...] = ()) -> list[nn.Module]:
    """The modules whose output channels pruning must keep: the heads (``model_entry(name).keep``
    prefixes) and the caller's ``keep`` prefixes (module names, e.g. ``backbone.ups.3``)."""
    def under(prefixes) -> list[nn.Module]:
        return [m for n, m in model.named_modules()
                if any(n == p or n.startswith(p + ".") for p in prefixes) and isinstance(m, (nn.Conv2d, nn.Linear))]

    prefixes = model_entry(name).keep
    kept = under(prefixes)
    if prefixes and not kept:
        raise EdgeirstError(f"model {name!r} lists layers to keep ({', '.join(prefixes)}) that it does not have")
    for prefix in keep:
        extra = under((prefix,))
        if not extra:
            tops = sorted({n.split(".")[0] for n, _ in model.named_children()})
            raise EdgeirstError(f"--keep {prefix}: no convolution of {name} is named so (its modules: {', '.join(tops)}; "
                                "names as in model.named_modules())")
        kept += extra
    return kept


def _importance(tp, kind: str):
    if kind == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if kind == "bn-scale":
        return tp.importance.BNScaleImportance()
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise EdgeirstError(f"unknown importance {kind!r}; expected one of {', '.join(IMPORTANCES)}")


ROUND_TO = 4  # kept channels are multiples of this (vector kernels, INT8 packing)


def kept_channels(current: int, n_pruned: int, multiple: int = ROUND_TO) -> int:
    """Channels a layer keeps when the ratio asks to remove ``n_pruned`` of ``current``: the
    nearest multiple of ``multiple``, at least one multiple (a layer narrower than that keeps all).

    torch-pruning's own ``round_to`` rounds the kept count *down*, so at a 3% ratio an 8-channel
    layer keeps 4 and a 16-channel one 12: the narrow layers of a small model are halved by any
    ratio, which destroyed MTUNet-SIWD and Light-SGMTLM before fine-tuning could begin (val IoU
    0.63 -> 0.002 at 3%). Rounding to the nearest multiple honours the ratio per layer."""
    if current <= multiple:
        return current
    return max(multiple, multiple * int((current - n_pruned) / multiple + 0.5))  # halves keep more


def _nearest_multiple_pruner(tp):
    if not hasattr(tp.pruner.MetaPruner, "_round_to"):  # the hook below would be silently ignored
        raise EdgeirstError(f"torch-pruning {getattr(tp, '__version__', '?')} lacks the rounding hook edgeirst "
                            "uses; install torch-pruning>=1.6")

    class NearestMultiplePruner(tp.pruner.MetaPruner):
        def _round_to(self, n_pruned, current_channels, round_to):  # torch-pruning's rounding hook
            return current_channels - kept_channels(current_channels, n_pruned, round_to)

    return NearestMultiplePruner


def prune_channels(model: nn.Module, name: str, ratio: float, importance: str = "l1", size: int = 64,
                   in_chans: int = 1, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
                   keep: tuple[str, ...] = ()) -> nn.Module:
    """Remove ``ratio`` of the prunable channels of every layer group (in place; returns it).

    ``loss_fn(model)`` computes a training loss for Taylor importance (gradients are needed);
    ``keep`` names more layers (module-name prefixes) whose output channels stay, beside the heads.
    """
    if not 0.0 <= ratio < 1.0:
        raise EdgeirstError(f"pruning ratio must be in [0, 1), got {ratio}")
    if ratio == 0.0:
        return model
    tp = _import_tp()
    was_training = model.training
    model.eval()
    example = torch.zeros(1, in_chans, size, size)
    pruner = _nearest_multiple_pruner(tp)(
        model, example, importance=_importance(tp, importance), pruning_ratio=ratio,
        ignored_layers=kept_layers(model, name, keep), round_to=ROUND_TO,
        output_transform=lambda out: sum(v.sum() for v in out.values()) if isinstance(out, dict) else out)
    if importance == "taylor":
        if loss_fn is None:
            raise EdgeirstError("Taylor importance needs data: give --data so a training loss can be computed")
        model.zero_grad()
        loss_fn(model).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return model


def prune_to_target(model: nn.Module, name: str, size: int, in_chans: int = 1, target_gmacs: float | None = None,
                    target_params: float | None = None, importance: str = "l1",
                    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
                    keep: tuple[str, ...] = ()) -> tuple[nn.Module, float]:
    """The model pruned by the smallest ratio that reaches the target; returns (pruned model, ratio).

    Size is not monotonic in the ratio near the top: with channels rounded to multiples of 4, a
    group that would keep fewer than 4 channels is left whole, so 0.95 can be larger than 0.5.
    The ratio is therefore found on a grid (0.05 .. 0.90) first, then bisected between the last
    grid point above the target and the first one at or below it, each trial on a copy.
    Raises when even 0.90 does not reach the target.
    """
    if (target_gmacs is None) == (target_params is None):
        raise EdgeirstError("give exactly one target: GMACs or parameters")

    def measure(m: nn.Module) -> float:
        c = Complexity.of(m, size, in_chans)
        return c.gmacs if target_gmacs is not None else c.params

    target = target_gmacs if target_gmacs is not None else target_params
    if measure(model) <= target:
        return model, 0.0

    def reaches(r: float) -> bool:
        pruned = prune_channels(copy.deepcopy(model), name, r, "l1" if importance == "taylor" else importance,
                                size, in_chans, keep=keep)
        return measure(pruned) <= target

    lo = 0.0
    for hi in GRID:
        if reaches(hi):
            break
        lo = hi
    else:
        raise EdgeirstError(f"pruning {name} by {GRID[-1]:.0%} still does not reach the target {target:g}; "
                            "ask for a larger target")
    for _ in range(5):  # ratio within 0.05 / 32
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if not reaches(mid) else (lo, mid)
    return prune_channels(model, name, hi, importance, size, in_chans, loss_fn, keep), hi


GRID = tuple(round(0.05 * k, 2) for k in range(1, 19))  # 0.05 .. 0.90


@dataclass
class PruneConfig:
    """One ``edgeirst prune`` run. Exactly one of ``ratio``, ``target_gmacs``, ``target_params``."""

    model: str
    out: str
    data: str | None = None
    split: str = "train"
    val_split: str | None = "val"
    ratio: float | None = None
    target_gmacs: float | None = None  # at ``count_size`` x ``count_size``
    target_params: float | None = None
    importance: str = "l1"
    steps: int = 1
    finetune_epochs: int = 0
    count_size: int = 320
    lr: float | None = None  # fine-tuning rate (default: the model's training rate)
    batch: int | None = None
    threads: int | None = None
    keep: tuple[str, ...] = ()  # layers kept whole besides the heads (module-name prefixes)


def _finetune_config(cfg: PruneConfig, meta, out: Path):
    keep = ("optimizer", "lr", "batch", "size", "weight_decay", "augment", "cpu_bf16", "channels_last", "threshold",
            "loss_options", "ema", "val_metric")  # a detector keeps choosing its best epoch by AP50
    # the full recipe (train.config), else what an older checkpoint recorded beside it (optimizer, lr, batch, size)
    trained = {k: meta.train[k] for k in keep if k in meta.train} | dict(meta.train.get("config") or {})
    base = {k: trained[k] for k in keep if trained.get(k) is not None}
    base.update({k: v for k, v in (("lr", cfg.lr), ("batch", cfg.batch)) if v is not None})
    return TrainConfig(model=meta.name, data=str(cfg.data), split=cfg.split, val_split=cfg.val_split, out=str(out),
                       model_kwargs=dict(meta.kwargs), epochs=cfg.finetune_epochs, threads=cfg.threads,
                       exist_ok=True, schedule="cosine", warmup_epochs=0, **base)


def prune_run(cfg: PruneConfig, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Prune ``cfg.model`` in ``cfg.steps`` steps (each followed by ``finetune_epochs`` of the
    model's own training, best epoch on val), write the self-describing pruned checkpoint to
    ``cfg.out`` and return the before/after table (params, GMACs, val metrics)."""

    from edgeirst.train.trainer import train

    given = [v is not None for v in (cfg.ratio, cfg.target_gmacs, cfg.target_params)]
    if sum(given) != 1:
        raise EdgeirstError("give exactly one of --ratio, --target-gflops, --target-params")
    if cfg.importance not in IMPORTANCES:
        raise EdgeirstError(f"unknown importance {cfg.importance!r}; expected one of {', '.join(IMPORTANCES)}")
    if (cfg.finetune_epochs or cfg.importance == "taylor") and not cfg.data:
        raise EdgeirstError("fine-tuning and Taylor importance need --data (a SIRST-style dataset)")
    source = resolve_model(cfg.model, "torch")
    refuse_input_as_output(cfg.out, source)
    check_output(cfg.out, CHECKPOINT)  # a link or another kind of model is refused now, not after fine-tuning
    model, meta, _ = load_checkpoint(source)
    kept_layers(model, meta.name, tuple(cfg.keep))  # a --keep that names no layer fails before any work
    val = SirstDataset(cfg.data, cfg.val_split) if cfg.data and cfg.val_split else None
    train_ds = SirstDataset(cfg.data, cfg.split) if cfg.data else None  # checks the split before any work

    def measure(m: nn.Module) -> dict:
        c = Complexity.of(m, cfg.count_size, meta.in_chans)
        row = {"params": c.params, "gmacs": round(c.gmacs, 4)}
        if val is not None:
            metrics, _ = evaluate_backend(TorchBackend.from_model(m.eval(), meta), val, progress=False)
            row.update({k: metrics[k] for k in ("iou", "niou", "pd", "fa", "ap50", "ap")})
        return row

    before = measure(model)
    loss_fn = _taylor_loss(meta, train_ds) if cfg.importance == "taylor" else None
    steps = max(1, int(cfg.steps))
    total_ratio = None
    with tempfile.TemporaryDirectory(prefix="edgeirst-prune-") as work:
        for k in range(1, steps + 1):
            if cfg.ratio is not None:
                step_ratio = 1.0 - (1.0 - cfg.ratio) ** (1.0 / steps)
                prune_channels(model, meta.name, step_ratio, cfg.importance, meta.input_size[0], meta.in_chans, loss_fn,
                               tuple(cfg.keep))
            else:
                start = before["gmacs"] if cfg.target_gmacs is not None else before["params"]
                goal = cfg.target_gmacs if cfg.target_gmacs is not None else cfg.target_params
                target = start * (goal / start) ** (k / steps)
                model, _ = prune_to_target(model, meta.name, cfg.count_size, meta.in_chans,
                                           target if cfg.target_gmacs is not None else None,
                                           target if cfg.target_params is not None else None,
                                           cfg.importance, loss_fn, tuple(cfg.keep))
            now = Complexity.of(model, cfg.count_size, meta.in_chans)
            log(f"step {k}/{steps}: {now.params / 1e6:.3f}M params, {now.gmacs:.3f} GMACs@{cfg.count_size}")
            if cfg.finetune_epochs:
                summary = train(_finetune_config(cfg, meta, Path(work) / f"step{k}"), progress=progress, model=model)
                model, _, _ = load_checkpoint(summary["best"])
        after = measure(model)
        total_ratio = 1.0 - after["params"] / before["params"]
        named = not Path(str(cfg.model)).expanduser().exists()  # a shipped name: record it, not this install's path
        info = {"pruned_from": str(cfg.model) if named else str(source), "importance": cfg.importance, "steps": steps,
                "ratio": cfg.ratio, "target_gmacs": cfg.target_gmacs, "target_params": cfg.target_params,
                "params_removed": round(total_ratio, 4), "finetune_epochs": cfg.finetune_epochs, "keep": list(cfg.keep),
                "before": before, "after": after, "count_size": cfg.count_size}
        metrics = {k: after[k] for k in ("iou", "niou", "pd", "fa", "ap50", "ap") if k in after}
        if metrics:
            metrics["split"] = cfg.val_split
        out_meta = meta.replace(train={**meta.train, "pruning": info}, metrics=metrics or meta.metrics)
        save_checkpoint(cfg.out, model, out_meta)
    return {"out": str(cfg.out), **info}


def _taylor_loss(meta, dataset) -> Callable[[nn.Module], torch.Tensor]:
    """A training loss on a few real images, for Taylor importance (gradients x weights)."""
    from edgeirst.losses import criterion_for
    from edgeirst.train.dataset import TrainSamples, collate, mean_target_size, unit_images

    images, masks = unit_images(dataset)
    samples = TrainSamples(images[:8], masks[:8], meta, meta.input_size[0], augment="none")
    batch = collate([samples[i] for i in range(len(samples))])

    def loss(model: nn.Module) -> torch.Tensor:
        criterion = criterion_for(meta.name, model.spec, mean_target_size=mean_target_size(masks))
        model.train()
        out = {k: v.float() for k, v in model(batch["image"]).items()}
        value, _ = criterion(out, batch, 100)
        model.eval()
        return value

    return loss


__all__ = ["IMPORTANCES", "Complexity", "PruneConfig", "kept_layers", "prune_channels", "prune_run", "prune_to_target"]
