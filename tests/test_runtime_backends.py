"""load_backend with real onnxruntime sessions and a real torch checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.runtime import load_backend
from test_runtime_helpers import onnx_variant, tiny_checkpoint, tiny_onnx


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


def test_onnx_backend_infers_and_keeps_batch(base):
    with load_backend(tiny_onnx(base)) as be:
        assert be.name == "onnxruntime"
        assert be.meta.name == "mshnet" and be.meta.outputs == ("seg", "seg_logit")
        assert be.inputs[0].name == "images" and be.inputs[0].shape[1] == 1
        x = np.random.default_rng(0).random((2, 1, 64, 96), dtype=np.float32)
        out = be.infer(x)
        assert list(out) == ["seg", "seg_logit"] and out["seg"].shape == (2, 1, 64, 96) and out["seg"].dtype == np.float32
        assert 0.0 <= out["seg"].min() and out["seg"].max() <= 1.0


def test_torch_and_onnx_agree(base):
    x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
    with load_backend(tiny_checkpoint(base)) as pt, load_backend(tiny_onnx(base), "onnxruntime", threads=1) as ox:
        assert pt.name == "torch"
        a, b = pt.infer(x), ox.infer(x)
        assert list(a) == ["seg", "seg_logit"]  # auxiliary seg0..seg3 dropped
        np.testing.assert_allclose(a["seg"], b["seg"], atol=1e-4)
        np.testing.assert_allclose(a["seg_logit"], b["seg_logit"], atol=1e-3)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((1, 1, 64, 64), np.float64), "float32"),
    (np.zeros((1, 64, 64), np.float32), "NxCxHxW"),
    (np.zeros((1, 3, 64, 64), np.float32), "expects shape|channel"),
    (np.zeros((1, 1, 60, 64), np.float32), "multiples of 16"),
])
def test_infer_validates(base, bad, match):
    with load_backend(tiny_onnx(base)) as be:
        with pytest.raises(EdgeirstError, match=match):
            be.infer(bad)


def test_fixed_shape_model_rejects_other_sizes(base):
    path = onnx_variant(base, "static.onnx", static_hw=(64, 64))
    with load_backend(path) as be:
        assert be.inputs[0].shape == (1, 1, 64, 64)
        be.infer(np.zeros((1, 1, 64, 64), np.float32))
        with pytest.raises(EdgeirstError, match="input_size"):
            be.infer(np.zeros((1, 1, 32, 64), np.float32))


def test_closed_backend_refuses(base):
    be = load_backend(tiny_onnx(base))
    be.close()
    with pytest.raises(EdgeirstError, match="closed"):
        be.infer(np.zeros((1, 1, 64, 64), np.float32))


def test_bad_model_files(tmp_path, base):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a model\xff" * 50)
    with pytest.raises(EdgeirstError, match="not a loadable ONNX"):
        load_backend(garbage)
    bad_pt = tmp_path / "garbage.pt"
    bad_pt.write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeirstError, match="not a loadable PyTorch"):
        load_backend(bad_pt)
    with pytest.raises(EdgeirstError, match="does not exist"):
        load_backend(tmp_path / "missing.onnx")
    with pytest.raises(EdgeirstError, match="unsupported suffix"):
        load_backend(garbage.rename(tmp_path / "garbage.bin"))
    bare = onnx_variant(base, "bare.onnx", meta=False)
    with pytest.raises(EdgeirstError, match="without edgeirst metadata.*set_model_props"):
        load_backend(bare)


def test_model_backend_mismatch(base):
    with pytest.raises(EdgeirstError, match="cannot run tiny_mshnet.pt: a .pt file runs on torch"):
        load_backend(tiny_checkpoint(base), "onnxruntime")
    with pytest.raises(EdgeirstError, match="cannot run"):
        load_backend(tiny_onnx(base), "torch")
    with pytest.raises(EdgeirstError, match="unknown backend"):
        load_backend(tiny_onnx(base), "openvino")
    with pytest.raises(EdgeirstError, match="torch backend does not take option.*providers"):
        load_backend(tiny_checkpoint(base), providers="cpu")
    with pytest.raises(EdgeirstError, match="execution provider 'cuda' is not available"):
        load_backend(tiny_onnx(base), providers="cuda")


def test_shipped_models_load_by_name_and_unknown_names_say_what_is_shipped():
    from edgeirst.weights import shipped_model, shipped_names

    for name in shipped_names():
        with load_backend(name) as be:
            assert be.meta.name
    with pytest.raises(EdgeirstError, match="not shipped"):
        shipped_model("nosuch")
