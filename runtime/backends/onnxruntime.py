"""onnxruntime backend: CPU everywhere, CUDA / TensorRT execution providers where the installed
onnxruntime build has them (``onnxruntime-gpu``, JetPack wheels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ONNX_KEY, ModelMeta
from edgeirst.runtime.backends.base import Backend, TensorInfo

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
              "tensor(int8)": np.int8, "tensor(bool)": np.bool_}

PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "tensorrt": "TensorrtExecutionProvider"}


def no_metadata_error(path: Path) -> EdgeirstError:
    return EdgeirstError(
        f"{path} is an ONNX model without edgeirst metadata (metadata_props key {ONNX_KEY!r}); "
        "export it with `edgeirst export CHECKPOINT.pt`, or add the key with onnx: "
        "onnx.helper.set_model_props(model, {'edgeirst': ModelMeta(...).to_json()})")


def choose_providers(requested: Any, available: list[str]) -> list[Any]:
    """``auto`` -> TensorRT, CUDA, CPU as available; a name/alias or a list -> checked against
    what this onnxruntime build offers. Items may be ``(name, options)`` pairs."""
    if requested in (None, "auto"):
        order = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        return [p for p in order if p in available] or ["CPUExecutionProvider"]
    if isinstance(requested, str):
        requested = [r.strip() for r in requested.split(",")]
    out = []
    for item in requested:
        name = item[0] if isinstance(item, tuple) else item
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in available:
            raise EdgeirstError(f"onnxruntime execution provider {name!r} is not available in this build "
                                f"(available: {', '.join(available)}); install onnxruntime-gpu for CUDA/TensorRT")
        out.append((full, item[1]) if isinstance(item, tuple) else full)
    if "CPUExecutionProvider" not in [p[0] if isinstance(p, tuple) else p for p in out]:
        out.append("CPUExecutionProvider")  # fallback for ops the GPU providers lack
    return out


def provider_options(providers: list[Any], fp16: bool = False, cache_dir: str | None = None,
                     device_id: int = 0) -> list[Any]:
    """Attach sensible options to the GPU providers: TensorRT engine cache + FP16, CUDA device."""
    out = []
    for p in providers:
        if isinstance(p, tuple):
            out.append(p)
        elif p == "TensorrtExecutionProvider":
            opts = {"device_id": device_id, "trt_fp16_enable": fp16}
            if cache_dir:
                opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir)
            out.append((p, opts))
        elif p == "CUDAExecutionProvider":
            out.append((p, {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"}))
        else:
            out.append(p)
    return out


_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


def session_options(ort, threads: int = 0, hints: dict | None = None):
    """SessionOptions with ``threads`` intra-op threads and a model's own hints
    (``graph_optimization_level``: basic | extended | all), carried in its metadata; a hint's
    ``disabled_optimizers`` go to the InferenceSession itself."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
    level = (hints or {}).get("graph_optimization_level")
    if level in _LEVELS:
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
    return so


def session_hints(meta: ModelMeta) -> dict:
    """The onnxruntime CPU session settings a model's metadata asks for (``quant.onnxruntime``:
    ``edgeirst quantize`` times its INT8 model under a few and records the fastest), or {}."""
    return (meta.quant or {}).get("onnxruntime") or {}


def session_notes(models: list) -> list:
    """For ``(name, session_hints(meta))`` pairs, one line per distinct set of settings, naming the
    models and the settings as onnxruntime's Python API spells them."""
    groups: dict = {}
    for name, hints in models:
        if hints:
            key = (hints.get("graph_optimization_level"), tuple(hints.get("disabled_optimizers") or ()))
            groups.setdefault(key, []).append(name)
    lines = []
    for (level, disabled), names in groups.items():
        parts = ([f"graph_optimization_level={_LEVELS[level]}"] if level in _LEVELS else []) + \
            ([f"disabled_optimizers={list(disabled)}"] if disabled else [])
        lines.append(f"onnxruntime session settings in the metadata of {', '.join(names)}: {', '.join(parts)} "
                     "(edgeirst applies them on CPU; a plain onnxruntime.InferenceSession(path) does not, and runs "
                     "the INT8 model slower)")
    return lines


class OnnxRuntimeBackend(Backend):
    """Options: ``providers`` ("auto", "cpu", "cuda", "tensorrt", a list, or (name, options)
    pairs), ``threads`` (intra-op threads, 0 = onnxruntime's default), ``fp16`` and ``cache_dir``
    for the TensorRT provider, ``device_id``, ``session_hints`` (CPU session settings to use in
    place of those the metadata records, as ``session_hints`` spells them; ``{}`` for none)."""

    name = "onnxruntime"

    def __init__(self, path: Path, meta: ModelMeta | None = None, providers: Any = "auto", threads: int = 0,
                 fp16: bool = False, cache_dir: str | None = None, device_id: int = 0,
                 session_hints: dict | None = None) -> None:
        super().__init__(path, meta)
        self.options = dict(providers=providers, threads=threads, fp16=fp16, cache_dir=cache_dir, device_id=device_id,
                            session_hints=session_hints)
        self.session = None

    def load(self) -> "OnnxRuntimeBackend":
        try:
            import onnxruntime as ort
            from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
        except ImportError:
            raise EdgeirstError("onnxruntime is not installed; it is part of the core install: pip install onnxruntime "
                                "(on a Jetson, NVIDIA's onnxruntime-gpu wheel)") from None
        o = self.options
        providers = provider_options(choose_providers(o["providers"], ort.get_available_providers()),
                                     o["fp16"], o["cache_dir"], o["device_id"])
        errors = tuple(getattr(ort_state, n) for n in ("Fail", "InvalidProtobuf", "InvalidGraph", "NoSuchFile",
                                                      "NotImplemented", "InvalidArgument") if hasattr(ort_state, n))

        def open_session(hints: dict) -> None:
            try:
                self.session = ort.InferenceSession(str(self.path), session_options(ort, o["threads"], hints),
                                                    providers=providers,
                                                    disabled_optimizers=list(hints.get("disabled_optimizers", [])))
            except errors as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise EdgeirstError(f"{self.path} is not a loadable ONNX model ({first[:200]})") from None

        open_session({})
        if self.meta is None:
            text = self.session.get_modelmeta().custom_metadata_map.get(ONNX_KEY)
            if text is None:
                raise no_metadata_error(self.path)
            self.meta = ModelMeta.from_json(text)
        hints = session_hints(self.meta) if o["session_hints"] is None else o["session_hints"]
        if hints and providers == ["CPUExecutionProvider"]:
            open_session(hints)  # settings `edgeirst quantize` measured fastest for this CPU model
        self.inputs = [TensorInfo(i.name, tuple(i.shape), np.dtype(_ORT_TYPES.get(i.type, np.float32)))
                       for i in self.session.get_inputs()]
        self.outputs = [TensorInfo(i.name, tuple(i.shape), np.dtype(_ORT_TYPES.get(i.type, np.float32)))
                        for i in self.session.get_outputs()]
        if len(self.inputs) != 1:
            raise EdgeirstError(f"{self.path} has {len(self.inputs)} inputs; edgeirst models take one image batch")
        names = {t.name for t in self.outputs}
        missing = [n for n in self.meta.outputs if n not in names]
        if missing:
            raise EdgeirstError(f"{self.path}: metadata names outputs {list(self.meta.outputs)} but the graph has "
                                f"{sorted(names)}; re-export the model")
        self._output_names = list(self.meta.outputs)
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4  # a failed run raises (one error line); its log would say it twice
        return self

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers() if self.session is not None else []

    def _infer_impl(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self._output_names, {self.inputs[0].name: batch}, self._run_options)
        return dict(zip(self._output_names, values))

    def close(self) -> None:
        self.session = None
        super().close()
