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


TENSORRT_ONLY = ("build", "fp16", "int8", "dla_core", "workspace_mb", "calibration_cache", "calibration_data",
                 "calibration_split", "calibration_images", "cache_dir", "max_batch", "max_hw", "device_id", "zero_copy",
                 "cuda_api")


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
        options: dict[str, Any] = {"build": self.build}
        if self.threads:
            options["threads"] = self.threads
        if self.providers:
            options["providers"] = self.providers
        if self.build.fp16:
            options["fp16"] = True
        # engine-only choices the user made stay visible, so a backend that cannot honour them says so
        defaults = BuildOptions()
        for key in ("int8", "calibration_cache", "calibration_data", "dla_core"):
            if getattr(self.build, key) != getattr(defaults, key):
                options[key] = getattr(self.build, key)
        if self.device:
            options["device"] = self.device
        return load_backend(model, self.backend, **options)


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
    protect_inputs(path)  # the model the command runs: none of its outputs may replace it
    allowed = SUFFIXES[path.suffix.lower()]
    options = dict(options)
    build = options.pop("build", None)
    if backend == "auto":
        if path.suffix.lower() == ".onnx" and tensorrt_available():
            # TensorRT when it imports and an engine can be built (cached per GPU and TRT
            # version), else onnxruntime: the documented `--backend auto` behaviour.
            try:
                return load_backend(path, "tensorrt", **options, **({"build": build} if build is not None else {}))
            except EdgeirstError as e:
                print(f"warning: TensorRT engine not usable ({e}); falling back to onnxruntime", file=sys.stderr)
                options = {k: v for k, v in options.items() if k not in TENSORRT_ONLY}
        backend = allowed[0]
    elif backend not in allowed:
        raise EdgeirstError(f"backend {backend!r} cannot run {path.name}: a {path.suffix} file runs on "
                            f"{' or '.join(allowed)}" + ("; export the checkpoint to ONNX with `edgeirst export`"
                                                          if path.suffix.lower() in (".pt", ".pth") else ""))
    if backend == "tensorrt" and path.suffix.lower() == ".onnx":
        build_keys = ("fp16", "int8", "dla_core", "workspace_mb", "calibration_cache", "calibration_data",
                      "calibration_split", "calibration_images", "cache_dir", "max_batch", "max_hw")
        loose = {k: options.pop(k) for k in build_keys if k in options}
        if build is not None:
            loose = {**dataclasses.asdict(build), **loose}
        if "device_id" in options:
            loose["device_id"] = options["device_id"]
        path = cached_engine(path, **loose)
    module, name = BACKENDS[backend]
    cls = getattr(importlib.import_module(module), name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "path", "meta"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise EdgeirstError(f"the {backend} backend does not take option(s) {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(accepted)) or 'none'}")
    return cls(path, **options).load()


__all__ = ["BACKENDS", "Backend", "BackendOptions", "BuildOptions", "TensorInfo", "load_backend", "resolve_model"]
