"""CUDA memory for the TensorRT backend, on pycuda or on NVIDIA's cuda-python (``cuda.bindings``).

Resources are objects that own and free themselves (the TensorRT samples' ``HostDeviceMem``
idea, with a lifetime): ``CudaDevice`` holds the (primary) context and a stream;
``HostDeviceBuffer`` holds a page-locked host array plus device memory, or, with
``mapped=True`` (integrated GPUs such as Jetson, where host and device share DRAM), one
zero-copy allocation the GPU reads directly. Every cuda-python status is checked; pycuda
raises on its own. Teardown order: buffers, then the TensorRT objects, then the stream and the
context (``CudaDevice.close``), all while the context is current.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Iterator

import numpy as np

from edgeirst.errors import EdgeirstError, missing_extra


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


def available_apis() -> list[str]:
    out = []
    for name, probe in (("pycuda", lambda: __import__("pycuda.driver")), ("cuda-python", _import_cudart)):
        try:
            probe()
            out.append(name)
        except ImportError:
            pass
    return out


class CudaDevice:
    """One GPU: its context (made current by ``active()``) and a stream. ``api`` is
    ``pycuda``, ``cuda-python`` or ``auto``."""

    def __init__(self, device_id: int = 0, api: str = "auto") -> None:
        apis = available_apis()
        if api == "auto":
            if not apis:
                raise missing_extra("pycuda", "jetson")
            api = apis[0]
        elif api not in apis:
            raise missing_extra("pycuda", "jetson") if api == "pycuda" else \
                EdgeirstError("cuda-python is not installed; install it with: pip install cuda-python")
        self.api = api
        self.device_id = device_id
        self._closed = False
        if api == "pycuda":
            import pycuda.driver as cuda

            self._cuda = cuda
            cuda.init()
            if device_id >= cuda.Device.count():
                raise EdgeirstError(f"CUDA device {device_id} does not exist ({cuda.Device.count()} found)")
            self._dev = cuda.Device(device_id)
            self._ctx = self._dev.retain_primary_context()
            self._ctx.push()
            try:
                self.stream = cuda.Stream()
            finally:
                self._ctx.pop()
            self.stream_handle = self.stream.handle
            attrs = self._dev.get_attributes()
            self.name = self._dev.name()
            self.compute_capability = self._dev.compute_capability()
            self.integrated = bool(attrs.get(cuda.device_attribute.INTEGRATED, 0))
        else:
            self._rt = cudart = _import_cudart()
            count = self.check(cudart.cudaGetDeviceCount())
            if device_id >= count:
                raise EdgeirstError(f"CUDA device {device_id} does not exist ({count} found)")
            self.check(cudart.cudaSetDevice(device_id))
            props = self.check(cudart.cudaGetDeviceProperties(device_id))
            self.name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
            self.compute_capability = (props.major, props.minor)
            self.integrated = bool(props.integrated)
            self.stream = self.check(cudart.cudaStreamCreate())
            self.stream_handle = int(self.stream)

    # -- status checking (cuda-python returns (status, *values)) --------------------------------
    def check(self, result):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self._rt.cudaGetErrorString(err)
            raise RuntimeError(f"CUDA error {int(err)}: {text.decode() if isinstance(text, bytes) else text}")
        return values[0] if len(values) == 1 else (tuple(values) if values else None)

    @contextlib.contextmanager
    def active(self) -> Iterator["CudaDevice"]:
        """Make this device's context current in the calling thread for the block."""
        if self._closed:
            raise RuntimeError("CUDA device is closed")
        if self.api == "pycuda":
            self._ctx.push()
            try:
                yield self
            finally:
                self._ctx.pop()
        else:
            self.check(self._rt.cudaSetDevice(self.device_id))
            yield self

    def synchronize(self) -> None:
        if self.api == "pycuda":
            self.stream.synchronize()
        else:
            self.check(self._rt.cudaStreamSynchronize(self.stream))

    def buffer(self, shape: tuple[int, ...], dtype, mapped: bool = False) -> "HostDeviceBuffer":
        return HostDeviceBuffer(self, shape, dtype, mapped)

    def close(self) -> None:
        """Free the stream and release the context; buffers must be freed before."""
        if self._closed:
            return
        if self.api == "pycuda":
            self._ctx.push()
            try:
                self.stream = None
            finally:
                self._ctx.pop()
            self._ctx.detach()
        else:
            self.check(self._rt.cudaStreamDestroy(self.stream))
        self._closed = True


class HostDeviceBuffer:
    """A page-locked host array (``.host``, a numpy view) and its device twin (``.device_ptr``).

    With ``mapped`` the host memory is mapped into the GPU's address space (zero copy), so
    ``to_device``/``to_host`` only order the stream; otherwise they are async copies."""

    def __init__(self, dev: CudaDevice, shape: tuple[int, ...], dtype, mapped: bool = False) -> None:
        self.dev = dev
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.mapped = mapped
        self._dev_alloc = None
        self._host_ptr = None
        if dev.api == "pycuda":
            cuda = dev._cuda
            with dev.active():
                flags = cuda.host_alloc_flags.DEVICEMAP if mapped else 0
                self.host = cuda.pagelocked_empty(self.shape, self.dtype, mem_flags=flags)
                if mapped:
                    self.device_ptr = int(self.host.base.get_device_pointer())
                else:
                    self._dev_alloc = cuda.mem_alloc(max(1, self.nbytes))
                    self.device_ptr = int(self._dev_alloc)
        else:
            rt = dev._rt
            flags = rt.cudaHostAllocMapped if mapped else rt.cudaHostAllocDefault
            self._host_ptr = dev.check(rt.cudaHostAlloc(max(1, self.nbytes), flags))
            raw = (ctypes.c_byte * max(1, self.nbytes)).from_address(int(self._host_ptr))
            self.host = np.frombuffer(raw, self.dtype, count=int(np.prod(self.shape))).reshape(self.shape)
            if mapped:
                self.device_ptr = int(dev.check(rt.cudaHostGetDevicePointer(self._host_ptr, 0)))
            else:
                self._dev_alloc = dev.check(rt.cudaMalloc(max(1, self.nbytes)))
                self.device_ptr = int(self._dev_alloc)

    def to_device(self) -> None:
        if self.mapped:
            return
        d = self.dev
        if d.api == "pycuda":
            d._cuda.memcpy_htod_async(self.device_ptr, self.host, d.stream)
        else:
            d.check(d._rt.cudaMemcpyAsync(self.device_ptr, self.host.ctypes.data, self.nbytes,
                                          d._rt.cudaMemcpyKind.cudaMemcpyHostToDevice, d.stream))

    def to_host(self) -> None:
        if self.mapped:
            return
        d = self.dev
        if d.api == "pycuda":
            d._cuda.memcpy_dtoh_async(self.host, self.device_ptr, d.stream)
        else:
            d.check(d._rt.cudaMemcpyAsync(self.host.ctypes.data, self.device_ptr, self.nbytes,
                                          d._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, d.stream))

    def free(self) -> None:
        """Release device then host memory (idempotent). The numpy view is dropped first."""
        d = self.dev
        host, self.host = getattr(self, "host", None), None
        if d.api == "pycuda":
            with d.active():
                if self._dev_alloc is not None:
                    self._dev_alloc.free()
                if host is not None and host.base is not None:
                    host.base.free()
        else:
            if self._dev_alloc is not None:
                d.check(d._rt.cudaFree(self._dev_alloc))
            if self._host_ptr is not None:
                del host
                d.check(d._rt.cudaFreeHost(self._host_ptr))
        self._dev_alloc = self._host_ptr = None

    def __del__(self) -> None:  # last resort; the backend frees explicitly, in order
        if getattr(self, "_dev_alloc", None) is not None or getattr(self, "_host_ptr", None) is not None:
            if not getattr(self.dev, "_closed", True):
                self.free()
