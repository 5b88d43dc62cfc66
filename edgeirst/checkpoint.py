"""Self-describing checkpoints: ``{"meta": ModelMeta dict, "state_dict": ..., "structure": ...,
[training state]}``.

The single place that reads and writes model files (``.pt``; ONNX's metadata entry too: ``save_onnx``); the trainer, ``export``, ``eval``, ``prune``
and the runtime's torch backend all go through it. A model is rebuilt from its registry name and
kwargs; ``structure`` (every tensor's shape and every convolution's groups) then reshapes the
layers whose channels differ from the registry build, so a pruned model reloads everywhere
without the caller knowing it was pruned. torch is imported inside the functions so that
importing this module costs nothing on the runtime path.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError
from edgeirst.io import atomic_output, os_error
from edgeirst.meta import ONNX_KEY, ModelMeta


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
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {"meta": meta.to_dict(), "state_dict": module.state_dict(), "structure": model_structure(module), **state}
    with atomic_output(path) as tmp:  # never leave a half-written checkpoint behind
        torch.save(payload, tmp)
    return path


def model_structure(model) -> dict[str, Any]:
    """What rebuilds a model's exact layer shapes: tensor shapes and convolution groups."""
    import torch

    groups = {name: int(m.groups) for name, m in model.named_modules()
              if isinstance(m, torch.nn.modules.conv._ConvNd)}
    return {"shapes": {k: list(v.shape) for k, v in model.state_dict().items()}, "groups": groups}


def apply_structure(model, structure: dict[str, Any] | None) -> int:
    """Reshape ``model``'s layers to ``structure`` (from ``model_structure``); returns how many
    tensors changed. Layers keep their type; only channel counts (and conv groups) change, which
    is what structured pruning does."""
    import torch

    if not structure:
        return 0
    shapes, groups = structure.get("shapes", {}), structure.get("groups", {})
    modules = dict(model.named_modules())
    changed = 0
    for name, shape in shapes.items():
        owner, _, attr = name.rpartition(".")
        module = modules.get(owner)
        current = getattr(module, attr, None) if module is not None else None
        if not isinstance(current, torch.Tensor) or list(current.shape) == list(shape):
            continue
        if len(shape) != current.dim() or any(n > c for n, c in zip(shape, current.shape)):
            raise EdgeirstError(f"structure gives {name} the shape {list(shape)}, which does not fit its layer "
                                f"{list(current.shape)} (pruning only removes channels)")
        fresh = torch.zeros(shape, dtype=current.dtype)
        if isinstance(current, torch.nn.Parameter):
            module._parameters[attr] = torch.nn.Parameter(fresh, requires_grad=current.requires_grad)
        else:
            module._buffers[attr] = fresh
        changed += 1
    for name, module in modules.items():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            module.groups = int(groups.get(name, module.groups))
            w = module.weight
            transposed = bool(getattr(module, "transposed", False))
            module.out_channels = w.shape[1] * module.groups if transposed else w.shape[0]
            module.in_channels = w.shape[0] if transposed else w.shape[1] * module.groups
        elif isinstance(module, torch.nn.modules.batchnorm._NormBase) and module.weight is not None:
            module.num_features = module.weight.shape[0]
        elif isinstance(module, torch.nn.Linear):
            module.out_features, module.in_features = module.weight.shape
    return changed


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, validated. Raises EdgeirstError for anything that is not ours.

    Loaded with ``weights_only=True``: a checkpoint is tensors, numbers and strings, so a file
    from elsewhere cannot run code when it is opened.
    """

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
    problem = _structure_problem(ckpt.get("structure"))
    if problem:
        raise EdgeirstError(f"{path}: its 'structure' {problem}; expected what edgeirst train or prune writes "
                            "({'shapes': {name: [sizes]}, 'groups': {name: int}}), or no 'structure'")
    return ckpt


def _structure_problem(structure: Any) -> str | None:
    """What is wrong with a checkpoint's ``structure`` entry (``model_structure``'s form), or None."""
    if structure is None:
        return None
    if not isinstance(structure, dict):
        return f"is a {type(structure).__name__}, not a dict"
    shapes, groups = structure.get("shapes", {}), structure.get("groups", {})
    if not isinstance(shapes, dict) or not isinstance(groups, dict):
        return "holds 'shapes' or 'groups' that are not dicts"
    for name, shape in shapes.items():
        if not isinstance(shape, (list, tuple)) or not all(isinstance(n, int) and n >= 0 for n in shape):
            return f"gives {name!r} the shape {shape!r}, not a list of sizes"
    for name, g in groups.items():
        if not isinstance(g, int) or g < 1:
            return f"gives {name!r} {g!r} groups, not a positive whole number"
    return None


def load_checkpoint(path: str | Path, meta: ModelMeta | None = None):
    """(model in eval mode, ModelMeta, raw checkpoint dict) from a ``.pt`` file. ``meta``, when
    given, overrides the metadata stored in the file (e.g. an engine's sidecar)."""
    from edgeirst.models import create_model

    ckpt = read_checkpoint(path)
    meta = meta or ModelMeta.from_dict(ckpt["meta"])
    model = create_model(meta.name, **meta.kwargs)
    if set(meta.outputs) < set(model.spec.outputs):  # an older checkpoint gains the outputs the model now declares
        meta = meta.replace(outputs=model.spec.outputs)
    try:
        apply_structure(model, ckpt.get("structure"))
    except EdgeirstError as e:
        raise EdgeirstError(f"{path}: {e}") from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise EdgeirstError(f"{path}: weights do not fit {meta.name}({meta.kwargs}): {str(e).splitlines()[0][:200]}") from None
    return model.eval(), meta, ckpt


def save_onnx(proto, meta: ModelMeta, out: str | Path) -> Path:
    """Save an ONNX graph with ``meta`` as its only ``edgeirst`` metadata entry; an existing file at
    ``out`` stays intact until the new one is complete."""
    import onnx

    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, meta.to_json()
    proto.producer_name = "edgeirst"
    with atomic_output(out) as tmp:
        onnx.save(proto, str(tmp))
    return Path(out)


def write_with_meta(source: str | Path, meta: ModelMeta, out: str | Path) -> Path:
    """A copy of a model file (``.pt`` or ``.onnx``) at ``out`` whose metadata is ``meta``: the
    weights and graph are copied unchanged, the file is written atomically."""
    source, out = Path(source), Path(out)
    if source.suffix.lower() != out.suffix.lower():
        raise EdgeirstError(f"--out {out} must have the model's own suffix ({source.suffix})")
    try:
        if source.suffix.lower() == ".onnx":
            import onnx

            save_onnx(onnx.load(str(source)), meta, out)
        else:
            import torch

            payload = {**read_checkpoint(source), "meta": meta.to_dict()}
            with atomic_output(out) as tmp:
                torch.save(payload, tmp)
    except OSError as e:
        raise os_error(e, out) from None
    return out
