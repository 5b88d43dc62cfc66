"""The model suite, parametrised over the registry: every family in ``list_models()`` gets the
same forward / backward / in_chans / ONNX-parity / decode checks at a small width, plus
full-width parameter counts against the papers' (official code) figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.errors import EdgeirstError
from edgeirst.checkpoint import meta_for
from edgeirst.export import export_onnx
from edgeirst.models import create_model, list_models
from edgeirst.models.complexity import count_macs, count_params
from edgeirst.postprocess import Prediction, decode_outputs
from edgeirst.preprocess import Letterbox

# Small variants for speed; every model takes `width`. Override here when a family needs more.
SMALL = {"mlsa-yolov8": {"width": 0.125}}
DEFAULT_SMALL = {"width": 0.25}
# Parameters that legitimately get no gradient from the summed outputs (name -> set of prefixes).
NO_GRAD = {}

MODELS = list_models()
# dynamo=False is the exporter we ship (see docs/measured-pitfalls.md); its deprecation notice is expected.
pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
              pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on shared, busy cores, many tiny ops stall on thread barriers."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small(name: str, **extra) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**SMALL.get(name, DEFAULT_SMALL), **extra})


def pad_to(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad bottom/right to multiples of ``divisor``, as the runtime's Letterbox does."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % divisor, 0, -h % divisor))


def expected_shape(spec, name: str, b: int, h: int, w: int) -> tuple[int | None, ...] | None:
    """The declared layout of inference output ``name`` (see edgeirst.postprocess), None if unknown;
    a None inside means any size (heatmap classes)."""
    args = spec.decode_args
    if name == "seg":
        return (b, 1, h, w)
    levels = args.get("levels", [])
    if name in levels:
        s = args["strides"][levels.index(name)]
        nc = args.get("num_classes", 1)
        if spec.decode == "yolov8":
            return (b, 4 * args.get("reg_max", 16) + nc, h // s, w // s)
        if spec.decode == "yolov5":
            return (b, len(args["anchors"][levels.index(name)]) // 2 * (5 + nc), h // s, w // s)
    if spec.decode == "centernet" and name in ("heatmap", "wh", "offset"):
        s = args.get("stride", 1)
        return (b, None if name == "heatmap" else 2, h // s, w // s)
    return None


def check_outputs(model: nn.Module, out: dict[str, torch.Tensor], b: int, h: int, w: int) -> None:
    spec = model.spec
    missing = set(spec.outputs) | set(spec.aux)
    missing -= set(out)
    assert not missing, f"forward did not return {sorted(missing)}"
    for name in spec.outputs + spec.aux:
        t = out[name]
        assert t.dim() == 4 and t.shape[0] == b, f"{name}: {tuple(t.shape)}"
        assert h % t.shape[2] == 0 and w % t.shape[3] == 0, f"{name}: {tuple(t.shape)} not a divisor of {h}x{w}"
        assert torch.isfinite(t).all(), name
        want = expected_shape(spec, name, b, h, w)
        if want is not None:
            got = tuple(v if want_v is not None else None for v, want_v in zip(t.shape, want))
            assert got == want, f"{name}: got {tuple(t.shape)}, declared layout {want}"
        if name == "seg_logit":  # the logit of `seg`, which scores targets (edgeirst.confidence)
            assert torch.allclose(torch.sigmoid(t), out["seg"], atol=1e-6), name
        elif name.startswith("seg") or name == "heatmap":  # probabilities
            assert t.min() >= 0 and t.max() <= 1, f"{name} is not a probability map"


@pytest.mark.parametrize("name", MODELS)
def test_spec(name):
    spec = small(name).spec
    assert spec.tasks and set(spec.tasks) <= {"segmentation", "detection"}
    assert spec.decode in ("cluster", "centernet", "yolov5", "yolov8")
    assert spec.outputs and not set(spec.outputs) & set(spec.aux)
    if spec.decode == "cluster":
        assert "seg" in spec.outputs
    if spec.decode in ("yolov5", "yolov8"):
        assert list(spec.decode_args["levels"]) and set(spec.decode_args["levels"]) <= set(spec.outputs)
        assert len(spec.decode_args["strides"]) == len(spec.decode_args["levels"])


@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes(name):
    model = small(name).eval()
    d = model.spec.size_divisor
    with torch.no_grad():
        for h, w in ((256, 256), (240, 320)):
            x = pad_to(torch.rand(1, 1, h, w), d)
            out = model(x)
            check_outputs(model, out, 1, *x.shape[-2:])


@pytest.mark.parametrize("name", MODELS)
def test_in_chans(name):
    model = small(name).eval()
    d = max(model.spec.size_divisor, 32)
    with torch.no_grad():
        model(torch.rand(1, 1, 2 * d, 2 * d))  # default: single-channel infrared
        with pytest.raises(RuntimeError):
            model(torch.rand(1, 2, 2 * d, 2 * d))
        model3 = small(name, in_chans=3).eval()
        check_outputs(model3, model3(torch.rand(1, 3, 2 * d, 3 * d)), 1, 2 * d, 3 * d)


@pytest.mark.parametrize("name", MODELS)
def test_backward(name):
    model = small(name).train()
    d = max(model.spec.size_divisor, 32)
    out = model(torch.rand(2, 1, 2 * d, 2 * d))
    check_outputs(model, out, 2, 2 * d, 2 * d)
    model.zero_grad(set_to_none=True)
    sum(t.float().mean() for t in out.values()).backward()
    exempt = NO_GRAD.get(name, set())
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None and not any(n.startswith(e) for e in exempt)]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]} ({len(no_grad)} in all)"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(p.grad.abs().sum() > 0 for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_parity_and_decode(name, tmp_path):
    """Opset-17 export with dynamic height/width (the runtime pads frames to size_divisor and
    feeds any size); onnxruntime matches torch at the traced size and at another one."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = small(name).eval()
    spec = model.spec
    d = max(spec.size_divisor, 32)
    x = torch.rand(1, 1, 2 * d, 3 * d)
    path = tmp_path / f"{name}.onnx"
    kwargs = SMALL.get(name, DEFAULT_SMALL)
    meta = meta_for(name, model, kwargs=kwargs, input_size=tuple(x.shape[-2:]))
    export_onnx(model, meta, path, dynamic=True)  # edgeirst's own export path, metadata inside
    assert not model.training
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in (x, torch.rand(1, 1, 3 * d, 2 * d)):
        with torch.no_grad():
            ref = model(x)
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x.numpy()})))
        assert list(got) == list(spec.outputs)
        for n in spec.outputs:
            r = ref[n].numpy()
            assert got[n].shape == r.shape, f"{n}: {got[n].shape} vs torch {r.shape}"
            err = np.abs(got[n] - r).max()
            assert err <= 1e-4 * max(1.0, np.abs(r).max()), f"{n}: onnxruntime differs from torch by {err}"
    h, w = x.shape[-2:]
    meta = meta.replace(input_size=(h, w))
    src_hw = (h - d // 2, w - d // 2)  # a source frame the runtime padded up to (h, w)
    pred = decode_outputs({n: v[0] for n, v in got.items()}, meta, Letterbox.plan(src_hw, meta))
    assert isinstance(pred, Prediction)
    if "seg" in spec.outputs:
        assert pred.prob.shape == src_hw
    t = pred.targets
    assert t.boxes.shape == (len(t), 4) and t.scores.shape == (len(t),)
    if len(t):
        assert (t.boxes[:, 2] <= src_hw[1]).all() and (t.boxes[:, 3] <= src_hw[0]).all()


def test_unknown_model_names_a_close_match():
    with pytest.raises(EdgeirstError, match="dnanet"):
        create_model("dnanett")
    with pytest.raises(EdgeirstError, match="bad arguments"):
        create_model("dnanet", no_such_argument=1)


# Full-width figures against the official code (3-channel input, as the papers count).

@pytest.mark.parametrize("name, paper_m", [("dnanet", 4.697), ("mshnet", 4.066)])
def test_params_match_official(name, paper_m):
    n = count_params(create_model(name, in_chans=3))
    assert abs(n / 1e6 - paper_m) <= 0.05 * paper_m, f"{name}: {n} params vs {paper_m}M"


def test_mlsa_yolov8_is_yolov8n_p2():
    # Ultralytics yolov8-p2.yaml at scale n, 80 classes: 3,354,144 params, 16 of them the fixed
    # DFL projection that our head leaves to the decoder.
    n = count_params(create_model("mlsa-yolov8", in_chans=3, num_classes=80))
    assert n == 3_354_144 - 16
    spec = create_model("mlsa-yolov8").spec
    assert spec.decode_args == {"levels": ["p2", "p3", "p4", "p5"], "strides": [4, 8, 16, 32],
                                "reg_max": 16, "num_classes": 1}


def test_dnanet_nested_structure():
    model = create_model("dnanet", width=0.25)
    nodes = set(model.dnim.nodes.keys())
    assert nodes == {f"conv{i}_{j}" for i in range(5) for j in range(5 - i)}
    assert model.spec.aux == ("seg1", "seg2", "seg3")
    # X(1,2) sees X(1,0), X(1,1), up(X(2,1)) and down(X(0,2)): 2*8 + 16 + 4 channels at width 0.25.
    assert model.dnim.nodes["conv1_2"][0].conv1.in_channels == 2 * 8 + 16 + 4


@pytest.mark.slow
def test_dnanet_macs_match_official():
    macs = count_macs(create_model("dnanet", in_chans=3), 256, 3)
    assert abs(macs / 1e9 - 13.9) <= 0.05 * 13.9
