"""Hard negatives mined from the model being trained: where its false alarms lie now.

Static hard crops (``bright_blobs``) guess where a segmenter will fire; mining asks it. Every
training image is run through the current weights at its own resolution, through the same
preprocessing and decoding as evaluation (``prepare``, ``decode_outputs``), and the centres of
the detections that touch no target (false alarms, and near misses down to half the model's
threshold) become crop centres for the next epochs (``Recipe.mine``). The first pass covers every
image; later ones the images with false alarms and a random eighth of the others.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeirst.postprocess import decode_outputs
from edgeirst.preprocess import prepare

MINE_POINTS = 16  # false-alarm centres kept per image, highest score first
MINE_THRESHOLD = 0.5  # of the model's threshold: near misses are mined too
MINE_MARGIN = 3  # px around a detection's box within which a target pixel makes it a hit
MINE_REFRESH = 0.125  # share of the images without false alarms run again at a refresh


def refresh_subset(mined: dict[int, np.ndarray], n: int, rng: np.random.Generator) -> list[int]:
    """The images to mine again: those with false alarms now, and a random ``MINE_REFRESH`` of
    the rest (a full pass over large frames costs minutes of CPU per epoch)."""
    rest = np.array([i for i in range(n) if i not in mined], np.int64)
    extra = rng.choice(rest, size=int(round(len(rest) * MINE_REFRESH)), replace=False) if len(rest) else rest
    return sorted({*mined, *extra.tolist()})


def false_alarm_points(backend, images: list[np.ndarray], masks: list[np.ndarray], threshold: float,
                       only: Iterable[int] | None = None, k: int = MINE_POINTS) -> dict[int, np.ndarray]:
    """{image index: (n, 2) int (y, x) centres of its strongest false alarms}, images without any
    left out. ``backend`` is a runtime backend (``infer``, ``meta``); ``images`` are grey [0, 1]
    planes and ``masks`` their boolean target masks; ``only``: the indices to run (default all)."""
    meta = backend.meta
    points = {}
    for i in range(len(images)) if only is None else sorted(only):
        img, mask = images[i], masks[i]
        x, box = prepare(img, meta)
        out = backend.infer(x[None])
        t = decode_outputs({name: v[0] for name, v in out.items()}, meta, box, threshold * MINE_THRESHOLD).targets
        h, w = mask.shape
        keep = []
        for j in np.argsort(-t.scores, kind="stable"):
            x1, y1, x2, y2 = t.boxes[j]
            ya, yb = max(0, int(y1) - MINE_MARGIN), min(h, int(np.ceil(y2)) + MINE_MARGIN)
            xa, xb = max(0, int(x1) - MINE_MARGIN), min(w, int(np.ceil(x2)) + MINE_MARGIN)
            if not mask[ya:yb, xa:xb].any():
                cx, cy = t.centroids[j]
                keep.append((min(h - 1, int(cy)), min(w - 1, int(cx))))
            if len(keep) == k:
                break
        if keep:
            points[i] = np.array(keep, np.int64)
    return points
