"""TensorRT backend, engine building and CUDA buffers.

The GPU tests need tensorrt plus pycuda or cuda-python and skip with a reason where they do not
import (no GPU on the development machines). What runs everywhere: the error a user sees
without them, the sidecar, the cache layout and key, the optimisation profile, and the
onnxruntime execution-provider choice.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.runtime import load_backend
from edgeirst.runtime.backends.onnxruntime import choose_providers, provider_options
from edgeirst.runtime.cuda import available_apis
from edgeirst.runtime.engine_build import BuildOptions, _profile_shapes, cache_dir, cache_key, read_onnx_meta
from test_runtime_helpers import onnx_variant, tiny_meta, tiny_onnx

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
CUDA_APIS = available_apis()
needs_gpu = pytest.mark.skipif(not (HAS_TRT and CUDA_APIS),
                               reason="needs tensorrt and pycuda or cuda-python (a CUDA GPU); not installed here")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed: the missing-library message does not apply")
def test_without_tensorrt_the_error_says_what_to_install(base, tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    engine.with_name("m.engine.json").write_text(tiny_meta().to_json())
    for args in ((engine,), (tiny_onnx(base), "tensorrt")):
        with pytest.raises(EdgeirstError, match="tensorrt is not installed.*JetPack.*edgeirst\\[jetson\\]"):
            load_backend(*args)


def test_engine_needs_its_sidecar(tmp_path):
    from edgeirst.runtime.backends.tensorrt import read_sidecar, sidecar_path

    engine = tmp_path / "m.engine"
    with pytest.raises(EdgeirstError, match="no metadata sidecar m.engine.json"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{broken")
    with pytest.raises(EdgeirstError, match="not valid JSON"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({**tiny_meta().to_dict(), "engine": {"tensorrt": "10.3.0"}}))
    meta, info = read_sidecar(engine)
    assert meta == tiny_meta() and info == {"tensorrt": "10.3.0"}


def test_onnx_meta_for_engine_builds(base, tmp_path):
    meta = read_onnx_meta(tiny_onnx(base))
    assert meta.memory_per_pixel > 0  # measured by export, in a subprocess
    assert meta.replace(memory_per_pixel=None) == tiny_meta()
    with pytest.raises(EdgeirstError, match="without edgeirst metadata"):
        read_onnx_meta(onnx_variant(base, "bare2.onnx", meta=False))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage\xff\xff")
    with pytest.raises(EdgeirstError, match="not a loadable ONNX"):
        read_onnx_meta(junk)


def test_engine_cache_is_per_content_options_device_and_version(base, tmp_path):
    onnx_path = tiny_onnx(base)
    k = cache_key(onnx_path, BuildOptions())
    assert k == cache_key(onnx_path, BuildOptions())
    assert k != cache_key(onnx_path, BuildOptions(fp16=True))
    assert k == cache_key(onnx_path, BuildOptions(cache_dir="/elsewhere"))  # where the cache lives is no part of it
    assert k != cache_key(onnx_variant(base, "other_meta.onnx", tiny_meta(threshold=0.3)), BuildOptions())
    a = cache_dir("10.3.0", "Orin (nvgpu)", (8, 7), str(tmp_path))
    assert a == tmp_path / "engines" / "trt-10.3.0" / "Orin-nvgpu-sm87"
    assert a != cache_dir("8.5.2.2", "Orin (nvgpu)", (8, 7), str(tmp_path))


def test_profile_covers_native_frames():
    meta = tiny_meta(input_size=(256, 320), size_divisor=16)
    lo, opt, hi = _profile_shapes((-1, 1, -1, -1), meta, BuildOptions(max_batch=4))
    assert lo == (1, 1, 16, 16) and opt == (4, 1, 256, 320) and hi == (4, 1, 1088, 1920)
    assert _profile_shapes((1, 1, 64, 64), meta, BuildOptions()) == ((1, 1, 64, 64),) * 3


def test_onnxruntime_provider_choice():
    cpu_only = ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", cpu_only) == cpu_only
    assert choose_providers("auto", gpu) == gpu
    assert choose_providers("cuda", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(EdgeirstError, match="'tensorrt' is not available"):
        choose_providers("tensorrt", cpu_only)
    opts = dict(provider_options(["TensorrtExecutionProvider", "CUDAExecutionProvider"], True, "/c"))
    assert opts["TensorrtExecutionProvider"]["trt_fp16_enable"] and opts["TensorrtExecutionProvider"]["trt_engine_cache_path"] == "/c"
    assert opts["CUDAExecutionProvider"]["device_id"] == 0


# ---------------------------------------------------------------- GPU: skipped without TensorRT

@needs_gpu
@pytest.mark.trt
@pytest.mark.gpu
@pytest.mark.parametrize("api", CUDA_APIS or ["pycuda"])
@pytest.mark.parametrize("zero_copy", [False, True])
def test_engine_matches_onnxruntime(base, tmp_path, api, zero_copy):
    from edgeirst.runtime.engine_build import cached_engine

    onnx_path = tiny_onnx(base)
    build = BuildOptions(max_hw=(128, 128), cache_dir=str(tmp_path))
    engine = cached_engine(onnx_path, build)
    assert engine.is_file() and engine.with_name(engine.name + ".json").is_file()
    mtime = engine.stat().st_mtime_ns
    assert cached_engine(onnx_path, build) == engine
    assert engine.stat().st_mtime_ns == mtime  # second call: a cache hit, no rebuild
    x = np.random.default_rng(0).random((1, 1, 64, 96), dtype=np.float32)
    with load_backend(engine, cuda_api=api, zero_copy=zero_copy) as trt_be, load_backend(onnx_path) as ort_be:
        buf = trt_be.input_buffer(x.shape)
        buf[...] = x  # what the pipeline does: write into the pinned buffer
        a, b = trt_be.infer(buf), ort_be.infer(x)
        np.testing.assert_allclose(a["seg"], b["seg"], atol=2e-3)
        with pytest.raises(EdgeirstError, match="exceeds what"):
            trt_be.input_buffer((1, 1, 256, 256))


@needs_gpu
@pytest.mark.trt
@pytest.mark.gpu
def test_fp16_engine_through_load_backend(base, tmp_path):
    x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
    with load_backend(tiny_onnx(base), "tensorrt", fp16=True, cache_dir=str(tmp_path), max_hw=(64, 64)) as be, \
            load_backend(tiny_onnx(base)) as ref:
        assert be.name == "tensorrt" and be.meta == tiny_meta()
        np.testing.assert_allclose(be.infer(x)["seg"], ref.infer(x)["seg"], atol=3e-2)


@needs_gpu
@pytest.mark.trt
@pytest.mark.gpu
def test_cli_run_on_tensorrt(base, tmp_path):
    from test_runtime_helpers import run_cli

    out = tmp_path / "o.jsonl"
    p = run_cli("run", tiny_onnx(base), "--backend", "tensorrt", "--source", "synthetic://?size=64x64",
                "--max-frames", "10", "--jsonl", out, "-q", timeout=600,
                env={**__import__("os").environ, "EDGEIRST_CACHE": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert len(out.read_text().splitlines()) == 10


def test_auto_backend_picks_by_what_is_installed(base):
    from edgeirst.runtime.backends import tensorrt_available

    with load_backend(tiny_onnx(base), "auto") as b:
        expected = "TensorRTBackend" if tensorrt_available() else "OnnxRuntimeBackend"
        assert type(b).__name__ == expected
