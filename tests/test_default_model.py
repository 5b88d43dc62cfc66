"""The shipped models: `default` (and the other shipped variants) through eval, run and both
backends. These are the weights a user gets without training, so they are tested as such."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edgeirst.meta import ModelMeta
from edgeirst.errors import EdgeirstError
from edgeirst.weights import WEIGHTS_DIR, shipped_model, shipped_names

WITH_CHECKPOINT = [n for n in shipped_names() if (WEIGHTS_DIR / f"{shipped_model(n).stem}.pt").is_file()]
from test_runtime_helpers import run_cli, write_video


def test_default_is_shipped_small_and_self_describing():
    assert shipped_names()[0] == "default"
    for name in shipped_names():
        assert shipped_model(name).stat().st_size < 10 * 2**20, f"{name}.onnx is over 10 MB"
    for name in WITH_CHECKPOINT:
        assert shipped_model(name, "pt").stat().st_size < 10 * 2**20, f"{name}.pt is over 10 MB"
    import onnxruntime as ort

    meta = ModelMeta.from_json(ort.InferenceSession(str(shipped_model("default"))).get_modelmeta()
                               .custom_metadata_map["edgeirst"])
    first = lambda v: v if isinstance(v, str) else v[0]  # noqa: E731  (one dataset's split, or one per dataset)
    assert first(meta.train["split"]) in ("train", "trainval") and first(meta.metrics["split"]) == "val"
    assert {"iou", "niou", "pd", "fa", "ap50", "ap"} <= set(meta.metrics)


def test_quantized_models_ship_as_onnx_only_and_say_so():
    from edgeirst.runtime.engine_build import read_onnx_meta

    quantized = [n for n in shipped_names(with_aliases=False) if n not in WITH_CHECKPOINT]
    for name in quantized:
        quant = read_onnx_meta(shipped_model(name)).quant
        assert name.endswith("-" + quant["precision"]) and quant["int8_nodes"] > 0, name
        assert quant["checked"]["within_budget"], name
        with pytest.raises(EdgeirstError, match="not shipped"):
            shipped_model(name, "pt")


@pytest.mark.parametrize("name", WITH_CHECKPOINT)
def test_shipped_checkpoint_and_onnx_agree(name, sirst_root):
    pytest.importorskip("torch")
    from edgeirst.data import SirstDataset
    from edgeirst.preprocess import prepare
    from edgeirst.runtime import load_backend

    sample = SirstDataset(sirst_root, "val")[0]
    with load_backend(name) as onnx_b, load_backend(name, "torch") as torch_b:
        export_only = {"input_size": None, "dynamic": None, "memory_per_pixel": None}  # set by export
        assert onnx_b.meta.to_dict() | export_only == torch_b.meta.to_dict() | export_only
        x, _ = prepare(sample.image, onnx_b.meta)
        a, b = onnx_b.infer(x[None]), torch_b.infer(x[None])
        for k in onnx_b.meta.outputs:  # probabilities to 1e-4; logits (up to ~100) to 2e-3 (5e-4 in probability)
            tol = 2e-3 if k.endswith("_logit") else 1e-4
            np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=tol, err_msg=k)


@pytest.mark.slow  # 87 s: the whole val split; run_default_on_real_images stays fast (2-core VM, busy)
def test_eval_default_reproduces_the_recorded_val_metrics(sirst_root):
    """The default was selected on the cross-scene validation (NUAA val + benchmarks/xscene/val.txt):
    `edgeirst eval` on the same two sources gives the metrics its metadata records."""
    from pathlib import Path

    scenes = sirst_root.parent / "sirst-v2-scenes"
    if not (scenes / "images").is_dir():
        pytest.skip(f"SIRST-v2 scenes not found at {scenes} (only on developer machines and CI)")
    lists = Path(__file__).resolve().parents[1] / "benchmarks" / "xscene"
    p = run_cli("eval", "default", "--data", sirst_root, "--data", scenes, "--split", "val", "--split",
                lists / "val.txt", "--json", "-q", timeout=900)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    import onnxruntime as ort

    recorded = json.loads(ort.InferenceSession(str(shipped_model("default"))).get_modelmeta()
                          .custom_metadata_map["edgeirst"])["metrics"]
    assert recorded["split"] == ["val", "val.txt"]
    assert got["images"] == 85 + 34 and got["targets"] == recorded["targets"]
    assert got["fa_per_frame"] == pytest.approx(recorded["fa_per_frame"], abs=1e-6)
    for k in ("iou", "niou", "pd", "ap50"):
        assert got[k] == pytest.approx(recorded[k], abs=2e-3), k
    assert got["fa"] == pytest.approx(recorded["fa"], abs=2e-6)


def test_run_default_on_a_video_file(tmp_path):
    video = write_video(tmp_path / "in.mp4", frames=12)
    out, saved = tmp_path / "out.jsonl", tmp_path / "annotated.mp4"
    p = run_cli("run", "default", "--source", video, "--jsonl", out, "--save", saved, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(12))
    cap = cv2.VideoCapture(str(saved))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12


def test_run_default_on_real_images_finds_the_targets(sirst_root, tmp_path):
    """An image folder of real SIRST val frames: one JSON line per image, and the shipped model's
    detections land on most ground-truth targets (centroid within 3 px, the Pd rule)."""
    from edgeirst.data import SirstDataset

    ds = SirstDataset(sirst_root, "val")
    folder = tmp_path / "frames"
    folder.mkdir()
    gts = []
    for i in range(10):
        s = ds[i]
        shutil.copy(ds.image_path(s.id), folder / f"{i:03d}{ds.image_path(s.id).suffix}")
        gts.append(s.targets().centroids)
    p = run_cli("run", "default", "--source", folder, "--jsonl", "-", "--no-track", "-q", timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert len(lines) == 10
    hit = total = 0
    for rec, gt in zip(lines, gts):
        dets = np.array([[d["cx"], d["cy"]] for d in rec["detections"]]).reshape(-1, 2)
        for c in gt:
            total += 1
            hit += bool(len(dets)) and float(np.min(np.linalg.norm(dets - c, axis=1))) < 3
    assert total > 0 and hit / total >= 0.7, f"{hit}/{total}"


def test_run_default_on_the_synthetic_stream(tmp_path):
    out = tmp_path / "out.jsonl"
    p = run_cli("run", "default", "--source", "synthetic://?seed=2&size=160x128", "--max-frames", "20", "--jsonl", out,
                "-q", timeout=300)
    assert p.returncode == 0, p.stderr
    assert len(out.read_text().splitlines()) == 20


@pytest.mark.slow  # 23 s: export + fine-tune of the shipped default (2-core VM, busy)
def test_export_and_finetune_accept_shipped_names(synth_root, tmp_path):
    pytest.importorskip("torch")
    p = run_cli("export", "default", "--out", tmp_path / "d.onnx", "--json", timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["max_abs_diff"] < 1e-4

    from edgeirst.checkpoint import load_checkpoint
    from edgeirst.train import TrainConfig
    from edgeirst.train.trainer import train

    shipped, meta, _ = load_checkpoint(shipped_model("default", "pt"))
    summary = train(TrainConfig(model=meta.name, model_kwargs=dict(meta.kwargs), data=str(synth_root), out=str(tmp_path / "ft"),
                                epochs=1, batch=2, size=64, max_steps=1, init="default", optimizer="sgd", lr=1e-12),
                    progress=False)
    tuned, _, _ = load_checkpoint(summary["last"])
    assert np.allclose(shipped.state_dict()["stem.weight"].numpy(), tuned.state_dict()["stem.weight"].numpy(), atol=1e-6)


@pytest.mark.slow
def test_default_scores_rank_true_targets_above_false_alarms(sirst_root):
    """On the cross-scene validation (NUAA val + held-apart SIRST-v2 scenes and background
    families, benchmarks/xscene), the median confidence of the default's false alarms is at
    least 0.2 below that of its true detections (every component it finds, before thresholding)."""
    from pathlib import Path

    from edgeirst.data.sirst import open_datasets
    from edgeirst.metrics import components_cropped, match_targets
    from edgeirst.postprocess import decode_outputs
    from edgeirst.preprocess import prepare
    from edgeirst.runtime import load_backend

    scenes = sirst_root.parent / "sirst-v2-scenes"
    if not (scenes / "images").is_dir():
        pytest.skip(f"SIRST-v2 scenes not found at {scenes} (only on developer machines and CI)")
    lists = Path(__file__).resolve().parents[1] / "benchmarks" / "xscene"
    dataset = open_datasets([sirst_root, scenes], ["val", str(lists / "val.txt")])
    true, false = [], []
    with load_backend("default", "onnxruntime") as be:
        assert "confidence" in be.meta.decode_args
        for i in range(len(dataset)):
            sample = dataset[i]
            x, box = prepare(sample.image, be.meta)
            out = be.infer(x[None])
            pred = decode_outputs({k: v[0] for k, v in out.items()}, be.meta, box, threshold=0.0)
            _, gt = components_cropped(sample.mask)
            matched = match_targets(gt, pred.targets.centroids)
            true += pred.targets.scores[matched].tolist()
            false += pred.targets.scores[~matched].tolist()
    assert len(true) > 50 and len(false) > 10
    assert np.median(false) <= np.median(true) - 0.2, (np.median(false), np.median(true))
