"""Training samples: SIRST-style images, augmented, normalised by the shared preprocessing.

Images are decoded once into grey [0, 1] planes (``edgeirst.preprocess.to_unit``) and kept in
memory (SIRST-size datasets are a few hundred MB at most). Augmentation: random scale, random
crop (zero padding where the image is smaller), horizontal/vertical flips, brightness and
contrast. Per-target boxes for detection losses come from the augmented mask through the
shared eight-connected clustering, so they always match the pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from edgeirst.data.sirst import SirstDataset
from edgeirst.meta import ModelMeta
from edgeirst.postprocess import cluster_targets
from edgeirst.preprocess import normalize, to_unit


def unit_images(ds: SirstDataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(grey [0, 1] planes, bool masks) for every sample of a dataset."""
    images, masks = [], []
    for i in range(len(ds)):
        s = ds[i]
        images.append(to_unit(s.image))
        masks.append(s.mask.astype(bool))
    return images, masks


def intensity_stats(images: list[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation of all pixels (the model's normalisation)."""
    n = sum(im.size for im in images)
    mean = sum(float(im.sum(dtype=np.float64)) for im in images) / n
    var = sum(float(((im - mean) ** 2).sum(dtype=np.float64)) for im in images) / n
    return mean, max(var ** 0.5, 1e-3)


def mean_target_size(masks: list[np.ndarray]) -> float:
    """Mean sqrt(w*h) of the per-target boxes (DotD's S)."""
    sides = []
    for m in masks:
        t, _ = cluster_targets(m.astype(np.float32), 0.5)
        b = t.boxes
        sides.extend(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).tolist())
    return float(np.mean(sides)) if sides else 4.0


class TrainSamples(torch.utils.data.Dataset):
    """Augmented ``size`` x ``size`` crops with their masks."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], meta: ModelMeta, size: int,
                 augment: bool = True, scale: tuple[float, float] = (0.8, 1.25)):
        self.images, self.masks, self.meta = images, masks, meta
        self.size, self.augment, self.scale = size, augment, scale

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        rng = np.random.default_rng(torch.randint(0, 2**31 - 1, ()).item())
        img, mask = self.images[i], self.masks[i].astype(np.uint8)
        if self.augment and self.scale != (1.0, 1.0):
            s = rng.uniform(*self.scale)
            h, w = img.shape
            nh, nw = max(8, round(h * s)), max(8, round(w * s))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        img, mask = self._crop(img, mask, rng)
        if self.augment:
            if rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
            if rng.random() < 0.5:
                img, mask = img[::-1], mask[::-1]
            contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)
            img = np.clip(img * contrast + brightness, 0.0, 1.0)
        x = normalize(np.ascontiguousarray(img, np.float32), self.meta)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None]

    def _crop(self, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        s = self.size
        h, w = img.shape
        if h < s or w < s:  # pad bottom/right with zeros, as the runtime does
            ph, pw = max(0, s - h), max(0, s - w)
            img = np.pad(img, ((0, ph), (0, pw)))
            mask = np.pad(mask, ((0, ph), (0, pw)))
            h, w = img.shape
        y = int(rng.integers(0, h - s + 1)) if self.augment else (h - s) // 2
        x = int(rng.integers(0, w - s + 1)) if self.augment else (w - s) // 2
        return img[y:y + s, x:x + s], mask[y:y + s, x:x + s]


def collate(items) -> dict:
    """Stack images and masks; per-target boxes (Kx4 xyxy, input pixels) from each mask."""
    images = torch.stack([it[0] for it in items])
    masks = torch.stack([it[1] for it in items])
    boxes = []
    for m in masks:
        t, _ = cluster_targets(m[0].numpy(), 0.5)
        boxes.append(torch.from_numpy(t.boxes))
    return {"image": images, "mask": masks, "boxes": boxes}
