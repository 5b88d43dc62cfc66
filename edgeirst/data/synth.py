"""Synthetic infrared frames with exact target masks.

Not a substitute for real data: it feeds tests, the demo and the runtime's ``synthetic://``
source. numpy + OpenCV only.

* Backgrounds are fractal (multi-octave) noise drawn on small grids and upsampled with
  ``cv2.resize``: ``cloud`` (smooth, low frequency), ``sea`` (horizontal streaks and waves),
  ``ground`` (higher-frequency texture); ``mixed`` picks one of these or a horizon scene
  (cloud sky over sea or ground) per image.
* Targets are Gaussian point-spreads: ``point`` (the smallest sigma), ``spot`` (isotropic) and
  ``extended`` (elongated 1.5-2.5x along a random direction).
* Amplitude comes from the requested signal-to-clutter ratio
  ``SCR = (peak - local mean) / local std``, where the statistics are taken on the background
  (clutter + sensor noise) in a square window of half-width ``max(8, ceil(4 * sigma_max))``
  around the target, excluding its 3-sigma ellipse, and ``peak`` is the target's brightest
  mask pixel before quantisation.
* Mask rule: a pixel belongs to a target when the target's PSF at the pixel centre is at least
  half its peak (inside the full-width-at-half-maximum ellipse); the pixel nearest the centre
  always belongs. Pixel (x, y) has its centre at integer coordinates (x, y).
* 8-bit output spans 0..255; 16-bit output holds 14-bit counts (0..16383) like a radiometric
  thermal core, so consumers must gain it (``edgeirst.preprocess.to_unit`` does).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeirst.errors import MAX_SIDE, EdgeirstError
from edgeirst.io import os_error, write_bytes, write_text
from edgeirst.progress import progress_bar

BACKGROUNDS = ("cloud", "sea", "ground", "mixed")
MASK_LEVEL = 0.5  # fraction of the PSF peak above which a pixel is target
_HALF_Q = 2.0 * math.log(1.0 / MASK_LEVEL)  # squared Mahalanobis radius of the mask ellipse
_GUARD_Q = 9.0  # 3-sigma ellipse excluded from the local background statistics
_MAX_TRIES = 50
_MIN_CONTRAST = 0.5  # a target adds at least this fraction of its SCR (in local stds) to the clutter


@dataclass
class SynthConfig:
    """What to generate. Ranges are (min, max), sampled uniformly per image / per target.

    Attributes:
        height, width: frame size in pixels.
        targets: number of targets per image.
        background: ``cloud``, ``sea``, ``ground`` or ``mixed``.
        scr: signal-to-clutter ratio of each target (see module docstring).
        sizes: PSF sigma in pixels (minor axis for extended targets).
        noise: temporal sensor noise std, in units of the full pixel range.
        bit_depth: 8 or 16.
        fps: frame rate of a ``SynthSequence`` (for writers and timestamps).
        speed: target speed in pixels per frame.
        seed: seed of the random generator used by ``SynthSequence`` and ``write_dataset``.
    """

    height: int = 256
    width: int = 320
    targets: tuple[int, int] = (1, 3)
    background: str = "mixed"
    scr: tuple[float, float] = (3.0, 8.0)
    sizes: tuple[float, float] = (1.0, 4.0)
    noise: float = 0.01
    bit_depth: int = 8
    fps: float = 25.0
    speed: tuple[float, float] = (0.5, 2.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise EdgeirstError(f"unknown background {self.background!r}; expected one of {', '.join(BACKGROUNDS)}")
        if self.bit_depth not in (8, 16):
            raise EdgeirstError(f"bit depth must be 8 or 16, got {self.bit_depth}")
        if not (16 <= self.height <= MAX_SIDE and 16 <= self.width <= MAX_SIDE):
            raise EdgeirstError(f"frame sides must be 16 to {MAX_SIDE} pixels, got {self.width}x{self.height} (WxH)")
        lo, hi = self.targets
        if lo < 0 or hi < lo:
            raise EdgeirstError(f"targets must be (min, max) with 0 <= min <= max, got {self.targets}")
        if self.sizes[0] <= 0 or self.sizes[1] < self.sizes[0]:
            raise EdgeirstError(f"sizes must be (min, max) PSF sigmas > 0, got {self.sizes}")
        if self.scr[0] <= 0 or self.scr[1] < self.scr[0]:
            raise EdgeirstError(f"scr must be (min, max) > 0, got {self.scr}")


@dataclass
class Target:
    """One Gaussian target: centre (x, y) in pixels, sigmas along its own axes, rotation
    ``angle`` (radians), requested ``scr``, and velocity (vx, vy) in pixels per frame."""

    x: float
    y: float
    sx: float
    sy: float
    angle: float
    scr: float
    vx: float = 0.0
    vy: float = 0.0

    @property
    def reach(self) -> int:
        """Half-width of the window that holds the 3-sigma ellipse."""
        return int(math.ceil(3.0 * max(self.sx, self.sy)))

    @property
    def window(self) -> int:
        """Half-width of the local background window used for the SCR."""
        return max(8, int(math.ceil(4.0 * max(self.sx, self.sy))))


# --------------------------------------------------------------------------- backgrounds

def _octaves(h: int, w: int, rng: np.random.Generator, cells: tuple[float, float], octaves: int,
             persistence: float) -> np.ndarray:
    """Sum of upsampled random grids; the first has ``cells`` (rows, cols), each next one twice as
    many. Summed at half resolution and upsampled once (pixel-scale texture comes from the
    sensor noise), which keeps a 256x320 frame at a few milliseconds."""
    f = 2 if min(h, w) >= 64 else 1
    ch, cw = -(-h // f), -(-w // f)
    out = np.zeros((ch, cw), np.float32)
    amp = 1.0
    for k in range(octaves):
        gh = max(2, min(ch, int(round(cells[0] * 2 ** k))))
        gw = max(2, min(cw, int(round(cells[1] * 2 ** k))))
        grid = rng.standard_normal((gh + 2, gw + 2), dtype=np.float32)
        oy, ox = -(-ch // gh), -(-cw // gw)  # one cell of margin each side: cubic edges are flat
        up = cv2.resize(grid, (cw + 2 * ox, ch + 2 * oy), interpolation=cv2.INTER_CUBIC)
        out += np.float32(amp) * up[oy:oy + ch, ox:ox + cw]
        amp *= persistence
    if f > 1:
        out = cv2.resize(out, (cw * f, ch * f), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))


def _standardise(a: np.ndarray) -> np.ndarray:
    mean, std = cv2.meanStdDev(a)
    a = a - np.float32(mean[0, 0])
    return a * np.float32(1.0 / std[0, 0]) if std[0, 0] > 0 else a


def _cloud(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = _standardise(_octaves(h, w, rng, (2.0, 2.5), 5, 0.5))
    cover = float(rng.uniform(-0.5, 0.8))  # patchy clouds: soft threshold of the noise field
    clouds = _sigmoid(np.float32(2.0) * (base - np.float32(cover)))
    sky = np.linspace(rng.uniform(-0.6, 0.0), rng.uniform(0.0, 0.6), h, dtype=np.float32)[:, None]
    return _standardise(clouds.astype(np.float32) * 2.0 + sky)


def _sea(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    streaks = _octaves(h, w, rng, (6.0, 1.0), 4, 0.6)  # many rows, few columns: horizontal
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    period = np.float32(rng.uniform(4.0, 10.0)) * (0.5 + y / h)  # waves widen towards the viewer
    phase = _octaves(1, w, rng, (1.0, 3.0), 2, 0.5) * np.float32(1.5)
    waves = np.sin(np.float32(2 * np.pi) * y / period + phase + np.float32(0.05 * rng.uniform(-1, 1)) * x)
    return _standardise(_standardise(streaks) + np.float32(rng.uniform(0.3, 0.8)) * waves)


def _ground(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    return _standardise(_octaves(h, w, rng, (6.0, 8.0), 5, 0.7))


def _horizon(h: int, w: int, rng: np.random.Generator, below: str) -> np.ndarray:
    sky = _cloud(h, w, rng) * np.float32(0.6)
    low = (_sea if below == "sea" else _ground)(h, w, rng) + np.float32(rng.uniform(-2.0, 2.0))
    row = np.float32(rng.uniform(0.25, 0.75) * h) + _octaves(1, w, rng, (1.0, 4.0), 2, 0.5) * np.float32(0.03 * h)
    y = np.arange(h, dtype=np.float32)[:, None]
    blend = _sigmoid((y - row) / np.float32(1.5))
    return _standardise((sky * (1 - blend) + low * blend).astype(np.float32))


def make_background(cfg: SynthConfig, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """Clutter only (no targets, no sensor noise): float32 HxW in [0, 1].

    Mean level 0.15-0.40 and clutter std 0.015-0.05 of the full range, which leaves head-room
    for the brightest requested target."""
    kind = kind or cfg.background
    h, w = cfg.height, cfg.width
    if kind == "mixed":
        kind = ("cloud", "sea", "ground", "cloud/sea", "cloud/ground")[rng.integers(5)]
    makers = {"cloud": _cloud, "sea": _sea, "ground": _ground}
    if kind not in makers and kind not in ("cloud/sea", "cloud/ground"):
        raise EdgeirstError(f"unknown background {kind!r}; expected one of {', '.join(BACKGROUNDS)}")
    field = makers[kind](h, w, rng) if kind in makers else _horizon(h, w, rng, kind.split("/")[1])
    bg = np.float32(rng.uniform(0.15, 0.40)) + np.float32(rng.uniform(0.015, 0.05)) * field
    return np.clip(bg, 0.0, 1.0, out=bg)


# --------------------------------------------------------------------------- targets

def _psf(t: Target, h: int, w: int) -> tuple[tuple[slice, slice], np.ndarray]:
    """(window slices, squared Mahalanobis distance q) of a target inside an HxW frame."""
    r = t.reach
    cx, cy = int(round(t.x)), int(round(t.y))
    x0, x1 = max(0, cx - r), min(w, cx + r + 1)
    y0, y1 = max(0, cy - r), min(h, cy + r + 1)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(t.x)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(t.y)
    c, s = math.cos(t.angle), math.sin(t.angle)
    u = (c * dx + s * dy) / t.sx
    v = (-s * dx + c * dy) / t.sy
    return (slice(y0, y1), slice(x0, x1)), u * u + v * v


def _local_stats(t: Target, bg: np.ndarray, psf=None) -> tuple[float, float]:
    """Mean and std of the background around a target, its 3-sigma ellipse excluded (``psf``:
    the target's ``_psf`` when the caller has it)."""
    h, w = bg.shape
    R = t.window
    cx, cy = int(round(t.x)), int(round(t.y))
    y0, y1, x0, x1 = max(0, cy - R), min(h, cy + R + 1), max(0, cx - R), min(w, cx + R + 1)
    win = bg[y0:y1, x0:x1]
    keep = np.ones(win.shape, bool)
    (sy, sx), q = psf or _psf(t, h, w)
    keep[sy.start - y0:sy.stop - y0, sx.start - x0:sx.stop - x0] &= q > _GUARD_Q
    vals = win[keep]
    return float(vals.mean()), float(max(vals.std(), 1e-4))


def _amplitude(t: Target, bg: np.ndarray, psf=None, inside=None) -> tuple[float, float, float]:
    """(amplitude, level, local std): the amplitude puts the target's brightest mask pixel at
    ``level = local mean + scr * local std``; it is the smallest ``(level - bg) / psf`` over the
    mask pixels, <= 0 when the clutter there is already brighter than the level. ``psf`` and
    ``inside`` (its ``_mask_of``) are computed when not given."""
    h, w = bg.shape
    win, q = psf = psf or _psf(t, h, w)
    mean, std = _local_stats(t, bg, psf)
    inside = _mask_of(t, win, q, h, w) if inside is None else inside
    level = mean + t.scr * std
    return float(((np.float32(level) - bg[win][inside]) / np.exp(-0.5 * q[inside])).min()), level, std


def _mask_of(t: Target, win: tuple[slice, slice], q: np.ndarray, h: int, w: int) -> np.ndarray:
    """Mask of a target inside its window: PSF >= MASK_LEVEL of its peak, plus the nearest pixel."""
    m = q <= _HALF_Q
    px, py = min(max(int(round(t.x)), 0), w - 1), min(max(int(round(t.y)), 0), h - 1)
    m[py - win[0].start, px - win[1].start] = True
    return m


def sample_target(cfg: SynthConfig, rng: np.random.Generator) -> Target:
    """A random target (shape, size, SCR, velocity); the caller chooses its position."""
    lo, hi = cfg.sizes
    kind = rng.choice(3, p=(0.3, 0.4, 0.3))  # point, spot, extended
    sigma = lo if kind == 0 else rng.uniform(lo, hi)
    sx = sigma * rng.uniform(1.5, 2.5) if kind == 2 else sigma
    speed, heading = rng.uniform(*cfg.speed), rng.uniform(0, 2 * np.pi)
    return Target(0.0, 0.0, float(sx), float(sigma), float(rng.uniform(0, np.pi)),
                  float(rng.uniform(*cfg.scr)), speed * math.cos(heading), speed * math.sin(heading))


def place_targets(cfg: SynthConfig, rng: np.random.Generator, bg: np.ndarray) -> list[Target]:
    """Random targets at positions away from the border and from each other, where the requested
    SCR fits below the top of the pixel range. Fewer come back when the frame is too crowded."""
    h, w = bg.shape
    n = int(rng.integers(cfg.targets[0], cfg.targets[1] + 1))
    placed: list[Target] = []
    for _ in range(n):
        t = sample_target(cfg, rng)
        m = t.reach + 1
        if 2 * m >= min(h, w):
            continue
        for _ in range(_MAX_TRIES):
            t.x, t.y = float(rng.uniform(m, w - 1 - m)), float(rng.uniform(m, h - 1 - m))
            apart = all(math.hypot(t.x - o.x, t.y - o.y) > 3 * (max(t.sx, t.sy) + max(o.sx, o.sy)) + 2 for o in placed)
            if apart:
                amp, level, std = _amplitude(t, bg)
                if amp >= _MIN_CONTRAST * t.scr * std and level < 0.98:  # exact SCR, in range
                    placed.append(t)
                    break
    return placed


def render_targets(bg: np.ndarray, targets: list[Target]) -> tuple[np.ndarray, np.ndarray]:
    """Add targets to a background (clutter + noise, float [0, 1]) -> (float image, bool mask).

    A target over clutter too bright for its SCR (a moving one can drift there) still adds half
    its requested contrast (``_MIN_CONTRAST``), so no mask marks an invisible target."""
    h, w = bg.shape
    img = bg.copy()
    mask = np.zeros((h, w), bool)
    for t in targets:
        win, q = _psf(t, h, w)
        inside = _mask_of(t, win, q, h, w)
        amp, _, std = _amplitude(t, bg, (win, q), inside)
        amp = max(amp, _MIN_CONTRAST * t.scr * std)
        img[win] += np.float32(amp) * np.exp(-0.5 * q)
        mask[win] |= inside
    return img, mask


def to_bits(unit: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] -> uint8 (0..255) or uint16 holding 14-bit counts (0..16383)."""
    top = 255.0 if bit_depth == 8 else 16383.0
    out = np.clip(unit, 0.0, 1.0) * np.float32(top) + np.float32(0.5)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


def _noisy(bg: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    if cfg.noise <= 0:
        return bg
    return bg + np.float32(cfg.noise) * rng.standard_normal(bg.shape, dtype=np.float32)


def synth_image(cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One frame: (image uint8/uint16 HxW, mask bool HxW)."""
    bg = _noisy(make_background(cfg, rng), cfg, rng)
    img, mask = render_targets(bg, place_targets(cfg, rng, bg))
    return to_bits(img, cfg.bit_depth), mask


class NoiseBank:
    """Sensor noise for a stream of HxW frames at a fraction of a fresh draw's cost: one field
    of N(0, sigma^2) samples of (2H)x(2W) is drawn once; each frame takes an HxW window of it at
    a random offset, with a random sign. Every frame's noise is white Gaussian with the same
    sigma, and a pixel's noise in two frames comes from different samples of the field unless
    both frames draw the same offset (1 in (H+1)(W+1)). Drawing 256x256 fresh normals costs
    about 1.1 ms on the 2-core development VM; a window costs one addition."""

    def __init__(self, shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> None:
        h, w = shape
        self.shape = (h, w)
        self.field = np.float32(sigma) * rng.standard_normal((2 * h, 2 * w), dtype=np.float32)

    def add_to(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``frame`` plus one frame of noise (a new array)."""
        h, w = self.shape
        y, x = int(rng.integers(h + 1)), int(rng.integers(w + 1))
        window = self.field[y:y + h, x:x + w]
        return frame - window if rng.random() < 0.5 else frame + window


class SynthSequence:
    """An infrared video: a fixed clutter scene with fresh sensor noise each frame (windows of a
    ``NoiseBank``) and targets that move with constant velocity plus small jitter, bouncing off
    the borders.

    ``for frame, mask in SynthSequence(cfg): ...`` runs forever unless ``frames`` is given.
    ``targets`` holds the current target states (positions of the frame last yielded).
    """

    def __init__(self, cfg: SynthConfig, frames: int | None = None, jitter: float = 0.1) -> None:
        self.cfg = cfg
        self.frames = frames
        self.jitter = jitter
        self.fps = cfg.fps
        self.rng = np.random.default_rng(cfg.seed)
        self.background = make_background(cfg, self.rng)
        self.targets = place_targets(cfg, self.rng, self.background)
        self.noise = NoiseBank(self.background.shape, cfg.noise, self.rng) if cfg.noise > 0 else None

    def __len__(self) -> int:
        if self.frames is None:
            raise TypeError("an endless SynthSequence has no length")
        return self.frames

    def _move(self) -> None:
        h, w = self.background.shape
        for t in self.targets:
            m = t.reach + 1
            t.x += t.vx + self.jitter * float(self.rng.standard_normal())
            t.y += t.vy + self.jitter * float(self.rng.standard_normal())
            if not m <= t.x <= w - 1 - m:
                t.vx = -t.vx
                t.x = min(max(t.x, m), w - 1 - m)
            if not m <= t.y <= h - 1 - m:
                t.vy = -t.vy
                t.y = min(max(t.y, m), h - 1 - m)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        i = 0
        while self.frames is None or i < self.frames:
            if i:
                self._move()
            bg = self.background if self.noise is None else self.noise.add_to(self.background, self.rng)
            img, mask = render_targets(bg, self.targets)
            yield to_bits(img, self.cfg.bit_depth), mask
            i += 1


def write_dataset(out: Path, cfg: SynthConfig, images: int, splits: dict[str, float] | None = None,
                  progress: bool = False, overwrite: bool = False) -> Path:
    """Write a SIRST-layout dataset: ``images/<id>.png``, ``masks/<id>_pixels0.png`` (0/255)
    and ``idx_synth/<split>.txt``. ``splits`` maps split name -> fraction (default train 0.8,
    val 0.2); every split gets at least one image when there are enough, and a split left
    without images gets no list file. ``out`` must be new or empty unless ``overwrite`` (then
    files of the same names are replaced and the rest stay). Returns ``out``."""

    splits = {"train": 0.8, "val": 0.2} if splits is None else dict(splits)
    if images < 1:
        raise EdgeirstError(f"asked for {images} images; give --images 1 or more")
    if not splits or any(f < 0 for f in splits.values()) or sum(splits.values()) <= 0:
        raise EdgeirstError(f"splits must map names to positive fractions, got {splits}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeirstError(f"{out} is a file; give a folder for the dataset")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise EdgeirstError(f"{out} is not empty: synthetic images would mix with what is there and replace its "
                            "synth_* files and idx_synth lists; give a new folder, or --overwrite to write into it")
    for sub in ("images", "masks", "idx_synth"):
        try:
            (out / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise os_error(e, out / sub, "create") from None
    rng = np.random.default_rng(cfg.seed)
    ids = [f"synth_{i:05d}" for i in range(images)]
    for id_ in progress_bar(ids, desc="synth", unit="img", disable=not progress):
        img, mask = synth_image(cfg, rng)
        for path, arr in ((out / "images" / f"{id_}.png", img),
                          (out / "masks" / f"{id_}_pixels0.png", mask.astype(np.uint8) * 255)):
            ok, encoded = cv2.imencode(".png", arr)
            if not ok:
                raise EdgeirstError(f"cannot encode {path}")
            write_bytes(path, encoded.tobytes())
    order = [ids[i] for i in rng.permutation(images)]
    for name, ids_in in _split_counts(order, splits).items():
        if ids_in:  # an empty list would make the split unusable
            write_text(out / "idx_synth" / f"{name}.txt", "".join(f"{i}\n" for i in sorted(ids_in)))
    return out


def _split_counts(ids: list[str], splits: dict[str, float]) -> dict[str, list[str]]:
    """Largest-remainder shares of ``ids``; no split is left empty while another can spare one."""
    share = np.asarray(list(splits.values()), np.float64) * len(ids) / sum(splits.values())
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share % 1), kind="stable")[: len(ids) - counts.sum()]] += 1
    for i in np.flatnonzero((counts == 0) & (share > 0)):
        if counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[i] += 1
    edges = np.concatenate([[0], np.cumsum(counts)])
    return {n: ids[edges[i]:edges[i + 1]] for i, n in enumerate(splits)}
