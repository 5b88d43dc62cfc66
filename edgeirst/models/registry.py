"""One entry per model: everything the rest of edgeirst needs to know about a registry name.

A ``ModelEntry`` holds the factory, the paper's figures (shown by ``edgeirst zoo``), the training
preset (the paper's or official code's recipe; every field overridable from ``edgeirst train``),
the training criterion (a key of ``edgeirst.losses.CRITERIA``) and the modules whose output
channels pruning must keep (the heads: their outputs are what the decoder reads). Decoding is
declared by the built model itself (``model.spec``). Each family file ends with its ``ENTRIES``;
``edgeirst.models`` collects them, and ``register_model`` adds one at run time (a user's model).
Pure data and torch: no training, loss or file code here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Preset:
    """A training recipe. ``channels_last`` and ``cpu_bf16`` are speed choices measured per model
    on a CPU (see ``edgeirst.train.config``)."""

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
    channels_last: bool = False
    cpu_bf16: bool = False


@dataclass(frozen=True)
class PaperFigures:
    """What the paper (or official code) reports: params in millions, GFLOPs = multiply-adds at
    ``size`` x ``size`` with 3-channel input, as the papers count. ``None`` = not reported."""

    params_m: float | None
    gflops: float | None
    size: int
    source: str


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    preset: Preset
    criterion: str
    paper: PaperFigures
    keep: tuple[str, ...] = ()  # module-name prefixes whose output channels are never pruned

    def create(self, **kwargs) -> nn.Module:
        return self.factory(**kwargs)


__all__ = ["ModelEntry", "PaperFigures", "Preset"]
