"""Backends and ``load_backend``: a model file (or ``default``) -> a loaded ``Backend``.

| file | backends |
|---|---|
| ``.onnx`` | ``tensorrt`` when it imports and an engine builds (cached), else ``onnxruntime`` |
| ``.pt`` / ``.pth`` | ``torch`` |
| ``.engine`` / ``.plan`` / ``.trt`` | ``tensorrt`` (metadata from the ``<engine>.json`` sidecar) |

Backend modules are imported only when chosen, so picking onnxruntime never imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError
from edgeirst.io import protect_inputs
from edgeirst.runtime.backends.base import Backend, TensorInfo
from edgeirst.runtime.engine_build import BuildOptions, cached_engine
from edgeirst.runtime.cuda import available_apis
from edgeirst.weights import resolve_model

# name -> (module, class)
BACKENDS = {
    "onnxruntime": ("edgeirst.runtime.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch": ("edgeirst.runtime.backends.torch", "TorchBackend"),
    "tensorrt": ("edgeirst.runtime.backends.tensorrt", "TensorRTBackend"),
}
ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt", "pytorch": "torch"}
# keys = edgeirst.weights.MODEL_SUFFIXES
SUFFIXES = {".onnx": ("onnxruntime", "tensorrt"), ".pt": ("torch",), ".pth": ("torch",),
            ".engine": ("tensorrt",), ".plan": ("tensorrt",), ".trt": ("tensorrt",)}


BUILD_FIELDS = tuple(f.name for f in dataclasses.fields(BuildOptions))
TENSORRT_BACKEND_ONLY = ("cuda_api", "zero_copy")  # TensorRTBackend's own keywords


@dataclass
class BackendOptions:
    """How a command loads its model, passed whole from the CLI to ``load_backend``: the backend,
    its threads / providers / device, and the TensorRT engine build (``build``: precision,
    calibration cache, DLA core, workspace, the largest batch and input)."""

    backend: str = "auto"
    threads: int = 0
    providers: str | None = None
    device: str | None = None  # torch backend: cpu, cuda, cuda:N
    build: BuildOptions = field(default_factory=BuildOptions)

    def for_batch(self, batch: int) -> "BackendOptions":
        """A copy whose engine build accepts batches of ``batch`` (one frame per --source)."""
        build = dataclasses.replace(self.build, max_batch=max(self.build.max_batch, int(batch)))
        return dataclasses.replace(self, build=build)

    def load(self, model: str | Path) -> Backend:
        options: dict[str, Any] = {}
        if self.threads:
            options["threads"] = self.threads
        if self.providers:
            options["providers"] = self.providers
        if self.device:
            options["device"] = self.device
        return load_backend(model, self.backend, self.build, **options)


def tensorrt_available() -> bool:
    """TensorRT and a CUDA binding (pycuda, cuda-python or libcudart) are importable."""
    return importlib.util.find_spec("tensorrt") is not None and bool(available_apis())


def load_backend(model: str | Path, backend: str = "auto", build: BuildOptions | None = None,
                 **options: Any) -> Backend:
    """Load ``model`` (a ``.pt``/``.onnx``/``.engine`` path or ``default``) on ``backend``
    (``auto`` picks by file type). ``build`` is the TensorRT engine build (its fields may also be
    given as keywords, e.g. ``fp16=True``); onnxruntime takes its ``fp16`` and ``cache_dir`` for
    its TensorRT provider. Other ``options`` go to the backend class (``providers``, ``threads``
    for onnxruntime; ``device`` for torch; ``device_id``, ``cuda_api``, ``zero_copy`` for tensorrt)."""
    backend = ALIASES.get(backend, backend)
    if backend != "auto" and backend not in BACKENDS:
        raise EdgeirstError(f"unknown backend {backend!r}; expected auto, {', '.join(BACKENDS)}")
    path = resolve_model(model, backend)
    protect_inputs(path)  # the model the command runs: none of its outputs may replace it
    allowed = SUFFIXES[path.suffix.lower()]
    options = dict(options)
    build = dataclasses.replace(build or BuildOptions(), **{k: options.pop(k) for k in BUILD_FIELDS if k in options})
    if backend == "auto":
        if path.suffix.lower() == ".onnx" and tensorrt_available():
            # TensorRT when it imports and an engine can be built (cached per GPU and TRT
            # version), else onnxruntime: the documented `--backend auto` behaviour.
            try:
                return load_backend(path, "tensorrt", build, **options)
            except EdgeirstError as e:
                print(f"warning: TensorRT engine not usable ({e}); falling back to onnxruntime", file=sys.stderr)
                build = BuildOptions(fp16=build.fp16, cache_dir=build.cache_dir)
                options = {k: v for k, v in options.items() if k not in TENSORRT_BACKEND_ONLY}
        backend = allowed[0]
    elif backend not in allowed:
        raise EdgeirstError(f"backend {backend!r} cannot run {path.name}: a {path.suffix} file runs on "
                            f"{' or '.join(allowed)}" + ("; export the checkpoint to ONNX with `edgeirst export`"
                                                          if path.suffix.lower() in (".pt", ".pth") else ""))
    if backend == "tensorrt" and path.suffix.lower() == ".onnx":
        path = cached_engine(path, build, device_id=options.get("device_id", 0))
    else:
        # engine-only choices the user made stay visible, so a backend that cannot honour them says so
        options.update({k: getattr(build, k) for k in ("fp16", "cache_dir") if getattr(build, k)})
        options.update({k: getattr(build, k) for k in build.engine_only()})
    module, name = BACKENDS[backend]
    cls = getattr(importlib.import_module(module), name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "path", "meta"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise EdgeirstError(f"the {backend} backend does not take option(s) {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(accepted)) or 'none'}")
    return cls(path, **options).load()


__all__ = ["BACKENDS", "Backend", "BackendOptions", "BuildOptions", "TensorInfo", "load_backend", "resolve_model"]
