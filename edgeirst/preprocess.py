"""Preprocessing: the one implementation shared by training, eval, bench and the runtime.

Frames arrive as 8-bit or 16-bit, grey or 3-channel arrays of any size. ``to_unit`` turns any
of them into one grey float32 plane in [0, 1] (16-bit thermal frames through an automatic gain,
never through an RGB conversion). ``Letterbox`` maps a source frame onto the network input
(pad-only for fully convolutional models, scale-and-pad for fixed-shape engines) and maps
outputs back to source pixels, so every metric is computed at the image's own resolution.
numpy + OpenCV only: this runs on a Jetson without PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta

try:
    import resource  # Unix
except ImportError:  # pragma: no cover
    resource = None


DEFAULT_BYTES_PER_PIXEL = 1000.0  # models without a measured figure (onnxruntime CPU: MSHNet w0.5 ~370)


def _read_number(path: str, key: str | None = None) -> int | None:
    """An integer from a /proc or /sys file (its first field, or the line starting with ``key``;
    ``max`` or a missing file: None)."""
    try:
        with open(path) as f:
            for line in f:
                if key is None or line.startswith(key):
                    field = line.split()[1 if key else 0]
                    return None if field == "max" else int(field)
    except (OSError, ValueError, IndexError):
        pass
    return None


# cgroup v2, then v1: (limit, usage)
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def available_memory() -> int | None:
    """Bytes this process may still allocate: the least of the machine's free memory
    (``MemAvailable``), what its address-space limit leaves (``RLIMIT_AS`` minus its size now)
    and what its cgroup's limit leaves (``memory.max`` minus ``memory.current``; v1 files too).
    None where none of them is known (not Linux)."""
    known = []
    free = _read_number("/proc/meminfo", "MemAvailable:")
    if free is not None:
        known.append(free * 1024)
    if resource is not None:
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        pages = _read_number("/proc/self/statm")
        if soft != resource.RLIM_INFINITY and pages is not None:
            known.append(max(0, soft - pages * resource.getpagesize()))
    for limit_file, usage_file in CGROUP_FILES:
        limit = _read_number(limit_file)
        if limit is not None and limit < 1 << 60:  # v1 writes "no limit" as a huge number
            known.append(max(0, limit - (_read_number(usage_file) or 0)))
            break
    return min(known) if known else None


def memory_pixel_budget(meta: ModelMeta, share: float = 0.5) -> int | None:
    """The most input pixels one inference may take so that it uses at most ``share`` of the
    memory this process may still use (``available_memory``; None where unknown), from the
    model's measured bytes per input pixel (``meta.memory_per_pixel``, written by ``edgeirst export``)."""
    avail = available_memory()
    if avail is None:
        return None
    per_pixel = meta.memory_per_pixel or DEFAULT_BYTES_PER_PIXEL
    return max(1, int(avail * share / per_pixel))


def refuse_over_memory(image: np.ndarray, meta: ModelMeta, what: str) -> None:
    """EdgeirstError when ``image`` at its own resolution (as eval, calibrate and quantize run
    them: metrics belong to the image as it is, so it is refused, not scaled) needs more memory
    than ``memory_pixel_budget`` allows, instead of an allocation failure deep in a backend."""
    refuse_size_over_memory(image.shape[:2], meta, what, "crop or resize it, or leave it out of the split")


def refuse_size_over_memory(hw: tuple[int, int], meta: ModelMeta, what: str, fix: str) -> None:
    """EdgeirstError when one inference at ``hw`` (H, W) needs more than ``memory_pixel_budget``
    allows (an image, or a size option such as ``export --size``); ``fix`` says what to do."""
    h, w = int(hw[0]), int(hw[1])
    budget = memory_pixel_budget(meta)
    if budget is not None and h * w > budget:
        per_pixel = meta.memory_per_pixel or DEFAULT_BYTES_PER_PIXEL
        raise EdgeirstError(f"{what} is {w}x{h}: at that resolution it needs about {h * w * per_pixel / 2**30:.1f} "
                            f"GiB, more than half of the {2 * budget * per_pixel / 2**30:.1f} GiB this process may use "
                            f"(free memory, ulimit -v, cgroup); {fix}")


DEFAULT_AGC = (0.5, 100.0)


def auto_gain(frame: np.ndarray, low: float = DEFAULT_AGC[0], high: float = DEFAULT_AGC[1]) -> np.ndarray:
    """Percentile stretch of a (16-bit) frame to float32 [0, 1], the usual thermal AGC."""
    f = frame.astype(np.float32, copy=False)
    lo, hi = np.percentile(f, (low, high))
    if hi <= lo:
        return np.zeros(f.shape, np.float32)
    return np.clip((f - lo) / (hi - lo), 0.0, 1.0)


def to_unit(image: np.ndarray, agc: tuple[float, float] | None = None) -> np.ndarray:
    """Any frame (HxW, HxWx1, HxWx3 BGR, HxWx4; uint8, uint16 or float) -> grey float32 [0, 1].

    8-bit frames are divided by 255. 16-bit frames are stretched with ``auto_gain`` using the
    ``agc`` percentiles (default 0.5/100): raw Y16 counts rarely span the full range. The top
    is the frame's maximum, not a high percentile: a target of a few pixels is far less than
    0.5% of a frame, and clipping at 99.5% would stretch the background noise over the whole
    range and flatten the target into it (on a flat frame, erase it). Float
    frames are assumed to be in [0, 1] already.
    """
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[:, :, 0]
        elif image.shape[2] in (3, 4):
            code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            image = cv2.cvtColor(image, code)
        else:
            raise EdgeirstError(f"expected a grey or BGR frame, got {image.shape[2]} channels")
    elif image.ndim != 2:
        raise EdgeirstError(f"expected an HxW or HxWxC frame, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if image.dtype == np.uint16:
        low, high = agc if agc is not None else DEFAULT_AGC
        return auto_gain(image, low, high)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise EdgeirstError(f"unsupported pixel type {image.dtype}; expected uint8, uint16 or float")


def normalize(unit: np.ndarray, meta: ModelMeta, out: np.ndarray | None = None) -> np.ndarray:
    """Grey [0, 1] plane (HxW) -> normalised CxHxW float32 with ``meta.in_chans`` channels."""
    c = meta.in_chans
    if out is None:
        out = np.empty((c,) + unit.shape, np.float32)
    mean = meta.mean if len(meta.mean) == c else meta.mean[:1] * c
    std = meta.std if len(meta.std) == c else meta.std[:1] * c
    for i in range(c):
        np.subtract(unit, mean[i], out=out[i])
        out[i] *= np.float32(1.0 / std[i])
    return out


@dataclass(frozen=True)
class Letterbox:
    """Where a source frame sits inside the network input: scaled by ``scale``, top-left aligned.

    The padding is at the bottom and right, so source pixel (x, y) is input pixel
    (x * scale, y * scale).
    """

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    scale: float

    @classmethod
    def plan(cls, src_hw: tuple[int, int], meta: ModelMeta, fixed: bool | None = None,
             max_pixels: int | None = None) -> "Letterbox":
        """Pad-only to a multiple of ``size_divisor`` for dynamic models (native resolution, best
        for few-pixel targets); scale-to-fit ``input_size`` for fixed-shape models/engines.
        ``max_pixels`` caps a dynamic input: a larger frame is scaled down to fit it."""
        h, w = int(src_hw[0]), int(src_hw[1])
        if fixed is None:
            fixed = not meta.dynamic
        d = meta.size_divisor
        if not fixed:
            if max_pixels is not None and h * w > max_pixels:
                s = (max_pixels / (h * w)) ** 0.5
                sh, sw = max(d, int(h * s) // d * d), max(d, int(w * s) // d * d)
                s = min(sh / h, sw / w)
                return cls((h, w), (sh, sw), s)
            return cls((h, w), (-(-h // d) * d, -(-w // d) * d), 1.0)
        th, tw = meta.input_size
        s = min(th / h, tw / w)
        return cls((h, w), (th, tw), s)

    @property
    def inner_hw(self) -> tuple[int, int]:
        """Size of the scaled source inside the input (the rest is padding)."""
        h, w = self.src_hw
        if self.scale == 1.0:
            return h, w
        return max(1, round(h * self.scale)), max(1, round(w * self.scale))

    def apply(self, plane: np.ndarray, out: np.ndarray | None = None, pad_value: float = 0.0) -> np.ndarray:
        """Place an HxW plane into a ``dst_hw`` plane (optionally a pre-allocated one)."""
        ih, iw = self.inner_hw
        if out is None:
            out = np.empty(self.dst_hw, plane.dtype)
        if self.scale == 1.0:
            out[:ih, :iw] = plane
        else:
            out[:ih, :iw] = cv2.resize(plane, (iw, ih), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        out[ih:, :] = pad_value
        out[:ih, iw:] = pad_value
        return out

    def map_to_source(self, plane: np.ndarray) -> np.ndarray:
        """A network-resolution map (HxW) -> the source frame's resolution."""
        ih, iw = self.inner_hw
        crop = plane[:ih, :iw]
        if self.scale == 1.0:
            return crop
        return cv2.resize(crop, (self.src_hw[1], self.src_hw[0]), interpolation=cv2.INTER_LINEAR)

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Kx4 [x1, y1, x2, y2] (or Kx2 points) in input pixels -> source pixels, clipped."""
        b = boxes.astype(np.float32) / np.float32(self.scale)
        h, w = self.src_hw
        b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
        b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
        return b


def prepare(image: np.ndarray, meta: ModelMeta, fixed: bool | None = None,
            out: np.ndarray | None = None, agc: tuple[float, float] | None = None,
            max_pixels: int | None = None) -> tuple[np.ndarray, Letterbox]:
    """Frame -> (normalised CxHxW float32 network input, its Letterbox).

    ``out`` may be a pre-allocated CxHxW buffer (e.g. a pinned host buffer); it is filled in place.
    """
    unit = to_unit(image, agc)
    box = Letterbox.plan(unit.shape, meta, fixed, max_pixels)
    placed = box.apply(unit)
    if out is not None and out.shape != (meta.in_chans,) + box.dst_hw:
        raise EdgeirstError(f"input buffer has shape {out.shape}, frame needs {(meta.in_chans,) + box.dst_hw}")
    return normalize(placed, meta, out), box
