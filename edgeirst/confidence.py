"""Scores that rank: a calibrated confidence for the targets of segmentation models.

A segmenter's sigmoid saturates: the default model gave 880 of its 976 false alarms on empty
frames a peak probability of 1.000, and 141 of its 144 true detections too, so its scores could
neither rank detections nor trade Pd against false alarms. Its logit does not saturate (peak
logit of true targets 56-81, of false alarms 15-59 on the cross-scene validation, quartiles).

``edgeirst.evaluate.fit_confidence`` learns, on validation images, a logistic model P(true target | component)
from each component's peak logit, mean logit and log area (components of ``logit > 0``, i.e.
``prob > 0.5``), matched to the ground truth as Pd matches them (centroid within 3 px).
The result travels in the model's metadata (``decode_args["confidence"]``); the decoder then
scores each component with it, and the probability map it returns holds each component's
confidence on its pixels (0 elsewhere), so thresholds, ROC sweeps, AP and the runtime all rank
by the same number. ``threshold_for_budget`` picks the operating threshold for a false-alarm
budget (false alarms per frame) from the Evaluator's sweep. numpy only: the device decodes too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FEATURES = ("peak_logit", "mean_logit", "log_area")
LOGIT_CLIP = 60.0  # a float32 logit beyond this carries no more information, only outliers
LOGIT_OUTPUT = "seg_logit"


def component_features(logit: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """(n-1) x 3 features of components 1..n-1 of ``labels``: peak logit, mean logit, log area."""
    fg = labels > 0
    lab = labels[fg]
    val = np.clip(logit[fg].astype(np.float64), -LOGIT_CLIP, LOGIT_CLIP)
    area = np.bincount(lab, minlength=n)[1:].astype(np.float64)
    mean = np.bincount(lab, weights=val, minlength=n)[1:] / np.maximum(area, 1)
    peak = np.full(n, -LOGIT_CLIP)
    np.maximum.at(peak, lab, val)
    return np.stack([peak[1:], mean, np.log(np.maximum(area, 1))], 1)


def confidence_of(features: np.ndarray, calib: dict[str, Any]) -> np.ndarray:
    """Calibrated P(true target) per row of ``features`` (``component_features``)."""
    z = features @ np.asarray(calib["coef"], np.float64) + float(calib["bias"])
    return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method on standardised features ->
    (coefficients, bias) in the original feature units."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = w[:-1] / sd
    return coef, float(w[-1] - (coef * mu).sum())


def threshold_for_budget(roc: list[dict], max_fa_per_frame: float) -> dict | None:
    """The lowest threshold of an Evaluator sweep whose false alarms per frame stay within the
    budget (highest Pd within it), or None when no threshold of the sweep does."""
    ok = [r for r in roc if not math.isnan(r["fa_per_frame"]) and r["fa_per_frame"] <= max_fa_per_frame]
    return min(ok, key=lambda r: r["threshold"]) if ok else None


__all__ = ["FEATURES", "LOGIT_OUTPUT", "component_features", "confidence_of", "fit_logistic", "threshold_for_budget"]
