"""Training across sources: several datasets in one run, background-only images as a share of
each batch, crops on targets and on bright clutter, copy-paste of real targets, synthetic targets on
real clutter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeirst.checkpoint import load_checkpoint  # noqa: E402
from edgeirst.data.sirst import DatasetUnion, open_datasets  # noqa: E402
from edgeirst.errors import EdgeirstError  # noqa: E402
from edgeirst.meta import ModelMeta  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.dataset import MixedBatches, Recipe, TrainSamples, bright_blobs, target_bank  # noqa: E402
from edgeirst.train.trainer import train  # noqa: E402

RAW = ModelMeta("mshnet", mean=(0.0,), std=(1.0,))  # normalisation off: a sample's values are its grey levels


def spot(seed: int, sky: float, noise: float, target: float, side: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A ``side`` x ``side`` sky at level ``sky`` with Gaussian noise, and one 3x3 target of level
    ``target`` at (20, 20): (image, mask)."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side), sky, np.float32) + rng.normal(0, noise, (side, side)).astype(np.float32)
    mask = np.zeros((side, side), bool)
    mask[20:23, 20:23] = True
    img[mask] = target
    return img, mask


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory) -> Path:
    """Six background-only frames, larger than the synthetic targets' images (160x200), empty
    masks, all listed in ``all.txt``; the synthetic dataset's clutter generator draws them."""
    import cv2

    from edgeirst.data.synth import SynthConfig, make_background

    root = tmp_path_factory.mktemp("bg")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    cfg = SynthConfig(height=160, width=200, seed=3)
    rng = np.random.default_rng(3)
    ids = []
    for i in range(6):
        img = np.clip(make_background(cfg, rng) * 255, 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"bg{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"bg{i}_pixels0.png"), np.zeros(img.shape[:2], np.uint8))
        ids.append(f"bg{i}")
    (root / "all.txt").write_text("\n".join(ids) + "\n")
    return root


def test_two_datasets_train_together(synth_root, backgrounds, tmp_path):
    cfg = TrainConfig(model="mshnet", data=[str(synth_root), str(backgrounds)], split=["train", "all"],
                      val_split=["val", "all"], out=str(tmp_path / "run"), epochs=1, batch=4, size=64,
                      model_kwargs={"width": 0.25}, optimizer="adam", lr=1e-3, max_steps=2, negatives=0.5,
                      target_crops=0.7, hard_crops=0.5, copy_paste=0.5, synth_targets=0.3)
    summary = train(cfg, progress=False)
    _, meta, _ = load_checkpoint(summary["best"])
    assert meta.train["data"] == [str(synth_root), str(backgrounds)] and meta.train["split"] == ["train", "all"]
    # validation scored both sources as one set: 4 synthetic val images + 6 background frames
    assert meta.metrics["images"] == 4 + 6
    assert {"fa_per_frame", "fa_frames"} <= set(meta.metrics)
    header = (tmp_path / "run" / "results.csv").read_text().splitlines()[0]
    assert header.endswith("fa_per_frame,fa_frames")


def test_negatives_need_background_images(synth_root, tmp_path):
    cfg = TrainConfig(model="mshnet", data=str(synth_root), split="train", val_split=None, out=str(tmp_path / "r"),
                      epochs=1, batch=4, size=64, model_kwargs={"width": 0.25}, max_steps=1, negatives=0.25)
    with pytest.raises(EdgeirstError, match="background-only"):
        train(cfg, progress=False)


def test_splits_pair_with_datasets(synth_root, backgrounds, tmp_path):
    both = open_datasets([synth_root, backgrounds], ["val", "all"])
    assert isinstance(both, DatasetUnion) and len(both) == 4 + 6
    assert both[4].id == f"{backgrounds.name}/bg0" and not both[4].mask.any()
    assert len(open_datasets([synth_root, backgrounds], ["val", "none"])) == 4  # a source left out
    listed = tmp_path / "mine.txt"
    listed.write_text("bg1\nbg2\n")
    assert open_datasets(backgrounds, str(listed)).ids == ["bg1", "bg2"]  # a list kept outside the dataset
    with pytest.raises(EdgeirstError, match="2 datasets but 3"):
        open_datasets([synth_root, backgrounds], ["a", "b", "c"])


def test_mixed_batches_hold_the_share_and_every_positive_once():
    g = torch.Generator().manual_seed(0)
    batches = list(MixedBatches(list(range(12)), [100, 101, 102], batch=4, share=0.25, generator=g))
    assert len(batches) == 4 and all(len(b) == 4 for b in batches)
    assert all(sum(i >= 100 for i in b) == 1 for b in batches)
    assert sorted(i for b in batches for i in b if i < 100) == list(range(12))


def test_bright_blobs_find_small_bright_clutter():
    img = np.full((100, 120), 0.2, np.float32)
    img[30:33, 40:43] = 0.9  # a small bright blob
    img[60:64, 80:84] = 0.6
    img[:, :10] = 1.0  # a wide bright band is no blob
    blobs = bright_blobs(img, k=2)
    assert {tuple(b) for b in blobs} <= {(y, x) for y in range(30, 33) for x in range(40, 43)} | \
        {(y, x) for y in range(60, 64) for x in range(80, 84)}
    assert len(blobs) == 2


def test_clutter_crops_centre_on_a_target_images_own_blobs_away_from_its_target():
    """A lamp in the scene of a target: crops of that image not placed on the target are centred
    on the lamp (the only blob away from the target), and the blob search never returns the target."""
    img, mask = spot(0, sky=0.2, noise=0.0, target=0.9, side=160)
    img[120:123, 130:133] = 0.7  # a lamp, 140 px from the target
    assert {tuple(b) for b in bright_blobs(img, targets=mask)} <= {(y, x) for y in range(120, 123) for x in range(130, 133)}
    samples = TrainSamples([img], [mask], RAW, 32, augment="none", recipe=Recipe(clutter_crops=1.0))
    torch.manual_seed(0)
    for _ in range(5):
        x, m = samples[0]
        assert not m.any() and float(x.max()) == pytest.approx(0.7)  # the lamp in the crop, not the target
    plain = TrainSamples([img], [mask], RAW, 32, augment="none", recipe=Recipe(hard_crops=1.0))
    x, _ = plain[0]  # --hard-crops alone keeps to background frames: the central crop here
    assert float(x.max()) == pytest.approx(0.2)


def test_copy_paste_puts_real_targets_on_background_crops():
    rng = np.random.default_rng(0)
    target = np.full((64, 64), 0.3, np.float32) + rng.normal(0, 0.01, (64, 64)).astype(np.float32)
    tmask = np.zeros((64, 64), bool)
    tmask[30:33, 30:33] = True
    target[tmask] = 0.8
    background = np.full((96, 96), 0.4, np.float32) + rng.normal(0, 0.02, (96, 96)).astype(np.float32)
    bank = target_bank([target], [tmask])
    assert len(bank) == 1 and bank[0][0].max() == pytest.approx(1.0)
    samples = TrainSamples([target, background], [tmask, np.zeros((96, 96), bool)], RAW, 48, augment="none",
                           recipe=Recipe(copy_paste=1.0))
    torch.manual_seed(0)
    x, m = samples[1]
    assert m.sum() >= 9  # at least one pasted target, with its mask
    inside = x[0][m[0] > 0].mean()
    assert inside > x[0][m[0] == 0].mean() + 0.02  # brighter than its surroundings


def test_synthetic_targets_are_rendered_onto_the_crops_clutter_with_their_masks():
    rng = np.random.default_rng(2)
    clutter = (0.4 + 0.03 * rng.standard_normal((96, 96))).astype(np.float32)
    real = np.zeros((96, 96), bool)
    real[10:13, 10:13] = True
    plain = TrainSamples([clutter], [real], RAW, 96, augment="none")
    synth = TrainSamples([clutter], [real], RAW, 96, augment="none", recipe=Recipe(synth_targets=1.0))
    torch.manual_seed(0)
    x0, m0 = plain[0]
    torch.manual_seed(0)
    x, m = synth[0]
    new = (m[0] > 0) & ~(m0[0] > 0)
    assert new.sum() >= 4  # at least one synthetic target, masked
    assert (m[0][m0[0] > 0] > 0).all()  # the real target's mask is kept
    assert (x[0][new] - x0[0][new]).min() > 0.02  # the target adds signal on every mask pixel
    changed = (x[0] - x0[0]).abs() > 1e-6
    assert changed.sum() < 0.5 * changed.numel()  # local targets: the rest of the clutter stays as it was


def test_synthetic_targets_are_left_out_where_they_would_be_invisible():
    flat = np.full((64, 64), 0.3, np.float32) + np.random.default_rng(3).normal(0, 1e-3, (64, 64)).astype(np.float32)
    synth = TrainSamples([flat], [np.zeros((64, 64), bool)], RAW, 64, augment="none",
                         recipe=Recipe(synth_targets=1.0, synth_scr=(3.0, 5.0)))
    torch.manual_seed(0)
    for _ in range(10):
        x, m = synth[0]
        assert not m.any()  # 3-5 clutter stds over a near-flat sky is under a hundredth of the range: unlabelled, unseen
        assert (x[0] - torch.from_numpy(flat)).abs().max() < 1e-6


def test_synth_scr_reaches_the_recipe_and_a_reversed_range_is_one_error_line(synth_root, tmp_path):
    from test_runtime_helpers import run_cli

    args = ["train", "mshnet", "--data", synth_root, "--width", "0.25", "--epochs", "1", "--batch", "2", "--size", "64",
            "--max-steps", "1", "--val-split", "none", "--synth-targets", "0.5"]
    p = run_cli(*args, "--synth-scr", "9", "4", "--out", tmp_path / "bad", timeout=300)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == ["error: --synth-scr: LO 9 is above HI 4"]
    assert not (tmp_path / "bad").exists()
    assert run_cli(*args, "--synth-scr", "8", "15", "--out", tmp_path / "ok", timeout=300).returncode == 0
    _, meta, _ = load_checkpoint(tmp_path / "ok" / "last.pt")
    assert list(meta.train["config"]["synth_scr"]) == [8.0, 15.0]


def test_levels_give_a_crop_another_cameras_gain_and_offset_and_keep_the_mask():
    img, mask = spot(4, sky=0.4, noise=0.02, target=0.6)
    recipe = Recipe(levels=1.0)
    samples = TrainSamples([img], [mask], RAW, 48, augment="none", recipe=recipe)
    torch.manual_seed(0)
    medians, gains = [], []
    for _ in range(40):
        x, m = samples[0]
        assert torch.equal(m[0] > 0, torch.from_numpy(mask))
        x = x[0].numpy()
        medians.append(float(np.median(x)))
        gains.append(float(x[mask].mean() - np.median(x)) / float(img[mask].mean() - np.median(img)))
    lo, hi = recipe.levels_median
    assert all(lo - 1e-6 <= v <= hi + 1e-6 for v in medians) and max(medians) - min(medians) > 0.3
    g_lo, g_hi = recipe.levels_gain
    assert all(g_lo - 1e-3 <= g <= g_hi + 1e-3 for g in gains) and max(gains) / min(gains) > 2


def test_faint_crops_scale_contrast_down_around_the_median_and_keep_the_mask():
    img, mask = spot(1, sky=0.3, noise=0.01, target=0.9)
    plain = TrainSamples([img], [mask], RAW, 48, augment="none")
    faint = TrainSamples([img], [mask], RAW, 48, augment="none", recipe=Recipe(faint=1.0))
    torch.manual_seed(0)
    x0, m0 = plain[0]
    x1, m1 = faint[0]
    assert torch.equal(m0, m1)
    c0 = float(x0[0][m0[0] > 0].mean() - x0[0][m0[0] == 0].median())
    c1 = float(x1[0][m1[0] > 0].mean() - x1[0][m1[0] == 0].median())
    assert 0.05 * c0 - 1e-4 <= c1 <= 0.5 * c0 + 1e-4  # 2-20x fainter
    assert float(x1[0][m1[0] == 0].median()) == pytest.approx(float(x0[0][m0[0] == 0].median()), abs=1e-3)
    # the signal-to-clutter ratio is kept: background noise shrank by the same gain
    assert c1 / float(x1[0][m1[0] == 0].std()) == pytest.approx(c0 / float(x0[0][m0[0] == 0].std()), rel=0.05)


def test_mining_finds_the_models_false_alarms_and_skips_its_hits():
    """The shipped default, run as evaluation runs it, fires on two identical bright specks: the
    one off the mask is mined, the one on a target is not."""
    from edgeirst.runtime import load_backend
    from edgeirst.train.mining import false_alarm_points, refresh_subset

    rng = np.random.default_rng(2)
    img = np.full((128, 160), 0.25, np.float32) + rng.normal(0, 0.005, (128, 160)).astype(np.float32)
    img[40:43, 50:53] = 0.9
    img[90:93, 120:123] = 0.9
    mask = np.zeros(img.shape, bool)
    mask[90:93, 120:123] = True
    backend = load_backend("default")
    points = false_alarm_points(backend, [img, img], [mask, np.zeros_like(mask)], 0.5)
    assert set(points) == {0, 1} and len(points[0]) == 1 and len(points[1]) == 2
    near = lambda p, q: abs(int(p[0]) - q[0]) <= 1 and abs(int(p[1]) - q[1]) <= 1  # noqa: E731
    assert near(points[0][0], (41, 51))
    assert sorted(near(p, (41, 51)) for p in points[1]) == [False, True]
    assert any(near(p, (91, 121)) for p in points[1])
    assert false_alarm_points(backend, [img], [mask], 0.5, only=[]) == {}
    # a refresh runs the images with false alarms and a random eighth of the rest
    again = refresh_subset({3: points[0], 7: points[0]}, 100, np.random.default_rng(0))
    assert {3, 7} <= set(again) and len(again) == 2 + round(98 / 8)


def test_mined_crops_are_centred_on_the_mined_points():
    img = np.full((200, 200), 0.3, np.float32)
    samples = TrainSamples([img], [np.zeros((200, 200), bool)], RAW, 32,
                           augment="none", recipe=Recipe(mine=1.0))
    samples.mined = {0: np.array([[150, 20]])}
    img[150, 20] = 1.0
    torch.manual_seed(0)
    for _ in range(5):
        x, _ = samples[0]
        assert float(x.max()) == 1.0  # the mined point is inside every crop


@pytest.mark.slow
def test_training_mines_before_the_first_epoch_and_after_each_validation(synth_root, backgrounds, tmp_path, capsys):
    cfg = TrainConfig(model="mshnet", data=[str(synth_root), str(backgrounds)], split=["train", "all"],
                      val_split=["val", "none"], out=str(tmp_path / "run"), epochs=2, val_every=1, batch=4, size=64,
                      model_kwargs={"width": 0.25}, max_steps=1, negatives=0.5, mine=0.5)
    train(cfg, progress=False)
    captured = capsys.readouterr()
    mined = [line for line in (captured.out + captured.err).splitlines() if line.startswith("mined ")]
    assert len(mined) == 2  # before the first epoch, and after the first validation
