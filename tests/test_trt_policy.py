"""edgeirst.runtime.trt_policy: the form each TensorRT version builds from, in our builder's and
trtexec's words, and the DLA's static shapes. Device side: the standard library only, Python 3.8."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgeirst.runtime import trt_policy as tp


@pytest.mark.parametrize("version, int8, fp16", [("8.2.1.8", "cache", "flag"), ("8.5.2.2", "cache", "flag"),
                                                 ("8.6.2.3", "qdq", "flag"), ("10.3.0.30", "qdq", "flag"),
                                                 ("11.0.0", "qdq", "onnx")])
def test_forms_by_version(version, int8, fp16):
    assert tp.int8_form(version) == int8 and tp.fp16_form(version) == fp16


def test_engine_forms_and_flags():
    assert tp.engine_form("int8", "8.5.2") == tp.EngineForm("int8", tp.FLOAT, False, ("INT8", "FP16"), True)
    assert tp.engine_form("int8", "8.6.2") == tp.EngineForm("int8", tp.QDQ_INT8, False, ("INT8", "FP16"))
    assert tp.engine_form("int8", "10.3.0") == tp.EngineForm("int8", tp.QDQ_INT8, True, ())
    assert tp.engine_form("fp16", "10.3.0") == tp.EngineForm("fp16", tp.FLOAT, False, ("FP16",))
    assert tp.engine_form("fp16", "11.0") == tp.EngineForm("fp16", tp.FP16_ONNX, True, ())
    assert tp.engine_flags("int8", "10.3.0") == (("STRONGLY_TYPED",), ())
    assert tp.engine_flags("fp16", "8.6.2", dla_core=0) == ((), ("FP16", "GPU_FALLBACK"))
    assert tp.trtexec_flags("int8", "8.6.2", dla_core=1) == ("--int8", "--fp16", "--allowGPUFallback",
                                                             "--useDLACore=1")
    assert tp.trtexec_flags("fp16", "11.0") == ("--stronglyTyped",)
    with pytest.raises(ValueError):
        tp.engine_flags("fp32", "10.3.0", dla_core=0)
    with pytest.raises(ValueError):
        tp.engine_form("int4", "10.3.0")


def test_dla_builds_one_static_shape():
    assert tp.shape_profile((1088, 1920), (32, 32), dla_core=0) == ((1088, 1920),) * 3
    assert tp.shape_profile((1088, 1920), (32, 32)) == ((32, 32), (1088, 1920), (1088, 1920))
    assert not tp.needs_static_shapes(None) and tp.needs_static_shapes(0)


def test_policy_is_stdlib_only_and_python38_clean():
    import edgeirst.runtime.trt_versions as tv

    for mod in (tp, tv):
        tree = ast.parse(Path(mod.__file__).read_text(), feature_version=(3, 8))
        imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
                   {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= {"__future__", "dataclasses", "typing", "edgeirst"}, imported
