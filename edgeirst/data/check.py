"""Dataset health check: statistics of a SIRST-style folder and every problem found in it.

Problems (``report.problems``) are things that break loading or training: an image without a
mask, a mask of another aspect ratio than its image, an unreadable file, a split that lists ids
with no image or is empty. Warnings (``report.warnings``) are data as it is in the wild that
loads, but maybe not as meant: a mask drawn with a value other than 255, a mask saved at another
resolution (resized when loaded), a split whose masks are all empty. Empty masks (images with
no target) and masks without an image are only ``report.info``: background-only images are
legitimate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeirst.data.sirst import (ASPECT_TOLERANCE, find_splits, layout_dirs, list_images, list_masks,
                                 mask_foreground_value, natural_key, read_image, read_mask, read_split)
from edgeirst.errors import EdgeirstError
from edgeirst.postprocess import cluster_targets
from edgeirst.progress import progress_bar

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


@dataclass
class CheckReport:
    """What ``check_dataset`` found. ``target_area`` and ``target_side`` map percentile -> value
    of the targets' pixel counts and of their boxes' longer side."""

    root: str
    images: int = 0
    masks: int = 0
    targets: int = 0
    empty_masks: int = 0
    target_area: dict[str, float] = field(default_factory=dict)
    target_side: dict[str, float] = field(default_factory=dict)
    image_size: dict[str, list[int]] = field(default_factory=dict)  # min/max [height, width]
    pixel_types: dict[str, int] = field(default_factory=dict)  # e.g. "uint8 x1" -> count
    splits: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def format(self) -> str:
        """Human-readable report, problems last."""
        pct = lambda d: "  ".join(f"p{k}={v:g}" for k, v in d.items()) or "-"  # noqa: E731
        size = (f"{self.image_size['min'][1]}x{self.image_size['min'][0]} .. "
                f"{self.image_size['max'][1]}x{self.image_size['max'][0]} (WxH)") if self.image_size else "-"
        lines = [f"dataset      {self.root}",
                 f"images       {self.images}",
                 f"masks        {self.masks} ({self.empty_masks} empty)",
                 f"targets      {self.targets}",
                 f"target area  {pct(self.target_area)}  (pixels)",
                 f"target side  {pct(self.target_side)}  (longer box side, pixels)",
                 f"image size   {size}",
                 "pixel types  " + (", ".join(f"{k}: {v}" for k, v in sorted(self.pixel_types.items())) or "-"),
                 "splits       " + (", ".join(f"{k}: {v}" for k, v in self.splits.items()) or "none")]
        lines += [f"info: {m}" for m in self.info]
        lines += [f"warning: {m}" for m in self.warnings]
        lines += [f"problem: {m}" for m in self.problems]
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        lines.append(f"{len(self.problems)} problem(s){warned}" if self.problems else
                     f"no problems found{warned}")
        return "\n".join(lines)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p = np.percentile(np.asarray(values, np.float64), PERCENTILES)
    return {str(k): round(float(v), 2) for k, v in zip(PERCENTILES, p)}


def check_dataset(root: str | Path, progress: bool = False) -> CheckReport:
    """Read every image and mask under ``root`` and report statistics and problems. Raises
    EdgeirstError only when there is nothing to check (no folder, no images/)."""

    root = Path(root)
    images_dir, masks_dir = layout_dirs(root)
    rep = CheckReport(str(root))
    images, masks = list_images(images_dir), list_masks(masks_dir)
    rep.images, rep.masks = len(images), len(masks)
    if not images:
        rep.problems.append(f"{images_dir} holds no image files (expected .png, .bmp, .jpg or .tif)")
    if not masks_dir.is_dir():
        rep.problems.append(f"no masks/ folder in {root}")
    areas: list[float] = []
    sides: list[float] = []
    lo, hi = [1 << 30, 1 << 30], [0, 0]
    counts: dict[str, int] = {}  # id -> targets in its mask
    values: dict[int, list[Path]] = {}  # foreground value other than 255 -> masks
    for id_ in progress_bar(sorted(images, key=natural_key), desc="check", unit="img", disable=not progress):
        try:
            img = read_image(images[id_])
        except EdgeirstError as e:
            rep.problems.append(str(e))
            img = None
        if img is not None:
            h, w = img.shape[:2]
            lo, hi = [min(lo[0], h), min(lo[1], w)], [max(hi[0], h), max(hi[1], w)]
            kind = f"{img.dtype} x{img.shape[2] if img.ndim == 3 else 1}"
            rep.pixel_types[kind] = rep.pixel_types.get(kind, 0) + 1
        if id_ not in masks:
            rep.problems.append(f"image {images[id_]} has no mask (expected {masks_dir / (id_ + '_pixels0.png')} "
                                f"or {masks_dir / (id_ + '.png')})")
            continue
        try:
            mask = read_mask(masks[id_])
            value = mask_foreground_value(masks[id_])
        except EdgeirstError as e:
            rep.problems.append(str(e))
            continue
        if value is not None:
            values.setdefault(value, []).append(masks[id_])
        if img is not None and mask.shape != img.shape[:2]:
            (mh, mw), (h, w) = mask.shape, img.shape[:2]
            same_aspect = abs((mw / mh) / (w / h) - 1.0) <= ASPECT_TOLERANCE
            (rep.warnings if same_aspect else rep.problems).append(
                f"mask {masks[id_]} is {mw}x{mh} but image {images[id_]} is {w}x{h} (WxH)"
                + ("; same aspect ratio: resized to the image (nearest) when loaded" if same_aspect
                   else ", another aspect ratio: fix or remove the pair"))
            if not same_aspect:
                continue
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        targets = cluster_targets(mask.astype(np.float32), 0.5)[0]
        counts[id_] = len(targets)
        if not len(targets):
            rep.empty_masks += 1
        rep.targets += len(targets)
        areas += targets.areas.tolist()
        sides += np.maximum(targets.boxes[:, 2] - targets.boxes[:, 0], targets.boxes[:, 3] - targets.boxes[:, 1]).tolist()
    rep.target_area, rep.target_side = _percentiles(areas), _percentiles(sides)
    if hi[0]:
        rep.image_size = {"min": lo, "max": hi}
    if rep.empty_masks:
        rep.info.append(f"{rep.empty_masks} mask(s) have no target (background-only images)")
    for value, paths in sorted(values.items()):
        rep.warnings.append(f"{len(paths)} mask(s) draw targets with value {value}, not 255, e.g. {paths[0]}: "
                            "read as targets (pixels above half the mask's maximum)")
    orphans = sorted(set(masks) - set(images), key=natural_key)
    if orphans:
        rep.info.append(f"{len(orphans)} mask(s) have no image, e.g. {masks[orphans[0]]}")
    _check_splits(root, images, counts, rep)
    return rep


def _check_splits(root: Path, images: dict[str, Path], counts: dict[str, int], rep: CheckReport) -> None:
    splits = find_splits(root)
    if not splits:
        rep.info.append("no split lists (<split>.txt, idx_*/<split>.txt); every image with a mask is used")
    for name in sorted(splits, key=natural_key):
        path = splits[name]
        try:
            ids = read_split(path)
        except EdgeirstError as e:
            rep.problems.append(str(e))
            continue
        rep.splits[name] = len(ids)
        if not ids:
            rep.problems.append(f"split {name!r} ({path}) lists no ids")
        missing = [i for i in ids if i not in images]
        if missing:
            shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
            rep.problems.append(f"split {name!r} ({path}) lists {len(missing)} id(s) with no image: {shown}")
        known = [i for i in ids if i in counts]
        if known and not any(counts[i] for i in known):
            rep.warnings.append(f"split {name!r} ({path}): all {len(known)} masks are empty; a model trained on it "
                                "learns to find nothing, and Pd and AP are undefined on it")
        dup = len(ids) - len(set(ids))
        if dup:
            rep.info.append(f"split {name!r} ({path}) lists {dup} id(s) more than once")
