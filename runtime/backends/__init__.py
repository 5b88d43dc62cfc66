"""Backends and ``load_backend``: a model file (or ``default``) -> a loaded ``Backend``.

| file | backends |
|---|---|
| ``.onnx`` | ``tensorrt`` when it imports and an engine builds (cached), else ``onnxruntime`` |
| ``.pt`` / ``.pth`` | ``torch`` |
| ``.engine`` / ``.plan`` / ``.trt`` | ``tensorrt`` (metadata from the ``<engine>.json`` sidecar) |

Backend modules are imported only when chosen, so picking onnxruntime never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError
from edgeirst.runtime.backends.base import Backend, TensorInfo

# name -> (module, class)
BACKENDS = {
    "onnxruntime": ("edgeirst.runtime.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch": ("edgeirst.runtime.backends.torch", "TorchBackend"),
    "tensorrt": ("edgeirst.runtime.backends.tensorrt", "TensorRTBackend"),
}
ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt", "pytorch": "torch"}
SUFFIXES = {".onnx": ("onnxruntime", "tensorrt"), ".pt": ("torch",), ".pth": ("torch",),
            ".engine": ("tensorrt",), ".plan": ("tensorrt",), ".trt": ("tensorrt",)}


def resolve_model(model: str | Path, backend: str = "auto") -> Path:
    """A model argument -> an existing file. ``default`` (or another shipped model's name) is a
    model shipped with the package: its ONNX, or its checkpoint when the torch backend is asked for."""
    path = Path(model).expanduser()
    if not path.exists() and not path.suffix:
        from edgeirst.weights import shipped_model, shipped_names

        if str(model) == "default" or str(model) in shipped_names():
            return shipped_model(str(model), "pt" if backend == "torch" else "onnx")
    if not path.exists():
        raise EdgeirstError(f"model file {path} does not exist; pass a .pt, .onnx or .engine file or the word `default`")
    if path.is_dir():
        raise EdgeirstError(f"model {path} is a directory; pass a .pt, .onnx or .engine file")
    if path.suffix.lower() not in SUFFIXES:
        raise EdgeirstError(f"model {path} has an unsupported suffix {path.suffix!r}; expected one of "
                            f"{', '.join(SUFFIXES)} (or the word `default`)")
    return path


TENSORRT_ONLY = ("fp16", "int8", "dla_core", "workspace_mb", "calibration_cache", "calibration_data", "calibration_split",
                 "calibration_images", "cache_dir", "max_batch", "max_hw",
                 "device_id", "zero_copy", "cuda_api")


def tensorrt_available() -> bool:
    """TensorRT and a CUDA binding (pycuda or cuda-python) are importable."""
    has = importlib.util.find_spec
    return has("tensorrt") is not None and (has("pycuda") is not None or has("cuda") is not None)


def load_backend(model: str | Path, backend: str = "auto", **options: Any) -> Backend:
    """Load ``model`` (a ``.pt``/``.onnx``/``.engine`` path or ``default``) on ``backend``
    (``auto`` picks by file type). ``options`` go to the backend class (e.g. ``providers``,
    ``threads`` for onnxruntime; ``device`` for torch; ``fp16``, ``int8``, ``dla_core``,
    ``workspace_mb`` for tensorrt)."""
    backend = ALIASES.get(backend, backend)
    if backend != "auto" and backend not in BACKENDS:
        raise EdgeirstError(f"unknown backend {backend!r}; expected auto, {', '.join(BACKENDS)}")
    path = resolve_model(model, backend)
    allowed = SUFFIXES[path.suffix.lower()]
    if backend == "auto":
        if path.suffix.lower() == ".onnx" and tensorrt_available():
            # TensorRT when it imports and an engine can be built (cached per GPU and TRT
            # version), else onnxruntime: the documented `--backend auto` behaviour.
            try:
                return load_backend(path, "tensorrt", **options)
            except EdgeirstError as e:
                print(f"warning: TensorRT engine not usable ({e}); falling back to onnxruntime", file=sys.stderr)
                options = {k: v for k, v in options.items() if k not in TENSORRT_ONLY}
        backend = allowed[0]
    elif backend not in allowed:
        raise EdgeirstError(f"backend {backend!r} cannot run {path.name}: a {path.suffix} file runs on "
                            f"{' or '.join(allowed)}" + ("; export the checkpoint to ONNX with `edgeirst export`"
                                                          if path.suffix.lower() in (".pt", ".pth") else ""))
    if backend == "tensorrt" and path.suffix.lower() == ".onnx":
        from edgeirst.runtime.engine_build import cached_engine

        build_keys = ("fp16", "int8", "dla_core", "workspace_mb", "calibration_cache", "calibration_data",
                      "calibration_split", "calibration_images", "cache_dir", "max_batch", "max_hw")
        build = {k: options.pop(k) for k in build_keys if k in options}
        if "device_id" in options:
            build["device_id"] = options["device_id"]
        path = cached_engine(path, **build)
    module, name = BACKENDS[backend]
    cls = getattr(importlib.import_module(module), name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "path", "meta"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise EdgeirstError(f"the {backend} backend does not take option(s) {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(accepted)) or 'none'}")
    return cls(path, **options).load()


__all__ = ["BACKENDS", "Backend", "TensorInfo", "load_backend", "resolve_model"]
