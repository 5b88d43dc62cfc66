"""`edgeirst run` on image files: every JSON line names its image, and `--save-dir` writes one
annotated image per input under its own name, never over an input. The real CLI on the shipped
default model and real PNG files."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from test_runtime_helpers import run_cli


def write_images(folder, names=("a.png", "b.png", "c.png")):
    """Dim noisy 96x128 frames, each with one bright 3-pixel-radius target at a known place."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        img = (40 + rng.normal(0, 3, (96, 128))).clip(0, 255).astype(np.uint8)
        cv2.circle(img, (30 + 30 * k, 48), 3, 255, -1)
        cv2.imwrite(str(folder / name), img)
    return [folder / n for n in names]


def digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def one_error_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_folder_lines_name_their_file_and_save_dir_annotates_each(tmp_path):
    images = write_images(tmp_path / "in")
    before = digest(images)
    out = tmp_path / "out"
    p = run_cli("run", "default", "--source", tmp_path / "in", "--no-track", "--jsonl", "-", "-q",
                "--save-dir", out, timeout=120)
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["file"] for r in recs] == [str(i) for i in images]
    assert [r["frame"] for r in recs] == [0, 1, 2] and {r["source"] for r in recs} == {str(tmp_path / "in")}
    assert sorted(q.name for q in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert digest(images) == before
    for r, image in zip(recs, images):
        saved, original = cv2.imread(str(out / image.name)), cv2.imread(str(image))
        assert saved.shape == original.shape
        drawn = np.any(saved != original, axis=2)  # the boxes, nothing else
        assert drawn.any() == bool(r["detections"])
    assert any(r["detections"] for r in recs), "the default model finds none of the bright targets"


@pytest.mark.parametrize("pattern", ["*.png", "b.png"])
def test_glob_and_single_image_lines_name_their_file(tmp_path, pattern):
    images = write_images(tmp_path)
    p = run_cli("run", "default", "--source", tmp_path / pattern, "--jsonl", "-", "-q", timeout=120)
    assert p.returncode == 0, p.stderr
    files = [json.loads(line)["file"] for line in p.stdout.splitlines()]
    assert files == ([str(i) for i in images] if "*" in pattern else [str(tmp_path / "b.png")])


def test_save_dir_never_writes_over_an_input(tmp_path):
    images = write_images(tmp_path / "in")
    before = digest(images)
    for source in (tmp_path / "in", tmp_path / "in" / "a.png", tmp_path / "in" / "*.png"):
        line = one_error_line(run_cli("run", "default", "--source", source, "-q", "--save-dir", tmp_path / "in",
                                      timeout=120))
        assert "is the folder of the input images" in line
    assert digest(images) == before and sorted(q.name for q in (tmp_path / "in").iterdir()) == ["a.png", "b.png", "c.png"]


def test_save_dir_refuses_streams_and_clashing_names(tmp_path):
    line = one_error_line(run_cli("run", "default", "--source", "synthetic://?size=64x48", "--max-frames", "2", "-q",
                                  "--save-dir", tmp_path / "out", timeout=120))
    assert "--save" in line and "stream or video" in line
    write_images(tmp_path / "x", ["a.png"])
    write_images(tmp_path / "y", ["a.png"])
    line = one_error_line(run_cli("run", "default", "--source", tmp_path / "x", "--source", tmp_path / "y", "-q",
                                  "--save-dir", tmp_path / "out", timeout=120))
    assert "have the same name" in line
