"""CUDA memory for the TensorRT backend, on pycuda, on NVIDIA's cuda-python (``cuda.bindings``),
or, where neither is installed (a bare JetPack), on JetPack's own ``libcudart`` through ctypes
(as Polygraphy does): ``LibCudart`` answers the calls used here in cuda-python's form.

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


# libcudart's names, newest first: JetPack 5 (CUDA 11.4), 6 (12.2, 12.6), 7 (13.0); the CUDA default path last.
CUDART_NAMES = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                "/usr/local/cuda/lib64/libcudart.so")


# Every CUDA runtime name used below, on cuda-python's module or LibCudart (tests check both have them).
CUDART_CALLS = ("cudaGetDeviceCount", "cudaSetDevice", "cudaGetDeviceProperties", "cudaStreamCreate",
                "cudaStreamSynchronize", "cudaStreamDestroy", "cudaHostAlloc", "cudaHostAllocDefault",
                "cudaHostAllocMapped", "cudaHostGetDevicePointer", "cudaMalloc", "cudaFree", "cudaFreeHost",
                "cudaMemcpyAsync", "cudaMemcpyKind.cudaMemcpyHostToDevice", "cudaMemcpyKind.cudaMemcpyDeviceToHost",
                "cudaGetErrorString")


class LibCudart:
    """The CUDA runtime calls edgeirst makes, on ``libcudart`` through ctypes, in cuda-python's form:
    each returns ``(status, *values)``. Device properties come from ``cudaDeviceGetAttribute``
    and the name from the first 256 bytes of ``cudaDeviceProp`` (its one layout-stable field)."""

    cudaHostAllocDefault, cudaHostAllocMapped = 0, 2

    class cudaMemcpyKind:  # noqa: N801 - cuda-python's name
        cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost = 1, 2

    _ATTR = {"integrated": 18, "major": 75, "minor": 76}  # cudaDevAttrIntegrated, ComputeCapabilityMajor/Minor

    def __init__(self, names: tuple | None = None) -> None:
        self.lib, tried = None, []
        for name in names or CUDART_NAMES:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError as e:
                tried.append(f"{name} ({str(e).split(':')[-1].strip()})")
        if self.lib is None:
            raise ImportError("the CUDA runtime library is not found: " + ", ".join(tried))
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _call(self, fn: str, *args):
        return (getattr(self.lib, fn)(*args),)

    def _out(self, fn: str, ctype, *args):
        value = ctype()
        err = getattr(self.lib, fn)(ctypes.byref(value), *args)
        return err, value.value if value.value is not None else 0

    def cudaGetErrorString(self, err):
        return 0, self.lib.cudaGetErrorString(int(err))

    def cudaGetDeviceCount(self):
        return self._out("cudaGetDeviceCount", ctypes.c_int)

    def cudaSetDevice(self, device: int):
        return self._call("cudaSetDevice", int(device))

    def cudaGetDeviceProperties(self, device: int):
        class Props:
            pass

        props = Props()
        for key, attr in self._ATTR.items():
            err, value = self._out("cudaDeviceGetAttribute", ctypes.c_int, attr, int(device))
            if err:
                return err, None
            setattr(props, key, value)
        raw = ctypes.create_string_buffer(8192)  # larger than any CUDA release's cudaDeviceProp
        fn = getattr(self.lib, "cudaGetDeviceProperties_v2", None) or self.lib.cudaGetDeviceProperties
        err = fn(raw, int(device))
        props.name = raw.raw[:256].split(b"\0", 1)[0]
        return err, props

    def cudaStreamCreate(self):
        return self._out("cudaStreamCreate", ctypes.c_void_p)

    def cudaStreamSynchronize(self, stream):
        return self._call("cudaStreamSynchronize", ctypes.c_void_p(int(stream)))

    def cudaStreamDestroy(self, stream):
        return self._call("cudaStreamDestroy", ctypes.c_void_p(int(stream)))

    def cudaHostAlloc(self, size: int, flags: int):
        return self._out("cudaHostAlloc", ctypes.c_void_p, ctypes.c_size_t(size), ctypes.c_uint(flags))

    def cudaHostGetDevicePointer(self, host, flags: int):
        return self._out("cudaHostGetDevicePointer", ctypes.c_void_p, ctypes.c_void_p(int(host)), ctypes.c_uint(flags))

    def cudaMalloc(self, size: int):
        return self._out("cudaMalloc", ctypes.c_void_p, ctypes.c_size_t(size))

    def cudaFree(self, ptr):
        return self._call("cudaFree", ctypes.c_void_p(int(ptr)))

    def cudaFreeHost(self, ptr):
        return self._call("cudaFreeHost", ctypes.c_void_p(int(ptr)))

    def cudaMemcpyAsync(self, dst, src, size: int, kind: int, stream):
        return self._call("cudaMemcpyAsync", ctypes.c_void_p(int(dst)), ctypes.c_void_p(int(src)),
                          ctypes.c_size_t(size), ctypes.c_int(int(kind)), ctypes.c_void_p(int(stream)))


def _import_cudart(api: str = "cuda-python"):
    """cuda-python's runtime module, or with ``api="libcudart"`` the ctypes binding."""
    if api == "libcudart":
        return LibCudart()
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


def available_apis() -> list[str]:
    """The CUDA bindings that import here, in the order ``auto`` tries them."""
    out = []
    for name, probe in (("pycuda", lambda: __import__("pycuda.driver")), ("cuda-python", _import_cudart),
                        ("libcudart", lambda: _import_cudart("libcudart"))):
        try:
            probe()
            out.append(name)
        except ImportError:
            pass
    return out


class CudaDevice:
    """One GPU: its context (made current by ``active()``) and a stream. ``api`` is
    ``pycuda``, ``cuda-python``, ``libcudart`` or ``auto`` (the first of those that imports)."""

    def __init__(self, device_id: int = 0, api: str = "auto") -> None:
        apis = available_apis()
        if api == "auto":
            if not apis:
                raise missing_extra("pycuda", "jetson")
            api = apis[0]
        elif api not in apis:
            raise missing_extra("pycuda", "jetson") if api == "pycuda" else \
                EdgeirstError("cuda-python is not installed; install it with: pip install cuda-python") \
                if api == "cuda-python" else EdgeirstError("libcudart (the CUDA runtime) is not found on this machine")
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
            self._rt = cudart = _import_cudart(api)
            err, count = cudart.cudaGetDeviceCount()
            if int(err) != 0:  # no driver, no GPU: a user's machine, not a bug
                raise EdgeirstError(f"no usable CUDA GPU here ({api}): {self._error_text(err)}")
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
            raise RuntimeError(f"CUDA error {int(err)}: {self._error_text(err)}")
        return values[0] if len(values) == 1 else (tuple(values) if values else None)

    def _error_text(self, err) -> str:
        _, text = self._rt.cudaGetErrorString(err)
        return text.decode(errors="replace") if isinstance(text, bytes) else str(text)

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


def round_trip(dev: CudaDevice, mapped: bool = False, shape: tuple[int, ...] = (3, 480, 640)) -> bool:
    """Random float32 data up to ``dev`` and back through one ``HostDeviceBuffer``, the host copy
    poisoned (NaN) in between unless ``mapped`` (one allocation then): True when it comes back
    bit-exact. The memory path the TensorRT backend runs each frame through."""
    want = np.random.default_rng().standard_normal(shape).astype(np.float32)
    with dev.active():
        buf = dev.buffer(shape, np.float32, mapped=mapped)
        try:
            buf.host[...] = want
            buf.to_device()
            dev.synchronize()
            if not mapped:
                buf.host[...] = np.nan
            buf.to_host()
            dev.synchronize()
            return bool(np.array_equal(buf.host, want))
        finally:
            buf.free()

