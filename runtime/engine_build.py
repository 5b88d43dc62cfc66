"""Build TensorRT engines from ONNX: FP16, INT8 (explicit from QDQ graphs; implicit from a
calibration cache on TensorRT 8.x), DLA with GPU fallback, a workspace limit, an optimisation
profile for dynamic inputs. The result is a plain serialized plan plus the ``<engine>.json``
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

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ONNX_KEY, ModelMeta


@dataclass
class BuildOptions:
    fp16: bool = False
    int8: bool = False
    calibration_cache: str | None = None
    dla_core: int | None = None
    workspace_mb: int = 1024
    max_batch: int = 1
    max_hw: tuple[int, int] | None = None  # largest input for dynamic models (default: 1088x1920 or input_size)


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
        from edgeirst.runtime.backends.onnxruntime import no_metadata_error

        raise no_metadata_error(path)
    return ModelMeta.from_json(props[ONNX_KEY])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def cache_key(onnx_path: Path, opts: BuildOptions) -> str:
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    if opts.calibration_cache:
        h.update(Path(opts.calibration_cache).read_bytes())
    h.update(json.dumps(asdict(opts), sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def cache_dir(trt_version: str, device: str, compute_capability: tuple[int, int], root: str | None = None) -> Path:
    base = Path(root or os.environ.get("EDGEIRST_CACHE") or Path.home() / ".cache" / "edgeirst") / "engines"
    return base / f"trt-{_slug(trt_version)}" / f"{_slug(device)}-sm{compute_capability[0]}{compute_capability[1]}"


def _profile_shapes(shape: tuple[int, ...], meta: ModelMeta, opts: BuildOptions):
    d = meta.size_divisor
    th, tw = meta.input_size
    mh, mw = opts.max_hw or (max(th, 1088), max(tw, 1920))
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
    return tuple(lo), tuple(opt), tuple(hi)


def engine_from_onnx(onnx_path: Path, engine_path: Path, opts: BuildOptions | None = None,
                     meta: ModelMeta | None = None, device_id: int = 0) -> Path:
    """Build ``engine_path`` (plan) and ``engine_path.json`` (metadata + build info) from ONNX."""
    from edgeirst.runtime.backends.tensorrt import import_tensorrt, sidecar_path
    from edgeirst.runtime.cuda import CudaDevice

    trt = import_tensorrt()
    opts = opts or BuildOptions()
    meta = meta or read_onnx_meta(onnx_path)
    dev = CudaDevice(device_id)
    try:
        with dev.active():
            logger = trt.Logger(trt.Logger.WARNING)
            builder = trt.Builder(logger)
            major = int(trt.__version__.split(".")[0])
            flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
            network = builder.create_network(flags)
            parser = trt.OnnxParser(network, logger)
            if not parser.parse_from_file(str(onnx_path)):
                errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise EdgeirstError(f"TensorRT cannot parse {onnx_path}: {errs[:400]}")
            config = builder.create_builder_config()
            if hasattr(config, "set_memory_pool_limit"):
                config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mb) << 20)
            else:  # TensorRT < 8.4
                config.max_workspace_size = int(opts.workspace_mb) << 20
            fp16 = opts.fp16 or opts.dla_core is not None and not opts.int8  # DLA runs FP16 or INT8 only
            if fp16:
                if not builder.platform_has_fast_fp16:
                    raise EdgeirstError(f"{dev.name} has no fast FP16; build without --fp16")
                config.set_flag(trt.BuilderFlag.FP16)
            if opts.int8:
                config.set_flag(trt.BuilderFlag.INT8)  # a QDQ graph quantizes explicitly
                if opts.calibration_cache:
                    if major >= 10:
                        raise EdgeirstError("calibration caches are TensorRT 8.x only; on TensorRT 10 quantize the "
                                            "ONNX model to QDQ (edgeirst quantize) and build with --int8")
                    config.int8_calibrator = _cache_calibrator(trt, Path(opts.calibration_cache))
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
                profile.set_shape(inp.name, *_profile_shapes(shape, meta, opts))
                config.add_optimization_profile(profile)
            plan = builder.build_serialized_network(network, config)
            if plan is None:
                raise EdgeirstError(f"TensorRT failed to build an engine from {onnx_path} (see the messages above)")
        engine_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = engine_path.with_name(engine_path.name + ".tmp")
        tmp.write_bytes(bytes(plan))
        info = {"tensorrt": trt.__version__, "device": dev.name, "compute_capability": list(dev.compute_capability),
                "onnx": str(onnx_path), "options": asdict(opts)}
        sidecar_path(engine_path).write_text(json.dumps({**meta.to_dict(), "engine": info}, sort_keys=True, default=str))
        os.replace(tmp, engine_path)  # the plan appears last: a cache hit always has its sidecar
    finally:
        dev.close()
    return engine_path


def _cache_calibrator(trt, cache: Path):
    """An INT8 calibrator that only replays an existing calibration cache (TensorRT 8.x)."""
    data = cache.read_bytes()

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None  # no data: everything comes from the cache

        def read_calibration_cache(self):
            return data

        def write_calibration_cache(self, cache_bytes):
            return None

    return CacheCalibrator()


def cached_engine(onnx_path: Path, cache_dir_root: str | None = None, device_id: int = 0,
                  meta: ModelMeta | None = None, **options) -> Path:
    """The engine for ``onnx_path`` built with ``options`` on this GPU and TensorRT version,
    from the cache, or built now and cached. ``meta`` saves reading the ONNX metadata (a Jetson
    with TensorRT may have neither onnx nor onnxruntime)."""
    from edgeirst.runtime.backends.tensorrt import import_tensorrt
    from edgeirst.runtime.cuda import CudaDevice

    root = options.pop("cache_dir", None) or cache_dir_root
    known = set(BuildOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise EdgeirstError(f"unknown TensorRT build option(s) {unknown}; known: {sorted(known)}")
    opts = BuildOptions(**options)
    trt = import_tensorrt()
    meta = meta or read_onnx_meta(onnx_path)
    dev = CudaDevice(device_id)
    try:
        folder = cache_dir(trt.__version__, dev.name, dev.compute_capability, root)
    finally:
        dev.close()
    engine = folder / f"{Path(onnx_path).stem}-{cache_key(onnx_path, opts)}.engine"
    if engine.is_file():
        return engine
    return engine_from_onnx(Path(onnx_path), engine, opts, meta, device_id)
