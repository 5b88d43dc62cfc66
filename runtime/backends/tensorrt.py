"""TensorRT backend for serialized plans (``.engine``) with a ``<engine>.json`` metadata sidecar.

The named-tensor API (TensorRT >= 8.5: ``set_input_shape``/``set_tensor_address``/
``execute_async_v3``; every name it calls is listed in ``edgeirst.runtime.trt_api.RUNTIME``).
Older TensorRT (JetPack 4, 5.0.2: bindings only) is refused with one line. Memory comes from
``edgeirst.runtime.cuda`` (pycuda, cuda-python or libcudart): the input buffer the pipeline writes into
is page-locked host memory (zero-copy mapped on integrated GPUs such as Jetson), copied
asynchronously on one stream.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from edgeirst.runtime.backends.base import Backend, TensorInfo
from edgeirst.runtime.cuda import CudaDevice
from edgeirst.runtime.trt_api import MIN_JETPACK, OLDEST, api_for


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgeirstError("tensorrt is not installed: on a Jetson it ships with JetPack (apt install "
                            "python3-libnvinfer), on a desktop GPU pip install tensorrt; then pip install "
                            "'edgeirst[jetson]' for pycuda") from None
    if api_for(trt.__version__) is None:
        raise EdgeirstError(f"TensorRT {trt.__version__} has only the bindings API; edgeirst needs TensorRT >= "
                            f"{'.'.join(map(str, OLDEST))} (JetPack {MIN_JETPACK} or newer)")
    return trt


def sidecar_path(engine: Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return Path(str(engine) + ".json")


def read_sidecar(engine: Path) -> tuple[ModelMeta, dict]:
    """(ModelMeta, build info) from the engine's JSON sidecar."""
    for p in (sidecar_path(engine), engine.with_suffix(".json")):
        if p.is_file():
            try:
                d = json.loads(p.read_text())
            except json.JSONDecodeError as e:
                raise EdgeirstError(f"{p} is not valid JSON: {e}") from None
            info = d.pop("engine", {}) if isinstance(d, dict) else {}  # build info beside the model metadata
            return ModelMeta.from_dict(d), info
    raise EdgeirstError(f"{engine} has no metadata sidecar {sidecar_path(engine).name}; build engines with "
                        "`edgeirst run MODEL.onnx --backend tensorrt` (or write ModelMeta(...).to_json() there)")


class _NamedIO:
    """Tensors addressed by name (TensorRT >= 8.5)."""

    def __init__(self, trt, engine) -> None:
        self.trt, self.engine = trt, engine
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]

    def is_input(self, name: str) -> bool:
        return self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.engine.get_tensor_shape(name))

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def profile_max(self, name: str) -> tuple[int, ...]:
        return tuple(self.engine.get_tensor_profile_shape(name, 0)[2])

    def set_input_shape(self, ctx, name: str, shape: tuple[int, ...]) -> bool:
        return bool(ctx.set_input_shape(name, shape))

    def context_shape(self, ctx, name: str) -> tuple[int, ...]:
        return tuple(ctx.get_tensor_shape(name))

    def execute(self, ctx, addresses: dict[str, int], stream_handle: int) -> bool:
        for name, ptr in addresses.items():
            if not ctx.set_tensor_address(name, ptr):
                raise RuntimeError(f"TensorRT refused the address of tensor {name!r}")
        return bool(ctx.execute_async_v3(stream_handle))


class TensorRTBackend(Backend):
    """Options: ``device_id``; ``cuda_api`` (``auto``, ``pycuda``, ``cuda-python``);
    ``zero_copy`` (None = on integrated GPUs, where host memory is device memory)."""

    name = "tensorrt"

    def __init__(self, path: Path, meta: ModelMeta | None = None, device_id: int = 0, cuda_api: str = "auto",
                 zero_copy: bool | None = None) -> None:
        super().__init__(path, meta)
        self.device_id, self.cuda_api, self.zero_copy = device_id, cuda_api, zero_copy
        self.cuda = self.engine = self.context = self._runtime = None
        self._in = None
        self._out: dict[str, object] = {}
        self.build_info: dict = {}

    def load(self) -> "TensorRTBackend":
        trt = import_tensorrt()

        if self.meta is None:
            self.meta, self.build_info = read_sidecar(self.path)
        self.cuda = CudaDevice(self.device_id, self.cuda_api)
        if self.zero_copy is None:
            self.zero_copy = self.cuda.integrated
        try:
            with self.cuda.active():
                self._logger = trt.Logger(trt.Logger.WARNING)
                self._runtime = trt.Runtime(self._logger)
                self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
                if self.engine is None:
                    built = self.build_info.get("tensorrt", "?"), self.build_info.get("device", "?")
                    raise EdgeirstError(f"{self.path} cannot be loaded by TensorRT {trt.__version__} on {self.cuda.name} "
                                        f"(built with TensorRT {built[0]} on {built[1]}); rebuild it from the ONNX "
                                        "model on this device (`--backend tensorrt` with the .onnx file)")
                self.context = self.engine.create_execution_context()
                if self.context is None:
                    raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        except BaseException:
            self.close()
            raise
        self.io = _NamedIO(trt, self.engine)
        ins = [n for n in self.io.names if self.io.is_input(n)]
        outs = [n for n in self.io.names if not self.io.is_input(n)]
        self.inputs = [TensorInfo(n, self.io.shape(n), self.io.dtype(n)) for n in ins]
        self.outputs = [TensorInfo(n, self.io.shape(n), self.io.dtype(n)) for n in outs]
        if len(ins) != 1:
            self.close()
            raise EdgeirstError(f"{self.path} has {len(ins)} inputs; edgeirst models take one image batch")
        missing = [n for n in self.meta.outputs if n not in outs]
        if missing:
            self.close()
            raise EdgeirstError(f"{self.path}: sidecar names outputs {list(self.meta.outputs)}, the engine has {outs}")
        if self.inputs[0].dtype != np.float32:
            self.close()
            raise EdgeirstError(f"{self.path}: engine input is {self.inputs[0].dtype}, edgeirst feeds float32")
        return self

    # -- buffers ------------------------------------------------------------------------------
    def _allocate_input(self, shape: tuple[int, ...]) -> np.ndarray:
        """Page-locked (or mapped) host memory the pipeline writes into; outputs sized to match."""
        name = self.inputs[0].name
        limit = self.io.profile_max(name) if any(d < 0 for d in self.inputs[0].shape) else self.inputs[0].shape
        if any(s > m for s, m in zip(shape, limit)):
            raise EdgeirstError(f"input {list(shape)} exceeds what {self.path.name} was built for ({list(limit)}); "
                                "rebuild the engine with a larger profile or use --fixed-size")
        self._free_buffers()
        with self.cuda.active():
            if any(d < 0 for d in self.inputs[0].shape) and not self.io.set_input_shape(self.context, name, shape):
                raise EdgeirstError(f"TensorRT rejected input shape {list(shape)} for {self.path.name}")
            self._in = self.cuda.buffer(shape, np.float32, self.zero_copy)
            for t in self.outputs:
                oshape = self.io.context_shape(self.context, t.name)
                self._out[t.name] = self.cuda.buffer(oshape, t.dtype, self.zero_copy)
        return self._in.host

    def _free_buffers(self) -> None:
        for buf in self._out.values():
            buf.free()
        self._out = {}
        if self._in is not None:
            self._in.free()
            self._in = None

    # -- inference ------------------------------------------------------------------------------
    def _infer_impl(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        host = self.input_buffer(batch.shape)
        if batch is not host and batch.ctypes.data != host.ctypes.data:
            np.copyto(host, batch)  # a caller's own array; the pipeline writes into `host` directly
        with self.cuda.active():  # each phase synchronised, so copies and compute are timed apart
            t0 = time.perf_counter()
            self._in.to_device()
            self.cuda.synchronize()
            t1 = time.perf_counter()
            addresses = {self.inputs[0].name: self._in.device_ptr}
            addresses.update({n: b.device_ptr for n, b in self._out.items()})
            if not self.io.execute(self.context, addresses, self.cuda.stream_handle):
                raise RuntimeError(f"TensorRT execution failed for {self.path.name}")
            self.cuda.synchronize()
            t2 = time.perf_counter()
            for n in self.meta.outputs:
                self._out[n].to_host()
            self.cuda.synchronize()
            self.last_timing = {"h2d": t1 - t0, "compute": t2 - t1, "d2h": time.perf_counter() - t2}
        return {n: self._out[n].host.astype(np.float32, copy=True) for n in self.meta.outputs}

    def close(self) -> None:
        """Teardown in dependency order: buffers, execution context, engine, runtime, then CUDA."""
        if self.cuda is not None and not self.cuda._closed:
            with self.cuda.active():
                self._free_buffers()
                self.context = None
                self.engine = None
                self._runtime = None
            self.cuda.close()
        super().close()
