"""Build TensorRT engines from ONNX: FP16, INT8 (explicit from QDQ graphs; implicit on TensorRT
8.x from a calibration cache, or calibrated here from images with an ``IInt8EntropyCalibrator2``
that also writes the cache), DLA with GPU fallback, a workspace limit, an optimisation
profile for dynamic inputs. Calls are picked by ``edgeirst.runtime.trt_api``: strongly typed
networks on TensorRT >= 10 where the model carries its precision, the FP16/INT8 builder flags
only where the release has them (never on 11). Needs a GPU and the full ``tensorrt`` package:
its tests are marked ``trt``. The result is a plain serialized plan plus the ``<engine>.json``
metadata sidecar, cached per ONNX content, build options, GPU and TensorRT version (a plan
only runs on the TensorRT version and GPU that built it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.io import ENGINE, publish, write_text
from edgeirst.meta import ONNX_KEY, ModelMeta
from edgeirst.runtime.backends.onnxruntime import no_metadata_error
from edgeirst.runtime.backends.tensorrt import import_tensorrt, sidecar_path
from edgeirst.runtime.calibration import calibration_inputs, retarget_cache
from edgeirst.runtime.cuda import CudaDevice
from edgeirst.runtime.trt_policy import needs_static_shapes
from edgeirst.runtime.trt_api import api_for


BUILDERS = ("edgeirst", "trtexec")
# The largest frame (H, W) a dynamic model's engine takes unless told otherwise: 1080p rounded up
# to a multiple of 32. The one home of this default (deploy's pre-flight and the bundle read it).
DEFAULT_MAX_HW = (1088, 1920)


@dataclass
class BuildOptions:
    """How a TensorRT engine is built, passed whole from the CLI (``run``, ``deploy``) and the
    bundle's ``[engine]`` table to ``cached_engine``. ``builder``: edgeirst's (the TensorRT Python
    API, here) or NVIDIA's ``trtexec`` (the launcher runs it); ``cache_dir``: where engines are
    cached (None = ``$EDGEIRST_CACHE`` or ``~/.cache/edgeirst``), not part of an engine's key."""

    fp16: bool = False
    int8: bool = False
    calibration_cache: str | None = None  # TensorRT 8.x: replayed when it exists, written after calibrating
    calibration_data: str | None = None  # SIRST-style dataset to calibrate from (TensorRT 8.x, no cache yet)
    calibration_split: str = "train"
    calibration_images: int = 64
    dla_core: int | None = None
    workspace_mb: int = 1024
    max_batch: int = 1
    max_hw: tuple[int, int] | None = None  # largest input for dynamic models (default: DEFAULT_MAX_HW or input_size)
    builder: str = "edgeirst"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise EdgeirstError(f"engine builder must be one of {', '.join(BUILDERS)}, got {self.builder!r}")

    def engine_only(self) -> list[str]:
        """The choices set here that only a TensorRT engine build can honour."""
        default = BuildOptions()
        return [k for k in ("int8", "calibration_cache", "calibration_data", "dla_core")
                if getattr(self, k) != getattr(default, k)]


def read_onnx_meta(path: Path) -> ModelMeta:
    """The edgeirst metadata of an ONNX file, with onnx if installed, else onnxruntime."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        from edgeirst.runtime.backends.onnxruntime import OnnxRuntimeBackend

        with OnnxRuntimeBackend(path, providers="cpu").load() as be:
            return be.meta
    try:
        m = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError) as e:
        raise EdgeirstError(f"{path} is not a loadable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    props = {p.key: p.value for p in m.metadata_props}
    if ONNX_KEY not in props:
        raise no_metadata_error(path)
    return ModelMeta.from_json(props[ONNX_KEY])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def cache_key(onnx_path: Path, opts: BuildOptions) -> str:
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    if opts.calibration_cache and Path(opts.calibration_cache).is_file():
        h.update(Path(opts.calibration_cache).read_bytes())
    key = asdict(opts)
    del key["cache_dir"]
    h.update(json.dumps(key, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def cache_dir(trt_version: str, device: str, compute_capability: tuple[int, int], root: str | None = None) -> Path:
    base = Path(root or os.environ.get("EDGEIRST_CACHE") or Path.home() / ".cache" / "edgeirst") / "engines"
    return base / f"trt-{_slug(trt_version)}" / f"{_slug(device)}-sm{compute_capability[0]}{compute_capability[1]}"


def default_max_hw(meta: ModelMeta) -> tuple[int, int]:
    """The largest frame a dynamic model's engine takes when not told: its input size, at least DEFAULT_MAX_HW."""
    h, w = meta.input_size
    return max(h, DEFAULT_MAX_HW[0]), max(w, DEFAULT_MAX_HW[1])


def _profile_shapes(shape: tuple[int, ...], meta: ModelMeta, opts: BuildOptions):
    d = meta.size_divisor
    th, tw = meta.input_size
    mh, mw = opts.max_hw or default_max_hw(meta)
    lo, opt, hi = [], [], []
    for axis, dim in enumerate(shape):
        if dim >= 0:
            lo.append(dim), opt.append(dim), hi.append(dim)
        elif axis == 0:
            lo.append(1), opt.append(opts.max_batch), hi.append(opts.max_batch)
        elif axis == 1:
            lo.append(meta.in_chans), opt.append(meta.in_chans), hi.append(meta.in_chans)
        else:
            size, top = (th, mh) if axis == 2 else (tw, mw)
            lo.append(d), opt.append(size), hi.append(-(-top // d) * d)
    if needs_static_shapes(opts.dla_core):  # the DLA takes one shape: the largest
        return tuple(hi), tuple(hi), tuple(hi)
    return tuple(lo), tuple(opt), tuple(hi)


def engine_from_onnx(onnx_path: Path, engine_path: Path, opts: BuildOptions | None = None,
                     meta: ModelMeta | None = None, device_id: int = 0) -> Path:
    """Build ``engine_path`` (plan) and ``engine_path.json`` (metadata + build info) from ONNX."""

    trt = import_tensorrt()
    opts = opts or BuildOptions()
    meta = meta or read_onnx_meta(onnx_path)
    dev = CudaDevice(device_id)
    try:
        with dev.active():
            logger = trt.Logger(trt.Logger.WARNING)
            builder = trt.Builder(logger)
            api = api_for(trt.__version__)  # import_tensorrt refused releases without a row
            fp16 = opts.fp16 or opts.dla_core is not None and not opts.int8  # DLA runs FP16 or INT8 only
            calibrated = opts.int8 and bool(opts.calibration_cache or opts.calibration_data)
            # strongly typed where the precision is the model's own: fp32, or a QDQ model without FP16
            typed_by_model = not fp16 and not calibrated
            if not api.weak_typing and (fp16 or calibrated):
                raise EdgeirstError(f"TensorRT {trt.__version__} builds strongly typed networks only: the precision "
                                    "comes from the ONNX model; for FP16 build from an FP16 model (`edgeirst quantize "
                                    "MODEL --precision fp16 --out m.fp16.onnx`, then without --fp16), for INT8 from a "
                                    "QDQ model (`edgeirst quantize MODEL --target tensorrt`)")
            if calibrated and not api.calibration:
                raise EdgeirstError(f"TensorRT {trt.__version__} has no INT8 calibrators; quantize the ONNX model to "
                                    "QDQ (edgeirst quantize) and build with --int8")
            strong = api.strong(typed_by_model)  # types from the model: no precision flags
            network = builder.create_network(api.network_flags(trt, typed_by_model))
            parser = trt.OnnxParser(network, logger)
            if not parser.parse_from_file(str(onnx_path)):
                errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise EdgeirstError(f"TensorRT cannot parse {onnx_path}: {errs[:400]}")
            config = builder.create_builder_config()
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mb) << 20)
            if fp16 and not strong:
                if not builder.platform_has_fast_fp16:
                    raise EdgeirstError(f"{dev.name} has no fast FP16; build without --fp16")
                config.set_flag(trt.BuilderFlag.FP16)
            calibrator = None
            if opts.int8 and not strong:
                config.set_flag(trt.BuilderFlag.INT8)  # TensorRT 8.x needs it for QDQ graphs too
                if calibrated:
                    calibrator = _calibrator(trt, dev, network, meta, opts)
                    config.int8_calibrator = calibrator
                    if calibrator.shape is not None and any(d < 0 for d in network.get_input(0).shape):
                        calib_profile = builder.create_optimization_profile()
                        calib_profile.set_shape(network.get_input(0).name, *(calibrator.shape,) * 3)
                        config.set_calibration_profile(calib_profile)
            if opts.dla_core is not None:
                if builder.num_DLA_cores <= opts.dla_core:
                    raise EdgeirstError(f"DLA core {opts.dla_core} requested, {dev.name} has {builder.num_DLA_cores}")
                config.default_device_type = trt.DeviceType.DLA
                config.DLA_core = int(opts.dla_core)
                config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
            inp = network.get_input(0)
            shape = tuple(inp.shape)
            if any(s < 0 for s in shape):
                profile = builder.create_optimization_profile()
                lo, opt, hi = _profile_shapes(shape, meta, opts)
                profile.set_shape(inp.name, lo, opt, hi)
                if lo == hi and meta.dynamic:  # a static engine (DLA): frames are scaled to its one size
                    meta = meta.replace(dynamic=False, input_size=tuple(hi[2:]))
                config.add_optimization_profile(profile)
            try:
                plan = builder.build_serialized_network(network, config)
            finally:
                if calibrator is not None:
                    calibrator.free()
            if plan is None:
                raise EdgeirstError(f"TensorRT failed to build an engine from {onnx_path} (see the messages above)")
        engine_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = engine_path.with_name(engine_path.name + ".tmp")
        tmp.write_bytes(bytes(plan))
        info = {"tensorrt": trt.__version__, "device": dev.name, "compute_capability": list(dev.compute_capability),
                "onnx": str(onnx_path), "options": asdict(opts)}
        publish_engine(tmp, engine_path, meta, info)
    finally:
        dev.close()
    return engine_path


def publish_engine(plan: Path, engine: Path, meta: ModelMeta, info: dict) -> Path:
    """Move a freshly built ``plan`` to ``engine`` in the cache, with its metadata sidecar: the
    sidecar first, the plan last, so a cache hit always has its sidecar. The one writer of engine
    sidecars, for edgeirst's builder and trtexec's."""
    write_text(sidecar_path(engine), json.dumps({**meta.to_dict(), "engine": info}, sort_keys=True, default=str))
    publish(plan, engine, kind=ENGINE)
    return engine




def _calibration_batches(meta: ModelMeta, data: str, split: str, n: int, input_shape: tuple[int, ...]):
    """(calibration input shape, list of 1xCxHxW arrays) from real images through ``prepare``:
    dynamic models see each image at its native resolution (pad-only), placed top-left on one
    canvas the size of the largest (the extra border holds the padding value, as at inference)."""
    dynamic = any(d < 0 for d in input_shape[2:])
    arrays = calibration_inputs(data, split, n, meta, fixed=not dynamic)
    if not dynamic:
        return tuple(arrays[0].shape), arrays
    h = max(a.shape[2] for a in arrays)
    w = max(a.shape[3] for a in arrays)
    pad = [(0.0 - m) / s for m, s in zip(meta.mean if len(meta.mean) == meta.in_chans else meta.mean[:1] * meta.in_chans,
                                         meta.std if len(meta.std) == meta.in_chans else meta.std[:1] * meta.in_chans)]
    out = []
    for a in arrays:
        canvas = np.empty((1, meta.in_chans, h, w), np.float32)
        canvas[:] = np.asarray(pad, np.float32)[None, :, None, None]
        canvas[:, :, :a.shape[2], :a.shape[3]] = a
        out.append(canvas)
    return (1, meta.in_chans, h, w), out


def _calibrator(trt, dev, network, meta: ModelMeta, opts: BuildOptions):
    """An ``IInt8EntropyCalibrator2`` (TensorRT 8.x implicit INT8).

    With an existing ``opts.calibration_cache`` it replays the cache (header retargeted to this
    TensorRT); otherwise it feeds ``opts.calibration_data`` images, one per batch, through a
    page-locked host buffer and its device twin (``edgeirst.runtime.cuda``), and TensorRT's
    resulting cache is written to ``opts.calibration_cache`` so that the next build needs no images.
    """
    cache = Path(opts.calibration_cache) if opts.calibration_cache else None
    cached = cache.read_bytes() if cache is not None and cache.is_file() else None
    if cached is not None:
        cached = retarget_cache(cached, trt.__version__)
    elif not opts.calibration_data:
        raise EdgeirstError(f"calibration cache {cache} does not exist; pass calibration_data (a dataset folder) "
                            "to calibrate from images, or write the cache with `edgeirst quantize --target tensorrt`")
    shape, batches = (None, [])
    if cached is None:
        shape, batches = _calibration_batches(meta, opts.calibration_data, opts.calibration_split,
                                              opts.calibration_images, tuple(network.get_input(0).shape))

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.shape = shape
            self._next = 0
            self._buffer = dev.buffer(shape, "float32") if shape is not None else None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self._next >= len(batches):
                return None
            self._buffer.host[...] = batches[self._next]
            self._next += 1
            self._buffer.to_device()
            dev.synchronize()
            return [int(self._buffer.device_ptr)]

        def read_calibration_cache(self):
            return cached

        def write_calibration_cache(self, data) -> None:
            if cache is None or cached is not None:  # never rewrite a cache we were given
                return None
            tmp = cache.with_name(cache.name + ".tmp")
            tmp.write_bytes(bytes(data))
            publish(tmp, cache)
            return None

        def free(self) -> None:
            if self._buffer is not None:
                self._buffer.free()
                self._buffer = None

    return EntropyCalibrator()


def cached_engine(onnx_path: Path, opts: BuildOptions | None = None, device_id: int = 0,
                  meta: ModelMeta | None = None) -> Path:
    """The engine for ``onnx_path`` built with ``opts`` on this GPU and TensorRT version,
    from the cache, or built now and cached. ``meta`` saves reading the ONNX metadata (a Jetson
    with TensorRT may have neither onnx nor onnxruntime)."""

    opts = opts or BuildOptions()
    trt = import_tensorrt()
    meta = meta or read_onnx_meta(onnx_path)
    dev = CudaDevice(device_id)
    try:
        folder = cache_dir(trt.__version__, dev.name, dev.compute_capability, opts.cache_dir)
    finally:
        dev.close()
    engine = folder / f"{Path(onnx_path).stem}-{cache_key(onnx_path, opts)}.engine"
    if engine.is_file():
        return engine
    return engine_from_onnx(Path(onnx_path), engine, opts, meta, device_id)
