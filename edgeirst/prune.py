"""Structured channel pruning with torch-pruning's dependency graph.

The graph keeps every coupled layer consistent: skip concatenations, DNANet's nested nodes,
CBAM/CSAM attention gates, SIWD's parallel asymmetric convolutions, CSP blocks and the heads.
The output channels of the layers a model's registry entry lists in ``keep`` (its heads: what
the decoder reads) are never pruned. ``prune_channels`` prunes a model in place by a ratio;
``prune_to_target`` searches the ratio that reaches a GMACs or parameter target;
``edgeirst.prune_run`` (the ``edgeirst prune`` command) iterates prune -> fine-tune.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgeirst.errors import EdgeirstError, missing_extra
from edgeirst.models import model_entry
from edgeirst.models.complexity import count_macs, count_params

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


def kept_layers(model: nn.Module, name: str) -> list[nn.Module]:
    """The modules whose output channels pruning must keep (``model_entry(name).keep`` prefixes)."""
    prefixes = model_entry(name).keep
    kept = [m for n, m in model.named_modules()
            if any(n == p or n.startswith(p + ".") for p in prefixes) and isinstance(m, (nn.Conv2d, nn.Linear))]
    if prefixes and not kept:
        raise EdgeirstError(f"model {name!r} lists layers to keep ({', '.join(prefixes)}) that it does not have")
    return kept


def _importance(tp, kind: str):
    if kind == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if kind == "bn-scale":
        return tp.importance.BNScaleImportance()
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise EdgeirstError(f"unknown importance {kind!r}; expected one of {', '.join(IMPORTANCES)}")


def prune_channels(model: nn.Module, name: str, ratio: float, importance: str = "l1", size: int = 64,
                   in_chans: int = 1, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None) -> nn.Module:
    """Remove ``ratio`` of the prunable channels of every layer group (in place; returns it).

    ``loss_fn(model)`` computes a training loss for Taylor importance (gradients are needed).
    """
    if not 0.0 <= ratio < 1.0:
        raise EdgeirstError(f"pruning ratio must be in [0, 1), got {ratio}")
    if ratio == 0.0:
        return model
    tp = _import_tp()
    was_training = model.training
    model.eval()
    example = torch.zeros(1, in_chans, size, size)
    pruner = tp.pruner.MetaPruner(
        model, example, importance=_importance(tp, importance), pruning_ratio=ratio,
        ignored_layers=kept_layers(model, name), round_to=4,
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
                    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None) -> tuple[nn.Module, float]:
    """The model pruned by the smallest ratio (bisection on a copy) that reaches the target;
    returns (pruned model, ratio). Raises when even 0.95 does not reach it."""
    if (target_gmacs is None) == (target_params is None):
        raise EdgeirstError("give exactly one target: GMACs or parameters")

    def measure(m: nn.Module) -> float:
        c = Complexity.of(m, size, in_chans)
        return c.gmacs if target_gmacs is not None else c.params

    target = target_gmacs if target_gmacs is not None else target_params
    if measure(model) <= target:
        return model, 0.0

    def trial(r: float) -> nn.Module:
        return prune_channels(copy.deepcopy(model), name, r, "l1" if importance == "taylor" else importance, size, in_chans)

    lo, hi = 0.0, 0.95
    if measure(trial(hi)) > target:
        raise EdgeirstError(f"pruning {name} by 95% still does not reach the target {target:g}; "
                            "ask for a larger target")
    for _ in range(8):  # ratio within 0.004
        mid = (lo + hi) / 2
        if measure(trial(mid)) > target:
            lo = mid
        else:
            hi = mid
    return prune_channels(model, name, hi, importance, size, in_chans, loss_fn), hi


__all__ = ["IMPORTANCES", "Complexity", "kept_layers", "prune_channels", "prune_to_target"]
