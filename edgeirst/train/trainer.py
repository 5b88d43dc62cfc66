"""The one trainer for every model in the zoo.

What differs between models (targets, losses, decoding) comes from the model's ``spec`` and
``edgeirst.losses.build_criterion``; the loop itself is shared. Validation runs the model at
each image's native resolution through the same preprocessing, decoding and metrics as
``edgeirst eval`` and the runtime. Rank 0 validates, logs and writes checkpoints:
``last.pt`` every epoch (with optimizer state, for ``--resume``), ``best.pt`` when the
validation metric improves, ``results.csv`` a row per epoch.
"""

from __future__ import annotations

import csv
import math
import platform
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from edgeirst.checkpoint import meta_for, read_checkpoint, save_checkpoint
from edgeirst.data.sirst import SirstDataset
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend
from edgeirst.losses import build_criterion
from edgeirst.metrics import METRICS
from edgeirst.models import create_model
from edgeirst.train import distributed as dd
from edgeirst.train.config import TrainConfig
from edgeirst.train.dataset import TrainSamples, collate, intensity_stats, mean_target_size, unit_images
from edgeirst.train.ema import ModelEMA, ema_decay_for


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EdgeirstError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    return torch.device(name)


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """fp16 on CUDA with ``amp``; bf16 on a CPU with native bf16 when the model's preset (or
    ``--bf16``) asks for it; else None (fp32)."""
    if device.type == "cuda":
        return torch.float16 if cfg.amp else None
    if device.type == "cpu" and cfg.cpu_bf16 and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class ModelRunner:
    """An in-memory model behind the runtime's backend interface (``meta`` + ``infer``), so
    validation during training uses the one evaluation loop."""

    def __init__(self, model: torch.nn.Module, meta, device: torch.device):
        self.model, self.meta, self.device = model, meta, device

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = self.model(torch.from_numpy(batch).to(self.device))
        return {n: out[n].float().cpu().numpy() for n in self.meta.outputs}


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    name = cfg.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.937, nesterov=True, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise EdgeirstError(f"unknown optimizer {cfg.optimizer!r}; expected sgd, adam, adamw or adagrad")


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine to 1% / poly(0.9) / constant."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = cfg.warmup_epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    if cfg.schedule == "cosine":
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "poly":
        return (1 - t) ** 0.9
    return 1.0


def _init_from(model: torch.nn.Module, path: str) -> int:
    """Copy every weight whose name and shape match (pretrain one task, fine-tune another).
    ``path`` may also name a shipped model (``default``)."""
    from edgeirst.runtime.backends import resolve_model

    src = read_checkpoint(resolve_model(path, "torch"))["state_dict"]
    own = model.state_dict()
    matched = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise EdgeirstError(f"--init {path}: no weight matches this model; is it the same family?")
    own.update(matched)
    model.load_state_dict(own)
    return len(matched)


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train as configured; returns a summary (paths, best metrics, wall time)."""
    cfg = cfg.resolved()
    if cfg.nproc > 1 and not dd.launched_externally():
        import torch.multiprocessing as mp

        port = dd.free_port()
        mp.spawn(_worker, args=(cfg, progress, port), nprocs=cfg.nproc, join=True)
        return _summary_from(Path(cfg.out))
    return _worker(dd.rank() if dd.launched_externally() else 0, cfg, progress, None)


def _summary_from(out: Path) -> dict[str, Any]:
    import json

    return json.loads((out / "summary.json").read_text())


def _worker(rank: int, cfg: TrainConfig, progress: bool, port: int | None) -> dict[str, Any]:
    device = pick_device(cfg.device)
    distributed = cfg.nproc > 1 or dd.launched_externally()
    if distributed:
        dd.init(rank, cfg.nproc, device, port)
        rank = dd.rank()
        if device.type == "cuda":
            device = torch.device("cuda", rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
    try:
        return _run(cfg, device, rank, progress)
    finally:
        dd.shutdown()


def _run(cfg: TrainConfig, device: torch.device, rank: int, progress: bool) -> dict[str, Any]:
    import json

    seed_everything(cfg.seed + rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    main = rank == 0
    world = dd.world()
    t_start = time.time()

    train_ds = SirstDataset(cfg.data, cfg.split)
    val_ds = SirstDataset(cfg.data, cfg.val_split) if cfg.val_split else None
    images, masks = unit_images(train_ds)
    mean, std = intensity_stats(images)

    kwargs = dict(cfg.model_kwargs)
    model = create_model(cfg.model, **kwargs)
    spec = model.spec
    size = cfg.size - cfg.size % spec.size_divisor or spec.size_divisor
    meta = meta_for(cfg.model, model, kwargs=kwargs, input_size=(size, size), mean=(mean,), std=(std,),
                    threshold=cfg.threshold)
    if cfg.init:
        n = _init_from(model, cfg.init)
        if main:
            tqdm.write(f"initialised {n} tensors from {cfg.init}")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)

    options = {"mean_target_size": mean_target_size(masks), **cfg.loss_options}
    criterion = build_criterion(cfg.model, spec, **options)
    samples = TrainSamples(images, masks, meta, size, augment=cfg.augment)
    sampler = torch.utils.data.DistributedSampler(samples, world, rank, shuffle=True, seed=cfg.seed) if world > 1 else None
    g = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(samples, batch_size=cfg.batch, shuffle=sampler is None, sampler=sampler,
                                         num_workers=cfg.workers, collate_fn=collate, drop_last=len(samples) >= cfg.batch * world,
                                         generator=g, persistent_workers=cfg.workers > 0)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    base_lrs = [gr["lr"] for gr in optimizer.param_groups]  # before a resume loads the scheduled rates
    amp_dtype = autocast_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    steps_per_epoch = len(loader) if cfg.max_steps is None else min(len(loader), cfg.max_steps)
    ema = ModelEMA(model, ema_decay_for(cfg.epochs * steps_per_epoch, cfg.ema)) if cfg.ema > 0 else None

    selector = METRICS[cfg.val_metric]
    start_epoch, best, best_epoch = 0, selector.worst(), -1
    if cfg.resume:
        state = read_checkpoint(cfg.resume)
        model.load_state_dict(state.get("train_state_dict", state["state_dict"]))
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.module.load_state_dict(state["state_dict"])
            ema.updates = int(state.get("ema_updates", 0))
        start_epoch = int(state.get("epoch", -1)) + 1
        best, best_epoch = float(state.get("best", selector.worst())), int(state.get("best_epoch", -1))
        t_start -= float(state["meta"].get("train", {}).get("wall_s", 0.0))  # wall time accumulates
        meta = meta.replace(mean=tuple(state["meta"]["mean"]), std=tuple(state["meta"]["std"]))
        if start_epoch >= cfg.epochs:
            raise EdgeirstError(f"{cfg.resume} already finished {start_epoch} of {cfg.epochs} epochs; raise --epochs to continue")

    log_path = out / "results.csv"
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    fields = ["epoch", "lr", "loss", "time_s", "iou", "niou", "pd", "fa", "ap50", "ap"]
    metrics: dict[str, Any] = {}
    epochs = range(start_epoch, cfg.epochs)
    bar = tqdm(epochs, desc=f"train {cfg.model}", unit="ep", disable=not (progress and main), dynamic_ncols=True)
    for epoch in bar:
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        t0, total, count = time.time(), 0.0, 0
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch:
                break
            step = epoch * steps_per_epoch + i
            for gr, base in zip(optimizer.param_groups, base_lrs):
                gr["lr"] = base * lr_factor(cfg, step, steps_per_epoch)
            x = batch["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            batch = {"image": x, "mask": batch["mask"].to(device), "boxes": [b.to(device) for b in batch["boxes"]]}
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = net(x)
            outputs = {k: v.float() for k, v in outputs.items()}
            loss, parts = criterion(outputs, batch, epoch)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at epoch {epoch} step {i}: {parts}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            total += float(loss.detach())
            count += 1
            if main and progress:
                bar.set_postfix(step=f"{i + 1}/{steps_per_epoch}", loss=f"{total / count:.4f}", refresh=False)
                bar.refresh()
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "loss": total / max(1, count),
                               "time_s": round(time.time() - t0, 2)}
        last_epoch = epoch == cfg.epochs - 1
        final = ema.module if ema is not None else model  # the weights that are scored and shipped
        if main and val_ds is not None and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
            final.eval()
            metrics, _ = evaluate_backend(ModelRunner(final, meta, device), val_ds, threshold=cfg.threshold, progress=False)
            row.update({k: metrics[k] for k in fields if k in metrics})
            score = metrics[cfg.val_metric]
            if selector.better(score, best):
                best, best_epoch = score, epoch
                _save(out / "best.pt", final, meta, cfg, epoch, metrics, t_start)
            bar.set_postfix(loss=f"{row['loss']:.4f}", **{cfg.val_metric: f"{score:.4f}"}, best=f"{best:.4f}")
        if main:
            _append_csv(log_path, fields, row)
            state = {"optimizer": optimizer.state_dict(), "epoch": epoch, "best": best, "best_epoch": best_epoch}
            if ema is not None:
                state.update(train_state_dict=model.state_dict(), ema_updates=ema.updates)
            _save(out / "last.pt", final, meta, cfg, epoch, metrics, t_start, state)
        dd.barrier()
    fingerprints = dd.all_gather_object(weights_sha1(ema.module if ema is not None else model))
    summary = {"out": str(out), "best": str(out / "best.pt") if best_epoch >= 0 else None, "last": str(out / "last.pt"),
               "best_epoch": best_epoch, "best_" + cfg.val_metric: best if best_epoch >= 0 else None,
               "wall_s": round(time.time() - t_start, 1), "world": world,
               "rank_weights_sha1": fingerprints}
    if main:
        if val_ds is None:  # no validation: the last weights are the result
            (out / "best.pt").write_bytes((out / "last.pt").read_bytes())
            summary["best"] = str(out / "best.pt")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    dd.barrier()
    return summary


def weights_sha1(model: torch.nn.Module) -> str:
    """Fingerprint of all parameters (not BN statistics, which each rank keeps for itself)."""
    import hashlib

    h = hashlib.sha1()
    for name, p in sorted(getattr(model, "module", model).named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _save(path: Path, model, meta, cfg: TrainConfig, epoch: int, metrics: dict, t_start: float,
          state: dict | None = None) -> None:
    train_info = {"data": str(cfg.data), "split": cfg.split, "val_split": cfg.val_split, "epochs": epoch + 1,
                  "planned_epochs": cfg.epochs, "batch": cfg.batch, "size": cfg.size, "optimizer": cfg.optimizer,
                  "lr": cfg.lr, "seed": cfg.seed, "wall_s": round(time.time() - t_start, 1),
                  "hardware": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}".strip(),
                  "command": shlex.join(["edgeirst", *sys.argv[1:]]) if Path(sys.argv[0]).name == "edgeirst" else None,
                  "config": cfg.to_dict()}
    m = dict(metrics)
    if metrics:
        m["split"] = cfg.val_split
    save_checkpoint(path, model, meta.replace(train=train_info, metrics=m), **(state or {}))


def _append_csv(path: Path, fields: list[str], row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


__all__ = ["train", "ModelRunner"]
