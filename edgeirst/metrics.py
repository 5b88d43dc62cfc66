"""Detection and segmentation metrics: one implementation for eval, bench, training and runtime.

Everything is computed at each image's own (source) resolution:

* **IoU**: dataset level, sum of intersections / sum of unions over all images, foreground =
  ``prob > threshold``.
* **nIoU** (ACM, Dai et al., "Asymmetric Contextual Modulation", WACV 2021): mean of per-image
  IoU. Images whose union is empty (no target and no prediction) have no defined IoU and are
  skipped, as ACM's nIoU code does (DNANet's code would count them as 0 through its ``eps`` in
  the denominator, penalising a correct empty answer).
* **Pd / Fa** (DNANet): eight-connected components of prediction and ground truth, labelled in
  row-major order as the references do (``edgeirst.postprocess.components``). GT targets are
  visited in label order; each takes the first still-unmatched predicted component whose
  centroid is closer than 3 px (Euclidean ``distance < 3``) and removes it. Pd = matched GT /
  all GT; Fa = pixels of unmatched predicted components / all pixels, both summed over the
  dataset. Unmatched components are counted by identity (DNANet's code filters them by area
  value, which also drops a false alarm whose area equals a matched component's).
* **False alarms per frame** (what a field user counts): unmatched predicted components per
  image, and **FA frames**: the share of images with at least one. Background-only images (empty
  masks) count like any other; Pd and AP of a split without targets are undefined.
* **AP50 / AP**: COCO box AP (IoU 0.50:0.05:0.95, 101-point interpolated precision, at most
  100 detections per image, area range "all"), detections = ``Prediction.targets`` ranked by
  ``targets.scores``, ground-truth boxes = eight-connected components of the mask as
  ``[x, y, x + w, y + h]``. Matches ``pycocotools.COCOeval`` without needing it.

Box-only models (``Prediction.prob is None``) enter the pixel metrics through their boxes
rasterised as a map holding each pixel's best box score. Undefined values (Pd or AP without
any GT target, IoU with an empty union) are ``nan``. numpy + OpenCV only.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.io import check_output, write_bytes, write_text
from edgeirst.postprocess import Prediction, Targets, components

@dataclass(frozen=True)
class Metric:
    """One reported metric: its key in every result dict and which direction is better."""

    key: str
    higher_is_better: bool
    label: str

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b`` (nan is never better)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.higher_is_better else a < b

    def worst(self) -> float:
        return -math.inf if self.higher_is_better else math.inf


# The one table of metrics: eval, train (best-checkpoint selection), bench and quantize use it.
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("iou", True, "IoU"),
    Metric("niou", True, "nIoU"),
    Metric("pd", True, "Pd"),
    Metric("fa", False, "Fa"),
    Metric("ap50", True, "AP50"),
    Metric("ap", True, "AP"),
    Metric("fa_per_frame", False, "FA/frame"),
    Metric("fa_frames", False, "FA frames"),
)}

PD_DISTANCE = 3.0
COCO_IOUS = np.linspace(0.5, 0.95, 10)
COCO_RECALLS = np.linspace(0.0, 1.0, 101)
COCO_MAX_DETS = 100


def rasterize_targets(targets: Targets, hw: tuple[int, int]) -> np.ndarray:
    """Boxes -> HxW float32 map holding, at each pixel, the best score of the boxes covering it.

    A box [x1, y1, x2, y2] (exclusive right/bottom) covers pixels round(x1)..round(x2)-1, at
    least one pixel per side so that a sub-pixel box still shows up.
    """
    prob = np.zeros(hw, np.float32)
    h, w = hw
    for (x1, y1, x2, y2), s in zip(np.asarray(targets.boxes, np.float64), targets.scores):
        xa, ya = min(max(round(x1), 0), w - 1), min(max(round(y1), 0), h - 1)
        xb, yb = min(max(round(x2), xa + 1), w), min(max(round(y2), ya + 1), h)
        np.maximum(prob[ya:yb, xa:xb], np.float32(s), out=prob[ya:yb, xa:xb])
    return prob


def components_cropped(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eight-connected components (``postprocess.components``) of the bounding region of the
    foreground only, which is what makes a sparse map cheap -> (stats, centroids) without the
    background row, in full-image coordinates."""
    u8 = binary.view(np.uint8) if binary.dtype == bool else binary.astype(np.uint8)
    x, y, w, h = cv2.boundingRect(u8)
    if w == 0 or h == 0:
        return np.zeros((0, 5), np.int32), np.zeros((0, 2))
    _, _, stats, cents = components(u8[y:y + h, x:x + w])
    stats, cents = stats[1:].copy(), cents[1:] + (x, y)
    stats[:, cv2.CC_STAT_LEFT] += x
    stats[:, cv2.CC_STAT_TOP] += y
    return stats, cents


def match_targets(gt_centroids: np.ndarray, pred_centroids: np.ndarray,
                  distance: float = PD_DISTANCE) -> np.ndarray:
    """DNANet's greedy centroid matching -> bool mask over predicted components that matched.

    Each GT target (in order) takes the first unmatched predicted component closer than
    ``distance`` px; the number of GT targets detected is ``matched.sum()``.
    """
    matched = np.zeros(len(pred_centroids), bool)
    if len(gt_centroids) == 0 or len(pred_centroids) == 0:
        return matched
    d = np.linalg.norm(gt_centroids[:, None, :] - pred_centroids[None, :, :], axis=2)
    close = d < distance
    for g in range(len(gt_centroids)):
        free = np.flatnonzero(close[g] & ~matched)
        if len(free):
            matched[free[0]] = True
    return matched


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a) x len(b)) of [x1, y1, x2, y2] boxes, COCO style (no +1)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def coco_match(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
               iou_thresholds: np.ndarray = COCO_IOUS, max_dets: int = COCO_MAX_DETS
               ) -> tuple[np.ndarray, np.ndarray]:
    """One image, COCOeval.evaluateImg without crowds: -> (scores of the kept detections,
    bool TxD true-positive flags per IoU threshold), detections best first."""
    order = np.argsort(-np.asarray(det_scores, np.float64), kind="mergesort")[:max_dets]
    scores = np.asarray(det_scores, np.float64)[order]
    tp = np.zeros((len(iou_thresholds), len(order)), bool)
    if len(order) == 0 or len(gt_boxes) == 0:
        return scores, tp
    ious = box_iou(np.asarray(det_boxes)[order], gt_boxes)
    for ti, t in enumerate(iou_thresholds):
        taken = np.zeros(len(gt_boxes), bool)
        for d in range(len(order)):
            best, m = min(t, 1 - 1e-10), -1
            for g in range(len(gt_boxes)):  # same loop as pycocotools: ties go to the later GT
                if taken[g] or ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m >= 0:
                taken[m] = True
                tp[ti, d] = True
    return scores, tp


def coco_ap(scores: np.ndarray, tp: np.ndarray, num_gt: int,
            recalls: np.ndarray = COCO_RECALLS) -> np.ndarray:
    """COCOeval.accumulate for one class: -> AP per IoU threshold (length T), nan without GT."""
    if num_gt == 0:
        return np.full(tp.shape[0], np.nan)
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tps = np.cumsum(tp, axis=1, dtype=np.float64)
    fps = np.cumsum(~tp, axis=1, dtype=np.float64)
    ap = np.zeros(tp.shape[0])
    for t in range(tp.shape[0]):
        rc = tps[t] / num_gt
        pr = tps[t] / (tps[t] + fps[t] + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope from the right
        idx = np.searchsorted(rc, recalls, side="left")
        valid = idx < len(pr)
        q = np.zeros(len(recalls))
        q[valid] = pr[idx[valid]]
        ap[t] = q.mean()
    return ap


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else math.nan


class Evaluator:
    """Accumulates IoU, nIoU, Pd, Fa, AP50 and AP over a dataset, plus a Pd-Fa (ROC) sweep.

    ``update`` is called once per image with the GT mask at source resolution and the model's
    ``Prediction`` in the same pixels; nothing per-pixel is kept between images.
    """

    def __init__(self, threshold: float = 0.5, roc_thresholds: Sequence[float] | None = None) -> None:
        self.threshold = float(threshold)
        roc = np.round(np.linspace(0.05, 0.95, 19), 6) if roc_thresholds is None else roc_thresholds
        self.roc_thresholds = np.asarray(sorted(float(t) for t in roc), np.float64)
        self.images = 0
        self.targets = 0
        self.pixels = 0
        self.niou_sum = 0.0
        self.niou_count = 0
        # per sweep threshold: intersection, union, matched GT, false-alarm pixels, false-alarm
        # components, images with any false alarm; index 0 is the operating threshold, 1.. the ROC ones.
        self._acc = np.zeros((1 + len(self.roc_thresholds), 6), np.int64)
        self._det_scores: list[np.ndarray] = []
        self._det_tp: list[np.ndarray] = []

    def update(self, gt_mask: np.ndarray, pred: Prediction) -> None:
        """Add one image: ``gt_mask`` bool HxW at source resolution, ``pred`` in the same pixels."""
        gt = np.asarray(gt_mask)
        if gt.ndim != 2:
            raise EdgeirstError(f"ground-truth mask must be HxW, got shape {gt.shape}")
        gt = gt > 0
        prob = pred.prob if pred.prob is not None else rasterize_targets(pred.targets, gt.shape)
        if prob.shape != gt.shape:
            raise EdgeirstError(f"prediction is {prob.shape[1]}x{prob.shape[0]} px but its ground truth is "
                                f"{gt.shape[1]}x{gt.shape[0]}; predictions must be at the image's resolution")
        gt_stats, gt_cents = components_cropped(gt)
        self.images += 1
        self.targets += len(gt_stats)
        self.pixels += gt.size
        gt_count = int(np.count_nonzero(gt))

        thresholds = np.concatenate([[self.threshold], self.roc_thresholds])
        prev: tuple[int, np.ndarray] | None = None
        for i, t in enumerate(thresholds):
            fg = prob > t
            n_fg = int(np.count_nonzero(fg))
            if i > 0 and prev is not None and prev[0] == n_fg:  # same foreground as the last threshold
                self._acc[i] += prev[1]
                continue
            row = self._image_row(fg, n_fg, gt, gt_count, gt_cents)
            self._acc[i] += row
            if i == 0:
                union = row[1]
                if union > 0:
                    self.niou_sum += row[0] / union
                    self.niou_count += 1
            else:
                prev = (n_fg, row)

        gt_boxes = gt_stats[:, :4].astype(np.float64)
        gt_boxes[:, 2:] += gt_boxes[:, :2]
        scores, tp = coco_match(pred.targets.boxes, pred.targets.scores, gt_boxes)
        self._det_scores.append(scores)
        self._det_tp.append(tp)

    @staticmethod
    def _image_row(fg: np.ndarray, n_fg: int, gt: np.ndarray, gt_count: int, gt_cents: np.ndarray) -> np.ndarray:
        """[intersection, union, matched GT, false-alarm pixels, false-alarm components, 1 if any]
        of one binary prediction."""
        if n_fg == 0:
            return np.array([0, gt_count, 0, 0, 0, 0], np.int64)
        inter = int(np.count_nonzero(fg & gt))
        stats, cents = components_cropped(fg)
        matched = match_targets(gt_cents, cents)
        fa = int(stats[~matched, cv2.CC_STAT_AREA].sum())
        n_false = int(np.count_nonzero(~matched))
        return np.array([inter, gt_count + n_fg - inter, int(matched.sum()), fa, n_false, int(n_false > 0)], np.int64)

    def compute(self) -> dict:
        """{"iou", "niou", "pd", "fa", "ap50", "ap", "fa_per_frame", "fa_frames", "images", "targets",
        "threshold"} as plain numbers."""
        inter, union, matched, fa, n_false, any_false = (int(v) for v in self._acc[0])
        if self._det_scores:
            ap = coco_ap(np.concatenate(self._det_scores), np.concatenate(self._det_tp, axis=1), self.targets)
        else:
            ap = np.full(len(COCO_IOUS), np.nan)
        return {
            "iou": _ratio(inter, union),
            "niou": _ratio(self.niou_sum, self.niou_count),
            "pd": _ratio(matched, self.targets),
            "fa": _ratio(fa, self.pixels),
            "ap50": float(ap[0]),
            "ap": float(ap.mean()),
            "fa_per_frame": _ratio(n_false, self.images),
            "fa_frames": _ratio(any_false, self.images),
            "images": self.images,
            "targets": self.targets,
            "threshold": self.threshold,
        }

    def roc(self) -> list[dict]:
        """Pd, Fa, IoU and false alarms per frame at every ROC threshold:
        [{"threshold", "pd", "fa", "iou", "fa_per_frame", "fa_frames"}, ...]."""
        return [{"threshold": float(t), "pd": _ratio(int(m), self.targets), "fa": _ratio(int(f), self.pixels),
                 "iou": _ratio(int(i), int(u)), "fa_per_frame": _ratio(int(c), self.images),
                 "fa_frames": _ratio(int(a), self.images)}
                for t, (i, u, m, f, c, a) in zip(self.roc_thresholds, self._acc[1:])]


def write_roc(rows: list[dict], path: str | Path, png: bool = False) -> list[Path]:
    """Write ROC rows as CSV and, when ``path`` ends in .png or ``png`` is set, a Pd-Fa plot.

    ``x.png`` writes ``x.png`` and ``x.csv``; ``x.csv`` with ``png=True`` writes both as well.
    A device or fifo (``/dev/stdout``, a pipe) gets the one its name asks for (CSV, or the plot
    for a .png name) and nothing beside it (never ``/dev/null.png``). Returns the files written.
    """
    path = Path(path)
    is_png = path.suffix.lower() == ".png"
    stream = check_output(path, None) == "stream"
    want_png = is_png or (png and not stream)
    csv_path = path.with_suffix(".csv") if is_png else path
    written = []
    if not (is_png and stream):
        buf = io.StringIO()
        fields = ["threshold", "pd", "fa", "iou", "fa_per_frame", "fa_frames"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(rows)
        write_text(csv_path, buf.getvalue())
        written.append(csv_path)
    if want_png:
        png_path = path if path.suffix.lower() == ".png" else path.with_suffix(".png")
        ok, encoded = cv2.imencode(".png", draw_roc(rows))
        if not ok:
            raise EdgeirstError(f"cannot encode the ROC plot {png_path}")
        write_bytes(png_path, encoded.tobytes())
        written.append(png_path)
    return written


def draw_roc(rows: list[dict], size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """Pd (y, 0..1) against Fa (x, linear, in units of 1e-6) as a BGR image drawn with OpenCV."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 40, 40, 50
    pw, ph = w - left - right, h - top - bottom
    pts = [(r["fa"] * 1e6, r["pd"]) for r in rows if not (math.isnan(r["fa"]) or math.isnan(r["pd"]))]
    fa_max = max([p[0] for p in pts] + [1.0]) * 1.05  # at least 1e-6 wide
    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (210, 210, 210)
    for k in range(6):
        y = top + ph - round(ph * k / 5)
        x = left + round(pw * k / 5)
        cv2.line(img, (left, y), (left + pw, y), grey, 1)
        cv2.line(img, (x, top), (x, top + ph), grey, 1)
        cv2.putText(img, f"{k / 5:.1f}", (left - 40, y + 5), font, 0.45, black, 1, cv2.LINE_AA)
        cv2.putText(img, f"{fa_max * k / 5:.3g}", (x - 12, top + ph + 20), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), black, 1)
    cv2.putText(img, "Pd", (10, top + ph // 2), font, 0.6, black, 1, cv2.LINE_AA)
    cv2.putText(img, "Fa (x1e-6)", (left + pw // 2 - 45, h - 10), font, 0.6, black, 1, cv2.LINE_AA)
    cv2.putText(img, "Pd - Fa", (left + pw // 2 - 35, 25), font, 0.7, black, 1, cv2.LINE_AA)
    xy = np.array([(left + fa / fa_max * pw, top + ph - pd * ph) for fa, pd in sorted(pts)], np.float64)
    if len(xy):
        poly = np.round(xy).astype(np.int32)
        cv2.polylines(img, [poly.reshape(-1, 1, 2)], False, (200, 80, 0), 2, cv2.LINE_AA)
        for x, y in poly:
            cv2.circle(img, (int(x), int(y)), 3, (0, 0, 200), -1, cv2.LINE_AA)
    return img
