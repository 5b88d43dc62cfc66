"""TrainConfig: everything one training run needs.

``None`` in a TrainConfig means "take the model's preset" (``model_entry(name).preset``: what the
paper or its official code trains with, plus the speed choices measured per model on a CPU).
Measured on the 2-core x86-64 development VM (AMX, torch 2.13), batch 16 at 256 px, one step:
channels_last makes MSHNet 1.7x faster, but corrupts the heap in SIWD's small strided, dilated
convolutions ("free(): invalid next size"), so SIWD models stay NCHW; bf16 autocast makes
light-sgmtlm-tiny 1.65x faster on a CPU with native bf16.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from edgeirst.checkpoint import read_checkpoint
from edgeirst.errors import EdgeirstError



@dataclass
class TrainConfig:
    """Everything one training run needs. ``None`` fields come from the model's preset."""

    model: str
    data: str | list[str]  # one dataset folder, or several trained on together
    out: str = "runs/train"
    split: str | list[str] = "train"  # one for every dataset, or one per dataset
    val_split: str | list[str] | None = "val"  # likewise; "none" leaves a dataset out of validation
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    size: int | None = None
    schedule: str | None = None
    warmup_epochs: int | None = None
    workers: int = 0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # fp16 autocast on CUDA
    cpu_bf16: bool | None = None  # bf16 autocast on CPUs with native bf16
    channels_last: bool | None = None
    threads: int | None = None  # torch intra-op threads (default: torch's choice)
    augment: str = "strong"  # none | basic | strong (edgeirst.train.dataset.Augment)
    ema: float = 0.1  # EMA averaging window as a fraction of all steps; 0 = no EMA
    val_every: int = 1
    val_metric: str = "iou"
    init: str | None = None
    resume: str | None = None
    exist_ok: bool = False  # train into a folder that already holds a run, replacing it
    nproc: int = 1
    threshold: float = 0.5
    loss_options: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None  # stop each epoch after this many steps (smoke tests)
    negatives: float = 0.0  # share of each batch from background-only images (empty masks)
    target_crops: float = 0.0  # probability that a crop is placed on a target
    hard_crops: float = 0.0  # probability that a background crop is centred on a bright blob
    clutter_crops: float = 0.0  # the same for a target image's crop not placed on a target (blobs away from them)
    copy_paste: float = 0.0  # probability that a background crop gets real targets pasted in
    faint: float = 0.0  # probability that a crop's contrast is scaled down (faint targets on flat skies)
    mine: float = 0.0  # probability that a crop is centred on one of the model's own false alarms
    synth_targets: float = 0.0  # probability that a crop gets synthetic targets rendered onto its clutter
    synth_scr: tuple[float, float] = (3.0, 15.0)  # their signal-to-clutter ratios
    levels: float = 0.0  # probability that a crop's grey levels get another camera's gain and offset
    teacher: str | None = None  # segmentation model whose probability map the student learns (distillation)
    distill_weight: float = 1.0  # weight of that term beside the student's own loss

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` filled from the preset."""
        from edgeirst.models import model_entry

        preset = model_entry(self.model).preset
        filled = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)
                  if hasattr(self, f.name) and getattr(self, f.name) is None}
        return dataclasses.replace(self, **filled)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_resume(cls, resume: str, **given: Any) -> "TrainConfig":
        """The configuration a run was started with (stored in its ``last.pt``), with ``resume``
        set. ``given`` are the options the user passed again: ones that only change how the run
        executes (threads, workers, device, progress of validation, --epochs to extend a finished
        run) are taken; any other that contradicts the checkpoint is an error."""

        stored = read_checkpoint(resume)["meta"].get("train", {}).get("config")
        if not stored:
            raise EdgeirstError(f"{resume} does not record the configuration it was trained with (made by an "
                                "older edgeirst); resume it with the library: TrainConfig(..., resume=PATH)")
        known = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in stored.items() if k in known})
        conflicts = []
        for key, value in given.items():
            if key not in known:
                raise EdgeirstError(f"unknown training option {key!r}")
            if key in RESUME_MAY_CHANGE:
                cfg = dataclasses.replace(cfg, **{key: value})
            elif _differs(getattr(cfg, key), value):
                conflicts.append(f"{key}={value!r} (the run has {getattr(cfg, key)!r})")
        if conflicts:
            raise EdgeirstError(f"--resume {resume}: {'; '.join(conflicts)}; a resumed run keeps its settings, "
                                "start a new run (another --out) to change them")
        return dataclasses.replace(cfg, resume=str(resume), init=None, exist_ok=False)


# Options a resumed run may change: they do not change what is learned (epochs extends a run).
RESUME_MAY_CHANGE = ("threads", "workers", "device", "val_every", "epochs", "nproc", "max_steps")


def _differs(stored: Any, given: Any) -> bool:
    if isinstance(stored, (list, tuple)) or isinstance(given, (list, tuple)):
        return list(stored or []) != list(given or [])
    if isinstance(stored, float) or isinstance(given, float):
        try:
            return not math.isclose(float(stored), float(given), rel_tol=1e-9)
        except (TypeError, ValueError):
            return True
    return stored != given
