"""Host pre-flight: will this model, at this precision and input size, run on that profile?

Checks, in the order a field engineer would hit them: the precision is supported there (INT8
on a Nano or TX2 falls back to FP16 with a warning), INT8 has what the target's TensorRT needs
(``trt_policy.int8_form``: a QDQ model for TensorRT >= 8.6, a calibration cache for older
ones, both from calibration images), the input size is valid for the model, the DLA core and power mode exist, and the
model fits the module's memory.

The memory figure is an estimate, not a measurement: ``RUNTIME_FLOOR_MB`` for the CUDA context
and TensorRT/cuDNN libraries (an assumption, not measured here: no Jetson on this machine), the
weights twice (ONNX parse and engine), the two largest activation tensors at the target input
size (ONNX shape inference) in the precision's bytes, and the input frames. The usable memory is
the module's total minus ``OS_RESERVE_MB`` for Ubuntu and JetPack's services. A model whose
estimate exceeds it is refused; above 75% is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeirst.errors import EdgeirstError
from edgeirst.jetson.profiles import DeviceProfile, JetPackRelease
from edgeirst.meta import ModelMeta
from edgeirst.quantize.qdq_check import has_qdq
from edgeirst.runtime.engine_build import default_max_hw
from edgeirst.runtime.trt_policy import int8_form

RUNTIME_FLOOR_MB = 500  # CUDA context + TensorRT/cuDNN libraries (assumed; JetPack 6 lazy loading is lower)
OS_RESERVE_MB = 1024  # headless Ubuntu + JetPack services
ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "int8": 2}  # INT8 engines keep FP16 layers: count 2 bytes


@dataclass
class PreflightResult:
    precision: str  # what the engine will use
    input_size: tuple[int, int]
    needs_qdq: bool  # some targeted TensorRT takes the QDQ INT8 model
    needs_cache: bool  # some targeted TensorRT (< 8.6) takes float model + calibration cache
    memory_estimate_mb: int | None
    usable_memory_mb: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"precision": self.precision, "input_size": list(self.input_size), "needs_qdq": self.needs_qdq,
                "needs_cache": self.needs_cache, "memory_estimate_mb": self.memory_estimate_mb,
                "usable_memory_mb": self.usable_memory_mb, "warnings": list(self.warnings)}


def is_qdq(onnx_path: Path) -> bool:
    """The model is already quantized (QuantizeLinear/DequantizeLinear nodes). Whether TensorRT
    takes its layout is ``edgeirst.quantize.qdq_check``'s to say."""
    try:
        import onnx  # noqa: F401 - has_qdq reads the graph with it
    except ImportError:  # a core install: op types are plain strings inside the protobuf
        return b"QuantizeLinear" in Path(onnx_path).read_bytes()
    return has_qdq(onnx_path)


def int8_forms(releases: list[JetPackRelease]) -> tuple[bool, bool]:
    """(some release builds INT8 from a QDQ model, some from a calibration cache): ``trt_policy.int8_form``."""
    forms = {int8_form(r.tensorrt) for r in releases}
    return "qdq" in forms, "cache" in forms


def resolve_precision(profile: DeviceProfile, requested: str) -> tuple[str, list[str]]:
    """(precision the engine will use, warnings)."""
    if requested == "int8" and not profile.int8:
        return ("fp16" if profile.fp16 else "fp32"), [
            f"{profile.module} (compute capability {profile.compute_capability[0]}.{profile.compute_capability[1]}) "
            "has no INT8 tensor cores or DP4A: TensorRT would run INT8 slower than FP16; building FP16 instead"]
    if requested == "fp16" and not profile.fp16:
        return "fp32", [f"{profile.module} has no fast FP16: building FP32"]
    return requested, []


def check_input_size(meta: ModelMeta, size: tuple[int, int] | None) -> tuple[int, int]:
    """The largest frame (H, W) the engine is built for; None picks the builder's default."""
    if size is None:
        if not meta.dynamic:
            return tuple(meta.input_size)
        size = default_max_hw(meta)
    h, w = (int(v) for v in size)
    d = meta.size_divisor
    if h < d or w < d or h % d or w % d:
        raise EdgeirstError(f"input size {h}x{w} is not valid for {meta.name}: both sides must be positive multiples "
                            f"of {d} (e.g. {max(d, -(-h // d) * d)}x{max(d, -(-w // d) * d)})")
    if not meta.dynamic and (h, w) != tuple(meta.input_size):
        raise EdgeirstError(f"{meta.name} was exported with a fixed input of {meta.input_size[0]}x{meta.input_size[1]}; "
                            f"--input-size {w}x{h} needs a dynamic export (edgeirst export without --static)")
    return h, w


def activation_sizes(onnx_path: Path, in_chans: int, size: tuple[int, int]) -> list[int] | None:
    """Element counts of the model's tensors at input (1, C, H, W), by ONNX shape inference;
    None without the onnx package or when shapes stay unknown."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, in_chans, *size)):
        d.ClearField("dim_param")
        d.dim_value = v
    del model.graph.value_info[:]
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference is best effort: fall back to weights only
        return None
    counts = []
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        ds = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
        if ds and all(ds):
            n = 1
            for v in ds:
                n *= v
            counts.append(n)
    return counts or None


def estimate_memory_mb(onnx_path: Path, meta: ModelMeta, size: tuple[int, int], precision: str) -> tuple[int, bool]:
    """(estimated MiB at run time, whether activations were counted)."""
    weights = Path(onnx_path).stat().st_size
    acts = activation_sizes(onnx_path, meta.in_chans, size)
    act_bytes = sum(sorted(acts, reverse=True)[:2]) * ACTIVATION_BYTES[precision] if acts else 0
    frames = 2 * size[0] * size[1] * 3 * 4  # a camera frame and the float input buffer
    return int(RUNTIME_FLOOR_MB + (2 * weights + act_bytes + frames) / 2**20), acts is not None


def run_preflight(profile: DeviceProfile, releases: list[JetPackRelease], meta: ModelMeta, onnx_path: Path,
                  precision: str, input_size: tuple[int, int] | None = None, dla_core: int | None = None,
                  power_mode: str = "", workspace_mb: int = 1024) -> PreflightResult:
    """All host checks; user errors raise EdgeirstError, soft problems become warnings."""
    effective, warnings = resolve_precision(profile, precision)
    size = check_input_size(meta, input_size)
    needs_qdq, needs_cache = (int8_forms(releases) if effective == "int8" else (False, False))
    if dla_core is not None and dla_core >= 0:
        if profile.dla_cores == 0:
            raise EdgeirstError(f"{profile.module} has no DLA; drop --dla-core")
        if dla_core >= profile.dla_cores:
            raise EdgeirstError(f"--dla-core {dla_core}: {profile.module} has {profile.dla_cores} DLA core(s) "
                                f"(0..{profile.dla_cores - 1})")
        if effective == "fp32":
            raise EdgeirstError("the DLA runs FP16 or INT8 only; use --precision fp16 or int8 with --dla-core")
    if power_mode:
        names = profile.power_mode_names()
        if names and power_mode.upper() not in names:
            raise EdgeirstError(f"power mode {power_mode!r} is not one of {profile.module}'s nvpmodel modes: "
                                f"{', '.join(names)}")
    usable = profile.memory_mb - OS_RESERVE_MB
    estimate, counted = estimate_memory_mb(onnx_path, meta, size, effective)
    if not counted:
        warnings.append("activation memory not estimated (install onnx on this host for the full memory check)")
    if estimate > usable:
        raise EdgeirstError(f"{meta.name} at {size[0]}x{size[1]} ({effective}) needs about {estimate} MiB, more than the "
                            f"{usable} MiB usable on {profile.module} ({profile.memory_mb} MiB less {OS_RESERVE_MB} "
                            "for the system); use a smaller --input-size, a lighter model or a larger module")
    if estimate > 0.75 * usable:
        warnings.append(f"{meta.name} at {size[0]}x{size[1]} needs about {estimate} MiB of the {usable} MiB usable "
                        f"on {profile.module}: little headroom")
    if estimate + workspace_mb > usable:
        warnings.append(f"the engine build may also use up to --workspace-mb {workspace_mb} MiB: lower it if the "
                        "build runs out of memory on the device")
    return PreflightResult(effective, size, needs_qdq, needs_cache, estimate, usable, warnings)
