"""Reader for SIRST-family dataset folders (NUAA-SIRST, NUDT-SIRST, IRSTD-1k, our synthetic ones).

Layout::

    root/images/<id>.{png,bmp,jpg,jpeg,tif,tiff}
    root/masks/<id>.png  or  root/masks/<id>_pixels0.png      (non-zero = target)
    (IRSTD-1k's original IRSTD1k_Img/ and IRSTD1k_Label/ folders are accepted too)
    root/<split>.txt | root/idx_*/<split>.txt | root/*/<split>.txt   (one id per line)

Ids in split lists may carry an image extension or not; lists may be UTF-8 or UTF-16 (what
Windows Notepad saves as "Unicode"). The split ``all`` means every image that has a mask.
Images are returned as read from disk (uint8 or uint16, grey or 3-channel); masks as bool.
Data as it is in the wild: a mask whose targets are not 255 (e.g. 0/100) is read by half its
own maximum; a mask saved at another resolution with the same aspect ratio (within 2%, as in
the public SIRST release) is resized to its image with nearest-neighbour and a warning, as the
papers' loaders effectively do; any other size mismatch is an error. A split name that occurs in several
folders (say ``idx_320/train.txt`` and ``idx_427/train.txt``) must be given with its folder:
``idx_427/train``. A split may also be the path of a list file kept elsewhere (``lists/val.txt``),
e.g. held-apart sequences of a dataset one does not own. ``open_datasets`` joins several
(dataset, split) pairs into one ``DatasetUnion`` for training and evaluation across sources.
numpy + OpenCV only.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgeirst.errors import EdgeirstError, EdgeirstWarning
from edgeirst.io import protect_inputs
from edgeirst.postprocess import cluster_targets

if TYPE_CHECKING:
    from edgeirst.postprocess import Targets

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIX = "_pixels0"
IMAGE_DIRS = ("images", "IRSTD1k_Img")
MASK_DIRS = ("masks", "IRSTD1k_Label")
ALL_SPLIT = "all"
ASPECT_TOLERANCE = 0.02
_NOT_SPLITS = {"readme", "license", "licence", "notes", "classes", "labels", "requirements"}


def natural_key(text: str) -> list:
    """Sort key that puts ``Misc_2`` before ``Misc_10``."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]


@dataclass
class Sample:
    """One image with its target mask. ``image`` is as read from disk (uint8/uint16, HxW or
    HxWx3); ``mask`` is bool HxW, same size."""

    id: str
    image: np.ndarray
    mask: np.ndarray

    def targets(self) -> "Targets":
        """Per-target boxes, centroids and pixel areas from the mask's 8-connected components."""

        return cluster_targets(self.mask.astype(np.float32), 0.5)[0]


def read_image(path: Path) -> np.ndarray:
    """An image file as stored (``cv2.IMREAD_UNCHANGED``); an alpha channel is dropped."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise EdgeirstError(f"cannot read {path}: expected an image file, got an unreadable or corrupt one; "
                            "re-copy it or remove it from the dataset")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype not in (np.uint8, np.uint16):
        raise EdgeirstError(f"{path} has {img.dtype} pixels; expected 8-bit or 16-bit, convert it with an image tool")
    return img


def _read_mask(path: Path) -> tuple[np.ndarray, int | None]:
    m = read_image(path)
    if m.ndim == 3:
        m = m.max(axis=2)
    top = int(m.max()) if m.size else 0
    full = 255 if m.dtype == np.uint8 else 65535
    unusual = None if top in (0, 1, full) else top
    if top == 0:
        return np.zeros(m.shape, bool), unusual
    return m.astype(np.float32) > top / 2.0, unusual


def read_mask(path: Path) -> np.ndarray:
    """A mask file -> bool HxW: pixels above half the mask's own maximum (0/1, 0/255 and 0/100
    masks all read as drawn; JPEG-like fringes below half are ignored)."""
    return _read_mask(path)[0]


def mask_foreground_value(path: Path) -> int | None:
    """The value a mask draws its targets with, when it is neither 255 (16-bit: 65535) nor 1;
    None otherwise (an empty mask included)."""
    return _read_mask(path)[1]


def fit_mask(mask: np.ndarray, image_hw: tuple[int, int], mask_path: Path, image_path: Path) -> np.ndarray:
    """A mask at its image's size: resized (nearest) with a warning when only the resolution
    differs (aspect ratios within 2%), else an EdgeirstError."""
    h, w = image_hw
    mh, mw = mask.shape
    if (mh, mw) == (h, w):
        return mask
    if abs((mw / mh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise EdgeirstError(f"mask {mask_path} is {mw}x{mh} but image {image_path} is {w}x{h} (WxH), a different "
                            "aspect ratio; masks must match their image (fix or remove the pair)")
    warnings.warn(f"mask {mask_path} is {mw}x{mh} but its image is {w}x{h}: resized to the image with "
                  "nearest-neighbour (same aspect ratio)", EdgeirstWarning, stacklevel=2)
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def list_images(folder: Path) -> dict[str, Path]:
    """id -> file for the image files in a folder (first extension in IMAGE_EXTS order wins)."""
    found: dict[str, Path] = {}
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS),
                   key=lambda p: IMAGE_EXTS.index(p.suffix.lower()))
    for p in files:
        found.setdefault(p.stem, p)
    return found


def list_masks(folder: Path) -> dict[str, Path]:
    """id -> mask file; ``<id>_pixels0.*`` and ``<id>.*`` both map to ``<id>``."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for stem, p in sorted(list_images(folder).items()):
        found.setdefault(stem[: -len(MASK_SUFFIX)] if stem.endswith(MASK_SUFFIX) else stem, p)
    return found


def layout_dirs(root: Path) -> tuple[Path, Path]:
    """(images folder, masks folder) of a dataset root; the masks folder may not exist."""
    if root.exists() and not root.is_dir():
        raise EdgeirstError(f"dataset {root} is a file; expected a folder with images/ and masks/")
    if not root.is_dir():
        raise EdgeirstError(f"dataset folder {root} does not exist; expected a folder with images/ and masks/")
    images = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if images is None:
        raise EdgeirstError(f"no images/ folder in {root}; expected a SIRST layout "
                            "(images/<id>.png, masks/<id>_pixels0.png or masks/<id>.png)")
    masks = next((root / d for d in MASK_DIRS if (root / d).is_dir()), root / MASK_DIRS[0])
    return images, masks


def find_splits(root: str | Path) -> dict[str, Path]:
    """Split name -> list file, from ``root/<split>.txt``, ``root/idx_*/<split>.txt`` and
    ``root/*/<split>.txt``. A name found at the root level wins; a name found in several
    sub-folders is keyed ``<folder>/<split>`` for each of them."""
    root = Path(root)
    if not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for p in sorted(root.glob("*.txt")):
        if p.stem.lower() not in _NOT_SPLITS:
            found[p.stem] = p
    sub: dict[str, list[Path]] = {}
    dirs = sorted((d for d in root.iterdir() if d.is_dir() and d.name not in IMAGE_DIRS + MASK_DIRS),
                  key=lambda d: (not d.name.startswith("idx_"), d.name))
    for d in dirs:
        for p in sorted(d.glob("*.txt")):
            if p.stem.lower() not in _NOT_SPLITS:
                sub.setdefault(p.stem, []).append(p)
    for name, paths in sub.items():
        if name in found:
            continue
        if len(paths) == 1:
            found[name] = paths[0]
        else:
            for p in paths:
                found[f"{p.parent.name}/{name}"] = p
    return found


def read_split(path: Path) -> list[str]:
    """Ids listed in a split file: one per line, blank lines and ``#`` comments skipped, a folder
    prefix and an image extension dropped."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgeirstError(f"cannot read split list {path}: {e.strerror}") from None
    lines = decode_text(data).splitlines()
    ids = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = line.replace("\\", "/").rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        ids.append(stem if dot and f".{ext.lower()}" in IMAGE_EXTS else name)
    return ids


def _unique_ids(ids: list[str], path: Path) -> list[str]:
    """``ids`` each once, in list order, with one warning when the list repeats some. Not an
    error: concatenated lists are common in the wild and each image counted once is the only
    meaning a split can have (repeats would weigh those images twice in every metric)."""
    unique = list(dict.fromkeys(ids))
    if len(unique) < len(ids):
        warnings.warn(f"split list {path} lists {len(ids) - len(unique)} id(s) more than once; each image is used "
                      f"once ({len(unique)} images)", EdgeirstWarning, stacklevel=3)
    return unique


def decode_text(data: bytes) -> str:
    """A small text file's bytes as text: UTF-8 (with or without a BOM) or UTF-16 (with a BOM,
    or without one when every other byte is NUL, as Notepad's "Unicode" files of ASCII ids are)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if len(data) >= 2 and data.count(b"\x00") >= max(1, len(data) // 3):
        return data.decode("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def resolve_split(root: Path, split: str) -> Path:
    """The list file of a split name (``train`` or ``idx_427/train``) or an EdgeirstError naming
    the available ones."""
    splits = find_splits(root)
    if split in splits:
        return splits[split]
    direct = root / f"{split}.txt"
    if "/" in split and direct.is_file():
        return direct
    listed = Path(split).expanduser()
    if listed.suffix.lower() == ".txt" and listed.is_file():  # a list kept outside the dataset
        return listed
    have = ", ".join(sorted(splits, key=natural_key)) or "none (no <split>.txt files found)"
    raise EdgeirstError(f"unknown split {split!r} in {root}; available: {have}. "
                        f"Pass one of these, or --split {ALL_SPLIT} to use every image that has a mask")


class SirstDataset:
    """Images and masks of a SIRST-style folder, optionally restricted to one split.

    ``split=None`` takes every image that has a mask, in natural order of ids. Construction
    checks that every id of the split has an image and a mask; pixels are read on access, and
    an unreadable file or a mask of the wrong size raises an EdgeirstError naming the file.
    """

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self.split_file: Path | None = None
        self._warned_value = False
        self.images_dir, self.masks_dir = layout_dirs(self.root)
        self._images = list_images(self.images_dir)
        self._masks = list_masks(self.masks_dir)
        if split == ALL_SPLIT and ALL_SPLIT not in find_splits(self.root):
            split = self.split = None
        if split is None:
            self.ids = sorted((i for i in self._images if i in self._masks), key=natural_key)
            if not self.ids:
                raise EdgeirstError(f"no image in {self.images_dir} has a mask in {self.masks_dir}; "
                                    "expected masks named <id>.png or <id>_pixels0.png")
        else:
            self.split_file = resolve_split(self.root, split)
            self.ids = _unique_ids(read_split(self.split_file), self.split_file)
            if not self.ids:
                raise EdgeirstError(f"split {split!r} is empty: {self.split_file} lists no ids; add ids, one per line")
            self._check_ids()
        # no output of the running command may replace the images, masks or list it reads
        protect_inputs(self.split_file, *(self._images[i] for i in self.ids), *(self._masks[i] for i in self.ids))

    def _check_ids(self) -> None:
        no_image = [i for i in self.ids if i not in self._images]
        if no_image:
            raise EdgeirstError(f"{len(no_image)} id(s) in {self.split_file} have no image in {self.images_dir}, "
                                f"e.g. {self.images_dir / no_image[0]}.png; fix the list or add the images")
        no_mask = [i for i in self.ids if i not in self._masks]
        if no_mask:
            i = no_mask[0]
            raise EdgeirstError(f"{len(no_mask)} image(s) of split {self.split!r} have no mask, e.g. {self._images[i]}: "
                                f"expected {self.masks_dir / (i + MASK_SUFFIX + '.png')} or "
                                f"{self.masks_dir / (i + '.png')}")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self.ids) <= i < len(self.ids):
            raise IndexError(f"index {i} out of range for {len(self.ids)} samples")
        id_ = self.ids[i]
        image_path, mask_path = self.image_path(id_), self.mask_path(id_)
        image, (mask, unusual) = read_image(image_path), _read_mask(mask_path)
        if unusual is not None and not self._warned_value:
            self._warned_value = True
            warnings.warn(f"mask {mask_path} draws targets with value {unusual}, not 255: read as targets (pixels "
                          "above half its maximum); `edgeirst data check` lists every such mask", EdgeirstWarning,
                          stacklevel=2)
        return Sample(id_, image, fit_mask(mask, image.shape[:2], mask_path, image_path))

    def image_path(self, id: str) -> Path:
        """The image file of an id."""
        try:
            return self._images[id]
        except KeyError:
            raise EdgeirstError(f"no image for id {id!r} in {self.images_dir}") from None

    def mask_path(self, id: str) -> Path:
        """The mask file of an id."""
        try:
            return self._masks[id]
        except KeyError:
            raise EdgeirstError(f"no mask for id {id!r}: expected {self.masks_dir / (id + MASK_SUFFIX + '.png')} "
                                f"or {self.masks_dir / (id + '.png')}") from None

    def __repr__(self) -> str:
        return f"SirstDataset({str(self.root)!r}, split={self.split!r}, {len(self)} images)"


class DatasetUnion:
    """Several datasets read as one, in order: ``len``, ``[i]`` and ``ids`` as a SirstDataset has.
    Ids are prefixed with their dataset's folder name (``sirst/Misc_1``) so they stay unique."""

    def __init__(self, parts: "list[SirstDataset]") -> None:
        self.parts = list(parts)
        self._index = [(p, i) for p in self.parts for i in range(len(p))]
        self.ids = [f"{p.root.name}/{i}" for p in self.parts for i in p.ids]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> Sample:
        part, j = self._index[i]
        s = part[j]
        return Sample(f"{part.root.name}/{s.id}", s.image, s.mask)

    def __repr__(self) -> str:
        return "DatasetUnion(" + ", ".join(repr(p) for p in self.parts) + ")"


def pair_splits(data: "list[str | Path]", splits: "list[str | None]", option: str = "--split") -> list:
    """(dataset, split) pairs: one split for every dataset, or one per dataset in order; a split
    ``none`` (or None) leaves that dataset out."""
    data, splits = list(data), list(splits)
    if len(splits) == 1:
        splits = splits * len(data)
    if len(splits) != len(data):
        raise EdgeirstError(f"{len(data)} datasets but {len(splits)} {option} values; give one {option} for all "
                            f"datasets or one per --data, in the same order")
    return [(d, s) for d, s in zip(data, splits) if s is not None and str(s).lower() != "none"]


def describe_sources(data: "list[str | Path]", splits: "list[str | None]") -> str:
    """``a [val] + b [list.txt]``: the (dataset, split) pairs a result was computed on."""
    return " + ".join(f"{d} [{s}]" for d, s in pair_splits(data, splits))


def open_datasets(data: "str | Path | list", splits: "str | None | list", option: str = "--split"):
    """One SirstDataset, or a DatasetUnion of several (``pair_splits``); None when every split is none."""
    data = [data] if isinstance(data, (str, Path)) else list(data)
    splits = [splits] if splits is None or isinstance(splits, str) else list(splits)
    parts = [SirstDataset(d, s) for d, s in pair_splits(data, splits, option)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else DatasetUnion(parts)
