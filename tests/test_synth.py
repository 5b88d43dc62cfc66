"""Synthetic infrared generator: exact masks, SCR, reproducibility, bit depth, motion, round trip."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeirst.data import SirstDataset, SynthConfig, SynthSequence, synth_image, write_dataset
from edgeirst.data.synth import Target, make_background, place_targets, render_targets, to_bits
from edgeirst.errors import EdgeirstError

REPO = Path(__file__).resolve().parents[1]


def _flat(h: int = 60, w: int = 80, level: float = 0.2) -> np.ndarray:
    return np.full((h, w), level, np.float32) + np.float32(0.01) * np.random.default_rng(0).standard_normal((h, w), dtype=np.float32)


def _offsets(mask: np.ndarray, x: int, y: int) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(mask)
    return {(int(a) - x, int(b) - y) for a, b in zip(xs, ys)}


def test_mask_of_a_round_target_by_hand():
    # sigma 2: PSF >= half peak <=> dx^2 + dy^2 <= 2 * 4 * ln 2 = 5.55 -> the 21 offsets with dx^2 + dy^2 <= 5
    img, mask = render_targets(_flat(), [Target(30.0, 20.0, 2.0, 2.0, 0.0, scr=6.0)])
    expected = {(dx, dy) for dx in range(-3, 4) for dy in range(-3, 4) if dx * dx + dy * dy <= 5}
    assert len(expected) == 21
    assert _offsets(mask, 30, 20) == expected
    assert np.unravel_index(np.argmax(img), img.shape) in {(20 + dy, 30 + dx) for dx, dy in expected}


def test_mask_of_an_elongated_target_by_hand():
    # sx 3, sy 1: (dx/3)^2 + dy^2 <= 1.386 -> 7 pixels on the axis, 3 on each neighbouring row
    along_x = render_targets(_flat(), [Target(40.0, 30.0, 3.0, 1.0, 0.0, scr=6.0)])[1]
    assert _offsets(along_x, 40, 30) == {(dx, 0) for dx in range(-3, 4)} | {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 1)}
    along_y = render_targets(_flat(), [Target(40.0, 30.0, 3.0, 1.0, math.pi / 2, scr=6.0)])[1]
    assert _offsets(along_y, 40, 30) == {(dy, dx) for dx, dy in _offsets(along_x, 40, 30)}


def test_masks_lie_where_targets_were_placed():
    cfg = SynthConfig(height=96, width=128, targets=(3, 3))
    for seed in range(5):
        rng = np.random.default_rng(seed)
        bg = make_background(cfg, rng)
        targets = place_targets(cfg, rng, bg)
        _, mask = render_targets(bg, targets)
        n, labels, _, cents = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        assert n - 1 == len(targets) == 3
        for t in targets:
            k = labels[round(t.y), round(t.x)]
            assert k > 0  # the pixel nearest the centre is target
            assert math.hypot(cents[k][0] - t.x, cents[k][1] - t.y) < 1.0


def _measured_scr(img: np.ndarray, t: Target) -> float:
    """SCR as the module docstring defines it, measured on the final (quantised) image."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    c, s = math.cos(t.angle), math.sin(t.angle)
    q = ((c * (xx - t.x) + s * (yy - t.y)) / t.sx) ** 2 + ((-s * (xx - t.x) + c * (yy - t.y)) / t.sy) ** 2
    r = max(8, math.ceil(4 * max(t.sx, t.sy)))
    ring = img[(abs(xx - round(t.x)) <= r) & (abs(yy - round(t.y)) <= r) & (q > 9)].astype(np.float64)
    peak = float(img[q <= 2 * math.log(2)].max())
    return (peak - ring.mean()) / ring.std()


def test_scr_matches_request():
    ratios = []
    for seed in range(10):
        cfg = SynthConfig(height=96, width=128, targets=(2, 2), scr=(3.0, 8.0))
        rng = np.random.default_rng(seed)
        bg = make_background(cfg, rng) + np.float32(cfg.noise) * rng.standard_normal((96, 128), dtype=np.float32)
        targets = place_targets(cfg, rng, bg)
        img = to_bits(render_targets(bg, targets)[0], 8)
        ratios += [_measured_scr(img, t) / t.scr for t in targets]
    assert len(ratios) == 20
    assert 0.9 < min(ratios) and max(ratios) < 1.1, ratios


def test_scr_from_the_mask_alone():
    """Independent of the generator's bookkeeping: peak in the mask vs a ring around it."""
    got = []
    for seed in range(12):
        img, mask = synth_image(SynthConfig(height=96, width=128, targets=(1, 1), scr=(5.0, 5.0), sizes=(1.0, 1.2)),
                                np.random.default_rng(seed))
        ys, xs = np.nonzero(mask)
        cy, cx = int(ys.mean()), int(xs.mean())
        far = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        sl = np.s_[max(0, cy - 8):cy + 9, max(0, cx - 8):cx + 9]
        ring = img[sl][far[sl]].astype(np.float64)
        got.append((float(img[mask].max()) - ring.mean()) / ring.std())
    assert 4.0 < np.median(got) < 6.0, got


def test_reproducible_with_a_seed():
    cfg = SynthConfig(height=64, width=80)
    a = synth_image(cfg, np.random.default_rng(7))
    b = synth_image(cfg, np.random.default_rng(7))
    c = synth_image(cfg, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("background", ["cloud", "sea", "ground", "mixed"])
def test_backgrounds_and_16_bit(background):
    img, mask = synth_image(SynthConfig(height=48, width=64, background=background, bit_depth=16), np.random.default_rng(1))
    assert img.dtype == np.uint16 and img.shape == (48, 64) and mask.shape == (48, 64) and mask.dtype == bool
    assert 255 < img.max() <= 16383 and mask.any()
    img8, _ = synth_image(SynthConfig(height=48, width=64, background=background), np.random.default_rng(1))
    assert img8.dtype == np.uint8 and img8.std() > 1  # clutter, not a flat frame


def test_bad_config_is_a_user_error():
    for bad in ({"background": "desert"}, {"bit_depth": 12}, {"targets": (3, 1)}, {"sizes": (0.0, 1.0)}):
        with pytest.raises(EdgeirstError):
            SynthConfig(**bad)


def test_motion_moves_targets():
    cfg = SynthConfig(height=64, width=96, targets=(1, 1), speed=(1.5, 1.5), seed=3)
    seq = SynthSequence(cfg, frames=5)
    assert len(seq) == 5 and seq.fps == 25.0
    cents, first = [], None
    for frame, mask in seq:
        assert frame.shape == (64, 96) and mask.any()
        first = frame if first is None else first
        ys, xs = np.nonzero(mask)
        cents.append((xs.mean(), ys.mean()))
    moved = math.hypot(cents[-1][0] - cents[0][0], cents[-1][1] - cents[0][1])
    assert 4.0 < moved < 8.0  # 4 steps of 1.5 px, jitter 0.1 px, maybe one bounce shortens it
    assert not np.array_equal(first, frame)


def test_targets_bounce_and_stay_inside():
    seq = SynthSequence(SynthConfig(height=32, width=40, targets=(2, 2), sizes=(1.0, 1.5), speed=(3.0, 3.0)), frames=60)
    flips, prev = 0, []
    for i, (_, mask) in enumerate(seq):
        v = [(t.vx, t.vy) for t in seq.targets]
        for t in seq.targets:
            assert t.reach + 1 <= t.x <= 40 - 2 - t.reach and t.reach + 1 <= t.y <= 32 - 2 - t.reach
        if i:
            flips += sum(np.sign(a[0]) != np.sign(b[0]) or np.sign(a[1]) != np.sign(b[1]) for a, b in zip(v, prev))
        prev = v
        assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
    assert flips > 0


def test_write_dataset_round_trip(tmp_path):
    cfg = SynthConfig(height=40, width=48, bit_depth=16, seed=5)
    root = write_dataset(tmp_path / "d", cfg, images=7, splits={"train": 0.6, "val": 0.2, "test": 0.2})
    sizes = {s: len(SirstDataset(root, s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 7 and min(sizes.values()) >= 1
    ds = SirstDataset(root, "val")
    s = ds[0]
    assert s.image.dtype == np.uint16 and s.image.shape == (40, 48) and s.mask.any()
    rng = np.random.default_rng(5)  # write_dataset draws image k as the k-th synth_image of its seed
    for _ in range(int(s.id.split("_")[1]) + 1):
        img, mask = synth_image(cfg, rng)
    np.testing.assert_array_equal(s.image, img)
    np.testing.assert_array_equal(s.mask, mask)


def test_synth_root_fixture(synth_root):
    train, val = SirstDataset(synth_root, "train"), SirstDataset(synth_root, "val")
    assert (len(train), len(val)) == (12, 4) and not set(train.ids) & set(val.ids)
    assert len(train[0].targets()) >= 1


def test_synth_cli_writes_a_loadable_dataset(tmp_path):
    out = tmp_path / "s"
    r = subprocess.run([sys.executable, "-m", "edgeirst", "data", "synth", str(out), "--images", "3", "--height", "32",
                        "--width", "40", "--background", "sea", "--targets", "2"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    ds = SirstDataset(out)
    assert len(ds) == 3 and ds[2].image.shape == (32, 40)
    bad = subprocess.run([sys.executable, "-m", "edgeirst", "data", "synth", str(out), "--images", "1", "--targets", "x"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --targets")


def test_stream_noise_is_white_with_its_sigma_and_fresh_each_frame():
    from edgeirst.data.synth import NoiseBank

    rng = np.random.default_rng(0)
    bank = NoiseBank((64, 80), 0.05, rng)
    zero = np.zeros((64, 80), np.float32)
    frames = [bank.add_to(zero, rng) for _ in range(40)]
    for n in frames:
        assert n.shape == (64, 80) and abs(n.std() - 0.05) < 0.006 and abs(n.mean()) < 0.005
        # white: neighbouring pixels uncorrelated
        assert abs(np.corrcoef(n[:, 1:].ravel(), n[:, :-1].ravel())[0, 1]) < 0.06
    # a pixel's noise is not repeated from frame to frame (as a fixed noise image would be)
    stack = np.stack(frames)
    assert abs(np.corrcoef(stack[1:].ravel(), stack[:-1].ravel())[0, 1]) < 0.03
    assert stack.std(axis=0).mean() > 0.04  # each pixel varies over time by about sigma
