"""Training samples: SIRST-style images, augmented, normalised by the shared preprocessing.

Images are decoded once into grey [0, 1] planes (``edgeirst.preprocess.to_unit``) and kept in
memory (SIRST-size datasets are a few hundred MB at most). Augmentation (``Augment``):
``basic`` is random scale, random crop (zero padding where the image is smaller), horizontal and
vertical flips, brightness and contrast; ``strong`` adds transposition (BasicIRSTD's flips +
transpose), gamma, sensor noise and a mild defocus blur, which a few hundred training images need
to hold up on unseen ones. Per-target boxes for detection losses come from the augmented mask
through the shared eight-connected clustering, so they always match the pixels.

Crops are taken at each image's own resolution (scale jitter aside), so images of 320x240 and
1280x1024 train together and a target keeps the pixel size it has in deployment. ``Recipe`` adds
what makes a model hold up on scenes it never saw: crops placed on a target (large frames would
otherwise give mostly empty crops), background-only frames as a fixed share of every batch
(``MixedBatches``), hard negatives (crops centred on a background frame's brightest small blobs,
where a segmenter's false alarms lie) and copy-paste synthesis (real targets cut from their masks
and pasted onto real background crops at a drawn signal-to-clutter ratio and size), and synthetic
targets (``edgeirst.data.synth``'s points, spots and elongated Gaussians, sizes a real training set
lacks) rendered onto the real clutter of a crop; and other cameras' grey levels (gain and offset).
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import cv2
import numpy as np
import torch

from edgeirst.data.sirst import SirstDataset
from edgeirst.data.synth import SynthConfig, place_targets, render_targets
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


@dataclass(frozen=True)
class Recipe:
    """What the sampler and the crops do beyond augmentation (all off by default).

    ``negatives``: share of each batch drawn from background-only images; ``target_crops``:
    probability that a crop of an image with targets is placed on one of them; ``hard_crops``:
    probability that a background crop is centred on one of the frame's brightest small blobs;
    ``clutter_crops``: probability that a crop of an image with targets, when not placed on a target,
    is centred on one of its brightest small blobs away from the targets (the hard negatives of the
    scenes targets are seen in: lamps, windows, glints);
    ``copy_paste``: probability that a background crop gets 1-3 real targets pasted in, at a
    signal-to-clutter ratio drawn from ``scr`` and a scale from ``paste_scale``; ``faint``:
    probability that a crop's contrast is scaled down around its median by a gain drawn
    log-uniformly from ``faint_gain`` (after the photometric augmentation, so its noise shrinks
    with it and the signal-to-clutter ratio is kept): targets a few grey levels above a flat sky,
    as other sensors deliver them, look like that, and NUAA-SIRST has none; ``mine``: probability
    that a crop not placed on a target is centred on one of the model's own current false alarms
    in that image (``TrainSamples.mined``, refreshed by the trainer, ``edgeirst.train.mining``);
    ``synth_targets``: probability that a crop gets 1-3 synthetic targets (``edgeirst.data.synth``:
    points, spots and elongated Gaussians of PSF sigma ``synth_sizes``, the demo scene's shapes)
    rendered onto its real clutter at a signal-to-clutter ratio drawn from ``synth_scr``, where it
    fits below the top of the pixel range and stands at least ``SYNTH_MIN_CONTRAST`` above the clutter;
    ``levels``: probability that a crop's grey levels are remapped as another camera's gain and
    offset (AGC) would deliver them: contrast scaled around the crop's median by a gain drawn
    log-uniformly from ``levels_gain``, then the median moved to a level drawn from
    ``levels_median`` (a dark night sky or a bright hazy one; the strong augmentation's +-0.1 and
    0.7-1.3x leave a model blind to a clear target on a sky darker than NUAA-SIRST's).
    """

    negatives: float = 0.0
    target_crops: float = 0.0
    hard_crops: float = 0.0
    clutter_crops: float = 0.0
    copy_paste: float = 0.0
    scr: tuple[float, float] = (2.0, 15.0)
    paste_scale: tuple[float, float] = (0.7, 1.5)
    faint: float = 0.0
    faint_gain: tuple[float, float] = (0.05, 0.5)
    mine: float = 0.0
    synth_targets: float = 0.0
    synth_scr: tuple[float, float] = (3.0, 15.0)
    synth_sizes: tuple[float, float] = (1.0, 4.0)
    levels: float = 0.0
    levels_gain: tuple[float, float] = (0.5, 2.5)
    levels_median: tuple[float, float] = (0.05, 0.75)


SYNTH_MIN_CONTRAST = 0.05  # a synthetic target's peak above its clutter, in the pixel range (NUAA-SIRST has none fainter)
HARD_CANDIDATES = 24  # bright-blob crop centres kept per background frame
TOPHAT_KERNEL = 15  # px: blobs smaller than this stand out of the white top-hat, as small targets do


def bright_blobs(img: np.ndarray, k: int = HARD_CANDIDATES, targets: np.ndarray | None = None) -> np.ndarray:
    """Up to ``k`` (y, x) centres of the strongest local maxima of a white top-hat: small bright
    structures, the clutter a small-target segmenter mistakes for targets; none within
    ``TOPHAT_KERNEL`` px of a pixel of the ``targets`` mask, if given."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (TOPHAT_KERNEL, TOPHAT_KERNEL))
    th = cv2.morphologyEx(img.astype(np.float32), cv2.MORPH_TOPHAT, kernel)
    peaks = (th >= cv2.dilate(th, np.ones((9, 9), np.uint8))) & (th > 0)
    if targets is not None and targets.any():
        near = np.ones((2 * TOPHAT_KERNEL + 1,) * 2, np.uint8)
        peaks &= ~cv2.dilate(targets.astype(np.uint8), near).astype(bool)
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return np.zeros((0, 2), np.int64)
    order = np.argsort(-th[ys, xs], kind="stable")[:k]
    return np.stack([ys[order], xs[order]], 1)


def target_bank(images: list[np.ndarray], masks: list[np.ndarray], max_area: int = 400) -> list[tuple]:
    """Real targets cut from their masks: (signal above the local background, soft alpha) pairs.
    Dark targets and large ones (over ``max_area`` px) are left out."""
    bank = []
    for img, m in zip(images, masks):
        if not m.any():
            continue
        t, _ = cluster_targets(m.astype(np.float32), 0.5)
        h, w = img.shape
        for (x1, y1, x2, y2), area in zip(t.boxes, t.areas):
            if area > max_area:
                continue
            xa, ya = max(0, int(x1) - 4), max(0, int(y1) - 4)
            xb, yb = min(w, int(math.ceil(x2)) + 4), min(h, int(math.ceil(y2)) + 4)
            patch, pm = img[ya:yb, xa:xb], m[ya:yb, xa:xb]
            ring = ~cv2.dilate(pm.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            if not ring.any():
                continue
            signal = np.clip(patch - np.median(patch[ring]), 0.0, None).astype(np.float32)
            alpha = np.clip(cv2.GaussianBlur(pm.astype(np.float32), (0, 0), 0.7) * 1.5, 0.0, 1.0)
            signal *= alpha
            if signal.max() > 0.02:
                bank.append((signal / signal.max(), pm.copy()))
    return bank


def _pick(points: np.ndarray, rng: np.random.Generator, scale: float, swap: bool) -> tuple[int, int]:
    """One of an image's (y, x) points, in the crop's scaled (and maybe transposed) frame."""
    y, x = points[int(rng.integers(len(points)))] * scale
    return (int(x), int(y)) if swap else (int(y), int(x))


class TrainSamples(torch.utils.data.Dataset):
    """Augmented ``size`` x ``size`` crops with their masks."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], meta: ModelMeta, size: int,
                 augment: Augment | str = "basic", recipe: Recipe = Recipe()):
        self.images, self.masks, self.meta = images, masks, meta
        self.size = size
        self.aug = Augment.named(augment) if isinstance(augment, str) else augment
        self.augment = self.aug.geometric
        self.recipe = recipe
        self.negatives = [i for i, m in enumerate(masks) if not m.any()]
        self.negatives_set = set(self.negatives)
        self.positives = [i for i, m in enumerate(masks) if m.any()]
        self.blobs = {i: bright_blobs(images[i]) for i in self.negatives} if recipe.hard_crops else {}
        if recipe.clutter_crops:
            self.blobs.update({i: bright_blobs(images[i], targets=masks[i]) for i in self.positives})
        self.bank = target_bank(images, masks) if recipe.copy_paste else []
        self.mined: dict[int, np.ndarray] = {}  # image -> (y, x) of the model's false alarms (the trainer's)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        rng = np.random.default_rng(torch.randint(0, 2**31 - 1, ()).item())
        img, mask = self.images[i], self.masks[i].astype(np.uint8)
        a, r = self.aug, self.recipe
        scale, swap = 1.0, False
        if a.scale != (1.0, 1.0):
            scale = rng.uniform(*a.scale)
            h, w = img.shape
            nh, nw = max(8, round(h * scale)), max(8, round(w * scale))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        if a.transpose and rng.random() < 0.5:
            img, mask, swap = img.T, mask.T, True
        centre = None
        if r.target_crops and rng.random() < r.target_crops and mask.any():
            ys, xs = np.nonzero(mask)
            k = int(rng.integers(len(ys)))
            centre = (int(ys[k]), int(xs[k]))
        elif i in self.mined and rng.random() < r.mine:
            centre = _pick(self.mined[i], rng, scale, swap)
        elif i in self.blobs and len(self.blobs[i]) and rng.random() < (r.hard_crops if i in self.negatives_set
                                                                          else r.clutter_crops):
            centre = _pick(self.blobs[i], rng, scale, swap)
        img, mask = self._crop(img, mask, rng, centre)
        if self.bank and not mask.any() and rng.random() < r.copy_paste:
            img, mask = self._paste(np.array(img, np.float32), np.array(mask), rng)
        if r.synth_targets and rng.random() < r.synth_targets:
            img, mask = self._synth(np.array(img, np.float32), np.array(mask), rng)
        if a.flips:
            if rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
            if rng.random() < 0.5:
                img, mask = img[::-1], mask[::-1]
        img = self._photometric(np.ascontiguousarray(img, np.float32), rng)
        if r.levels and rng.random() < r.levels:
            img = self._levels(img, rng)
        if r.faint and rng.random() < r.faint:
            img = self._faint(img, rng)
        x = normalize(np.ascontiguousarray(img, np.float32), self.meta)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None]

    def _paste(self, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        """1-3 real targets pasted at random places, each at a drawn signal-to-clutter ratio (peak
        over the standard deviation of the background around it) and scale."""
        r, s = self.recipe, self.size
        for _ in range(int(rng.integers(1, 4))):
            signal, pm = self.bank[int(rng.integers(len(self.bank)))]
            k = rng.uniform(*r.paste_scale)
            ph, pw = max(1, round(signal.shape[0] * k)), max(1, round(signal.shape[1] * k))
            if ph >= s or pw >= s:
                continue
            sig = cv2.resize(signal, (pw, ph), interpolation=cv2.INTER_LINEAR)
            pmk = cv2.resize(pm.astype(np.uint8), (pw, ph), interpolation=cv2.INTER_NEAREST).astype(bool)
            if not pmk.any():
                continue
            y, x = int(rng.integers(0, s - ph + 1)), int(rng.integers(0, s - pw + 1))
            ya, yb, xa, xb = max(0, y - 2 * ph), min(s, y + 3 * ph), max(0, x - 2 * pw), min(s, x + 3 * pw)
            clutter = max(float(img[ya:yb, xa:xb].std()), 0.01)
            scr = math.exp(rng.uniform(math.log(r.scr[0]), math.log(r.scr[1])))
            img[y:y + ph, x:x + pw] += sig * (scr * clutter / float(sig.max()))
            mask[y:y + ph, x:x + pw] |= pmk.astype(mask.dtype)
        return np.clip(img, 0.0, 1.0), mask

    def _synth(self, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        """1-3 synthetic targets rendered onto the crop's own clutter (fewer where none fits)."""
        r = self.recipe
        cfg = SynthConfig(targets=(1, 3), scr=r.synth_scr, sizes=r.synth_sizes)
        visible = []
        for t in place_targets(cfg, rng, img):
            out, m = render_targets(img, [t])
            if float((out - img)[m].max()) >= SYNTH_MIN_CONTRAST:  # on flat or zero-padded parts, SCR alone
                visible.append(t)  # would give a target the augmentation's noise hides: no label for the unseen
        img, new = render_targets(img, visible)
        return np.clip(img, 0.0, 1.0), mask | new.astype(mask.dtype)

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

    def _levels(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r = self.recipe
        gain = np.float32(math.exp(rng.uniform(math.log(r.levels_gain[0]), math.log(r.levels_gain[1]))))
        median = np.float32(np.median(img))
        return np.clip((img - median) * gain + np.float32(rng.uniform(*r.levels_median)), 0.0, 1.0)

    def _faint(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.recipe.faint_gain
        gain = np.float32(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        median = np.float32(np.median(img))
        return (img - median) * gain + median

    def _crop(self, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, centre=None):
        """A ``size`` crop: random (training), central, or holding ``centre`` (y, x) at a random place."""
        s = self.size
        h, w = img.shape
        if h < s or w < s:  # pad bottom/right with zeros, as the runtime does
            ph, pw = max(0, s - h), max(0, s - w)
            img = np.pad(img, ((0, ph), (0, pw)))
            mask = np.pad(mask, ((0, ph), (0, pw)))
            h, w = img.shape
        if centre is not None:
            cy, cx = centre
            m = min(8, s // 4)  # keep the point this far inside the crop
            y = int(np.clip(cy - rng.integers(m, s - m), 0, h - s))
            x = int(np.clip(cx - rng.integers(m, s - m), 0, w - s))
        else:
            y = int(rng.integers(0, h - s + 1)) if self.augment else (h - s) // 2
            x = int(rng.integers(0, w - s + 1)) if self.augment else (w - s) // 2
        return img[y:y + s, x:x + s], mask[y:y + s, x:x + s]


class MixedBatches(torch.utils.data.Sampler):
    """Batches of indices with a fixed share of background-only images: the images with targets
    in a shuffled pass, at most once per epoch (the pass's remainder that fills no batch is left
    for a later epoch's shuffle), each batch topped up with ``round(share * batch)`` (at least
    one) background images, drawn in shuffled passes over them."""

    def __init__(self, positives: list[int], negatives: list[int], batch: int, share: float,
                 generator: torch.Generator) -> None:
        self.positives, self.negatives, self.generator = list(positives), list(negatives), generator
        self.n_neg = min(batch - 1, max(1, round(share * batch))) if batch > 1 else 1
        self.n_pos = max(1, batch - self.n_neg)

    def __len__(self) -> int:
        return max(1, len(self.positives) // self.n_pos)

    def __iter__(self):
        pos = [self.positives[j] for j in torch.randperm(len(self.positives), generator=self.generator).tolist()]
        neg: list[int] = []
        for b in range(len(self)):
            while len(neg) < self.n_neg:
                neg += [self.negatives[j] for j in torch.randperm(len(self.negatives), generator=self.generator).tolist()]
            yield pos[b * self.n_pos:(b + 1) * self.n_pos] + neg[:self.n_neg]
            neg = neg[self.n_neg:]


def collate(items) -> dict:
    """Stack images and masks; per-target boxes (Kx4 xyxy, input pixels) from each mask."""
    images = torch.stack([it[0] for it in items])
    masks = torch.stack([it[1] for it in items])
    boxes = []
    for m in masks:
        t, _ = cluster_targets(m[0].numpy(), 0.5)
        boxes.append(torch.from_numpy(t.boxes))
    return {"image": images, "mask": masks, "boxes": boxes}
