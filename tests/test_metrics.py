"""Hand-computed cases for edgeirst.metrics (IoU, nIoU, Pd, Fa, AP) and an AP check against
pycocotools."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.metrics import Evaluator, box_iou, rasterize_targets, write_roc
from edgeirst.postprocess import Prediction, Targets, cluster_targets

H, W = 32, 32


def seg(prob: np.ndarray, threshold: float = 0.5) -> Prediction:
    """A segmentation model's answer: the map and its clustered targets."""
    prob = prob.astype(np.float32)
    return Prediction(prob, cluster_targets(prob, threshold)[0])


def mask(*rects: tuple[int, int, int, int], hw: tuple[int, int] = (H, W)) -> np.ndarray:
    """Bool mask with rectangles given as (x, y, w, h)."""
    m = np.zeros(hw, bool)
    for x, y, w, h in rects:
        m[y:y + h, x:x + w] = True
    return m


def evaluate(*pairs: tuple[np.ndarray, Prediction], **kw) -> dict:
    ev = Evaluator(**kw)
    for gt, pred in pairs:
        ev.update(gt, pred)
    return ev.compute()


def test_shifted_mask_iou_by_hand() -> None:
    gt = mask((10, 10, 4, 4))
    pred = mask((11, 10, 4, 4))  # one pixel right: 12 shared, 20 in the union
    m = evaluate((gt, seg(pred)))
    assert m["iou"] == pytest.approx(12 / 20)
    assert m["niou"] == pytest.approx(12 / 20)
    assert m["pd"] == 1.0 and m["fa"] == 0.0  # centroid moved by 1 px < 3
    assert m["images"] == 1 and m["targets"] == 1 and m["threshold"] == 0.5


def test_split_target_one_part_matched_other_is_false_alarm() -> None:
    gt = mask((10, 10, 6, 1))  # centroid x = 12.5
    pred = mask((10, 10, 2, 1), (15, 10, 3, 1))  # centroids x = 10.5 (d = 2), x = 16 (d = 3.5)
    m = evaluate((gt, seg(pred)))
    assert m["pd"] == 1.0
    assert m["fa"] == pytest.approx(3 / (H * W))
    assert m["iou"] == pytest.approx(3 / 8)  # shared 10,11,15; union 10..17


def test_split_target_both_parts_close_only_first_matches() -> None:
    gt = mask((10, 10, 6, 1))
    pred = mask((10, 10, 2, 1), (14, 10, 2, 1))  # both at d = 2: the first matches, one GT only
    m = evaluate((gt, seg(pred)))
    assert m["pd"] == 1.0
    assert m["fa"] == pytest.approx(2 / (H * W))


def test_false_alarm_pixels_over_all_pixels() -> None:
    gt = mask((5, 5, 2, 2))
    pred = mask((5, 5, 2, 2), (20, 20, 5, 1))
    m = evaluate((gt, seg(pred)))
    assert m["pd"] == 1.0
    assert m["fa"] == pytest.approx(5 / (H * W))
    assert m["iou"] == pytest.approx(4 / 9)


def test_merged_targets_centroid_distance_decides() -> None:
    gt = mask((10, 10, 2, 2), (14, 10, 2, 2))  # centroids x = 10.5 and 14.5
    # one blob x 10..15: centroid 12.5, 2 px from both; the first GT takes it, the second gets nothing
    m = evaluate((gt, seg(mask((10, 10, 6, 2)))))
    assert (m["pd"], m["fa"]) == (0.5, 0.0)
    # blob x 10..17: centroid 13.5, 3 px from the first (not < 3), 1 px from the second
    m = evaluate((gt, seg(mask((10, 10, 8, 2)))))
    assert (m["pd"], m["fa"]) == (0.5, 0.0)
    # targets far apart: the blob's centroid is near neither; all its pixels are false alarms
    gt = mask((4, 10, 2, 2), (20, 10, 2, 2))
    m = evaluate((gt, seg(mask((4, 10, 18, 2)))))
    assert m["pd"] == 0.0
    assert m["fa"] == pytest.approx(36 / (H * W))


def test_pd_uses_distance_strictly_below_three() -> None:
    gt = mask((10, 10, 1, 1))
    assert evaluate((gt, seg(mask((13, 10, 1, 1)))))["pd"] == 0.0  # exactly 3 px
    assert evaluate((gt, seg(mask((12, 12, 1, 1)))))["pd"] == 1.0  # 2.83 px


def test_empty_prediction() -> None:
    gt = mask((10, 10, 3, 3))
    m = evaluate((gt, seg(np.zeros((H, W)))))
    assert m["iou"] == 0.0 and m["niou"] == 0.0 and m["pd"] == 0.0 and m["fa"] == 0.0
    assert m["ap50"] == 0.0 and m["ap"] == 0.0


def test_empty_ground_truth() -> None:
    gt = np.zeros((H, W), bool)
    m = evaluate((gt, seg(mask((3, 3, 2, 2)))))
    assert m["targets"] == 0 and math.isnan(m["pd"]) and math.isnan(m["ap"])
    assert m["fa"] == pytest.approx(4 / (H * W))
    assert m["iou"] == 0.0
    both_empty = evaluate((gt, seg(np.zeros((H, W)))))
    assert math.isnan(both_empty["iou"]) and math.isnan(both_empty["niou"]) and both_empty["fa"] == 0.0


def test_perfect_prediction() -> None:
    gt = mask((2, 2, 3, 3), (20, 8, 1, 1), (10, 25, 4, 2))
    m = evaluate((gt, seg(gt)), (mask((1, 1, 2, 2)), seg(mask((1, 1, 2, 2)))))
    assert m == {"iou": 1.0, "niou": 1.0, "pd": 1.0, "fa": 0.0, "ap50": 1.0, "ap": 1.0, "fa_per_frame": 0.0,
                 "fa_frames": 0.0, "images": 2, "targets": 4, "threshold": 0.5}


def test_niou_is_mean_of_per_image_iou() -> None:
    a_gt = mask((2, 2, 2, 2), hw=(10, 10))  # predicted exactly: IoU 1
    b_gt = mask((10, 10, 4, 4), hw=(40, 40))  # half predicted: IoU 0.5
    b_pred = mask((10, 10, 2, 4), hw=(40, 40))
    empty = np.zeros((20, 30), bool)  # no target, no prediction: skipped by nIoU
    m = evaluate((a_gt, seg(a_gt)), (b_gt, seg(b_pred)), (empty, seg(empty)))
    assert m["iou"] == pytest.approx((4 + 8) / (4 + 16))
    assert m["niou"] == pytest.approx((1 + 0.5) / 2)
    assert m["images"] == 3


def test_threshold_is_strictly_greater() -> None:
    gt = mask((5, 5, 2, 2))
    prob = gt * 0.5
    assert evaluate((gt, seg(prob)))["iou"] == 0.0
    assert evaluate((gt, seg(prob, 0.4)), threshold=0.4)["iou"] == 1.0


def test_ap_hand_case() -> None:
    gt = mask((0, 0, 10, 10), (20, 0, 10, 10), hw=(64, 64))
    dets = Targets.from_boxes(np.array([[0, 0, 10, 10], [40, 40, 45, 45], [20, 0, 30, 6.7]]),
                              np.array([0.9, 0.8, 0.7]))
    m = evaluate((gt, Prediction(None, dets)))
    # ranks: TP, FP, TP(IoU 0.67). IoU 0.50-0.65: precision 1 up to recall 0.5 (51 of 101
    # recall points), 2/3 above; 0.70-0.95: precision 1 up to recall 0.5, nothing above.
    hit, miss = (51 + 50 * 2 / 3) / 101, 51 / 101
    assert m["ap50"] == pytest.approx(hit)
    assert m["ap"] == pytest.approx((4 * hit + 6 * miss) / 10)


def test_box_only_prediction_is_rasterised() -> None:
    gt = mask((4, 4, 3, 3), (20, 20, 2, 2))
    dets = Targets.from_boxes(np.array([[4, 4, 7, 7], [10, 20, 12, 22]]), np.array([0.8, 0.3]))
    prob = rasterize_targets(dets, (H, W))
    assert prob[4:7, 4:7].min() == pytest.approx(0.8) and prob.sum() == pytest.approx(9 * 0.8 + 4 * 0.3)
    m = evaluate((gt, Prediction(None, dets)), threshold=0.5)
    assert m["pd"] == 0.5 and m["fa"] == 0.0 and m["iou"] == pytest.approx(9 / 13)
    m = evaluate((gt, Prediction(None, dets)), threshold=0.2)  # the 0.3 box now counts: far from its GT
    assert m["pd"] == 0.5 and m["fa"] == pytest.approx(4 / (H * W))


def test_roc_sweep_by_hand() -> None:
    gt = mask((5, 5, 3, 3))
    prob = np.zeros((H, W), np.float32)
    prob[5:8, 5:8] = 0.9
    prob[20:22, 20:22] = 0.3  # false alarm below 0.3
    ev = Evaluator(threshold=0.5, roc_thresholds=[0.8, 0.1, 0.5, 0.25, 0.95])
    ev.update(gt, seg(prob))
    rows = ev.roc()
    assert [r["threshold"] for r in rows] == [0.1, 0.25, 0.5, 0.8, 0.95]
    assert [r["pd"] for r in rows] == [1, 1, 1, 1, 0]
    assert [r["fa"] for r in rows] == pytest.approx([4 / (H * W)] * 2 + [0] * 3)
    assert [r["iou"] for r in rows] == pytest.approx([9 / 13, 9 / 13, 1, 1, 0])
    m = ev.compute()
    assert (m["pd"], m["fa"], m["iou"]) == (rows[2]["pd"], rows[2]["fa"], rows[2]["iou"])


def test_shape_mismatch_is_a_user_error() -> None:
    with pytest.raises(EdgeirstError, match="resolution"):
        Evaluator().update(np.zeros((10, 12), bool), seg(np.zeros((12, 10))))


def test_write_roc_csv_and_png(tmp_path) -> None:
    rows = [{"threshold": 0.1, "pd": 0.9, "fa": 4e-5, "iou": 0.5},
            {"threshold": 0.5, "pd": 0.8, "fa": 1e-5, "iou": 0.6}]
    written = write_roc(rows, tmp_path / "roc.png")
    assert written == [tmp_path / "roc.csv", tmp_path / "roc.png"]
    lines = (tmp_path / "roc.csv").read_text().splitlines()
    assert lines[0] == "threshold,pd,fa,iou,fa_per_frame,fa_frames" and lines[1].startswith("0.1,0.9,4e-05")
    img = cv2.imread(str(tmp_path / "roc.png"))
    assert img.shape == (480, 640, 3) and (img != 255).any()
    assert write_roc(rows, tmp_path / "only.csv") == [tmp_path / "only.csv"]


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 2, 2]]))
    np.testing.assert_allclose(iou, [[2 / 6, 0.0, 1.0]])


def _random_case(rng: np.random.Generator, n_images: int = 25):
    """Images whose GT targets sit on a grid (so components = rectangles), with jittered,
    missing, duplicated and spurious detections; one image gets more than 100."""
    cases = []
    for i in range(n_images):
        h, w = int(rng.integers(60, 100)), int(rng.integers(60, 120))
        rects = [(gx * 20 + int(rng.integers(1, 5)), gy * 20 + int(rng.integers(1, 5)),
                  int(rng.integers(2, 12)), int(rng.integers(2, 12)))
                 for gy in range(h // 20 - 1) for gx in range(w // 20 - 1) if rng.random() < 0.3]
        boxes, scores = [], []
        for x, y, bw, bh in rects:
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.7, 4)
                boxes.append([x + j[0], y + j[1], x + bw + j[2], y + bh + j[3]])
                scores.append(rng.uniform(0.3, 1.0))
        for _ in range(120 if i == 3 else int(rng.integers(0, 4))):
            x, y = rng.uniform(0, w - 10), rng.uniform(0, h - 10)
            boxes.append([x, y, x + rng.uniform(1, 10), y + rng.uniform(1, 10)])
            scores.append(rng.uniform(0.4, 1.0) if i == 3 else rng.uniform(0.0, 0.7))
        boxes = np.array(boxes, np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
        dets = Targets.from_boxes(boxes, np.array(scores))
        cases.append((mask(*rects, hw=(h, w)), rects, dets))
    return cases


def test_ap_matches_pycocotools() -> None:
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    cases = _random_case(np.random.default_rng(7))
    ev = Evaluator()
    images, anns, results = [], [], []
    for img_id, (gt, rects, dets) in enumerate(cases, start=1):
        ev.update(gt, Prediction(None, dets))
        images.append({"id": img_id, "height": gt.shape[0], "width": gt.shape[1]})
        for x, y, w, h in rects:
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1, "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": 0})
        for (x1, y1, x2, y2), s in zip(dets.boxes.astype(float), dets.scores.astype(float)):
            results.append({"image_id": img_id, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    gt_coco = coco_mod.COCO()
    gt_coco.dataset = {"info": {}, "licenses": [], "images": images, "annotations": anns,
                       "categories": [{"id": 1, "name": "target"}]}
    gt_coco.createIndex()
    coco_eval = cocoeval_mod.COCOeval(gt_coco, gt_coco.loadRes(results), "bbox")
    coco_eval.evaluate()
    coco_eval.accumulate()
    precision = coco_eval.eval["precision"][:, :, 0, 0, -1]  # T x R, class 1, area "all", 100 dets
    m = ev.compute()
    assert m["targets"] == len(anns)
    assert m["ap50"] == pytest.approx(precision[0].mean(), abs=1e-6)
    assert m["ap"] == pytest.approx(precision.mean(), abs=1e-6)
    assert 0.02 < m["ap"] < m["ap50"] < 1.0  # a non-trivial case (image 4 loses 20 detections to max 100)


def test_false_alarms_per_frame_match_a_hand_count() -> None:
    # frame 1: one target, found, plus two separate false blobs; frame 2: background only, one
    # false blob; frame 3: background only, nothing predicted. 3 false alarms over 3 frames,
    # 2 of the 3 frames with any.
    gt1 = mask((5, 5, 2, 2))
    p1 = mask((5, 5, 2, 2), (20, 20, 3, 3), (25, 2, 1, 1))
    gt2 = np.zeros((32, 32), bool)
    p2 = mask((10, 12, 2, 1))
    m = evaluate((gt1, seg(p1)), (gt2, seg(p2)), (gt2, seg(gt2)))
    assert m["fa_per_frame"] == 1.0 and m["fa_frames"] == 2 / 3
    assert m["pd"] == 1.0 and m["targets"] == 1


def test_background_only_split_evaluates() -> None:
    empty = np.zeros((32, 32), bool)
    m = evaluate((empty, seg(mask((3, 3, 2, 2)))), (empty, seg(empty)))
    assert math.isnan(m["pd"]) and math.isnan(m["ap50"])  # undefined without targets
    assert m["fa_per_frame"] == 0.5 and m["fa_frames"] == 0.5 and m["iou"] == 0.0
