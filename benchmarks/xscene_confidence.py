"""Would richer component features make a better confidence? (issue 21, "scores that rank")

`edgeirst calibrate` scores each component of ``logit > 0`` by a logistic model of its peak logit,
mean logit and log area (``edgeirst.confidence``), fitted on the validation it is then measured
on. This runs MODEL once over the cross-scene validation (benchmarks/xscene/README.md), adds
candidate features the decoder could compute from the logit map alone (spread of the logit in the
component, the logit on a 3-px ring around it, box fill, elongation, the frame's component count),
and compares feature sets out of fold (5 folds of whole images: each image scored by a model fitted
without it) at false-alarm budgets, so that a set is not credited for memorising 30 false alarms.

Figures are component-level: Pd counts targets whose centroid match (``match_targets``) is a kept
component, IoU is pooled over kept components' pixels; `edgeirst eval` matches the same way.

    python benchmarks/xscene_confidence.py default
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

from edgeirst.confidence import LOGIT_CLIP, LOGIT_OUTPUT, component_features, fit_logistic
from edgeirst.data.sirst import open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import has_logit, logit_map
from edgeirst.metrics import components_cropped, match_targets
from edgeirst.postprocess import components
from edgeirst.runtime import load_backend
from xscene import PARTS

EXTRA = ("logit_std", "ring_mean", "ring_max", "fill", "elongation", "log_count")
SETS = {
    "as shipped (peak, mean, log area)": (0, 1, 2),
    "+ spread, fill, elongation": (0, 1, 2, 3, 6, 7),
    "+ ring": (0, 1, 2, 4, 5),
    "+ component count": (0, 1, 2, 8),
    "all": tuple(range(9)),
}
BUDGETS = (0.2, 0.1, 0.05)


def extra_features(logit: np.ndarray, labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    rows = []
    for j in range(1, len(stats)):
        x, y, w, h, area = stats[j]
        ya, xa = max(0, y - 3), max(0, x - 3)
        win = (slice(ya, y + h + 3), slice(xa, x + w + 3))
        m = labels[win] == j
        lg = logit[win]
        ring = cv2.dilate(m.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~m
        around = lg[ring] if ring.any() else np.array([-LOGIT_CLIP])
        rows.append((lg[m].std(), around.mean(), around.max(), area / (w * h), np.log(max(w, h) / min(w, h)),
                     np.log(len(stats) - 1)))
    return np.array(rows, np.float64)


def collect(model: str):
    feats, true, inter, area, image = [], [], [], [], []
    gt_pixels = targets = 0
    with load_backend(model) as be:
        if not has_logit(be.meta):
            raise EdgeirstError(f"{model}: a segmentation model with a {LOGIT_OUTPUT!r} output is needed")
        ds = open_datasets(*PARTS["cross-scene (all)"])
        empty = np.zeros(len(ds), bool)
        for i in range(len(ds)):
            s = ds[i]
            logit = np.clip(logit_map(be, s), -LOGIT_CLIP, LOGIT_CLIP)
            mask = np.asarray(s.mask) > 0
            _, gt = components_cropped(mask)
            targets, gt_pixels, empty[i] = targets + len(gt), gt_pixels + int(mask.sum()), not mask.any()
            n, lab, st, cents = components(logit > 0)
            if n <= 1:
                continue
            feats.append(np.hstack([component_features(logit, lab, n), extra_features(logit, lab, st)]))
            true.append(match_targets(gt, cents[1:]))
            inter.append(np.bincount(lab[mask], minlength=n)[1:])
            area.append(st[1:, cv2.CC_STAT_AREA])
            image.append(np.full(n - 1, i))
    return (np.concatenate(feats), np.concatenate(true), np.concatenate(inter), np.concatenate(area),
            np.concatenate(image), empty, gt_pixels, targets)


def out_of_fold(x: np.ndarray, y: np.ndarray, image: np.ndarray, n_images: int, folds: int = 5) -> np.ndarray:
    fold = np.random.default_rng(0).permutation(n_images) % folds
    score = np.zeros(len(y))
    for f in range(folds):
        test = fold[image] == f
        coef, bias = fit_logistic(x[~test], y[~test].astype(np.float64))
        score[test] = 1.0 / (1.0 + np.exp(-np.clip(x[test] @ coef + bias, -50, 50)))
    return score


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    args = ap.parse_args(argv)
    x, y, inter, area, image, empty, gt_pixels, targets = collect(args.model)
    n = len(empty)
    print(f"{args.model}: {n} images ({int(empty.sum())} empty), {targets} targets; {len(y)} components of logit > 0, "
          f"{int(y.sum())} on a target")
    print("| features | budget | Pd | IoU | FA/frame | empty frames FA/frame | median score true / false |")
    print("|---|---|---|---|---|---|---|")
    for name, cols in SETS.items():
        s = out_of_fold(x[:, cols], y, image, n)
        for budget in BUDGETS:
            ok = [t for t in np.unique(s) if (~y & (s >= t)).sum() <= budget * n]
            keep = s >= min(ok) if ok else np.zeros(len(s), bool)
            iou = inter[keep].sum() / (gt_pixels + area[keep].sum() - inter[keep].sum())
            print(f"| {name} | {budget:g} | {(y & keep).sum() / targets:.3f} | {iou:.4f} | {(~y & keep).sum() / n:.3f} | "
                  f"{(~y & keep & empty[image]).sum() / empty.sum():.2f} | {np.median(s[y]):.3f} / {np.median(s[~y]):.3f} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EdgeirstError, OSError) as e:  # an unknown model, an unreadable file: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
