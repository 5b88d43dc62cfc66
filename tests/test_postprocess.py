"""Hand-computed tests of edgeirst.postprocess (clustering, CenterNet/YOLO decoding, NMS,
decode_outputs) and edgeirst.preprocess (Letterbox round trips, to_unit)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from edgeirst.postprocess import (cluster_targets, decode_centernet, decode_outputs, decode_yolov5,
                                  decode_yolov8, nms)
from edgeirst.preprocess import Letterbox, prepare, to_unit


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# ---------------------------------------------------------------- cluster_targets


def test_diagonal_pixels_are_one_target_with_eight_connectivity() -> None:
    prob = np.zeros((8, 8), np.float32)
    prob[2, 2] = prob[3, 3] = 0.9
    t, labels = cluster_targets(prob)
    assert len(t) == 1 and t.areas.tolist() == [2]
    assert labels[2, 2] == labels[3, 3] == 1
    n4, _ = cv2.connectedComponents((prob > 0.5).astype(np.uint8), connectivity=4)
    assert n4 - 1 == 2  # what four-connectivity would have said


def test_cluster_centroid_box_area_peak() -> None:
    prob = np.zeros((6, 8), np.float32)
    prob[1, 1], prob[1, 2], prob[1, 3], prob[2, 1] = 0.6, 0.9, 0.7, 0.55  # an L
    prob[4, 6] = 0.5  # not > 0.5: background
    t, labels = cluster_targets(prob, 0.5)
    assert len(t) == 1
    np.testing.assert_allclose(t.centroids, [[(1 + 2 + 3 + 1) / 4, (1 + 1 + 1 + 2) / 4]])
    np.testing.assert_array_equal(t.boxes, [[1, 1, 4, 3]])  # exclusive right/bottom
    assert t.areas.tolist() == [4] and t.scores.tolist() == pytest.approx([0.9])
    assert labels[4, 6] == 0 and (labels > 0).sum() == 4


def test_cluster_min_area_relabels() -> None:
    prob = np.zeros((10, 10), np.float32)
    prob[0, 0] = 0.9  # area 1, dropped
    prob[3, 2:5] = 0.8  # area 3 -> target 0
    prob[7, 7:9] = 0.7  # area 2 -> target 1
    t, labels = cluster_targets(prob, 0.5, min_area=2)
    assert t.areas.tolist() == [3, 2] and t.scores.tolist() == pytest.approx([0.8, 0.7])
    assert labels[0, 0] == 0 and (labels[3, 2:5] == 1).all() and (labels[7, 7:9] == 2).all()
    assert set(np.unique(labels).tolist()) == {0, 1, 2}


def test_cluster_empty_map() -> None:
    t, labels = cluster_targets(np.zeros((4, 5), np.float32))
    assert len(t) == 0 and t.boxes.shape == (0, 4) and labels.shape == (4, 5) and not labels.any()


# ---------------------------------------------------------------- CenterNet


def _centernet_maps() -> tuple[np.ndarray, np.ndarray]:
    hm = np.zeros((1, 16, 16), np.float32)
    wh = np.zeros((2, 16, 16), np.float32)
    hm[0, 5, 4], wh[:, 5, 4] = 0.9, (5, 3)  # peak at x=4, y=5: a target on pixels x 2..6, y 4..6
    hm[0, 5, 5] = 0.8  # neighbour of a higher peak: suppressed by the 3x3 max
    hm[0, 10, 10], wh[:, 10, 10] = 0.6, (1, 1)  # a one-pixel target
    hm[0, 2, 12] = 0.2  # below the threshold
    return hm, wh


def test_centernet_peaks_suppression_threshold() -> None:
    hm, wh = _centernet_maps()
    t = decode_centernet(hm, wh, threshold=0.3)
    np.testing.assert_allclose(t.boxes, [[2, 4, 7, 7], [10, 10, 11, 11]])  # exclusive edges
    np.testing.assert_allclose(t.centroids, [[4, 5], [10, 10]])  # mean pixel index
    np.testing.assert_allclose(t.scores, [0.9, 0.6])
    np.testing.assert_allclose(t.areas, [15, 1])
    assert len(decode_centernet(hm, wh, threshold=0.1)) == 3  # the 0.2 peak is isolated


def test_centernet_box_agrees_with_clustering_of_the_same_target() -> None:
    mask = np.zeros((16, 16), np.float32)
    mask[4:7, 2:8] = 1.0  # 6x3 px: mean pixel index (4.5, 5), box [2, 4, 8, 7]
    ref = cluster_targets(mask)[0]
    hm, wh, off = np.zeros((1, 16, 16), np.float32), np.zeros((2, 16, 16), np.float32), np.zeros((2, 16, 16), np.float32)
    hm[0, 5, 4], wh[:, 5, 4], off[:, 5, 4] = 0.9, (6, 3), (0.5, 0.0)  # cell 4 + offset 0.5
    t = decode_centernet(hm, wh, off, threshold=0.3)
    np.testing.assert_allclose(t.boxes, ref.boxes)
    np.testing.assert_allclose(t.centroids, ref.centroids)
    hm2, wh2, off2 = np.zeros((1, 8, 8), np.float32), np.zeros((2, 8, 8), np.float32), np.zeros((2, 8, 8), np.float32)
    hm2[0, 2, 2], wh2[:, 2, 2], off2[:, 2, 2] = 0.9, (6, 3), (0.25, 0.5)  # stride 2: (4.5, 5) / 2
    t2 = decode_centernet(hm2, wh2, off2, threshold=0.3, stride=2)
    np.testing.assert_allclose(t2.boxes, ref.boxes)
    np.testing.assert_allclose(t2.centroids, ref.centroids)


def test_centernet_topk_offset_stride_classes() -> None:
    hm, wh = _centernet_maps()
    assert decode_centernet(hm, wh, threshold=0.3, topk=1).scores.tolist() == pytest.approx([0.9])
    off = np.zeros((2, 16, 16), np.float32)
    off[:, 5, 4] = (0.25, -0.5)
    t = decode_centernet(hm, wh, off, threshold=0.3, topk=1)
    np.testing.assert_allclose(t.centroids, [[4.25, 4.5]])
    np.testing.assert_allclose(t.boxes, [[2.25, 3.5, 7.25, 6.5]])
    t = decode_centernet(hm, wh, threshold=0.3, topk=1, stride=4)  # wh stays in input pixels
    np.testing.assert_allclose(t.centroids, [[16, 20]])
    np.testing.assert_allclose(t.boxes, [[14, 19, 19, 22]])
    two = np.concatenate([np.zeros_like(hm), hm])  # classes are merged by max
    np.testing.assert_allclose(decode_centernet(two, wh, threshold=0.3).boxes, [[2, 4, 7, 7], [10, 10, 11, 11]])


# ---------------------------------------------------------------- YOLO


def test_yolov5_decodes_a_hand_encoded_box() -> None:
    anchors = [[10, 20, 30, 16]]  # two anchors at stride 8
    p = np.full((2, 6, 4, 4), -20.0, np.float32)  # (A, 5 + C, H, W)
    a, gy, gx = 1, 1, 2
    p[a, 0, gy, gx] = logit(0.75)  # x: (0.75*2 - 0.5 + 2) * 8 = 24
    p[a, 1, gy, gx] = logit(0.25)  # y: (0.25*2 - 0.5 + 1) * 8 = 8
    p[a, 2, gy, gx] = logit(0.75)  # w: (0.75*2)^2 * 30 = 67.5
    p[a, 3, gy, gx] = logit(0.25)  # h: (0.25*2)^2 * 16 = 4
    p[a, 4, gy, gx], p[a, 5, gy, gx] = logit(0.9), logit(0.8)
    t = decode_yolov5([p.reshape(12, 4, 4)], [8], anchors, threshold=0.25)
    np.testing.assert_allclose(t.boxes, [[24 - 33.75, 6, 24 + 33.75, 10]], atol=1e-4)
    np.testing.assert_allclose(t.scores, [0.72], atol=1e-5)
    np.testing.assert_allclose(t.centroids, [[24, 8]], atol=1e-4)
    assert len(decode_yolov5([p.reshape(12, 4, 4)], [8], anchors, threshold=0.75)) == 0


def test_yolov5_multi_class_score_is_objectness_times_best_class() -> None:
    p = np.full((1, 7, 2, 2), -20.0, np.float32)
    p[0, :4, 0, 0] = 0.0  # centre of cell (0, 0), box = anchor
    p[0, 4, 0, 0], p[0, 5, 0, 0], p[0, 6, 0, 0] = logit(0.5), logit(0.6), logit(0.9)
    t = decode_yolov5([p.reshape(7, 2, 2)], [16], [[8, 12]], num_classes=2, threshold=0.25)
    np.testing.assert_allclose(t.boxes, [[8 - 4, 8 - 6, 8 + 4, 8 + 6]], atol=1e-4)
    np.testing.assert_allclose(t.scores, [0.45], atol=1e-5)


def _yolov8_level(reg_max: int = 16) -> np.ndarray:
    p = np.zeros((4 * reg_max + 1, 4, 4), np.float32)
    p[4 * reg_max] = -10.0  # class logits: nothing anywhere...
    gx, gy = 1, 2
    p[4 * reg_max, gy, gx] = 2.0  # ...except here (sigmoid 0.8808)
    for side, dist in enumerate([1.0, 2.0, 3.0]):  # l, t, r: one bin each
        p[side * reg_max + int(dist), gy, gx] = 50.0
    p[3 * reg_max + 0, gy, gx] = p[3 * reg_max + 1, gy, gx] = 50.0  # b: bins 0 and 1 -> 0.5
    return p


def test_yolov8_decodes_a_hand_encoded_box() -> None:
    t = decode_yolov8([_yolov8_level()], [8], reg_max=16, threshold=0.25)
    # anchor (1.5, 2.5) cells; l, t, r, b = 1, 2, 3, 0.5 strides
    np.testing.assert_allclose(t.boxes, [[4, 4, 36, 24]], atol=1e-4)
    np.testing.assert_allclose(t.scores, [1 / (1 + math.exp(-2))], atol=1e-6)
    assert len(decode_yolov8([_yolov8_level()], [8], threshold=0.9)) == 0


# ---------------------------------------------------------------- NMS


def test_nms_keeps_best_and_suppresses_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.85], np.float32)
    # IoU(A, B) = 90/110, IoU(A, D) = 0.5
    assert nms(boxes, scores, iou=0.45).tolist() == [0, 2]
    assert nms(boxes, scores, iou=0.6).tolist() == [0, 3, 2]
    assert nms(boxes, scores, iou=0.45, max_det=1).tolist() == [0]
    assert nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)).shape == (0,)


def test_yolo_duplicates_are_suppressed() -> None:
    p = _yolov8_level()
    p[:, 2, 2] = p[:, 2, 1]  # the same distances one cell right: box shifted by 8 px
    p[64, 2, 2] = 1.0  # lower score
    t = decode_yolov8([p], [8], threshold=0.25, iou=0.45)
    assert len(t) == 1 and t.boxes[0, 0] == pytest.approx(4, abs=1e-4)  # IoU 24/40 -> suppressed
    assert len(decode_yolov8([p], [8], threshold=0.25, iou=0.7)) == 2


# ---------------------------------------------------------------- decode_outputs


def test_decode_outputs_cluster_in_source_pixels() -> None:
    meta = ModelMeta("mshnet", size_divisor=32, threshold=0.5)
    box = Letterbox.plan((40, 50), meta)
    seg = np.zeros((1, 64, 64), np.float32)
    seg[0, 10:12, 20:23] = 0.8
    seg[0, 50:55, 55:60] = 0.9  # in the padding: cropped away
    pred = decode_outputs({"seg": seg}, meta, box)
    assert pred.prob.shape == (40, 50)
    np.testing.assert_array_equal(pred.targets.boxes, [[20, 10, 23, 12]])


def test_decode_outputs_maps_boxes_through_a_fixed_letterbox() -> None:
    meta = ModelMeta("mlsa-yolov8", dynamic=False, input_size=(32, 32), outputs=("p3",), decode="yolov8",
                     decode_args={"levels": ["p3"], "strides": [8], "reg_max": 16}, tasks=("detection",))
    box = Letterbox.plan((64, 48), meta)  # scale 0.5
    pred = decode_outputs({"p3": _yolov8_level()}, meta, box, threshold=0.25)
    assert pred.prob is None
    np.testing.assert_allclose(pred.targets.boxes, [[8, 8, 48, 48]], atol=1e-3)  # x2, clipped to width 48
    np.testing.assert_allclose(pred.targets.areas, [32 * 20 / 0.25], atol=1e-2)


# ---------------------------------------------------------------- Letterbox and to_unit


def test_letterbox_pad_mode_round_trip() -> None:
    meta = ModelMeta("m", dynamic=True, size_divisor=32)
    box = Letterbox.plan((240, 330), meta)
    assert box.dst_hw == (256, 352) and box.scale == 1.0
    plane = np.random.default_rng(0).random((240, 330)).astype(np.float32)
    placed = box.apply(plane, pad_value=-1.0)
    assert placed.shape == (256, 352) and (placed[240:] == -1).all() and (placed[:, 330:] == -1).all()
    np.testing.assert_array_equal(box.map_to_source(placed), plane)
    np.testing.assert_array_equal(box.boxes_to_source(np.array([[-5, 10, 400, 250]], np.float32)), [[0, 10, 330, 240]])


def test_letterbox_fixed_scale_round_trip() -> None:
    meta = ModelMeta("m", dynamic=False, input_size=(256, 256))
    box = Letterbox.plan((480, 640), meta)
    assert box.scale == pytest.approx(0.4) and box.inner_hw == (192, 256) and box.dst_hw == (256, 256)
    np.testing.assert_allclose(box.boxes_to_source(np.array([[40, 20, 80, 60]], np.float32)), [[100, 50, 200, 150]])
    np.testing.assert_allclose(box.boxes_to_source(np.array([[40, 20]], np.float32)), [[100, 50]])  # points
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    ramp = (xx + yy) / 1120
    placed = box.apply(ramp)
    assert (placed[192:] == 0).all()
    back = box.map_to_source(placed)
    assert back.shape == (480, 640)
    assert np.abs(back - ramp)[5:-5, 5:-5].max() < 0.01
    up = Letterbox.plan((64, 128), meta)  # scale 2 (up), padding at the bottom
    assert up.scale == 2.0 and up.inner_hw == (128, 256)
    np.testing.assert_allclose(up.boxes_to_source(np.array([[20, 40, 60, 100]], np.float32)), [[10, 20, 30, 50]])


def test_prepare_normalises_and_checks_the_buffer() -> None:
    meta = ModelMeta("m", in_chans=3, mean=(0.5,), std=(0.25,), size_divisor=16)
    img = np.full((20, 30), 255, np.uint8)
    x, box = prepare(img, meta)
    assert x.shape == (3, 32, 32) and box.dst_hw == (32, 32)
    assert (x[:, :20, :30] == 2.0).all() and (x[:, 20:, :] == -2.0).all()
    with pytest.raises(EdgeirstError, match="buffer"):
        prepare(img, meta, out=np.empty((3, 20, 30), np.float32))


def test_to_unit_uint8_uint16_and_channels() -> None:
    grey = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(to_unit(grey), [[0, 0.2, 1]], atol=1e-6)
    np.testing.assert_allclose(to_unit(grey[..., None]), [[0, 0.2, 1]], atol=1e-6)
    np.testing.assert_allclose(to_unit(np.repeat(grey[..., None], 3, axis=2)), [[0, 0.2, 1]], atol=1e-6)  # grey copies
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 2] = 255  # BGR
    assert to_unit(red)[0, 0] == pytest.approx(round(0.299 * 255) / 255, abs=1 / 255)
    y16 = np.arange(1000, dtype=np.uint16).reshape(10, 100) + 3000
    np.testing.assert_allclose(to_unit(y16, agc=(0, 100)), (y16 - 3000.0) / 999, atol=1e-6)
    stretched = to_unit(y16)  # 0.5/100 percentiles: the low end clips, the maximum is kept
    assert stretched.min() == 0.0 and stretched.max() == 1.0 and (stretched == 0).sum() == 5
    assert (stretched == 1.0).sum() == 1
    flat = np.full((64, 64), 7000, np.uint16)
    flat[30:32, 40:42] = 7400  # a 2x2 hot target on a flat frame (0.1% of the pixels) stays the brightest
    unit = to_unit(flat)
    assert unit[30, 40] == 1.0 and unit[0, 0] == 0.0
    assert not to_unit(np.full((4, 4), 7000, np.uint16)).any()  # flat frame: no gain to apply
    with pytest.raises(EdgeirstError, match="channels"):
        to_unit(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(EdgeirstError, match="pixel type"):
        to_unit(np.zeros((4, 4), np.int32))


def _dense_yolov5(levels, strides, anchors, num_classes, threshold):
    """Reference: every cell decoded (the formula as YOLOv5 writes it), then thresholded."""
    boxes, scores = [], []
    for p, s, anc in zip(levels, strides, anchors):
        na, (_, h, w) = len(anc) // 2, p.shape
        p = 1.0 / (1.0 + np.exp(-np.clip(p.reshape(na, 5 + num_classes, h, w), -50, 50)))
        gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        cx, cy = (p[:, 0] * 2 - 0.5 + gx) * s, (p[:, 1] * 2 - 0.5 + gy) * s
        bw = (p[:, 2] * 2) ** 2 * np.asarray(anc[0::2], np.float32)[:, None, None]
        bh = (p[:, 3] * 2) ** 2 * np.asarray(anc[1::2], np.float32)[:, None, None]
        score = p[:, 4] * p[:, 5:].max(axis=1)
        m = score > threshold
        boxes.append(np.stack([cx[m] - bw[m] / 2, cy[m] - bh[m] / 2, cx[m] + bw[m] / 2, cy[m] + bh[m] / 2], 1))
        scores.append(score[m])
    return np.concatenate(boxes), np.concatenate(scores)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_yolov5_candidates_only_decode_equals_the_dense_formula(num_classes) -> None:
    rng = np.random.default_rng(num_classes)
    anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
    for threshold in (0.05, 0.25, 0.5):  # 252 cells: fewer than NMS's 300 detections at most
        levels = [rng.normal(-1, 3, (3 * (5 + num_classes), h, h)).astype(np.float32) for h in (8, 4, 2)]
        boxes, scores = _dense_yolov5(levels, [8, 16, 32], anchors, num_classes, threshold)
        assert len(scores) > 3  # the case has candidates to keep and to suppress
        t = decode_yolov5(levels, [8, 16, 32], anchors, num_classes, threshold, iou=1.0)  # NMS keeps all
        order = np.argsort(-scores, kind="stable")
        got = np.argsort(-t.scores, kind="stable")
        np.testing.assert_allclose(t.scores[got], scores[order], rtol=0, atol=0)
        np.testing.assert_allclose(t.boxes[got], boxes[order], rtol=0, atol=1e-4)
