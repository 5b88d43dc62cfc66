"""edgeirst.runtime.trt_policy: the form each TensorRT version builds from, in our builder's and
trtexec's words, and the DLA's static shapes. Device side: the standard library only, Python 3.8."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgeirst.runtime import trt_policy as tp


@pytest.mark.parametrize("version, int8", [("8.2.1.8", "cache"), ("8.5.2.2", "cache"), ("8.6.2.3", "qdq"),
                                           ("10.3.0.30", "qdq"), ("11.0.0", "qdq")])
def test_int8_form_by_version(version, int8):
    assert tp.int8_form(version) == int8


def test_dla_builds_one_static_shape():
    from edgeirst.meta import ModelMeta
    from edgeirst.runtime.engine_build import BuildOptions, _profile_shapes

    assert not tp.needs_static_shapes(None) and tp.needs_static_shapes(0)
    meta = ModelMeta("m", input_size=(256, 256), outputs=("seg",), decode="cluster", size_divisor=32, threshold=0.5)
    gpu = _profile_shapes((-1, 1, -1, -1), meta, BuildOptions(max_hw=(512, 640)))
    assert gpu == ((1, 1, 32, 32), (1, 1, 256, 256), (1, 1, 512, 640))
    dla = _profile_shapes((-1, 1, -1, -1), meta, BuildOptions(max_hw=(512, 640), dla_core=0, max_batch=2))
    assert dla == ((2, 1, 512, 640),) * 3  # min = opt = max: the DLA takes no dynamic shapes


def test_policy_is_stdlib_only_and_python38_clean():
    import edgeirst.runtime.trt_versions as tv

    for mod in (tp, tv):
        tree = ast.parse(Path(mod.__file__).read_text(), feature_version=(3, 8))
        imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
                   {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= {"__future__", "dataclasses", "typing", "edgeirst"}, imported
