"""COCO detection annotations from SIRST masks: one box per 8-connected mask component.

The result loads with ``pycocotools.coco.COCO`` and is the ground truth of AP50/AP. Boxes are
``[x, y, w, h]`` in pixels with exclusive right/bottom edges (a one-pixel target is
``[x, y, 1, 1]``); ``area`` is the component's pixel count; one category, ``target`` (id 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeirst.data.sirst import SirstDataset
from edgeirst.io import write_text
from edgeirst.progress import progress_bar

CATEGORY = {"id": 1, "name": "target", "supercategory": "target"}


def to_coco(dataset: SirstDataset, progress: bool = False) -> dict[str, Any]:
    """COCO detection dict (``info``, ``images``, ``annotations``, ``categories``). Image ids are
    1-based positions in ``dataset.ids``; ``file_name`` is the path relative to the dataset root."""

    images, annotations = [], []
    for k in progress_bar(range(len(dataset)), desc="coco", unit="img", disable=not progress):
        sample = dataset[k]
        h, w = sample.mask.shape
        image_id = k + 1
        images.append({"id": image_id, "file_name": dataset.image_path(sample.id).relative_to(dataset.root).as_posix(),
                       "width": int(w), "height": int(h), "edgeirst_id": sample.id})
        targets = sample.targets()
        for box, area in zip(targets.boxes.tolist(), targets.areas.tolist()):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORY["id"],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": int(area), "iscrowd": 0})
    info = {"description": f"edgeirst COCO boxes of {dataset.root}", "split": dataset.split}
    return {"info": info, "images": images, "annotations": annotations, "categories": [dict(CATEGORY)]}


def write_coco(dataset: SirstDataset, out: str | Path, progress: bool = False) -> dict[str, Any]:
    """Write ``to_coco(dataset)`` as JSON to ``out`` and return it."""
    coco = to_coco(dataset, progress)
    write_text(out, json.dumps(coco, indent=1))
    return coco
