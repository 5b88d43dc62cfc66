"""Self-describing checkpoints: ``{"meta": ModelMeta dict, "state_dict": ..., [training state]}``.

The single place that reads and writes ``.pt`` files; the trainer, ``export``, ``eval`` and the
runtime's torch backend all go through it. torch is imported inside the functions so that
importing this module costs nothing on the runtime path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta


def meta_for(name: str, model, **fields: Any) -> ModelMeta:
    """ModelMeta for a freshly built registry model, from what the model declares."""
    spec = model.spec
    kwargs = fields.pop("kwargs", {})
    return ModelMeta(name=name, kwargs=kwargs, size_divisor=spec.size_divisor, outputs=spec.outputs,
                     decode=spec.decode, decode_args=dict(spec.decode_args), tasks=spec.tasks,
                     in_chans=int(kwargs.get("in_chans", 1)), **fields)


def save_checkpoint(path: str | Path, model, meta: ModelMeta, **state: Any) -> Path:
    """Write model weights + metadata (+ optional training state: optimizer, epoch, ...)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {"meta": meta.to_dict(), "state_dict": module.state_dict(), **state}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, validated. Raises EdgeirstError for anything that is not ours.

    Loaded with ``weights_only=True``: a checkpoint is tensors, numbers and strings, so a file
    from elsewhere cannot run code when it is opened.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise EdgeirstError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise EdgeirstError(f"{path} is not a loadable PyTorch checkpoint ({type(e).__name__}); "
                            "expected a .pt file written by `edgeirst train`") from None
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "state_dict" not in ckpt:
        raise EdgeirstError(f"{path} is not an edgeirst checkpoint: expected a dict with 'meta' and 'state_dict' "
                            "(save with edgeirst train, or torch.save({'meta': meta.to_dict(), 'state_dict': ...}))")
    return ckpt


def load_checkpoint(path: str | Path, meta: ModelMeta | None = None):
    """(model in eval mode, ModelMeta, raw checkpoint dict) from a ``.pt`` file. ``meta``, when
    given, overrides the metadata stored in the file (e.g. an engine's sidecar)."""
    from edgeirst.models import create_model

    ckpt = read_checkpoint(path)
    meta = meta or ModelMeta.from_dict(ckpt["meta"])
    model = create_model(meta.name, **meta.kwargs)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise EdgeirstError(f"{path}: weights do not fit {meta.name}({meta.kwargs}): {str(e).splitlines()[0][:200]}") from None
    return model.eval(), meta, ckpt
