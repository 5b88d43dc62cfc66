"""Label assignment: CenterNet heatmaps, YOLOv5 anchor matching, MLSA multi-scale assignment."""

from __future__ import annotations

import math

import torch

from edgeirst.losses.targets import (anchor_points, centernet_targets, draw_gaussian, gaussian_radius,
                                    gaussian_sigma, multiscale_assign, pad_boxes, yolov5_targets)


def test_gaussian_radius_matches_centernet_formula_for_a_3x3_box():
    # CenterNet's three roots for h = w = 3, min_overlap 0.7:
    # r1 = (6 + sqrt(36 - 4 * 9*0.3/1.7)) / 2 = 5.7227
    # r2 = (12 + sqrt(144 - 16 * 2.7)) / 2 = 11.0200
    # r3 = (-8.4 + sqrt(70.56 + 4 * 2.8 * 2.7)) / 2 = 0.8200   -> min
    assert math.isclose(gaussian_radius(3, 3), (-8.4 + math.sqrt(8.4 ** 2 + 4 * 2.8 * 2.7)) / 2, rel_tol=1e-9)
    assert math.isclose(gaussian_radius(3, 3), 0.82, abs_tol=1e-3)


def test_sigma_grows_with_target_size():
    radii = [max(0, int(gaussian_radius(s, s))) for s in (2, 8, 20, 40)]
    sigmas = [gaussian_sigma(r) for r in radii]
    assert radii[0] == 0 and sigmas == sorted(sigmas) and sigmas[-1] > sigmas[1] > sigmas[0]
    assert math.isclose(gaussian_sigma(2), 5 / 6)


def test_draw_gaussian_values_and_clipping():
    hm = torch.zeros(5, 5)
    draw_gaussian(hm, 0, 1, 1)  # radius 1 -> sigma 0.5, clipped at the left edge
    assert hm[1, 0] == 1.0
    assert math.isclose(float(hm[1, 1]), math.exp(-1 / (2 * 0.25)), rel_tol=1e-6)  # exp(-2)
    assert math.isclose(float(hm[0, 1]), math.exp(-2 / (2 * 0.25)), rel_tol=1e-6)  # exp(-4)
    assert hm[:, 2:].sum() == 0
    draw_gaussian(hm, 0, 2, 0)  # overlapping peaks take the max, never the sum
    assert hm[2, 0] == 1.0 and hm[1, 0] == 1.0


def test_centernet_targets_peak_wh_and_offset():
    boxes = [torch.tensor([[4.0, 6.0, 14.0, 10.0]]), torch.zeros(0, 4)]
    t = centernet_targets(boxes, (16, 16), stride=1)
    # mean pixel index: x (4 + 13) / 2 = 8.5, y (6 + 9) / 2 = 7.5 -> cell (8, 7), offset (0.5, 0.5)
    assert t.heatmap.shape == (2, 1, 16, 16)
    assert t.heatmap[0, 0, 7, 8] == 1.0 and t.heatmap.max() == 1.0 and t.heatmap[1].sum() == 0
    assert (t.heatmap[0, 0] == 1).sum() == 1
    assert [int(i) for i in t.index] == [0, 7, 8]
    assert t.wh.tolist() == [[10.0, 4.0]] and t.offset.tolist() == [[0.5, 0.5]]
    t2 = centernet_targets(boxes, (8, 8), stride=2)  # same box on a stride-2 map: cell (4, 3)
    assert t2.heatmap[0, 0, 3, 4] == 1.0 and t2.wh.tolist() == [[10.0, 4.0]]


def test_yolov5_targets_anchor_and_neighbour_cells():
    # 64x64 image, one stride-8 level (8x8 grid), anchors (10,13) and (100,100) px.
    # box centre (25, 25) -> grid (3.125, 3.125); wh 10 px = 1.25 cells.
    # ratios vs anchor 0 (1.25, 1.625): max(1, 1.3) < 4 -> match; vs anchor 1: 10 > 4 -> no match.
    # x and y fractions 0.125 < 0.5 -> also the left (gi 2) and upper (gj 2) neighbours.
    boxes = [torch.zeros(0, 4), torch.tensor([[20.0, 20.0, 30.0, 30.0]])]
    (m,) = yolov5_targets(boxes, [(8, 8)], [8], [torch.tensor([10.0, 13.0, 100.0, 100.0])])
    cells = sorted(zip(m.b.tolist(), m.a.tolist(), m.gj.tolist(), m.gi.tolist()))
    assert cells == [(1, 0, 2, 3), (1, 0, 3, 2), (1, 0, 3, 3)]
    own = (m.gj == 3) & (m.gi == 3)
    assert torch.allclose(m.box[own], torch.tensor([[0.125, 0.125, 1.25, 1.25]]))
    left = (m.gi == 2)
    assert torch.allclose(m.box[left], torch.tensor([[1.125, 0.125, 1.25, 1.25]]))
    assert torch.allclose(m.anchor, torch.tensor([[1.25, 1.625]]).expand(3, 2))


def test_yolov5_targets_far_side_neighbours_and_no_match():
    # centre (52, 44) / 8 = (6.5, 5.5): fraction 0.5 is not < 0.5 on the near side; on the far side
    # 8 - 6.5 = 1.5 has fraction 0.5 too -> only the own cell (6, 5).
    boxes = [torch.tensor([[48.0, 40.0, 56.0, 48.0]])]
    (m,) = yolov5_targets(boxes, [(8, 8)], [8], [torch.tensor([8.0, 8.0])])
    assert list(zip(m.gj.tolist(), m.gi.tolist())) == [(5, 6)]
    # centre (58, 58) / 8 = (7.25, 7.25): far-side distance 0.75 -> fraction .75, near .25 -> left/up
    (m,) = yolov5_targets([torch.tensor([[54.0, 54.0, 62.0, 62.0]])], [(8, 8)], [8], [torch.tensor([8.0, 8.0])])
    assert sorted(zip(m.gj.tolist(), m.gi.tolist())) == [(6, 7), (7, 6), (7, 7)]
    (m,) = yolov5_targets([torch.tensor([[0.0, 0.0, 2.0, 2.0]])], [(8, 8)], [8], [torch.tensor([40.0, 40.0])])
    assert len(m.b) == 0  # 40 / 2 = 20 > 4


def test_anchor_points_are_cell_centres():
    pts, st = anchor_points([(2, 2), (1, 1)], [4, 8])
    assert pts.tolist() == [[2, 2], [6, 2], [2, 6], [6, 6], [4, 4]] and st.tolist() == [4, 4, 4, 4, 8]


def _assign(boxes, size=64, strides=(4, 8, 16, 32), half=4.0, shift=0.0, **kw):
    """Assignment with predictions = (2 * half)-px boxes centred ``shift`` px right/down of each point."""
    shapes = [(size // s, size // s) for s in strides]
    pts, st = anchor_points(shapes, list(strides))
    gt, valid = pad_boxes(boxes)
    scores = torch.full((len(boxes), len(pts), 1), 0.5)
    pred_boxes = torch.cat([pts + shift - half, pts + shift + half], 1).expand(len(boxes), -1, -1)
    return multiscale_assign(scores, pred_boxes, pts, st, gt, valid, **kw), st


def test_every_gt_gets_a_positive_even_a_2px_target():
    boxes = [torch.tensor([[9.0, 9.0, 11.0, 11.0], [40.0, 30.0, 52.0, 44.0]]), torch.tensor([[61.0, 1.0, 63.0, 3.0]])]
    asg, st = _assign(boxes)
    for b, bx in enumerate(boxes):
        for k in range(len(bx)):
            assert (asg.fg[b] & (asg.gt_index[b] == k)).any(), (b, k)
            assert asg.scores[b, asg.fg[b] & (asg.gt_index[b] == k)].max() > 0, (b, k)
    assert torch.allclose(asg.boxes[0][asg.fg[0] & (asg.gt_index[0] == 0)], boxes[0][0])
    assert (asg.scores[~asg.fg] == 0).all()


def test_tiny_target_is_matched_by_dotd_on_high_resolution_heads():
    # Heads at stride 4 (points 2, 6, ..., 30, 34, ...) and 32 (points 16, 48). A 2x2 px target
    # [30, 32)^2 and 2x2 px predictions centred 3 px right/down of each point: no prediction
    # intersects the target (the nearest, from points 26 and 30, are [28, 30)^2 and [32, 34)^2,
    # touching it), so by IoU/CIoU every candidate has overlap 0 -> no usable positive, at stride
    # 32 or anywhere. DotD on the stride-4 head still ranks them: those predictions are
    # sqrt(2^2 + 2^2) = 2.83 px away -> score exp(-2.83 / 4) = 0.49.
    boxes = [torch.tensor([[30.0, 30.0, 32.0, 32.0]])]
    by_iou, _ = _assign(boxes, strides=(4, 32), half=1.0, shift=3.0, dotd_strides=())
    assert by_iou.scores.sum() == 0
    asg, st = _assign(boxes, strides=(4, 32), half=1.0, shift=3.0, mean_size=4.0, dotd_strides=(4,))
    scored = asg.fg[0] & (asg.scores[0, :, 0] > 0)
    assert scored.any() and set(st[scored].tolist()) == {4.0}
    assert math.isclose(float(asg.scores.max()), math.exp(-math.sqrt(8) / 4), rel_tol=1e-4)


def test_anchor_claimed_by_two_gts_keeps_the_closer():
    # two 2x2 targets 3 px apart share their stride-8 and coarser candidates
    boxes = [torch.tensor([[20.0, 20.0, 22.0, 22.0], [23.0, 20.0, 25.0, 22.0]])]
    asg, st = _assign(boxes, strides=(4, 8), size=32)
    assert (asg.fg.sum() > 0) and set(asg.gt_index[0, asg.fg[0]].tolist()) == {0, 1}


def test_no_targets_means_no_positives():
    asg, _ = _assign([torch.zeros(0, 4)])
    assert not asg.fg.any() and asg.scores.sum() == 0
