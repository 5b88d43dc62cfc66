"""The one trainer for every model in the zoo.

What differs between models (targets, losses, decoding) comes from the model's registry entry
(``edgeirst.models.model_entry``: preset, criterion) and its ``spec``; the loop itself is shared.
Validation runs the model at each image's native resolution through the same preprocessing,
decoding and metrics as ``edgeirst eval`` and the runtime. Rank 0 validates, logs and writes
checkpoints: ``last.pt`` every epoch (with everything ``--resume`` needs: optimizer, EMA, AMP
scaler and RNG states), ``best.pt`` when the validation metric improves, ``results.csv`` a row
per epoch. ``train(cfg, model=...)`` trains a model passed in (pruning's fine-tune), and
``callbacks`` are called after every epoch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import platform
import random
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from edgeirst.checkpoint import apply_structure, meta_for, read_checkpoint, save_checkpoint
from edgeirst.data.sirst import open_datasets
from edgeirst.errors import EdgeirstError, EdgeirstWarning
from edgeirst.evaluate import evaluate_backend
from edgeirst.io import write_text
from edgeirst.losses import criterion_for
from edgeirst.metrics import METRICS
from edgeirst.models import create_model
from edgeirst.progress import progress_bar
from edgeirst.runtime.backends.torch import TorchBackend
from edgeirst.train import distributed as dd
from edgeirst.train.config import TrainConfig
from edgeirst.train.dataset import MixedBatches, Recipe, TrainSamples, collate, intensity_stats, mean_target_size, \
    unit_images
from edgeirst.train.distill import DENSE_OUTPUTS, Teacher, dense_output, distill_loss
from edgeirst.train.ema import ModelEMA, ema_decay_for
from edgeirst.train.mining import false_alarm_points, refresh_subset
from edgeirst.weights import resolve_model

LOG_FIELDS = ["epoch", "lr", "loss", "time_s", "iou", "niou", "pd", "fa", "ap50", "ap", "fa_per_frame", "fa_frames"]
# A callback gets (epoch, the epoch's results row, the model being scored and saved).
Callback = Callable[[int, dict, torch.nn.Module], None]


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


def rng_states(loader_generator: torch.Generator) -> dict[str, Any]:
    """Every random state the loop draws from, so a resumed run continues the same sequence."""
    return {"torch": torch.get_rng_state(), "numpy": _numpy_state_to_list(np.random.get_state()),
            "python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
            "loader": loader_generator.get_state(),
            **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})}


def _numpy_state_to_list(state) -> list:
    return [state[0], torch.from_numpy(np.asarray(state[1], np.int64)), int(state[2]), int(state[3]), float(state[4])]


def restore_rng_states(states: dict[str, Any], loader_generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    random.setstate((3, tuple(int(v) for v in states["python"]), states["python_pos"]))
    loader_generator.set_state(states["loader"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


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


def _widens_inputs(src: torch.Tensor, own: torch.Tensor) -> bool:
    """``own`` is ``src``, a convolution's weight, with more input channels (e.g. MSHNet's
    ``contrast`` channel added to a model trained without it)."""
    return (src.dim() == own.dim() == 4 and src.shape[0] == own.shape[0] and src.shape[2:] == own.shape[2:]
            and src.shape[1] < own.shape[1])


def _widen_inputs(src: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """``src``'s weights for the first input channels and zeros for the new ones: the widened
    layer computes what the source's did until training gives the new inputs a weight."""
    out = torch.zeros_like(own)
    out[:, :src.shape[1]] = src
    return out


def _init_from(model: torch.nn.Module, name: str, kwargs: dict, path: str
               ) -> tuple[int, dict | None, tuple[float, float] | None]:
    """Copy every weight whose name and shape match (pretrain one task, fine-tune another); when
    the two networks differ only in a convolution given more input channels (MSHNet's
    ``contrast``), that one too (``_widen_inputs``).
    ``path`` may also name a shipped model (``default``). A checkpoint of the same model and
    arguments whose channels were pruned lends its structure first, so all of it is copied;
    its pruning record (``train.pruning``) is returned so the fine-tuned model keeps saying what
    it was pruned from. Returns (tensors copied, that record or None, the source's grey input
    normalisation (mean, std) when it is the same model, whatever its arguments, else None)."""

    ckpt = read_checkpoint(resolve_model(path, "torch"))
    src_meta = ckpt["meta"]
    pruning, norm = None, None
    if src_meta.get("name") == name and src_meta.get("kwargs", {}) == kwargs:
        if apply_structure(model, ckpt.get("structure")):
            pruning = (src_meta.get("train") or {}).get("pruning")
    if src_meta.get("name") == name and len(src_meta.get("mean", ())) == 1 and len(src_meta.get("std", ())) == 1:
        norm = (float(src_meta["mean"][0]), float(src_meta["std"][0]))
    src = ckpt["state_dict"]
    own = model.state_dict()
    matched = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    widened = {k: _widen_inputs(v, own[k]) for k, v in src.items() if k in own and _widens_inputs(v, own[k])}
    if widened and len(matched) + len(widened) == len(src) == len(own):  # the same network but for its input
        matched.update(widened)
    if not matched:
        raise EdgeirstError(f"--init {path}: no weight matches this model; is it the same family?")
    src_kwargs = src_meta.get("kwargs") or {}
    left = [k for k in own if k not in matched]
    if left and src_meta.get("name") == name and src_kwargs != kwargs:  # the same model built otherwise
        built = ", ".join(f"{k}={src_kwargs[k]}" if k in src_kwargs else f"no {k}"
                          for k in sorted(set(src_kwargs) | set(kwargs)) if src_kwargs.get(k) != kwargs.get(k))
        warnings.warn(f"--init {path}: {len(left)} of {len(own)} tensors left as built ({', '.join(left[:3])}"
                      f"{', ...' if len(left) > 3 else ''}): it was built with {built}; pass the same --width / "
                      "--model-arg to start from all of it", EdgeirstWarning, stacklevel=2)
    own.update(matched)
    model.load_state_dict(own)
    return len(matched), pruning, norm


def check_out_dir(cfg: TrainConfig) -> None:
    """Refuse to train into a folder that holds another run, unless resuming or ``exist_ok``."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise EdgeirstError(f"--out {out} is a file; expected a folder for the run (best.pt, last.pt, results.csv)")
    held = [n for n in ("last.pt", "best.pt", "results.csv") if (out / n).exists()]
    if held and not cfg.resume and not cfg.exist_ok:
        raise EdgeirstError(f"--out {out} already holds a run ({', '.join(held)}); pass --resume {out / 'last.pt'} "
                            "to continue it, --exist-ok to replace it, or another --out")


def train(cfg: TrainConfig, progress: bool = True, model: torch.nn.Module | None = None,
          callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train as configured; returns a summary (paths, best metrics, wall time).

    ``model``: train this module (e.g. a pruned one) instead of building ``cfg.model`` from the
    registry; it must be that registry model (its spec, criterion and metadata are used).
    """
    cfg = cfg.resolved()
    check_out_dir(cfg)
    if cfg.nproc > 1 and not dd.launched_externally():
        import torch.multiprocessing as mp

        port = dd.free_port()
        mp.spawn(_worker, args=(cfg, progress, port, model, tuple(callbacks)), nprocs=cfg.nproc, join=True)
        return json.loads((Path(cfg.out) / "summary.json").read_text())
    return _worker(dd.rank() if dd.launched_externally() else 0, cfg, progress, None, model, callbacks)


def _worker(rank: int, cfg: TrainConfig, progress: bool, port: int | None, model, callbacks) -> dict[str, Any]:
    device = pick_device(cfg.device)
    distributed = cfg.nproc > 1 or dd.launched_externally()
    if distributed:
        dd.init(rank, cfg.nproc, device, port)
        rank = dd.rank()
        if device.type == "cuda":
            device = torch.device("cuda", rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
    threads = torch.get_num_threads()  # --threads holds for this run only: the caller's setting comes back
    try:
        return _Run(cfg, device, rank, progress, model, callbacks).fit()
    finally:
        torch.set_num_threads(threads)
        dd.shutdown()


class _Run:
    """One training run's state; ``fit()`` runs the epochs."""

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int, progress: bool,
                 model: torch.nn.Module | None, callbacks: Sequence[Callback]):
        seed_everything(cfg.seed + rank)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.device, self.rank, self.callbacks = cfg, device, rank, list(callbacks)
        self.main, self.world = rank == 0, dd.world()
        self.progress = progress and self.main
        self.out = Path(cfg.out)
        self.t_start = time.time()

        train_ds = open_datasets(cfg.data, cfg.split)
        if train_ds is None:
            raise EdgeirstError("every --split is 'none': nothing to train on")
        self.val_ds = open_datasets(cfg.data, cfg.val_split, "--val-split") if cfg.val_split else None
        images, masks = unit_images(train_ds)
        if not any(m.any() for m in masks):
            warnings.warn(f"every mask of split {cfg.split!r} in {cfg.data} is empty: the model will learn to find "
                          "nothing (check the masks with `edgeirst data check`)", EdgeirstWarning, stacklevel=2)
        mean, std = intensity_stats(images)

        kwargs = dict(cfg.model_kwargs)
        self.model = model if model is not None else create_model(cfg.model, **kwargs)
        spec = self.model.spec
        size = cfg.size - cfg.size % spec.size_divisor or spec.size_divisor
        self.pruning = None  # the pruning record of a pruned --init, carried into every checkpoint
        if cfg.init:
            n, self.pruning, norm = _init_from(self.model, cfg.model, kwargs, cfg.init)
            if norm is not None:  # its weights expect their own input normalisation
                mean, std = norm
            if self.main:
                tqdm.write(f"initialised {n} tensors from {cfg.init}")
        self.meta = meta_for(cfg.model, self.model, kwargs=kwargs, input_size=(size, size), mean=(mean,), std=(std,),
                             threshold=cfg.threshold)
        self.state = read_checkpoint(cfg.resume) if cfg.resume else None
        if self.state is not None:
            apply_structure(self.model, self.state.get("structure"))
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(device, memory_format=self.memory_format)

        options = {"mean_target_size": mean_target_size(masks), **cfg.loss_options}
        self.criterion = criterion_for(cfg.model, spec, **options)
        self.teacher = None
        if cfg.teacher:
            if not {*spec.outputs, *spec.aux} & set(DENSE_OUTPUTS):
                raise EdgeirstError(f"--teacher: {cfg.model} has no dense probability output ({', '.join(DENSE_OUTPUTS)}) "
                                    "to learn the teacher's map with")
            self.teacher = Teacher(cfg.teacher, self.meta, device)
            if self.main:
                tqdm.write(f"distilling {cfg.teacher} ({self.teacher.meta.name}) into {cfg.model}, "
                           f"weight {cfg.distill_weight:g}")
        recipe = Recipe(negatives=cfg.negatives, target_crops=cfg.target_crops, hard_crops=cfg.hard_crops,
                        clutter_crops=cfg.clutter_crops,
                        copy_paste=cfg.copy_paste, faint=cfg.faint, mine=cfg.mine,
                        synth_targets=cfg.synth_targets, synth_scr=tuple(cfg.synth_scr), levels=cfg.levels)
        self.samples = samples = TrainSamples(images, masks, self.meta, size, augment=cfg.augment, recipe=recipe)
        self.sampler = torch.utils.data.DistributedSampler(samples, self.world, rank, shuffle=True, seed=cfg.seed) \
            if self.world > 1 else None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        persistent = cfg.workers > 0 and not cfg.mine  # workers forked per epoch see the newly mined points
        if cfg.negatives:
            if not samples.negatives or not samples.positives:
                raise EdgeirstError(f"--negatives {cfg.negatives:g} needs background-only images (empty masks) and "
                                    f"images with targets in the training data; it has {len(samples.negatives)} and "
                                    f"{len(samples.positives)} (add a dataset of background frames with --data/--split)")
            if self.world > 1:
                raise EdgeirstError("--negatives with --nproc > 1 is not supported; train with one process")
            batches = MixedBatches(samples.positives, samples.negatives, cfg.batch, cfg.negatives, self.generator)
            self.loader = torch.utils.data.DataLoader(samples, batch_sampler=batches, num_workers=cfg.workers,
                                                      collate_fn=collate, persistent_workers=persistent)
        else:
            self.loader = torch.utils.data.DataLoader(
                samples, batch_size=cfg.batch, shuffle=self.sampler is None, sampler=self.sampler,
                num_workers=cfg.workers, collate_fn=collate, drop_last=len(samples) >= cfg.batch * self.world,
                generator=self.generator, persistent_workers=persistent)
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.optimizer = make_optimizer(cfg, [p for p in self.model.parameters() if p.requires_grad])
        self.base_lrs = [gr["lr"] for gr in self.optimizer.param_groups]  # before a resume loads scheduled rates
        self.amp_dtype = autocast_dtype(cfg, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.steps_per_epoch = len(self.loader) if cfg.max_steps is None else min(len(self.loader), cfg.max_steps)
        self.ema = ModelEMA(self.model, ema_decay_for(cfg.epochs * self.steps_per_epoch, cfg.ema)) if cfg.ema > 0 else None
        self.selector = METRICS[cfg.val_metric]
        self.start_epoch, self.best, self.best_epoch = 0, self.selector.worst(), -1
        self.rows: list[dict] = []
        if self.state is not None:
            self._restore(self.state)

    @property
    def final(self) -> torch.nn.Module:
        """The weights that are scored and shipped: the EMA when on, else the trained model."""
        return self.ema.module if self.ema is not None else self.model

    def _restore(self, state: dict) -> None:
        cfg = self.cfg
        self.model.load_state_dict(state.get("train_state_dict", state["state_dict"]))
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state["state_dict"])
            self.ema.updates = int(state.get("ema_updates", 0))
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            restore_rng_states(state["rng"], self.generator)
        self.start_epoch = int(state.get("epoch", -1)) + 1
        self.best, self.best_epoch = float(state.get("best", self.selector.worst())), int(state.get("best_epoch", -1))
        self.t_start -= float(state["meta"].get("train", {}).get("wall_s", 0.0))  # wall time accumulates
        self.meta = self.meta.replace(mean=tuple(state["meta"]["mean"]), std=tuple(state["meta"]["std"]))
        if self.start_epoch >= cfg.epochs:
            raise EdgeirstError(f"{cfg.resume} already finished {self.start_epoch} of {cfg.epochs} epochs; "
                                "raise --epochs to continue")
        self.rows = [r for r in _read_csv(self.out / "results.csv") if int(r["epoch"]) < self.start_epoch]

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.main:
            write_text(self.out / "config.json", json.dumps(cfg.to_dict(), indent=2))
        bar = progress_bar(range(self.start_epoch, cfg.epochs), desc=f"train {cfg.model}", unit="ep",
                   disable=not self.progress, dynamic_ncols=True)
        if cfg.mine and self.start_epoch < cfg.epochs:
            self._mine()
        for epoch in bar:
            row = self._train_epoch(epoch, bar)
            if self.main and self.val_ds is not None and ((epoch + 1) % cfg.val_every == 0 or epoch == cfg.epochs - 1):
                self._validate(epoch, row)
                score = row[cfg.val_metric]
                bar.set_postfix(loss=f"{row['loss']:.4f}", **{cfg.val_metric: f"{score:.4f}"}, best=f"{self.best:.4f}")
            if cfg.mine and (epoch + 1) % cfg.val_every == 0 and epoch < cfg.epochs - 1:
                self._mine()  # on every process: each samples from its own copy
            if self.main:
                self.rows.append(row)
                write_text(self.out / "results.csv", _csv_text(self.rows))
                self._save_last(epoch, row)
                for callback in self.callbacks:
                    callback(epoch, row, self.final)
            dd.barrier()
        return self._finish()

    def _train_epoch(self, epoch: int, bar) -> dict[str, Any]:
        cfg = self.cfg
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        self.net.train()
        t0, total, count = time.time(), 0.0, 0
        for i, batch in enumerate(self.loader):
            if i >= self.steps_per_epoch:
                break
            step = epoch * self.steps_per_epoch + i
            for gr, base in zip(self.optimizer.param_groups, self.base_lrs):
                gr["lr"] = base * lr_factor(cfg, step, self.steps_per_epoch)
            x = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            batch = {"image": x, "mask": batch["mask"].to(self.device),
                     "boxes": [b.to(self.device) for b in batch["boxes"]]}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                outputs = self.net(x)
            outputs = {k: v.float() for k, v in outputs.items()}
            loss, parts = self.criterion(outputs, batch, epoch)
            if self.teacher is not None:
                term = distill_loss(dense_output(outputs), self.teacher(x))
                loss = loss + cfg.distill_weight * term
                parts = {**parts, "distill": float(term.detach())}
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at epoch {epoch} step {i}: {parts}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model)
            total += float(loss.detach())
            count += 1
            if self.progress:
                bar.set_postfix(step=f"{i + 1}/{self.steps_per_epoch}", loss=f"{total / count:.4f}", refresh=False)
                bar.refresh()
        return {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], "loss": total / max(1, count),
                "time_s": round(time.time() - t0, 2)}

    def _mine(self) -> None:
        """Refresh the crop centres on the current weights' false alarms (``Recipe.mine``)."""
        t0 = time.time()
        runner = TorchBackend.from_model(self.final.eval(), self.meta, self.device)
        s = self.samples
        only = None
        if s.mined:
            only = refresh_subset(s.mined, len(s.images), np.random.default_rng([self.cfg.seed, len(self.rows)]))
        fresh = false_alarm_points(runner, s.images, s.masks, self.cfg.threshold, only)
        s.mined = fresh if only is None else {i: p for i, p in s.mined.items() if i not in only} | fresh
        if self.main:
            n = sum(len(p) for p in s.mined.values())
            tqdm.write(f"mined {len(s.images) if only is None else len(only)} images: {n} false alarms in "
                       f"{len(s.mined)} of {len(s.images)} training images ({time.time() - t0:.0f} s)")

    def _validate(self, epoch: int, row: dict) -> None:
        final = self.final.eval()
        runner = TorchBackend.from_model(final, self.meta, self.device)
        metrics, _ = evaluate_backend(runner, self.val_ds, threshold=self.cfg.threshold, progress=False)
        row.update({k: metrics[k] for k in LOG_FIELDS if k in metrics})
        self.metrics = metrics
        if self.selector.better(metrics[self.cfg.val_metric], self.best):
            self.best, self.best_epoch = metrics[self.cfg.val_metric], epoch
            self._save(self.out / "best.pt", epoch, metrics)

    def _save_last(self, epoch: int, row: dict) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "epoch": epoch, "best": self.best,
                 "best_epoch": self.best_epoch, "scaler": self.scaler.state_dict(), "rng": rng_states(self.generator)}
        if self.ema is not None:
            state.update(train_state_dict=self.model.state_dict(), ema_updates=self.ema.updates)
        self._save(self.out / "last.pt", epoch, getattr(self, "metrics", {}), state)

    def _save(self, path: Path, epoch: int, metrics: dict, state: dict | None = None) -> None:
        cfg = self.cfg
        train_info = {"data": cfg.data if isinstance(cfg.data, str) else list(cfg.data), "split": cfg.split, "val_split": cfg.val_split, "epochs": epoch + 1,
                      "planned_epochs": cfg.epochs, "batch": cfg.batch, "size": cfg.size, "optimizer": cfg.optimizer,
                      "lr": cfg.lr, "seed": cfg.seed, "wall_s": round(time.time() - self.t_start, 1),
                      "hardware": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}".strip(),
                      "command": shlex.join(["edgeirst", *sys.argv[1:]]) if Path(sys.argv[0]).name == "edgeirst" else None,
                      "config": cfg.to_dict()}
        if self.pruning:
            train_info["pruning"] = self.pruning
        m = dict(metrics)
        if metrics:
            m["split"] = cfg.val_split
        save_checkpoint(path, self.final, self.meta.replace(train=train_info, metrics=m), **(state or {}))

    def _finish(self) -> dict[str, Any]:
        out = self.out
        fingerprints = dd.all_gather_object(weights_sha1(self.final))
        summary = {"out": str(out), "best": str(out / "best.pt") if self.best_epoch >= 0 else None,
                   "last": str(out / "last.pt"), "best_epoch": self.best_epoch,
                   "best_" + self.cfg.val_metric: self.best if self.best_epoch >= 0 else None,
                   "wall_s": round(time.time() - self.t_start, 1), "world": self.world,
                   "rank_weights_sha1": fingerprints}
        if self.main:
            if self.val_ds is None:  # no validation: the last weights are the result
                self._save(out / "best.pt", self.cfg.epochs - 1, {})
                summary["best"], summary["best_epoch"] = str(out / "best.pt"), self.cfg.epochs - 1
            write_text(out / "summary.json", json.dumps(summary, indent=2))
        dd.barrier()
        return summary


def weights_sha1(model: torch.nn.Module) -> str:
    """Fingerprint of all parameters (not BN statistics, which each rank keeps for itself)."""

    h = hashlib.sha1()
    for name, p in sorted(getattr(model, "module", model).named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


__all__ = ["Callback", "train", "weights_sha1"]
