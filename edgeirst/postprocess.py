"""Post-processing: model outputs -> targets. One implementation for eval, bench and runtime.

* ``cluster_targets``: threshold a probability map and group pixels into eight-connected
  components (DNANet's clustering); each component is one target with centroid, box, area and
  score (peak probability). A model calibrated by ``edgeirst calibrate`` scores its components
  with a confidence learned on validation instead (``confident_targets``, ``edgeirst.confidence``).
* ``decode_centernet``: 3x3 max-pool peaks of a heatmap, threshold, top-K, boxes from the
  predicted width/height (and sub-pixel offset when present).
* ``decode_yolov5`` / ``decode_yolov8``: anchor-based and anchor-free (DFL) YOLO heads -> boxes,
  then non-maximum suppression.
* ``decode_outputs``: dispatches on ``ModelMeta.decode`` and maps everything to source pixels.

Output layouts (the contract every model in the zoo follows; batch dimension removed):
``seg`` 1xHxW probabilities; ``heatmap`` CxHxW probabilities, ``wh`` 2xHxW in input pixels,
``offset`` 2xHxW; YOLOv5 level ``p{k}``: (A*(5+C))xHxW raw logits with anchors in input pixels
in ``decode_args["anchors"]``; YOLOv8 level ``p{k}``: (4*reg_max+C)xHxW raw logits.

numpy + OpenCV only: this runs on a Jetson without PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edgeirst.confidence import component_features, confidence_of
from edgeirst.meta import ModelMeta
from edgeirst.preprocess import Letterbox


@dataclass
class Targets:
    """K targets as arrays: boxes Kx4 [x1, y1, x2, y2], centroids Kx2 [cx, cy], areas K, scores K."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    areas: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> "Targets":
        return Targets(self.boxes[keep], self.centroids[keep], self.areas[keep], self.scores[keep])

    @classmethod
    def from_boxes(cls, boxes: np.ndarray, scores: np.ndarray) -> "Targets":
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        cents = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return cls(boxes, cents.astype(np.float32), areas.astype(np.float32), np.asarray(scores, np.float32))


@dataclass
class Prediction:
    """A model's answer for one frame, in source pixels: the probability map (segmentation models;
    ``None`` for box-only models) and the targets."""

    prob: np.ndarray | None
    targets: Targets


def components(binary: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Eight-connected components of a binary map: (count incl. background, labels, stats, centroids).

    Labelled in row-major order of each component's first pixel (OpenCV's SAUF algorithm), the
    order of scikit-image's ``measure.label`` that the reference metric code (BasicIRSTD, DNANet's
    PD_FA) uses: greedy Pd matching visits targets in label order, so the order changes results.
    OpenCV's default for 8-connectivity (a block-based algorithm) numbers them differently.
    """
    return cv2.connectedComponentsWithStatsWithAlgorithm(binary.astype(np.uint8), 8, cv2.CV_32S, cv2.CCL_SAUF)


def cluster_targets(prob: np.ndarray, threshold: float = 0.5, min_area: int = 1) -> tuple[Targets, np.ndarray]:
    """Probability map (HxW) -> (targets, int32 label map with 0 = background, k = target k-1).

    A pixel is foreground when ``prob > threshold``. Score = peak probability in the component,
    centroid = mean pixel position, box = [x, y, x + w, y + h] (exclusive right/bottom edge).
    """
    n, labels, stats, cents = components(prob > threshold)
    if n <= 1:
        return Targets(), labels
    peaks = np.zeros(n, np.float32)
    fg = labels > 0
    np.maximum.at(peaks, labels[fg], prob[fg].astype(np.float32))
    keep = np.arange(1, n)
    if min_area > 1:
        keep = keep[stats[1:, cv2.CC_STAT_AREA] >= min_area]
    st = stats[keep]
    x, y, w, h = (st[:, cv2.CC_STAT_LEFT], st[:, cv2.CC_STAT_TOP], st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT])
    boxes = np.stack([x, y, x + w, y + h], 1).astype(np.float32)
    t = Targets(boxes, cents[keep].astype(np.float32), st[:, cv2.CC_STAT_AREA].astype(np.float32), peaks[keep])
    if min_area > 1:  # relabel so that label k+1 is still target k
        lut = np.zeros(n, np.int32)
        lut[keep] = np.arange(1, len(keep) + 1)
        labels = lut[labels]
    return t, labels


def confident_targets(logit: np.ndarray, calib: dict, threshold: float) -> Prediction:
    """Components of ``logit > 0`` (probability > 0.5) scored by their calibrated confidence
    (``edgeirst.confidence``) -> Prediction whose map holds each component's confidence on its
    pixels (0 elsewhere) and whose targets are the components above ``threshold``."""
    n, labels, _, _ = components(logit > 0)
    score_of = np.zeros(max(n, 1), np.float32)
    if n > 1:
        score_of[1:] = confidence_of(component_features(logit, labels, n), calib)
    score_map = score_of[labels]
    targets, _ = cluster_targets(score_map, threshold)
    return Prediction(score_map, targets)


def decode_centernet(heatmap: np.ndarray, wh: np.ndarray, offset: np.ndarray | None = None,
                     threshold: float = 0.3, topk: int = 100, stride: int = 1) -> Targets:
    """CenterNet peaks -> boxes in input pixels. ``heatmap`` CxHxW (classes are merged: we detect
    one class of target), ``wh`` 2xHxW, ``offset`` 2xHxW or None.

    A peak at cell (i, j) (+ offset) is the target's mean pixel index / ``stride`` (the training
    targets' convention); boxes use exclusive edges like ``cluster_targets``, so a target on
    pixels x..x+w-1 decodes to [x, x + w]."""
    hm = heatmap.max(axis=0) if heatmap.ndim == 3 else heatmap
    hm = np.ascontiguousarray(hm, np.float32)
    pooled = cv2.dilate(hm, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((hm == pooled) & (hm > threshold))
    if len(ys) == 0:
        return Targets()
    scores = hm[ys, xs]
    if len(scores) > topk:
        top = np.argpartition(-scores, topk)[:topk]
        ys, xs, scores = ys[top], xs[top], scores[top]
    order = np.argsort(-scores)
    ys, xs, scores = ys[order], xs[order], scores[order]
    cx, cy = xs.astype(np.float32), ys.astype(np.float32)
    if offset is not None:
        cx = cx + offset[0, ys, xs]
        cy = cy + offset[1, ys, xs]
    cents = np.stack([cx, cy], 1) * stride  # mean pixel index, as cluster_targets' centroids
    # box edges: pixel k spans [k, k + 1), so the centre pixel index k sits at edge coordinate k + 0.5
    w, h = np.maximum(wh[0, ys, xs], 0), np.maximum(wh[1, ys, xs], 0)
    ex, ey = cents[:, 0] + 0.5, cents[:, 1] + 0.5
    boxes = np.stack([ex - w / 2, ey - h / 2, ex + w / 2, ey + h / 2], 1)
    return Targets(boxes.astype(np.float32), cents.astype(np.float32), (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), scores.astype(np.float32))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.45, max_det: int = 300) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    if len(scores) == 0:
        return np.zeros((0,), np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), 0.0, iou, top_k=max_det)
    return np.asarray(keep, np.int64).reshape(-1)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return gx, gy


def decode_yolov5(levels: list[np.ndarray], strides: list[int], anchors: list[list[float]],
                  num_classes: int = 1, threshold: float = 0.25, iou: float = 0.45) -> Targets:
    """YOLOv5 anchor-based heads -> boxes in input pixels. Level k: (A*(5+C))xHxW raw logits,
    ``anchors[k]`` = [w0, h0, w1, h1, ...] in input pixels. score = objectness * best class.

    A cell's score cannot pass ``threshold`` unless its objectness does, so only the cells whose
    objectness logit is near or above ``logit(threshold)`` are decoded (a frame has a handful of
    the thousands)."""
    all_boxes, all_scores = [], []
    floor = _logit(threshold) - 1e-3  # below it, sigmoid(objectness) <= threshold in float32 too
    for p, s, anc in zip(levels, strides, anchors):
        na = len(anc) // 2
        _, h, w = p.shape
        p = p.reshape(na, 5 + num_classes, h, w)
        a, y, x = np.nonzero(p[:, 4] > floor)
        if not len(a):
            continue
        c = _sigmoid(p[a, :, y, x].astype(np.float32))  # K x (5 + C), the candidates only
        score = c[:, 4] * (c[:, 5:].max(axis=1) if num_classes > 1 else c[:, 5])
        m = score > threshold
        c, a, y, x = c[m], a[m], y[m].astype(np.float32), x[m].astype(np.float32)
        cx = (c[:, 0] * 2 - 0.5 + x) * s
        cy = (c[:, 1] * 2 - 0.5 + y) * s
        bw = (c[:, 2] * 2) ** 2 * np.asarray(anc[0::2], np.float32)[a]
        bh = (c[:, 3] * 2) ** 2 * np.asarray(anc[1::2], np.float32)[a]
        all_boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
        all_scores.append(score[m])
    return _finish_boxes(all_boxes, all_scores, iou)


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


def decode_yolov8(levels: list[np.ndarray], strides: list[int], reg_max: int = 16,
                  num_classes: int = 1, threshold: float = 0.25, iou: float = 0.45) -> Targets:
    """YOLOv8 anchor-free DFL heads -> boxes in input pixels. Level k: (4*reg_max+C)xHxW raw
    logits; box sides are distances (in strides) from the cell centre, each a softmax over
    ``reg_max`` bins."""
    all_boxes, all_scores = [], []
    bins = np.arange(reg_max, dtype=np.float32)
    for p, s in zip(levels, strides):
        _, h, w = p.shape
        score = _sigmoid(p[4 * reg_max:].astype(np.float32)).max(axis=0)
        m = score > threshold
        if not m.any():
            continue
        d = p[: 4 * reg_max].reshape(4, reg_max, h, w)[:, :, m].astype(np.float32)  # 4 x R x K
        d = np.exp(d - d.max(axis=1, keepdims=True))
        dist = (d * bins[None, :, None]).sum(1) / d.sum(1)  # 4 x K (l, t, r, b)
        gx, gy = _grid(h, w)
        ax, ay = gx[m] + 0.5, gy[m] + 0.5
        all_boxes.append(np.stack([ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]], 1) * s)
        all_scores.append(score[m])
    return _finish_boxes(all_boxes, all_scores, iou)


def _finish_boxes(all_boxes: list[np.ndarray], all_scores: list[np.ndarray], iou: float) -> Targets:
    if not all_boxes:
        return Targets()
    boxes = np.concatenate(all_boxes).astype(np.float32).reshape(-1, 4)
    scores = np.concatenate(all_scores).astype(np.float32)
    keep = nms(boxes, scores, iou)
    return Targets.from_boxes(boxes[keep], scores[keep])


def decode_outputs(outputs: dict[str, np.ndarray], meta: ModelMeta, box: Letterbox,
                   threshold: float | None = None) -> Prediction:
    """One frame's raw outputs (batch dimension removed) -> Prediction in source pixels."""
    thr = meta.threshold if threshold is None else threshold
    args = meta.decode_args
    prob = None
    if "seg" in outputs:
        prob = box.map_to_source(np.ascontiguousarray(outputs["seg"][0], np.float32))
    if meta.decode == "cluster":
        calib = args.get("confidence")
        if calib and "seg_logit" in outputs:
            logit = box.map_to_source(np.ascontiguousarray(outputs["seg_logit"][0], np.float32))
            return confident_targets(logit, calib, thr)
        targets, _ = cluster_targets(prob, thr)
        return Prediction(prob, targets)
    if meta.decode == "centernet":
        t = decode_centernet(outputs["heatmap"], outputs["wh"], outputs.get("offset"), thr,
                             args.get("topk", 100), args.get("stride", 1))
    else:
        levels = [outputs[n] for n in args["levels"]]
        if meta.decode == "yolov5":
            t = decode_yolov5(levels, args["strides"], args["anchors"], args.get("num_classes", 1), thr, args.get("iou", 0.45))
        else:
            t = decode_yolov8(levels, args["strides"], args.get("reg_max", 16), args.get("num_classes", 1), thr, args.get("iou", 0.45))
    if len(t):
        t = Targets(box.boxes_to_source(t.boxes), box.boxes_to_source(t.centroids), t.areas / np.float32(box.scale ** 2), t.scores)
    return Prediction(prob, t)
