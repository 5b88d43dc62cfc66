"""What ``--models`` names, and the model files each row runs.

A model is a shipped model (``default``, ``dnanet-w025``: trained weights), a registry variant
(``mtunet``...: random weights, timing only, marked so), an ``.onnx``/``.pt`` file, or a
registry variant with some heads (``mtunet-siwd[det]``, for MTUNet's multi-task claim).

``ModelFiles`` makes the files a row needs and caches them (default: a folder in the system's
temp dir): random variants exported with ``edgeirst.export.export_onnx`` at the bench size
(static shape, batch 1), checkpoints of the same random weights for the torch backend, and
INT8/FP16 models from ``edgeirst.quantize.quantize_model``. Every file is written under a
temporary name and renamed into place when complete.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeirst import __version__
from edgeirst.checkpoint import load_checkpoint, meta_for, read_checkpoint, save_checkpoint
from edgeirst.errors import EdgeirstError
from edgeirst.export import export_onnx
from edgeirst.io import publish, write_text
from edgeirst.meta import ModelMeta
from edgeirst.quantize import QuantConfig, quantize_model
from edgeirst.runtime.engine_build import read_onnx_meta
from edgeirst.weights import WEIGHTS_DIR, aliases, shipped_model, shipped_names

KEYWORDS = ("all", "shipped")
MODEL_SUFFIXES = (".onnx", ".pt", ".pth")
_HEADS = re.compile(r"^(?P<name>[\w.-]+)\[(?P<heads>[a-z,+]+)\]$")


@dataclass
class ModelSource:
    """One model to bench. ``weights``: ``shipped`` (trained, shipped with edgeirst), ``file``
    (the user's own file) or ``random`` (a registry variant with random weights: speed only)."""

    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str = "random"
    onnx: Path | None = None
    checkpoint: Path | None = None
    shipped: str | None = None
    meta: ModelMeta | None = None

    @property
    def trained(self) -> bool:
        return self.weights != "random"

    @property
    def precision(self) -> str:
        """``fp32``, or the precision ``edgeirst quantize`` gave this file (it runs as it is)."""
        return (self.meta.quant or {}).get("precision", "fp32") if self.meta is not None else "fp32"


def registry_names() -> list[str]:
    """The zoo's model names (imports torch)."""
    try:
        from edgeirst.models import list_models
    except ImportError:
        raise EdgeirstError("registry models need PyTorch; install it with: pip install 'edgeirst[train]' "
                            "(shipped models and .onnx files run without it)") from None
    return list_models()


def _registry_source(text: str) -> ModelSource | None:
    m = _HEADS.match(text)
    name, kwargs = (m["name"], {"heads": sorted(m["heads"].replace("+", ",").split(","),
                                                key=("det", "seg").index)}) if m else (text, {})
    if name not in registry_names():
        return None
    if kwargs and not name.startswith("mtunet"):
        raise EdgeirstError(f"{text!r}: only the mtunet family takes heads ([det], [seg], [det,seg])")
    if kwargs and not set(kwargs["heads"]) <= {"det", "seg"}:
        raise EdgeirstError(f"{text!r}: heads must be det and/or seg")
    return ModelSource(label=text, name=name, kwargs=kwargs, weights="random")


def _file_source(path: Path) -> ModelSource:
    if not path.is_file():
        raise EdgeirstError(f"model file {path} does not exist")
    if path.suffix.lower() == ".onnx":
        meta = read_onnx_meta(path)
        return ModelSource(path.name, meta.name, dict(meta.kwargs), "file", onnx=path, meta=meta)

    meta = ModelMeta.from_dict(read_checkpoint(path)["meta"])
    return ModelSource(path.name, meta.name, dict(meta.kwargs), "file", checkpoint=path, meta=meta)


def shipped_source(name: str) -> ModelSource:
    """A shipped model: its ONNX (and checkpoint when shipped), metadata read from the ONNX."""

    onnx = shipped_model(name, "onnx")
    pt = WEIGHTS_DIR / f"{aliases().get(name, name)}.pt"  # an INT8 model ships as ONNX only
    meta = read_onnx_meta(onnx)
    return ModelSource(name, meta.name, dict(meta.kwargs), "shipped", onnx=onnx,
                       checkpoint=pt if pt.is_file() else None, shipped=name, meta=meta)


def resolve_models(spec: str) -> list[ModelSource]:
    """``all`` (the nine registry variants), ``shipped``, or a comma list of shipped names,
    registry names (``mtunet-siwd[det]`` picks heads; ``random:NAME`` where a shipped model
    has the zoo name) and ``.onnx``/``.pt`` files."""

    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise EdgeirstError("--models is empty; give all, shipped, or a comma list of model names or files")
    out: list[ModelSource] = []
    for item in items:
        if item == "all":
            out += [ModelSource(n, n) for n in registry_names()]
        elif item == "shipped":
            out += [shipped_source(n) for n in shipped_names(with_aliases=False)]
        elif item.startswith("random:"):  # the registry variant, where a shipped model has its name
            src = _registry_source(item[len("random:"):])
            if src is None:
                raise EdgeirstError(f"{item!r}: {item[len('random:'):]!r} is not a zoo model")
            out.append(src)
        elif item in shipped_names():
            out.append(shipped_source(item))
        elif Path(item).suffix.lower() in MODEL_SUFFIXES:
            out.append(_file_source(Path(item).expanduser()))
        else:
            src = _registry_source(item)
            if src is None:
                known = list(KEYWORDS) + shipped_names() + registry_names()
                close = difflib.get_close_matches(item, known, n=3)
                raise EdgeirstError(f"unknown model {item!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                                    + f" (known: {', '.join(known)}, or an .onnx/.pt file)")
            out.append(src)
    seen, unique = set(), []
    for s in out:
        if s.label not in seen:
            seen.add(s.label)
            unique.append(s)
    return unique


def default_cache() -> Path:
    return Path(tempfile.gettempdir()) / f"edgeirst-bench-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def _file_id(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ModelFiles:
    """Makes and caches the files rows run: static ONNX exports and checkpoints of random
    variants at ``size`` (weights from ``torch.manual_seed(seed)``), quantized models."""

    def __init__(self, root: str | Path | None, size: int, seed: int = 0) -> None:
        self.root = Path(root).expanduser() if root else default_cache()
        self.size, self.seed = size, seed
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeirstError(f"cannot create the bench cache folder {self.root}: {e.strerror}") from None
        self._described: dict[str, dict[str, Any]] = {}

    def _path(self, src: ModelSource, payload: dict[str, Any], suffix: str) -> Path:
        payload = {**payload, "edgeirst": __version__, "code": None if src.trained else _code_id()}
        return self.root / f"{_slug(src.label)}-{self.size}-{_key(payload)}{suffix}"

    def _random_model(self, src: ModelSource):
        import torch

        from edgeirst.models import create_model

        torch.manual_seed(self.seed)
        model = create_model(src.name, **src.kwargs).eval()
        return model, meta_for(src.name, model, kwargs=dict(src.kwargs), input_size=(self.size, self.size))

    def _torch_model(self, src: ModelSource):
        if src.checkpoint is not None:
            model, meta, _ = load_checkpoint(src.checkpoint)
            return model, meta.replace(input_size=(self.size, self.size))
        return self._random_model(src)

    def onnx(self, src: ModelSource) -> Path:
        """The ONNX file of ``src``: its own, or a static export at the bench size."""
        if src.onnx is not None:
            return src.onnx

        base = {"name": src.name, "kwargs": src.kwargs, "seed": self.seed, "weights": src.weights,
                "from": _file_id(src.checkpoint) if src.checkpoint else None}
        path = self._path(src, {**base, "kind": "onnx"}, ".onnx")
        if not path.is_file():
            model, meta = self._torch_model(src)
            tmp = path.with_name(path.name + ".tmp.onnx")
            with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
                warnings.simplefilter("ignore")
                export_onnx(model, meta, tmp, input_size=(self.size, self.size), dynamic=False)
            publish(tmp, path)
        return path

    def checkpoint(self, src: ModelSource) -> Path:
        """The ``.pt`` file of ``src`` for the torch backend: its own, or the random weights."""
        if src.checkpoint is not None:
            return src.checkpoint
        if src.onnx is not None:
            raise EdgeirstError(f"{src.label} is an ONNX file; torch rows need a .pt checkpoint")

        path = self._path(src, {"name": src.name, "kwargs": src.kwargs, "seed": self.seed, "kind": "pt"}, ".pt")
        if not path.is_file():
            model, meta = self._random_model(src)
            save_checkpoint(path, model, meta)  # writes a temporary file and renames it
        return path

    def quantized(self, src: ModelSource, precision: str, target: str, data: str | None, calib_split: str = "train",
                  calib_images: int = 64, progress: bool = False) -> Path:
        """An INT8/FP16 model of ``src`` from ``edgeirst.quantize.quantize_model`` for ``target``
        (``cpu`` = onnxruntime's U8S8 layout, ``tensorrt`` = symmetric S8S8 QDQ). No accuracy
        guard: the bench measures accuracy itself."""
        source = self.onnx(src)
        payload = {"from": _file_id(source), "precision": precision, "target": target, "calib_images": calib_images,
                   "data": str(Path(data).resolve()) if data else None, "split": calib_split,
                   "quantizer": _code_id("edgeirst.quantize")}
        path = self._path(src, payload, f".{precision}.{target}.onnx")
        if not path.is_file():
            cfg = QuantConfig(precision=precision, target=target, data=data, split=calib_split,
                              calib_images=calib_images, val_split=None)
            tmp = path.with_name(path.name + ".tmp.onnx")
            result = quantize_model(src.shipped or source, tmp, cfg, progress=progress)
            publish(Path(getattr(result, "path", tmp)), path)
        return path

    def describe(self, src: ModelSource) -> dict[str, Any]:
        """``params``, ``macs`` (multiply-adds at size x size) and ``size_divisor`` of ``src``'s
        network (cached beside the model files); params and macs are None without torch."""
        if src.label in self._described:
            return self._described[src.label]
        in_chans = src.meta.in_chans if src.meta else int(src.kwargs.get("in_chans", 1))
        structure = _structure_checkpoint(src)  # a pruned model's channels are in its checkpoint
        path = self._path(src, {"name": src.name, "kwargs": src.kwargs, "in_chans": in_chans, "kind": "describe",
                                "from": _file_id(structure) if structure else None}, ".json")
        try:
            from edgeirst.models import create_model
            from edgeirst.models.complexity import count_macs, count_params
        except ImportError:
            info = {"params": None, "macs": None, "size_divisor": src.meta.size_divisor if src.meta else 32}
        else:
            if path.is_file():
                info = json.loads(path.read_text())
            else:
                if structure is not None:
                    from edgeirst.checkpoint import load_checkpoint

                    model = load_checkpoint(structure)[0]
                else:
                    model = create_model(src.name, **src.kwargs)
                d = model.spec.size_divisor
                info = {"params": count_params(model), "macs": None if self.size % d else
                        count_macs(model, self.size, in_chans), "size_divisor": d}
                write_text(path, json.dumps(info))
            d = info["size_divisor"]
            if self.size % d:
                raise EdgeirstError(f"--size {self.size} is not a multiple of {d}, which {src.label} needs; try "
                                    f"{-(-self.size // d) * d}")
        self._described[src.label] = info
        return info


@functools.lru_cache(maxsize=None)
def _code_id(package: str = "edgeirst.models") -> str | None:
    """A hash of a package's code (every ``.py`` under it, found without importing it): files
    cached from random weights are made again when an architecture changes (``edgeirst.models``),
    quantized ones when the quantizer does (``edgeirst.quantize``), not only with the version."""

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    digest = hashlib.sha1()
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _structure_checkpoint(src: ModelSource) -> Path | None:
    """The checkpoint that holds ``src``'s exact network: its own, or for a quantized ONNX the
    FP32 model's checkpoint beside it (``quant.source`` names that model)."""
    if src.checkpoint is not None:
        return src.checkpoint
    source = (src.meta.quant or {}).get("source") if src.meta is not None else None
    if source and src.onnx is not None:
        pt = src.onnx.parent / f"{Path(source).stem}.pt"
        if pt.is_file():
            return pt
    return None


__all__ = ["ModelFiles", "ModelSource", "resolve_models", "shipped_source"]
