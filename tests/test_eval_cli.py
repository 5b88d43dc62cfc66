"""``edgeirst eval`` end to end, as a user runs it: saved predictions on a hand-made dataset and
on the real SIRST val split, a tiny real ONNX model through the runtime, and user errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# id -> (height, width, channels, GT rectangles (x, y, w, h), bright non-target rectangles)
TINY = {
    "a": (40, 50, 1, [(10, 10, 3, 3), (30, 25, 2, 2)], []),
    "b": (36, 64, 3, [(5, 20, 4, 2)], []),
    "c": (48, 48, 1, [(20, 20, 1, 1)], [(40, 5, 2, 2)]),
}
TARGET, CLUTTER = 230, 170  # a threshold model at 0.5 finds both; clutter scores lower


def run_eval(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeirst", "eval", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def metrics_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A SIRST-layout dataset: images/<id>.png, masks/<id>_pixels0.png, idx_427/val.txt."""
    root = tmp_path / "tiny"
    for d in ("images", "masks", "idx_427"):
        (root / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (h, w, c, targets, clutter) in TINY.items():
        image = rng.integers(0, 60, (h, w), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        for x, y, bw, bh in targets:
            image[y:y + bh, x:x + bw] = TARGET
            mask[y:y + bh, x:x + bw] = 255
        for x, y, bw, bh in clutter:
            image[y:y + bh, x:x + bw] = CLUTTER
        if c == 3:
            image = np.repeat(image[..., None], 3, axis=2)
        cv2.imwrite(str(root / "images" / f"{name}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{name}_pixels0.png"), mask)
    (root / "idx_427" / "val.txt").write_text("\n".join(TINY) + "\n")
    return root


def copy_masks_as_predictions(root: Path, ids: list[str], out: Path) -> Path:
    out.mkdir()
    for i in ids:
        shutil.copy(root / "masks" / f"{i}_pixels0.png", out / f"{i}.png")
    return out


def test_perfect_predictions_on_a_tiny_dataset(tiny: Path, tmp_path: Path) -> None:
    preds = copy_masks_as_predictions(tiny, list(TINY), tmp_path / "preds")
    m = metrics_of(run_eval("--data", tiny, "--split", "val", "--predictions", preds, "--json"))
    assert m == {"iou": 1.0, "niou": 1.0, "pd": 1.0, "fa": 0.0, "ap50": 1.0, "ap": 1.0, "fa_per_frame": 0.0,
                 "fa_frames": 0.0, "images": 3, "targets": 4, "threshold": 0.5}


def test_imperfect_predictions_by_hand(tiny: Path, tmp_path: Path) -> None:
    preds = copy_masks_as_predictions(tiny, list(TINY), tmp_path / "preds")
    b = np.zeros((36, 64), np.uint8)  # b: its target missed, a 6-pixel false alarm at 0.8 instead
    b[30:32, 50:53] = 204
    cv2.imwrite(str(preds / "b.png"), b)
    c = cv2.imread(str(preds / "c.png"), cv2.IMREAD_GRAYSCALE)
    c[20, 20] = 100  # c: its target at 0.39, below 0.5 but inside the ROC sweep
    cv2.imwrite(str(preds / "c.png"), c)
    roc = tmp_path / "out" / "roc.csv"
    proc = run_eval("--data", tiny, "--predictions", preds, "--json", "--roc", roc)
    m = metrics_of(proc)
    pixels = 40 * 50 + 36 * 64 + 48 * 48
    assert (m["pd"], m["targets"]) == (0.5, 4)
    assert m["fa"] == pytest.approx(6 / pixels)
    assert m["iou"] == pytest.approx(13 / (22 + 6))
    assert m["niou"] == pytest.approx((1 + 0 + 0) / 3)
    assert m["ap50"] == pytest.approx((51 * 1 + 50 * 0) / 101)  # 2 TPs ranked first, FP after
    lines = roc.read_text().splitlines()
    assert lines[0] == "threshold,pd,fa,iou,fa_per_frame,fa_frames" and len(lines) == 1 + 19
    low = dict(zip(lines[0].split(","), map(float, lines[1].split(","))))  # threshold 0.05
    assert low["pd"] == 0.75 and low["fa"] == pytest.approx(6 / pixels)
    assert cv2.imread(str(roc.with_suffix(".png"))).shape == (480, 640, 3)
    assert "wrote" in proc.stderr


def test_table_output(tiny: Path, tmp_path: Path) -> None:
    preds = copy_masks_as_predictions(tiny, list(TINY), tmp_path / "preds")
    proc = run_eval("--data", tiny, "--predictions", preds, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "3 images, 4 targets" in proc.stdout
    assert re.search(r"IoU +1\.0000", proc.stdout) and re.search(r"Fa +0\.000e\+00", proc.stdout)
    assert re.search(r"FA/frame +0\.000", proc.stdout)


def test_perfect_predictions_on_sirst_val(sirst_root: Path, tmp_path: Path) -> None:
    ids = [i.strip() for i in (sirst_root / "idx_427" / "val.txt").read_text().split() if i.strip()]
    preds = copy_masks_as_predictions(sirst_root, ids, tmp_path / "preds")
    m = metrics_of(run_eval("--data", sirst_root, "--split", "val", "--predictions", preds, "--json", "-q"))
    assert (m["iou"], m["niou"], m["pd"], m["fa"], m["ap50"], m["ap"]) == (1.0, 1.0, 1.0, 0.0, 1.0, 1.0)
    assert m["images"] == len(ids) and m["targets"] >= len(ids)


def test_missing_predictions_folder(tiny: Path, tmp_path: Path) -> None:
    assert_user_error(run_eval("--data", tiny, "--predictions", tmp_path / "nope"), "nope", "does not exist")


def test_missing_prediction_file(tiny: Path, tmp_path: Path) -> None:
    preds = copy_masks_as_predictions(tiny, list(TINY), tmp_path / "preds")
    (preds / "b.png").unlink()
    assert_user_error(run_eval("--data", tiny, "--predictions", preds, "-q"), "b.png", "missing")


def test_prediction_of_the_wrong_size(tiny: Path, tmp_path: Path) -> None:
    preds = copy_masks_as_predictions(tiny, list(TINY), tmp_path / "preds")
    cv2.imwrite(str(preds / "c.png"), np.zeros((48, 47), np.uint8))
    assert_user_error(run_eval("--data", tiny, "--predictions", preds, "-q"), "c.png", "47x48", "48x48")


def test_model_or_predictions_not_both(tiny: Path, tmp_path: Path) -> None:
    assert_user_error(run_eval("--data", tiny), "got neither")
    assert_user_error(run_eval("m.onnx", "--data", tiny, "--predictions", tmp_path), "got both")


def _save_onnx(path: Path, nodes: list, outputs: dict[str, int], consts: dict[str, float], meta) -> Path:
    """A real (tiny) ONNX model on input ``image`` [n, 1, h, w] with edgeirst metadata inside."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edgeirst.meta import ONNX_KEY

    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["n", c, "h", "w"]) for k, c in outputs.items()],
        [helper.make_tensor(k, TensorProto.FLOAT, [], [v]) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {ONNX_KEY: meta.to_json()})
    onnx.save(model, str(path))
    return path


def _threshold_model(path: Path) -> Path:
    """Segmentation: seg = sigmoid(40 * (x - 0.5))."""
    from onnx import helper

    from edgeirst.meta import ModelMeta

    nodes = [helper.make_node("Sub", ["image", "half"], ["centred"]),
             helper.make_node("Mul", ["centred", "gain"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["seg"])]
    meta = ModelMeta("threshold-net", outputs=("seg",), decode="cluster", size_divisor=32, threshold=0.5)
    return _save_onnx(path, nodes, {"seg": 1}, {"half": 0.5, "gain": 40.0}, meta)


def _centernet_model(path: Path) -> Path:
    """Box-only CenterNet: heatmap = sigmoid(20 * (avgpool3x3(x) - 0.5)), wh = 3 everywhere."""
    from onnx import helper

    from edgeirst.meta import ModelMeta

    nodes = [helper.make_node("AveragePool", ["image"], ["local"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              count_include_pad=1),
             helper.make_node("Sub", ["local", "half"], ["centred"]),
             helper.make_node("Mul", ["centred", "gain"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["heatmap"]),
             helper.make_node("Mul", ["image", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "three"], ["side"]),
             helper.make_node("Concat", ["side", "side"], ["wh"], axis=1)]
    meta = ModelMeta("peak-net", outputs=("heatmap", "wh"), decode="centernet", decode_args={"stride": 1},
                     tasks=("detection",), size_divisor=32, threshold=0.5)
    return _save_onnx(path, nodes, {"heatmap": 1, "wh": 2}, {"half": 0.5, "gain": 20.0, "zero": 0.0, "three": 3.0}, meta)


def test_model_through_the_runtime(tiny: Path, tmp_path: Path) -> None:
    pytest.importorskip("edgeirst.runtime", reason="edgeirst.runtime is not available")
    model = _threshold_model(tmp_path / "threshold.onnx")
    m = metrics_of(run_eval(model, "--data", tiny, "--split", "val", "--json", "-q"))
    pixels = 40 * 50 + 36 * 64 + 48 * 48
    assert (m["pd"], m["targets"], m["images"]) == (1.0, 4, 3)
    assert m["fa"] == pytest.approx(4 / pixels)  # the clutter blob in c
    assert m["iou"] == pytest.approx(22 / 26)
    assert m["ap50"] == 1.0  # the clutter scores sigmoid(40 * (170/255 - 0.5)) < every target


def test_evaluate_backend_box_model_keeps_the_low_score_tail_for_ap(tmp_path: Path) -> None:
    """Two bright 3x3 targets (heatmap peak 0.9997), a dim one (0.357) and a dim 3x3 clutter
    patch (0.103): pixel metrics see boxes above the threshold, AP ranks everything above 0.05."""
    runtime = pytest.importorskip("edgeirst.runtime", reason="edgeirst.runtime is not available")
    from edgeirst.data.sirst import SirstDataset
    from edgeirst.evaluate import evaluate_backend

    root = tmp_path / "boxes"
    for d in ("images", "masks"):
        (root / d).mkdir(parents=True)
    image, mask = np.full((48, 64), 20, np.uint8), np.zeros((48, 64), np.uint8)
    for (x, y), value, is_target in [((10, 10), 230, True), ((40, 30), 230, True), ((25, 5), 120, True),
                                     ((52, 36), 100, False)]:
        image[y:y + 3, x:x + 3] = value
        mask[y:y + 3, x:x + 3] = 255 if is_target else 0
    cv2.imwrite(str(root / "images" / "one.png"), image)
    cv2.imwrite(str(root / "masks" / "one_pixels0.png"), mask)
    (root / "all.txt").write_text("one\n")
    data = SirstDataset(root, "all")
    with runtime.load_backend(_centernet_model(tmp_path / "peaks.onnx")) as backend:
        m, roc = evaluate_backend(backend, data, progress=False)
        assert (m["targets"], m["pd"], m["fa"]) == (3, pytest.approx(2 / 3), 0.0)
        assert m["iou"] == pytest.approx(18 / 27)  # decoded boxes are exactly the 3x3 targets
        assert (m["ap50"], m["ap"]) == (1.0, 1.0)  # dim TP (0.357) ranks above the clutter (0.103)
        at = {round(r["threshold"], 2): r for r in roc}
        assert (at[0.1]["pd"], at[0.35]["pd"], at[0.4]["pd"]) == (1.0, 1.0, pytest.approx(2 / 3))
        assert (at[0.1]["fa"], at[0.15]["fa"]) == (pytest.approx(9 / (48 * 64)), 0.0)
        cut, _ = evaluate_backend(backend, data, progress=False, det_threshold=0.5)
        assert cut["ap50"] == pytest.approx(67 / 101)  # recall stops at 2/3
        low, _ = evaluate_backend(backend, data, threshold=0.3, progress=False)
        assert (low["pd"], low["fa"], low["threshold"]) == (1.0, 0.0, 0.3)
