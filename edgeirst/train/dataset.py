"""Training samples: SIRST-style images, augmented, normalised by the shared preprocessing.

Images are decoded once into grey [0, 1] planes (``edgeirst.preprocess.to_unit``) and kept in
memory (SIRST-size datasets are a few hundred MB at most). Augmentation (``Augment``):
``basic`` is random scale, random crop (zero padding where the image is smaller), horizontal and
vertical flips, brightness and contrast; ``strong`` adds transposition (BasicIRSTD's flips +
transpose), gamma, sensor noise and a mild defocus blur, which a few hundred training images need
to hold up on unseen ones. Per-target boxes for detection losses come from the augmented mask
through the shared eight-connected clustering, so they always match the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Augment:
    """Photometric and geometric augmentation; ``Augment.named(level)`` gives the presets."""

    scale: tuple[float, float] = (1.0, 1.0)
    flips: bool = False
    transpose: bool = False
    contrast: tuple[float, float] = (1.0, 1.0)
    brightness: float = 0.0
    gamma: tuple[float, float] = (1.0, 1.0)
    noise: float = 0.0  # max std of additive Gaussian noise, in [0, 1] intensity units
    blur: float = 0.0  # probability of a Gaussian blur with sigma in [0.3, 0.8] px

    LEVELS = ("none", "basic", "strong")

    @classmethod
    def named(cls, level: str) -> "Augment":
        if level == "none":
            return cls()
        if level == "basic":
            return cls(scale=(0.8, 1.25), flips=True, contrast=(0.8, 1.2), brightness=0.08)
        if level == "strong":
            return cls(scale=(0.7, 1.4), flips=True, transpose=True, contrast=(0.7, 1.3), brightness=0.1,
                       gamma=(0.7, 1.5), noise=0.02, blur=0.2)
        raise ValueError(f"unknown augmentation level {level!r}; expected one of {cls.LEVELS}")

    @property
    def geometric(self) -> bool:
        return self != Augment()


class TrainSamples(torch.utils.data.Dataset):
    """Augmented ``size`` x ``size`` crops with their masks."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], meta: ModelMeta, size: int,
                 augment: Augment | str = "basic"):
        self.images, self.masks, self.meta = images, masks, meta
        self.size = size
        self.aug = Augment.named(augment) if isinstance(augment, str) else augment
        self.augment = self.aug.geometric

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        rng = np.random.default_rng(torch.randint(0, 2**31 - 1, ()).item())
        img, mask = self.images[i], self.masks[i].astype(np.uint8)
        a = self.aug
        if a.scale != (1.0, 1.0):
            s = rng.uniform(*a.scale)
            h, w = img.shape
            nh, nw = max(8, round(h * s)), max(8, round(w * s))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        if a.transpose and rng.random() < 0.5:
            img, mask = img.T, mask.T
        img, mask = self._crop(img, mask, rng)
        if a.flips:
            if rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
            if rng.random() < 0.5:
                img, mask = img[::-1], mask[::-1]
        img = self._photometric(np.ascontiguousarray(img, np.float32), rng)
        x = normalize(np.ascontiguousarray(img, np.float32), self.meta)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None]

    def _photometric(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = self.aug
        if a.blur and rng.random() < a.blur:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))
        if a.gamma != (1.0, 1.0):
            img = np.power(np.clip(img, 0.0, 1.0), rng.uniform(*a.gamma), dtype=np.float32)
        if a.contrast != (1.0, 1.0) or a.brightness:
            img = img * rng.uniform(*a.contrast) + rng.uniform(-a.brightness, a.brightness)
        if a.noise:
            img = img + rng.normal(0.0, rng.uniform(0.0, a.noise), img.shape).astype(np.float32)
        return np.clip(img, 0.0, 1.0)

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
