"""MTUNet family and Light-SGMTLM: paper parameter counts, composition, output layouts at
reduced width, ONNX parity, and the head-layout contract with edgeirst.postprocess."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeirst.checkpoint import meta_for
from edgeirst.export import export_onnx
from edgeirst.models import create_model, model_entry
from edgeirst.models.complexity import count_macs, count_params
from edgeirst.models.layers.ppm import adaptive_avg_pool
from edgeirst.models.layers.siwd import SIWD
from edgeirst.models.mtunet import MTUNet
from edgeirst.postprocess import decode_outputs, decode_yolov5
from edgeirst.preprocess import Letterbox

# name -> (relative tolerance on params and MACs vs the paper, 3-channel input)
PAPER_TOL = {"mtunet": 0.05, "mtunet-det": 0.05, "mtunet-seg": 0.05, "light-sgmtlm": 0.15, "light-sgmtlm-tiny": 0.15}
SMALL = {"mtunet": 0.125, "mtunet-det": 0.125, "mtunet-seg": 0.125, "mtunet-siwd": 0.125,
         "light-sgmtlm": 0.1, "light-sgmtlm-tiny": 1.0}
SIZES = {16: ((256, 256), (240, 320)), 32: ((256, 256), (224, 320))}


def small(name: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, width=SMALL[name], **kw)


def expected(spec, name: str, h: int, w: int) -> tuple[int, ...]:
    if name in ("heatmap", "seg", "saliency"):
        return (1, 1, h, w)
    if name in ("wh", "offset"):
        return (1, 2, h, w)
    args = spec.decode_args
    k = args["levels"].index(name)
    s = args["strides"][k]
    return (1, len(args["anchors"][k]) // 2 * (5 + args["num_classes"]), h // s, w // s)


@pytest.mark.parametrize("name", sorted(PAPER_TOL))
def test_params_match_paper(name):
    n = count_params(create_model(name, in_chans=3)) / 1e6
    paper = model_entry(name).paper.params_m
    assert abs(n - paper) <= PAPER_TOL[name] * paper, f"{name}: {n:.3f}M vs paper {paper}M"


def test_in_chans_changes_only_the_first_conv():
    one, three = create_model("mtunet", in_chans=1), create_model("mtunet", in_chans=3)
    assert count_params(three) - count_params(one) == 2 * 64 * 9


def test_mtunet_variants_compose_one_class():
    full, det, seg, siwd = (create_model(n, width=0.125) for n in ("mtunet", "mtunet-det", "mtunet-seg", "mtunet-siwd"))
    assert all(type(m) is MTUNet for m in (full, det, seg, siwd))
    assert set(full.heads) == {"det", "seg"} and set(det.heads) == {"det"} and set(seg.heads) == {"seg"}
    assert full.spec.outputs == ("heatmap", "wh", "offset", "seg")
    assert full.spec.tasks == ("detection", "segmentation") and full.spec.decode == "centernet"
    assert full.spec.decode_args == {"stride": 1, "topk": 100}
    assert det.spec.decode == "centernet" and det.spec.tasks == ("detection",)
    assert seg.spec.decode == "cluster" and seg.spec.outputs == ("seg",)
    assert all(isinstance(d, SIWD) for d in siwd.backbone.downs)
    assert not any(isinstance(d, SIWD) for d in full.backbone.downs)
    # the shared backbone is the same architecture, heads add what the spec says
    assert count_params(full) == count_params(det) + count_params(seg) - count_params(full.backbone)


def test_light_sgmtlm_spec():
    m, tiny = create_model("light-sgmtlm", width=0.1), create_model("light-sgmtlm-tiny")
    for spec in (m.spec, tiny.spec):
        assert spec.decode == "yolov5" and spec.tasks == ("detection",) and spec.size_divisor == 32
        assert spec.outputs == ("p3", "p4", "p5") and spec.aux == ("saliency",)
        assert spec.decode_args["strides"] == [8, 16, 32] and spec.decode_args["num_classes"] == 1
        assert [len(a) for a in spec.decode_args["anchors"]] == [6, 6, 6]
    widths = [s.point.conv.out_channels * 4 for s in tiny.stages]
    assert widths == [8, 16, 32, 64, 128]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_shapes(name):
    model = small(name).eval()
    with torch.no_grad():
        for h, w in SIZES[model.spec.size_divisor]:
            out = model(torch.rand(1, 1, h, w))
            assert set(out) == set(model.spec.outputs) | set(model.spec.aux)
            for k, v in out.items():
                assert tuple(v.shape) == expected(model.spec, k, h, w), k
                assert torch.isfinite(v).all(), k
                if k in ("heatmap", "seg", "saliency"):
                    assert 0 <= v.min() and v.max() <= 1, k


@pytest.mark.parametrize("name", ["mtunet", "mtunet-siwd", "light-sgmtlm-tiny"])
def test_backward_reaches_every_parameter(name):
    model = small(name).train()
    out = model(torch.rand(2, 1, 64, 96))
    sum(v.mean() for v in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]


@pytest.mark.parametrize("name, hw", [("mtunet", (240, 320)), ("light-sgmtlm-tiny", (224, 320))])
def test_onnx_parity_and_decode(name, hw, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model = small(name).eval()
    spec = model.spec
    x = torch.rand(1, 1, *hw)
    with torch.no_grad():
        ref = model(x)
    path = tmp_path / "m.onnx"
    meta = meta_for(name, model, input_size=hw, threshold=0.05)
    export_onnx(model, meta, path, dynamic=False)
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == list(spec.outputs)
    if spec.aux:  # trained-only branches are not in the exported graph (saliency: the one x4 Resize)
        assert sum(n.op_type == "Resize" for n in graph.node) == 3
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip(spec.outputs, sess.run(None, {"images": x.numpy()})))
    for n in spec.outputs:
        np.testing.assert_allclose(got[n], ref[n].numpy(), atol=1e-4, rtol=1e-4, err_msg=n)
    src = (hw[0] - 8, hw[1] - 8)
    pred = decode_outputs({n: v[0] for n, v in got.items()}, meta, Letterbox.plan(src, meta))
    if "seg" in spec.outputs:
        assert pred.prob.shape == src
    assert pred.targets.boxes.shape == (len(pred.targets), 4)


def test_yolov5_head_layout_matches_decoder():
    """Zero weights and chosen biases: only anchor 1 of level p3 is confident everywhere, so the
    decoder must return one box per p3 cell, centred on it, with that anchor's size."""
    model = create_model("light-sgmtlm-tiny").eval()
    args = model.spec.decode_args
    with torch.no_grad():
        for conv in model.head.convs:
            conv.weight.zero_()
            b = conv.bias.view(3, 6)
            b.zero_()
            b[:, 4] = -20.0
        model.head.convs[0].bias.view(3, 6)[1, 4:] = 20.0
        out = model(torch.rand(1, 1, 64, 96))
    levels = [out[n][0].numpy() for n in args["levels"]]
    t = decode_yolov5(levels, args["strides"], args["anchors"], args["num_classes"], threshold=0.5)
    assert len(t) == 8 * 12
    aw, ah = args["anchors"][0][2:4]
    np.testing.assert_allclose(t.boxes[:, 2] - t.boxes[:, 0], aw, rtol=1e-5)
    np.testing.assert_allclose(t.boxes[:, 3] - t.boxes[:, 1], ah, rtol=1e-5)
    np.testing.assert_allclose(np.sort(np.unique(t.centroids[:, 0])), 8 * np.arange(12) + 4, rtol=1e-5)


def test_centernet_heatmap_starts_low():
    model = small("mtunet-det").eval()
    with torch.no_grad():
        hm = model(torch.rand(1, 1, 32, 32))["heatmap"]
    assert 0.0 < hm.mean() < 0.3  # sigmoid(-2.19) = 0.1 plus what random features add


def test_psp_head_starts_at_its_prior():
    model = small("mtunet-seg").eval()
    with torch.no_grad():
        seg = model(torch.rand(1, 1, 32, 32))["seg"]
    assert 0.0 < seg.mean() < 0.05  # softmax bias log(0.01 / 0.99) plus what random features add


@pytest.mark.parametrize("hw", [(20, 14), (15, 32), (6, 6)])
def test_matmul_pooling_equals_adaptive_avg_pool(hw):
    x = torch.randn(2, 3, *hw)
    for bins in (1, 2, 3, 6):
        torch.testing.assert_close(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAPER_TOL))
def test_macs_match_paper(name):
    macs = count_macs(create_model(name, in_chans=3), model_entry(name).paper.size, 3) / 1e9
    paper = model_entry(name).paper.gflops
    assert abs(macs - paper) <= PAPER_TOL[name] * paper, f"{name}: {macs:.2f} GMACs vs paper {paper}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mtunet", "mtunet-siwd", "light-sgmtlm"])
def test_full_width_forward_320(name):
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 320, 320))
    for k, v in out.items():
        assert tuple(v.shape) == expected(model.spec, k, 320, 320), k
