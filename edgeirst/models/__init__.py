"""The model zoo: ``create_model(name, **kwargs)``, ``list_models()``, ``model_entry(name)``.

One level of name -> entry lookup in a plain dict; every family module is imported explicitly
here and declares its ``ENTRIES`` (``edgeirst.models.registry.ModelEntry``: factory, paper
figures, training preset, criterion, layers pruning keeps). Adding a model is one entry: in a
family file, or at run time with ``register_model``. Every model takes ``in_chans`` (default 1),
returns a dict of named output tensors and carries a ``spec`` (``edgeirst.models.base.ModelSpec``)
saying its tasks, its inference outputs and how they decode.
"""

from __future__ import annotations

import difflib

from torch import nn

from edgeirst.errors import EdgeirstError
from edgeirst.models import dnanet, light_sgmtlm, mlsa_yolov8, mshnet, mtunet
from edgeirst.models.base import ModelSpec
from edgeirst.models.registry import ModelEntry, PaperFigures, Preset

_ENTRIES: dict[str, ModelEntry] = {e.name: e for family in (mshnet, dnanet, mlsa_yolov8, mtunet, light_sgmtlm)
                                   for e in family.ENTRIES}


def list_models() -> list[str]:
    return sorted(_ENTRIES)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; unknown names raise an EdgeirstError with close matches."""
    try:
        return _ENTRIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, _ENTRIES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EdgeirstError(f"unknown model {name!r}{hint} (available: {', '.join(list_models())})") from None


def register_model(entry: ModelEntry, replace: bool = False) -> ModelEntry:
    """Add a model to the zoo (a user's own architecture): afterwards every command that takes
    a registry name (train, zoo, export, eval, prune...) knows it."""
    if entry.name in _ENTRIES and not replace:
        raise EdgeirstError(f"model {entry.name!r} is already registered")
    _ENTRIES[entry.name] = entry
    return entry


def unregister_model(name: str) -> None:
    _ENTRIES.pop(name, None)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model. Unknown names raise an EdgeirstError with close matches."""
    entry = model_entry(name)
    try:
        return entry.create(**kwargs)
    except (TypeError, ValueError) as e:  # an unknown keyword, or a value the model refuses
        raise EdgeirstError(f"bad arguments for model {name!r}: {e}") from None


__all__ = ["ModelEntry", "ModelSpec", "PaperFigures", "Preset", "create_model", "list_models", "model_entry",
           "register_model", "unregister_model"]
