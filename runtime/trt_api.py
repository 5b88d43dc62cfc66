"""What each TensorRT release's Python API has, as data: the backend and the engine builder pick
their calls by this table (``api_for``), and tests check it against the releases that install
here (``tensorrt-lean`` 10.x and 11.x from PyPI). The JetPack releases cannot be installed off a
Jetson (8.5 on JetPack 5.1.x, 8.6 on 6.0, 10.3 on 6.1/6.2, 10.13 on 7.0): their rows come from
NVIDIA's Python API reference and migration guides (the named-tensor API from 8.5; strongly
typed networks from 9.x/10.0; weak typing, calibrators, ``platform_has_fast_fp16`` and
``EXPLICIT_BATCH`` removed in 11.0, where ``STRONGLY_TYPED`` stays as an ignored flag).

TensorRT < 8.5 (JetPack 4 and 5.0.2) has only the bindings API: edgeirst does not run there, and
``deploy`` refuses those releases (``MIN_JETPACK``, read by ``edgeirst.jetson.profiles``).

Device side: the standard library only, Python 3.8-clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from edgeirst.runtime.trt_versions import version_tuple

# Every name the TensorRT backend (backends/tensorrt.py) calls: the named-tensor API, 8.5 onwards.
RUNTIME = (
    "Logger", "Logger.WARNING", "Runtime", "Runtime.deserialize_cuda_engine", "nptype", "TensorIOMode.INPUT",
    "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_shape", "ICudaEngine.get_tensor_dtype", "ICudaEngine.get_tensor_profile_shape",
    "ICudaEngine.create_execution_context", "IExecutionContext.set_input_shape", "IExecutionContext.get_tensor_shape",
    "IExecutionContext.set_tensor_address", "IExecutionContext.execute_async_v3",
)
# Names the engine builder (engine_build.py) calls in every supported release. Of these the lean
# runtime has only the enums; the rest needs the full ``tensorrt`` package (a GPU machine).
BUILDER = (
    "Builder", "Builder.create_network", "Builder.create_builder_config", "Builder.create_optimization_profile",
    "Builder.build_serialized_network", "Builder.num_DLA_cores", "OnnxParser", "OnnxParser.parse_from_file",
    "OnnxParser.num_errors", "OnnxParser.get_error", "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.add_optimization_profile", "IBuilderConfig.set_flag", "IBuilderConfig.default_device_type",
    "IBuilderConfig.DLA_core", "IOptimizationProfile.set_shape", "MemoryPoolType.WORKSPACE",
    "BuilderFlag.GPU_FALLBACK", "DeviceType.DLA", "NetworkDefinitionCreationFlag", "INetworkDefinition.get_input",
)
# Names only some releases have; each row below says which.
WEAK_TYPING = ("BuilderFlag.FP16", "BuilderFlag.INT8", "Builder.platform_has_fast_fp16")
CALIBRATION = ("IInt8EntropyCalibrator2", "IBuilderConfig.int8_calibrator", "IBuilderConfig.set_calibration_profile")
EXPLICIT_BATCH = "NetworkDefinitionCreationFlag.EXPLICIT_BATCH"
STRONGLY_TYPED = "NetworkDefinitionCreationFlag.STRONGLY_TYPED"


@dataclass(frozen=True)
class TrtApi:
    """One TensorRT release line. ``explicit_batch``: the network flag exists and is needed
    (8.x; in 10.x it exists, deprecated and ignored); ``strongly_typed``: networks can take their
    types from the model (the flag, 10.x) or always do (11.x, ``typed_only``); ``weak_typing``:
    ``BuilderFlag.FP16/INT8`` and ``platform_has_fast_fp16``; ``calibration``: INT8 calibrators."""

    release: Tuple[int, int]
    where: str
    explicit_batch: bool
    strongly_typed: bool
    typed_only: bool
    weak_typing: bool
    calibration: bool
    installable: str = ""  # the pip requirement that installs this API here (tests check against it)

    def names(self) -> FrozenSet[str]:
        """Every API name this release has, of those edgeirst uses."""
        out = set(RUNTIME) | set(BUILDER)
        out |= set(WEAK_TYPING) if self.weak_typing else set()
        out |= set(CALIBRATION) if self.calibration else set()
        out |= {EXPLICIT_BATCH} if self.explicit_batch or not self.typed_only else set()
        out |= {STRONGLY_TYPED} if self.strongly_typed else set()
        return frozenset(out)

    def lacks(self) -> FrozenSet[str]:
        """The optional names this release does not have (tests check they are really gone)."""
        optional = set(WEAK_TYPING) | set(CALIBRATION) | {EXPLICIT_BATCH, STRONGLY_TYPED}
        return frozenset(optional - self.names())

    def strong(self, typed_by_model: bool) -> bool:
        """Whether the network is strongly typed: on 10.x when the precision is the model's own (fp32,
        or QDQ INT8 alone), else weakly typed so the FP16/INT8 builder flags apply (onnxruntime's
        TensorRT provider decides the same way); never on 8.x; always on 11.x."""
        return self.typed_only or (self.strongly_typed and typed_by_model)

    def network_flags(self, trt, typed_by_model: bool) -> int:
        """``create_network``'s flags: explicit batch on 8.x, ``STRONGLY_TYPED`` on 10.x when
        ``strong``, none on 11.x (always strongly typed; the flag is ignored there)."""
        if not self.strongly_typed:
            return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if self.strong(typed_by_model) and not self.typed_only:
            return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        return 0


# release (major, minor) -> API. A version between rows takes the row below it.
RELEASES: Dict[Tuple[int, int], TrtApi] = {a.release: a for a in (
    TrtApi((8, 5), "JetPack 5.1-5.1.5", True, False, False, True, True),
    TrtApi((8, 6), "JetPack 6.0", True, False, False, True, True),
    TrtApi((10, 0), "TensorRT 10.0-10.2", False, True, False, True, True),
    TrtApi((10, 3), "JetPack 6.1-6.2.1", False, True, False, True, True),
    TrtApi((10, 13), "JetPack 7.0", False, True, False, True, True),
    TrtApi((10, 16), "PyPI tensorrt-lean 10.16", False, True, False, True, True, "tensorrt-lean==10.*"),
    TrtApi((11, 0), "PyPI tensorrt-lean 11.x (no JetPack yet)", False, True, True, False, False, "tensorrt-lean==11.*"),
)}
OLDEST = min(RELEASES)
MIN_JETPACK = "5.1"  # the oldest JetPack whose TensorRT (8.5.2) has the named-tensor API


def api_for(version: str) -> Optional[TrtApi]:
    """The API of TensorRT ``version`` (``"10.3.0"``); None below 8.5 (bindings only: unsupported)."""
    v = version_tuple(version)[:2]
    rows = [r for r in sorted(RELEASES) if r <= v]
    return RELEASES[rows[-1]] if rows else None
