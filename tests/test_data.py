"""SIRST reader, COCO boxes and dataset check on tiny hand-built folders (and the real SIRST)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeirst.data import SirstDataset, check_dataset, find_splits, read_mask, to_coco
from edgeirst.errors import EdgeirstError

REPO = Path(__file__).resolve().parents[1]


def _image(i: int, h: int = 12, w: int = 16) -> np.ndarray:
    return (np.arange(h * w, dtype=np.uint16).reshape(h, w) * (i + 1) % 251).astype(np.uint8)


def _mask(h: int = 12, w: int = 16, at: tuple[int, int] = (4, 5)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[at[0]:at[0] + 2, at[1]:at[1] + 3] = 255
    return m


def make_dataset(root: Path, ids: list[str], mask_name: str = "{id}_pixels0.png", split_dir: str | None = "idx_1",
                 splits: dict[str, list[str]] | None = None, ext: str = ".png") -> Path:
    """images/<id><ext> + masks/<mask_name> + <split_dir>/<split>.txt (lists written verbatim)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, id_ in enumerate(ids):
        assert cv2.imwrite(str(root / "images" / f"{id_}{ext}"), _image(i))
        assert cv2.imwrite(str(root / "masks" / mask_name.format(id=id_)), _mask())
    for name, lines in (splits or {}).items():
        folder = root / split_dir if split_dir else root
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.txt").write_text("\n".join(lines))
    return root


# ---------------------------------------------------------------- layouts

@pytest.mark.parametrize("mask_name", ["{id}.png", "{id}_pixels0.png"])
@pytest.mark.parametrize("split_dir", [None, "idx_427", "50_50"])
@pytest.mark.parametrize("with_ext", [False, True])
def test_layout_variants(tmp_path, mask_name, split_dir, with_ext):
    ids = ["a_1", "a_2", "a_10"]
    listed = ["a_10.png", "a_1.png"] if with_ext else ["a_10", "a_1"]
    root = make_dataset(tmp_path, ids, mask_name, split_dir, {"train": listed, "test": ["a_2"]})
    assert set(find_splits(root)) == {"train", "test"}
    ds = SirstDataset(root, "train")
    assert ds.ids == ["a_10", "a_1"] and len(ds) == 2
    s = ds[1]
    assert s.id == "a_1" and s.image.dtype == np.uint8 and s.image.shape == (12, 16)
    np.testing.assert_array_equal(s.image, _image(0))
    assert s.mask.dtype == bool and s.mask.sum() == 6 and s.mask[4:6, 5:8].all()
    assert ds.image_path("a_1") == root / "images" / "a_1.png"
    assert ds.mask_path("a_1") == root / "masks" / mask_name.format(id="a_1")
    assert SirstDataset(root).ids == ["a_1", "a_2", "a_10"]  # natural order, all with masks
    assert len(SirstDataset(root, "test")) == 1


def test_all_images_with_masks_only(tmp_path):
    root = make_dataset(tmp_path, ["x", "y"])
    cv2.imwrite(str(root / "images" / "z.png"), _image(3))  # no mask: not part of split=None
    assert SirstDataset(root).ids == ["x", "y"]


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".jpg"])
def test_image_formats(tmp_path, ext):
    root = make_dataset(tmp_path, ["p", "q"], ext=ext)
    s = SirstDataset(root)[0]
    assert s.image.shape == (12, 16) and s.mask.sum() == 6
    if ext != ".jpg":  # lossless formats round-trip exactly
        np.testing.assert_array_equal(s.image, _image(0))


def test_three_channel_and_16_bit(tmp_path):
    root = make_dataset(tmp_path, ["c3", "b16"])
    rgb = np.dstack([_image(0)] * 3)
    deep = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300)
    cv2.imwrite(str(root / "images" / "c3.png"), rgb)
    cv2.imwrite(str(root / "images" / "b16.png"), deep)
    ds = SirstDataset(root)
    by_id = {ds[i].id: ds[i] for i in range(len(ds))}
    assert by_id["c3"].image.shape == (12, 16, 3) and by_id["c3"].mask.shape == (12, 16)
    assert by_id["b16"].image.dtype == np.uint16
    np.testing.assert_array_equal(by_id["b16"].image, deep)


def test_irstd1k_folder_names_and_alpha(tmp_path):
    root = make_dataset(tmp_path, ["XDU0", "XDU1"], mask_name="{id}.png", split_dir=None,
                        splits={"trainval": ["XDU0"], "test": ["XDU1"]})
    (root / "images").rename(root / "IRSTD1k_Img")
    (root / "masks").rename(root / "IRSTD1k_Label")
    cv2.imwrite(str(root / "IRSTD1k_Img" / "XDU1.png"), np.dstack([_image(1)] * 3 + [np.full((12, 16), 255, np.uint8)]))
    s = SirstDataset(root, "test")[0]
    assert s.image.shape == (12, 16, 3) and s.mask.sum() == 6
    assert len(SirstDataset(root, "trainval")) == 1 and check_dataset(root).ok


def test_mask_of_zeros_and_ones(tmp_path):
    p = tmp_path / "m.png"
    m = np.zeros((5, 5), np.uint8)
    m[2, 3] = 1
    cv2.imwrite(str(p), m)
    assert read_mask(p).sum() == 1 and read_mask(p)[2, 3]


def test_ambiguous_split_names_need_their_folder(tmp_path):
    root = make_dataset(tmp_path, ["a", "b"], splits={"train": ["a"]}, split_dir="idx_1")
    (root / "idx_2").mkdir()
    (root / "idx_2" / "train.txt").write_text("a\nb\n")
    assert set(find_splits(root)) == {"idx_1/train", "idx_2/train"}
    assert len(SirstDataset(root, "idx_2/train")) == 2
    with pytest.raises(EdgeirstError, match="idx_1/train, idx_2/train"):
        SirstDataset(root, "train")


# ---------------------------------------------------------------- errors

def test_error_missing_root_and_images(tmp_path):
    with pytest.raises(EdgeirstError, match="does not exist"):
        SirstDataset(tmp_path / "nope")
    with pytest.raises(EdgeirstError, match="no images/ folder"):
        SirstDataset(tmp_path)


def test_error_unknown_split_lists_available(tmp_path):
    root = make_dataset(tmp_path, ["a"], splits={"train": ["a"], "val": ["a"]})
    with pytest.raises(EdgeirstError, match=r"unknown split 'test'.*available: train, val"):
        SirstDataset(root, "test")


def test_error_empty_split(tmp_path):
    root = make_dataset(tmp_path, ["a"], splits={"train": ["", "  "]})
    with pytest.raises(EdgeirstError, match=r"split 'train' is empty.*train\.txt"):
        SirstDataset(root, "train")


def test_error_missing_mask_names_file(tmp_path):
    root = make_dataset(tmp_path, ["a", "b"], splits={"train": ["a", "b"]})
    (root / "masks" / "b_pixels0.png").unlink()
    with pytest.raises(EdgeirstError, match=r"no mask.*b_pixels0\.png"):
        SirstDataset(root, "train")


def test_error_id_without_image(tmp_path):
    root = make_dataset(tmp_path, ["a"], splits={"train": ["a", "ghost"]})
    with pytest.raises(EdgeirstError, match=r"no image.*ghost"):
        SirstDataset(root, "train")


def test_error_size_mismatch_names_both_files(tmp_path):
    root = make_dataset(tmp_path, ["a"])
    cv2.imwrite(str(root / "masks" / "a_pixels0.png"), _mask(10, 16))
    with pytest.raises(EdgeirstError, match=r"a_pixels0\.png is 16x10 but image .*a\.png is 16x12"):
        SirstDataset(root)[0]


def test_error_unreadable_file_named(tmp_path):
    root = make_dataset(tmp_path, ["a"])
    (root / "images" / "a.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(EdgeirstError, match=r"cannot read .*images/a\.png"):
        SirstDataset(root)[0]


# ---------------------------------------------------------------- targets and COCO

def _coco_root(tmp_path: Path) -> Path:
    root = make_dataset(tmp_path, ["m"])
    m = np.zeros((20, 24), np.uint8)
    m[3:5, 2:4] = 255       # 2x2 target at x=2..3, y=3..4
    m[2, 15] = 255          # single pixel
    m[10, 10] = m[11, 11] = 255  # diagonal neighbours: one 8-connected target
    cv2.imwrite(str(root / "masks" / "m_pixels0.png"), m)
    cv2.imwrite(str(root / "images" / "m.png"), np.full((20, 24), 7, np.uint8))
    return root


def test_sample_targets_are_8_connected(tmp_path):
    t = SirstDataset(_coco_root(tmp_path))[0].targets()
    assert len(t) == 3
    assert sorted(t.areas.tolist()) == [1, 2, 4]


def test_coco_boxes_by_hand(tmp_path):
    coco = to_coco(SirstDataset(_coco_root(tmp_path)))
    assert coco["categories"] == [{"id": 1, "name": "target", "supercategory": "target"}]
    assert coco["images"] == [{"id": 1, "file_name": "images/m.png", "width": 24, "height": 20, "edgeirst_id": "m"}]
    got = sorted((a["bbox"], a["area"], a["iscrowd"], a["image_id"], a["category_id"]) for a in coco["annotations"])
    assert got == [([2, 3, 2, 2], 4, 0, 1, 1), ([10, 10, 2, 2], 2, 0, 1, 1), ([15, 2, 1, 1], 1, 0, 1, 1)]
    assert sorted(a["id"] for a in coco["annotations"]) == [1, 2, 3]


def test_coco_cli_loads_in_pycocotools(tmp_path):
    root = _coco_root(tmp_path / "d")
    out = tmp_path / "gt.json"
    r = _cli("data", "coco", str(root), "--out", str(out))
    assert r.returncode == 0, r.stderr
    pycoco = pytest.importorskip("pycocotools.coco")
    gt = pycoco.COCO(str(out))
    assert len(gt.getAnnIds()) == 3


# ---------------------------------------------------------------- check

def _broken(tmp_path: Path) -> Path:
    root = make_dataset(tmp_path, ["ok", "nomask", "small", "bad", "empty"], splits={"train": ["ok", "ghost"], "val": []})
    (root / "masks" / "nomask_pixels0.png").unlink()
    cv2.imwrite(str(root / "masks" / "small_pixels0.png"), _mask(8, 16))
    (root / "images" / "bad.png").write_bytes(b"garbage")
    cv2.imwrite(str(root / "masks" / "empty_pixels0.png"), np.zeros((12, 16), np.uint8))
    return root


def test_check_reports_every_problem(tmp_path):
    rep = check_dataset(_broken(tmp_path))
    text = "\n".join(rep.problems)
    assert len(rep.problems) == 5, text
    for needle in ("nomask.png has no mask", "small_pixels0.png is 16x8", "images/bad.png", "'val'", "ghost"):
        assert needle in text
    assert rep.empty_masks == 1 and any("no target" in m for m in rep.info)
    assert rep.splits == {"train": 2, "val": 0} and not rep.ok


def test_check_statistics_of_a_good_dataset(tmp_path):
    root = make_dataset(tmp_path, ["a", "b", "c"], splits={"train": ["a", "b"], "val": ["c"]})
    cv2.imwrite(str(root / "images" / "c.png"), np.zeros((12, 16), np.uint16) + 1000)
    rep = check_dataset(root)
    assert rep.ok and rep.images == 3 and rep.masks == 3 and rep.targets == 3
    assert rep.target_area["50"] == 6 and rep.target_side["100"] == 3
    assert rep.image_size == {"min": [12, 16], "max": [12, 16]}
    assert rep.pixel_types == {"uint8 x1": 2, "uint16 x1": 1}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeirst", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_check_cli_exit_codes(tmp_path):
    bad = _cli("data", "check", str(_broken(tmp_path / "bad")))
    assert bad.returncode == 2
    assert bad.stdout.count("problem: ") == 5
    assert bad.stderr.strip().splitlines()[-1].startswith("error: 5 problem(s) found")
    assert "Traceback" not in bad.stderr
    good = _cli("data", "check", "--json", str(make_dataset(tmp_path / "good", ["a"], splits={"train": ["a"]})))
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["ok"] is True


def test_cli_missing_folder_is_one_line(tmp_path):
    r = _cli("data", "coco", str(tmp_path / "none"), "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and r.stderr.startswith("error: dataset folder") and "Traceback" not in r.stderr


def test_data_package_does_not_import_torch():
    code = "import sys, edgeirst.data, edgeirst.cli.data; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# ---------------------------------------------------------------- real data

def test_real_sirst(sirst_root):
    assert len(SirstDataset(sirst_root, "train")) == 256
    val = SirstDataset(sirst_root, "val")
    assert len(val) == 85
    for i in (0, len(val) - 1):
        s = val[i]
        assert s.mask.shape == s.image.shape[:2] and s.mask.any() and len(s.targets()) >= 1
    rep = check_dataset(sirst_root)
    assert rep.ok, rep.problems
    assert rep.images == 341 and rep.splits["train"] == 256 and rep.splits["val"] == 85
