"""TrainConfig and the per-model paper presets.

A preset holds what a paper (or its official code) trains with; every field can be overridden
from the CLI. ``None`` in a TrainConfig means "take the preset's value".
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from edgeirst.errors import EdgeirstError


@dataclass(frozen=True)
class Preset:
    optimizer: str
    lr: float
    epochs: int
    batch: int
    size: int
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"  # cosine | poly | constant
    warmup_epochs: int = 0
    note: str = ""
    # Speed on a CPU, measured per model (2-core x86-64 with AMX, torch 2.13, batch 16, 256 px):
    # channels_last is 1.7x faster for MSHNet but corrupts the heap in SIWD's small strided,
    # dilated convolutions ("free(): invalid next size"), so models with SIWD stay NCHW.
    channels_last: bool = False
    # bf16 autocast on CPUs with native bf16 (AMX / AVX512-BF16): 1.65x on light-sgmtlm-tiny.
    cpu_bf16: bool = False


PRESETS: dict[str, Preset] = {
    # MSHNet official code: Adagrad lr 0.05, batch 4, 400 epochs, 256 crops, 5 warm epochs.
    "mshnet": Preset("adagrad", 0.05, 400, 4, 256, note="MSHNet official: Adagrad 0.05, bs 4, 400 ep",
                     channels_last=True),
    # DNANet official code: Adagrad lr 0.05, batch 16, 1500 epochs, cosine to 1e-5, 256 crops.
    "dnanet": Preset("adagrad", 0.05, 1500, 16, 256, note="DNANet official: Adagrad 0.05, bs 16, 1500 ep, cosine"),
    # MTUNet: CenterNet-style Adam; the paper does not give the schedule, we use cosine.
    "mtunet": Preset("adam", 5e-4, 200, 8, 320, note="CenterNet-style Adam 5e-4, cosine (MTUNet leaves it open)"),
    "mtunet-det": Preset("adam", 5e-4, 200, 8, 320, note="as mtunet"),
    "mtunet-seg": Preset("adam", 5e-4, 200, 8, 320, note="as mtunet"),
    "mtunet-siwd": Preset("adam", 5e-4, 200, 8, 320, note="as mtunet", cpu_bf16=True),
    # Light-SGMTLM: YOLOv5 hyper-parameters (SGD 0.01, momentum 0.937, wd 5e-4, 3 warm-up epochs).
    "light-sgmtlm": Preset("sgd", 0.01, 300, 16, 320, 5e-4, 0.937, "cosine", 3, "YOLOv5 defaults", cpu_bf16=True),
    # The channel-reduced variant needs 600-1200 epochs (paper).
    "light-sgmtlm-tiny": Preset("sgd", 0.01, 1000, 16, 320, 5e-4, 0.937, "cosine", 3, "paper: 600-1200 ep",
                                cpu_bf16=True),
    # MLSA-YOLOv8: Ultralytics defaults (SGD 0.01, momentum 0.937, wd 5e-4, 3 warm-up epochs).
    "mlsa-yolov8": Preset("sgd", 0.01, 300, 16, 320, 5e-4, 0.937, "cosine", 3, "Ultralytics defaults"),
}


@dataclass
class TrainConfig:
    """Everything one training run needs. ``None`` fields come from the model's preset."""

    model: str
    data: str
    out: str = "runs/train"
    split: str = "train"
    val_split: str | None = "val"
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
    nproc: int = 1
    threshold: float = 0.5
    loss_options: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None  # stop each epoch after this many steps (smoke tests)

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` filled from the preset."""
        preset = PRESETS.get(self.model)
        if preset is None:
            close = difflib.get_close_matches(self.model, PRESETS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EdgeirstError(f"unknown model {self.model!r}{hint} (trainable: {', '.join(sorted(PRESETS))})")
        filled = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)
                  if hasattr(self, f.name) and getattr(self, f.name) is None}
        return dataclasses.replace(self, **filled)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
