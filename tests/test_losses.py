"""Every loss against a hand-computed value, and every model's criterion end to end.

Hand values are worked out in the comments from the formulas in the module docstrings, never by
calling the function under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgeirst.errors import EdgeirstError
from edgeirst.losses import criterion_for
from edgeirst.losses.box import ciou, dotd, giou, iou
from edgeirst.losses.centernet import CenterNetLoss, focal_loss
from edgeirst.losses.dice import weighted_dice_loss
from edgeirst.losses.multiscale_sls import MultiScaleSLS
from edgeirst.losses.saliency import saliency_loss, ssim
from edgeirst.losses.sls import sls_loss
from edgeirst.losses.soft_iou import DeepSupervisionSoftIoU, soft_iou_loss
from edgeirst.losses.yolov5 import YOLOv5Loss
from edgeirst.losses.yolov8 import MLSAYOLOv8Loss, dfl_loss
from edgeirst.models import ModelSpec

LN2 = math.log(2)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# --- box similarities -------------------------------------------------------------------------

def test_giou_and_iou_hand_values():
    a, b = t([0, 0, 2, 2]), t([1, 1, 3, 3])
    # intersection 1, union 4 + 4 - 1 = 7, enclosing 3x3 = 9: GIoU = 1/7 - (9 - 7)/9 = -5/63
    assert torch.allclose(iou(a, b), torch.tensor([1 / 7]), atol=1e-6)
    assert torch.allclose(giou(a, b), torch.tensor([-5 / 63]), atol=1e-6)
    assert torch.allclose(giou(a, a), torch.tensor([1.0]), atol=1e-6)


def test_ciou_hand_values():
    # same aspect: v = 0; centres (1,1), (2,2): rho^2 = 2; enclosing diagonal^2 = 9 + 9 = 18
    assert torch.allclose(ciou(t([0, 0, 2, 2]), t([1, 1, 3, 3])), torch.tensor([1 / 7 - 2 / 18]), atol=1e-6)
    # 2x2 vs 4x2 at the origin: IoU 4/8; rho^2 = 1, c^2 = 16 + 4 = 20;
    # v = 4/pi^2 (atan(4/2) - atan(2/2))^2, alpha = v / (v - 0.5 + 1)
    v = 4 / math.pi ** 2 * (math.atan(2) - math.atan(1)) ** 2
    want = 0.5 - 1 / 20 - v * v / (v + 0.5)
    assert torch.allclose(ciou(t([0, 0, 2, 2]), t([0, 0, 4, 2])), torch.tensor([want]), atol=1e-6)


def test_dotd_hand_value_and_broadcasting():
    # centres (1, 1) and (4, 5): distance 5; S = 10 -> exp(-0.5)
    assert torch.allclose(dotd(t([0, 0, 2, 2]), t([3, 4, 5, 6]), 10.0), torch.tensor([math.exp(-0.5)]), atol=1e-6)
    grid = dotd(torch.zeros(2, 1, 1, 4), torch.zeros(1, 3, 4), 4.0)  # B x M x A
    assert grid.shape == (2, 1, 3) and torch.allclose(grid, torch.ones(2, 1, 3), atol=1e-6)


# --- segmentation losses ----------------------------------------------------------------------

P4 = torch.tensor([0.9, 0.2, 0.1, 0.6]).view(1, 1, 2, 2)
G4 = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)


def test_soft_iou_hand_value():
    # inter 0.9 + 0.6 = 1.5, sum p = 1.8, sum g = 2: 1 - (1.5 + 1) / (1.8 + 2 - 1.5 + 1)
    assert math.isclose(float(soft_iou_loss(P4, G4)), 1 - 2.5 / 3.3, rel_tol=1e-6)


def test_deep_supervision_soft_iou_averages_outputs_at_their_resolution():
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    outputs = {"seg": torch.tensor([[0.5, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2), "seg1": torch.full((1, 1, 1, 1), 0.25)}
    # seg: 1 - (0.5 + 1) / (0.5 + 1 - 0.5 + 1) = 0.25
    # seg1 (mask max-pooled to 1x1 = 1): 1 - (0.25 + 1) / (0.25 + 1 - 0.25 + 1) = 0.375
    loss, parts = DeepSupervisionSoftIoU(("seg1",))(outputs, {"mask": mask}, 0)
    assert math.isclose(float(loss), (0.25 + 0.375) / 2, rel_tol=1e-6) and parts["soft_iou"] == pytest.approx(0.3125)


def test_weighted_dice_hand_value():
    # target class: sum(p g) = .9 + .6 = 1.5, sum(p) = 1.8, sum(g) = 2: dice = (3 + 1) / (3.8 + 1) = 5/6
    # background: q = 1 - p = .1 .8 .9 .4, h = 0 1 1 0: sum(q h) = 1.7, sum(q) = 2.2, sum(h) = 2:
    # dice = (3.4 + 1) / (4.2 + 1) = 4.4 / 5.2; loss = (10 * (1/6) + 0.1 * (0.8 / 5.2)) / 10.1
    want = (10 / 6 + 0.1 * 0.8 / 5.2) / 10.1
    assert math.isclose(float(weighted_dice_loss(P4, G4)), want, rel_tol=1e-6)


def test_weighted_dice_does_not_reward_over_segmentation():
    # one target pixel in 10,000: marking 100 background pixels as well must cost more than
    # missing nothing costs (the per-pixel 10 / 0.1 reading made it nearly free)
    g = torch.zeros(1, 1, 100, 100)
    g[0, 0, 50, 50] = 1
    exact, loose = g.clone(), g.clone()
    loose.view(-1)[:100] = 1
    assert float(weighted_dice_loss(exact, g)) < 0.01 < float(weighted_dice_loss(loose, g))


def test_sls_hand_value():
    # 2x2 map, target pixel (y=1, x=1); pred 0.5 at (0, 1) and 1.0 at (1, 1).
    pred = torch.tensor([[0.0, 0.5], [0.0, 1.0]]).view(1, 1, 2, 2)
    gt = torch.tensor([[0.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    # IoU: inter 1, |P| 1.5, |G| 1 -> 1 / 1.5; d = (0.5 / 2)^2 = 0.0625, alpha = 1.0625 / 1.5625
    iou_, alpha = 1 / 1.5, 1.0625 / 1.5625
    # centres (coordinates x/w, y/h in {0, .5}, mean over 4 pixels): pred x = (.5*.5 + .5*1)/4 = .1875,
    # y = (.5*1)/4 = .125; target x = y = .5/4 = .125
    rp, rt = math.hypot(0.1875, 0.125), math.hypot(0.125, 0.125)
    angle = 4 / math.pi ** 2 * (math.atan(0.125 / 0.1875) - math.atan(1.0)) ** 2
    assert rp > rt  # length term = min / max = rt / rp
    want = 1 - alpha * iou_ + (1 - rt / rp + angle)
    assert math.isclose(float(sls_loss(pred, gt)), want, rel_tol=1e-5)
    assert math.isclose(float(sls_loss(pred, gt, warm=True)), 1 - iou_, rel_tol=1e-5)
    # MultiScaleSLS: fused map and one identical scale -> the same value averaged
    loss, _ = MultiScaleSLS(("seg0",))({"seg": pred, "seg0": pred}, {"mask": gt}, epoch=10)
    assert math.isclose(float(loss), want, rel_tol=1e-5)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Direct loop SSIM (11x11 Gaussian sigma 1.5 window, zero padding) for HxW arrays."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    win = np.outer(g, g) / g.sum() ** 2
    pa, pb = np.pad(a, 5), np.pad(b, 5)
    vals = []
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            wa, wb = pa[y:y + 11, x:x + 11], pb[y:y + 11, x:x + 11]
            ma, mb = (win * wa).sum(), (win * wb).sum()
            va, vb = (win * wa * wa).sum() - ma ** 2, (win * wb * wb).sum() - mb ** 2
            cov = (win * wa * wb).sum() - ma * mb
            vals.append(((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma ** 2 + mb ** 2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(vals))


def test_ssim_one_pixel_by_hand_and_against_a_loop_reference():
    # 1x1 images: with zero padding only the window's centre weight w0 = g0^2 touches the pixel,
    # g0 = 1 / sum_k exp(-k^2 / 4.5), k = -5..5. mu = w0 x, var = w0 x^2 - (w0 x)^2, cov likewise.
    g0 = 1 / sum(math.exp(-k * k / 4.5) for k in range(-5, 6))
    w0, a, b = g0 * g0, 0.8, 0.3
    ma, mb = w0 * a, w0 * b
    va, vb, cov = w0 * a * a - ma * ma, w0 * b * b - mb * mb, w0 * a * b - ma * mb
    want = ((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma ** 2 + mb ** 2 + 1e-4) * (va + vb + 9e-4))
    assert math.isclose(float(ssim(torch.full((1, 1, 1, 1), a), torch.full((1, 1, 1, 1), b))), want, rel_tol=1e-5)
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 7)), (rng.random((6, 7)) > 0.7).astype(np.float64)
    got = ssim(torch.tensor(x, dtype=torch.float64)[None, None], torch.tensor(y)[None, None])
    assert math.isclose(float(got), _ssim_reference(x, y), rel_tol=1e-6)  # float32 window


def test_saliency_loss_pools_the_mask_and_adds_bce():
    # 4x4 mask with one target pixel -> max-pooled to a 1x1 map of 1; prediction 0.8:
    # BCE = -ln 0.8, SSIM of (0.8, 1) from the one-pixel formula above.
    g0 = 1 / sum(math.exp(-k * k / 4.5) for k in range(-5, 6))
    w0 = g0 * g0
    ma, mb = 0.8 * w0, w0
    va, vb, cov = w0 * 0.64 - ma * ma, w0 - mb * mb, w0 * 0.8 - ma * mb
    s = ((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma ** 2 + mb ** 2 + 1e-4) * (va + vb + 9e-4))
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 2, 3] = 1
    got = saliency_loss(torch.full((1, 1, 1, 1), 0.8), mask)
    assert math.isclose(float(got), -math.log(0.8) + 1 - s, rel_tol=1e-5)


# --- CenterNet --------------------------------------------------------------------------------

def test_focal_loss_hand_value():
    pred, gt = t([0.8, 0.3, 0.1]).view(1, 1, 1, 3), t([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    # peak: -(1 - .8)^2 ln .8; g = .5: -(1 - .5)^4 .3^2 ln .7; g = 0: -.1^2 ln .9; one peak
    want = -(0.04 * math.log(0.8) + 0.0625 * 0.09 * math.log(0.7) + 0.01 * math.log(0.9))
    assert math.isclose(float(focal_loss(pred, gt)), want, rel_tol=1e-6)


def test_centernet_loss_hand_value():
    # 4x4 input, one 1x1 px target at (1, 1): radius 0 -> heatmap target is a single peak.
    # heatmap 0.5 everywhere: peak (1 - .5)^2 ln 2 + 15 background pixels .5^2 ln 2 = 16 * .25 ln 2 = 4 ln 2.
    # wh 3 everywhere vs (1, 1): L1 = 2, x0.1; offset 0.25 vs (0, 0): 0.25.
    batch = {"image": torch.zeros(1, 1, 4, 4), "boxes": [t([1, 1, 2, 2])]}
    out = {"heatmap": torch.full((1, 1, 4, 4), 0.5), "wh": torch.full((1, 2, 4, 4), 3.0),
           "offset": torch.full((1, 2, 4, 4), 0.25)}
    loss, parts = CenterNetLoss()(out, batch, 0)
    assert math.isclose(float(loss), 4 * LN2 + 0.2 + 0.25, rel_tol=1e-5)
    assert parts["size"] == pytest.approx(2.0) and parts["offset"] == pytest.approx(0.25)


# --- YOLOv5 -----------------------------------------------------------------------------------

def test_yolov5_loss_hand_value():
    # One stride-8 level on a 16x16 input (2x2 cells), one 8x8 px anchor (1x1 cell), C = 1.
    # Box [0, 0, 16, 8]: centre (8, 4) -> grid (1.0, 0.5), size (2, 1) cells; no neighbour rule
    # fires (fractions 0 / .5 are not < .5 with grid > 1), so only cell (gj 0, gi 1), target
    # (x, y, w, h) = (0, .5, 2, 1) -> xyxy [-1, 0, 1, 1].
    # Logits 0 except objectness ln 3 (p = .75): xy = 2*.5 - .5 = .5, wh = (2*.5)^2 * 1 = 1 ->
    # [0, 0, 1, 1]; IoU 1/2, enclosing box = union -> GIoU .5: box loss .5, objectness target .5.
    # obj BCE mean over 4 cells: 3 * (-ln .25) + (-.5 ln .75 - .5 ln .25), / 4; class BCE(0, 1) = ln 2.
    out = torch.zeros(1, 6, 2, 2)
    out[:, 4] = math.log(3)
    batch = {"image": torch.zeros(1, 1, 16, 16), "boxes": [t([0, 0, 16, 8])]}
    obj = (3 * -math.log(0.25) - 0.5 * math.log(0.75) - 0.5 * math.log(0.25)) / 4
    plain = YOLOv5Loss(("p3",), (8,), [[8, 8]], box=1.0, obj=1.0, cls=1.0, balance=(1.0,), scale_gains=False)
    loss, parts = plain({"p3": out}, batch, 0)
    assert math.isclose(float(loss), 0.5 + obj + LN2, rel_tol=1e-5)
    # default gains scaled as YOLOv5 for 1 level, 16 px: box .05*3, obj 1*(16/640)^2*3 * balance 4, cls .5*3
    loss, _ = YOLOv5Loss(("p3",), (8,), [[8, 8]])({"p3": out}, batch, 0)
    assert math.isclose(float(loss), 0.15 * 0.5 + 3 * (16 / 640) ** 2 * 4 * obj + 1.5 * LN2, rel_tol=1e-5)


# --- YOLOv8 / MLSA ----------------------------------------------------------------------------

def test_dfl_hand_value():
    # softmax(ln [1, 2, 3, 4]) = [.1, .2, .3, .4]; target 1.25 -> bins 1 (weight .75) and 2 (.25)
    logits = torch.log(t([1, 2, 3, 4])).view(1, 1, 4).expand(1, 4, 4)
    want = -(0.75 * math.log(0.2) + 0.25 * math.log(0.3))
    assert math.isclose(float(dfl_loss(logits, torch.full((1, 4), 1.25))), want, rel_tol=1e-6)


def test_mlsa_yolov8_loss_hand_value():
    # One stride-4 level on a 4x4 input: a single anchor point at (2, 2). All logits 0: class
    # score .5, each side 7.5 strides = 30 px -> predicted box [-28, -28, 32, 32]. GT [1, 1, 3, 3]
    # has the same centre: DotD = 1 -> normalised target score 1 (sum 1).
    # cls: BCE(0, 1) = ln 2, x0.5. box: CIoU = IoU = 4 / 3600 (same centre and aspect), x7.5.
    # DFL: each side (2 - 1) / 4 = .25 strides; uniform logits -> CE = ln 16 for both bins, x1.5.
    crit = MLSAYOLOv8Loss(("p2",), (4,))
    out = {"p2": torch.zeros(1, 65, 1, 1)}
    loss, parts = crit(out, {"image": torch.zeros(1, 1, 4, 4), "boxes": [t([1, 1, 3, 3])]}, 0)
    assert math.isclose(float(loss), 0.5 * LN2 + 7.5 * (1 - 1 / 900) + 1.5 * math.log(16), rel_tol=1e-4)
    assert parts["positives"] == 1
    # no targets: only the class term, BCE(0, 0) = ln 2 per anchor over a target-score sum of 1
    out = {"p2": torch.zeros(1, 65, 2, 2)}
    loss, parts = crit(out, {"image": torch.zeros(1, 1, 8, 8), "boxes": [torch.zeros(0, 4)]}, 0)
    assert math.isclose(float(loss), 0.5 * 4 * LN2, rel_tol=1e-6) and parts["box"] == 0


# --- build_criterion: every model, end to end --------------------------------------------------

NAMES = ["mshnet", "dnanet", "mtunet", "mtunet-det", "mtunet-seg", "mtunet-siwd", "light-sgmtlm",
         "light-sgmtlm-tiny", "mlsa-yolov8"]
_ANCHORS = [[3, 3, 3, 4, 4, 3], [4, 5, 6, 4, 6, 5], [8, 8, 12, 8, 18, 12]]
_V5 = dict(levels=["p3", "p4", "p5"], strides=[8, 16, 32], anchors=_ANCHORS, num_classes=1)
_V8 = dict(levels=["p2", "p3", "p4", "p5"], strides=[4, 8, 16, 32], reg_max=16, num_classes=1)
_DET = {"heatmap": ("prob", 1, 1), "wh": ("raw", 2, 1), "offset": ("raw", 2, 1)}

# The output contract per model: name -> (spec, {output: (kind, channels, stride)}).
CONTRACTS = {
    "mshnet": (ModelSpec(("segmentation",), "cluster", ("seg",), aux=("seg0", "seg1", "seg2", "seg3")),
               {"seg": ("prob", 1, 1), "seg0": ("prob", 1, 1), "seg1": ("prob", 1, 2), "seg2": ("prob", 1, 4),
                "seg3": ("prob", 1, 8)}),
    "dnanet": (ModelSpec(("segmentation",), "cluster", ("seg",), aux=("seg1", "seg2", "seg3")),
               {f"seg{s}": ("prob", 1, 1) for s in ("", "1", "2", "3")}),
    "mtunet": (ModelSpec(("detection", "segmentation"), "centernet", ("heatmap", "wh", "offset", "seg")),
               {**_DET, "seg": ("prob", 1, 1)}),
    "mtunet-det": (ModelSpec(("detection",), "centernet", ("heatmap", "wh")),
                   {"heatmap": ("prob", 1, 1), "wh": ("raw", 2, 1)}),
    "mtunet-seg": (ModelSpec(("segmentation",), "cluster", ("seg",)), {"seg": ("prob", 1, 1)}),
    "light-sgmtlm": (ModelSpec(("detection",), "yolov5", ("p3", "p4", "p5"), aux=("saliency",), decode_args=_V5),
                     {"p3": ("raw", 18, 8), "p4": ("raw", 18, 16), "p5": ("raw", 18, 32), "saliency": ("prob", 1, 4)}),
    "mlsa-yolov8": (ModelSpec(("detection",), "yolov8", ("p2", "p3", "p4", "p5"), decode_args=_V8),
                    {f"p{k}": ("raw", 65, 2 ** k) for k in (2, 3, 4, 5)}),
}
CONTRACTS["mtunet-siwd"] = CONTRACTS["mtunet"]
CONTRACTS["light-sgmtlm-tiny"] = CONTRACTS["light-sgmtlm"]


def tiny_batch(size: int = 64) -> dict:
    """Two images: a 3x3 and a 2x2 target, and a 5x4 target."""
    boxes = [t([20, 10, 23, 13], [5, 25, 7, 27]), t([8, 20, 13, 24])]
    mask = torch.zeros(2, 1, size, size)
    for b, bx in enumerate(boxes):
        for x1, y1, x2, y2 in bx.int().tolist():
            mask[b, 0, y1:y2, x1:x2] = 1
    image = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0)) * 0.2 + mask * 0.8
    return {"image": image, "mask": mask, "boxes": boxes}


class RawOutputs(torch.nn.Module):
    """Learnable tensors shaped like a model's outputs (probabilities through a sigmoid)."""

    def __init__(self, layout: dict, size: int):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.kinds = {n: kind for n, (kind, _, _) in layout.items()}
        self.values = torch.nn.ParameterDict({
            n: torch.nn.Parameter(torch.randn(2, c, size // s, size // s, generator=g) * 0.5 + (3.0 if n == "wh" else 0.0))
            for n, (_, c, s) in layout.items()})

    def forward(self) -> dict[str, torch.Tensor]:
        return {n: v.sigmoid() if self.kinds[n] == "prob" else v for n, v in self.values.items()}


@pytest.mark.parametrize("name", NAMES)
def test_criterion_descends_on_raw_outputs(name):
    spec, layout = CONTRACTS[name]
    crit = criterion_for(name, spec, mean_target_size=3.0)
    batch, outs = tiny_batch(), RawOutputs(layout, 64)
    # Adam, not plain SGD: the whole-batch IoU losses give 1e-5 per-pixel gradients, which a
    # fixed SGD step would not move; the test is that the gradient points downhill.
    opt = torch.optim.Adam(outs.parameters(), lr=0.05)
    losses = []
    for _ in range(4):
        loss, parts = crit(outs(), batch, epoch=10)
        assert loss.ndim == 0 and torch.isfinite(loss) and parts and all(math.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in outs.parameters() if p.grad is not None)
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "mlsa-yolov8" else pytest.mark.slow) for n in NAMES])
def test_criterion_trains_the_registered_model(name):
    """The real model (narrow) on a 32x32 batch; slow except for MLSA-YOLOv8, whose assigner
    sees the real head's strides (the other models' forward/backward is covered by the model suite)."""
    from edgeirst.models import create_model, list_models

    if name not in list_models():
        pytest.skip(f"model {name!r} is not registered yet")
    torch.manual_seed(0)
    try:
        model = create_model(name, width=0.125)
    except EdgeirstError:
        model = create_model(name)
    crit = criterion_for(name, model.spec, mean_target_size=3.0)
    batch = tiny_batch(32)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(3):
        loss, _ = crit(model(batch["image"]), batch, epoch=10)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert min(losses[1:]) < losses[0], losses


@torch.no_grad()
def test_build_criterion_weights_and_errors():
    spec, layout = CONTRACTS["mtunet"]
    outs, batch = RawOutputs(layout, 64)(), tiny_batch()
    det, _ = criterion_for("mtunet-det", CONTRACTS["mtunet-det"][0])(outs, batch, 0)
    seg, _ = criterion_for("mtunet-seg", CONTRACTS["mtunet-seg"][0])(outs, batch, 0)
    both, parts = criterion_for("mtunet", spec)(outs, batch, 0)  # offset present -> det includes it
    assert math.isclose(float(both), 3 * parts["det"] + parts["seg"], rel_tol=1e-6)
    assert math.isclose(parts["seg"], float(seg), rel_tol=1e-6) and math.isclose(parts["det"], float(det), rel_tol=1e-6)
    no_offset = {k: v for k, v in outs.items() if k != "offset"}
    det_only, det_parts = criterion_for("mtunet-det", CONTRACTS["mtunet-det"][0])(no_offset, batch, 0)
    assert "offset" not in det_parts and float(det_only) < float(det)
    custom, _ = criterion_for("mtunet", spec, det_weight=1.0, seg_weight=2.0)(outs, batch, 0)
    assert math.isclose(float(custom), parts["det"] + 2 * parts["seg"], rel_tol=1e-6)
    with pytest.raises(EdgeirstError, match="unknown model 'yolov9'"):
        criterion_for("yolov9", spec)
    with pytest.raises(EdgeirstError, match="unknown loss option"):
        criterion_for("mshnet", CONTRACTS["mshnet"][0], det_weight=2.0)
    with pytest.raises(EdgeirstError, match="anchors"):
        criterion_for("light-sgmtlm", ModelSpec(("detection",), "yolov5", ("p3",), decode_args={"levels": ["p3"], "strides": [8]}))


@pytest.mark.parametrize("name", NAMES)
def test_criterion_on_images_without_targets(name):
    spec, layout = CONTRACTS[name]
    outs = RawOutputs(layout, 32)
    batch = {"image": torch.zeros(2, 1, 32, 32), "mask": torch.zeros(2, 1, 32, 32), "boxes": [torch.zeros(0, 4)] * 2}
    loss, parts = criterion_for(name, spec)(outs(), batch, epoch=10)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and all(math.isfinite(v) for v in parts.values())


def test_sls_punishes_predictions_on_background_only_images() -> None:
    from edgeirst.losses.sls import sls_loss

    empty = torch.zeros(1, 1, 16, 16)
    for warm in (True, False):
        pred = torch.full((1, 1, 16, 16), 0.05, requires_grad=True)
        loss = sls_loss(pred, empty, warm=warm)
        loss.backward()
        assert loss.item() > 0.9 and pred.grad.abs().sum() > 0  # 12.8 predicted pixels on an empty image
        assert sls_loss(torch.zeros(1, 1, 16, 16), empty, warm=warm).item() == pytest.approx(0.0)
    # a batch of images that all have targets keeps the official loss exactly
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:7, 4:7] = 1
    pred = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    from edgeirst.losses.sls import location_loss

    inter = (pred * target).sum(dim=(1, 2, 3))
    ps, ts = pred.sum(dim=(1, 2, 3)), target.sum(dim=(1, 2, 3))
    d = ((ps - ts) / 2) ** 2
    alpha = (torch.minimum(ps, ts) + d) / (torch.maximum(ps, ts) + d)
    official = 1 - (alpha * inter / (ps + ts - inter)).mean() + location_loss(pred, target)
    assert sls_loss(pred, target).item() == pytest.approx(official.item(), rel=1e-6)
