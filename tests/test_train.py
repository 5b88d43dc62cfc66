"""The trainer end to end on tiny synthetic data: checkpoint -> eval -> export -> resume, and
two gloo processes that must end with identical weights."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from edgeirst.checkpoint import load_checkpoint  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.trainer import train, weights_sha1  # noqa: E402


@pytest.fixture(scope="module")
def tiny_data(synth_root):
    return synth_root


def _cfg(data, out, **kw):
    base = dict(model="mshnet", data=str(data), out=str(out), split="train", val_split="val", epochs=1, batch=2,
                size=64, model_kwargs={"width": 0.25}, optimizer="adam", lr=1e-3, max_steps=2)
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_self_describing_checkpoint(tiny_data, tmp_path):
    summary = train(_cfg(tiny_data, tmp_path / "run"), progress=False)
    model, meta, ckpt = load_checkpoint(summary["best"])
    assert meta.name == "mshnet" and meta.kwargs == {"width": 0.25}
    assert meta.input_size == (64, 64) and meta.decode == "cluster" and meta.outputs == ("seg", "seg_logit")
    assert 0.0 < meta.mean[0] < 1.0 and meta.std[0] > 0
    assert meta.train["split"] == "train" and meta.train["epochs"] == 1
    assert set(meta.metrics) >= {"iou", "niou", "pd", "fa", "ap50", "ap", "split"}
    rows = (tmp_path / "run" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,loss") and len(rows) == 2
    x = torch.zeros(1, 1, 64, 80)
    assert model(x)["seg"].shape == (1, 1, 64, 80)


def test_resume_continues_and_refuses_finished_run(tiny_data, tmp_path):
    out = tmp_path / "run"
    train(_cfg(tiny_data, out, epochs=1), progress=False)
    summary = train(_cfg(tiny_data, out, epochs=2, resume=str(out / "last.pt")), progress=False)
    state = torch.load(summary["last"], weights_only=False)
    assert state["epoch"] == 1
    assert len((out / "results.csv").read_text().splitlines()) == 3
    from edgeirst.errors import EdgeirstError

    with pytest.raises(EdgeirstError, match="already finished"):
        train(_cfg(tiny_data, out, epochs=2, resume=str(out / "last.pt")), progress=False)


def test_init_copies_matching_weights(tiny_data, tmp_path):
    first = train(_cfg(tiny_data, tmp_path / "a"), progress=False)
    src, _, _ = load_checkpoint(first["best"])
    second = train(_cfg(tiny_data, tmp_path / "b", init=first["best"], lr=1e-12, optimizer="sgd"), progress=False)
    dst, _, _ = load_checkpoint(second["last"])
    a, b = src.state_dict(), dst.state_dict()
    assert torch.allclose(a["stem.weight"], b["stem.weight"], atol=1e-6)


@pytest.mark.slow  # 33 s on the busy 2-core VM: two training processes over gloo
def test_two_gloo_processes_end_with_equal_weights(tiny_data, tmp_path):
    summary = train(_cfg(tiny_data, tmp_path / "ddp", nproc=2, epochs=2, max_steps=2), progress=False)
    sums = summary["rank_weights_sha1"]
    assert summary["world"] == 2 and len(sums) == 2 and sums[0] == sums[1]
    model, _, _ = load_checkpoint(summary["last"])
    assert weights_sha1(model) == sums[0]


@pytest.mark.slow  # 39 s: three CLI subprocesses; training itself is tested fast above (2-core VM, busy)
def test_cli_train_eval_export_chain(tiny_data, tmp_path):
    run = [sys.executable, "-m", "edgeirst"]
    out = tmp_path / "cli"
    r = subprocess.run(run + ["train", "mshnet", "--data", str(tiny_data), "--epochs", "1", "--batch", "2", "--size", "64",
                              "--width", "0.25", "--max-steps", "2", "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    best = json.loads(r.stdout.strip().splitlines()[-1])["best"]
    r = subprocess.run(run + ["eval", best, "--data", str(tiny_data), "--split", "val", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert set(m) >= {"iou", "niou", "pd", "fa", "ap50", "ap", "images", "targets", "threshold"}
    r = subprocess.run(run + ["export", best, "--out", str(tmp_path / "m.onnx"), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["max_abs_diff"] < 1e-4


def test_cli_train_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgeirst", "train", "mshnett", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_pretrain_segmentation_then_finetune_multitask(tiny_data, tmp_path):
    """MTUNet's pretrain mode: train mtunet-seg, then start mtunet from its shared backbone."""
    seg = train(_cfg(tiny_data, tmp_path / "seg", model="mtunet-seg", max_steps=1), progress=False)
    src, _, _ = load_checkpoint(seg["best"])
    multi = train(_cfg(tiny_data, tmp_path / "multi", model="mtunet", init=seg["best"], max_steps=1, lr=1e-12,
                       optimizer="sgd"), progress=False)
    dst, _, _ = load_checkpoint(multi["last"])
    s, d = src.state_dict(), dst.state_dict()
    backbone = [k for k in s if k in d and s[k].shape == d[k].shape and "backbone" in k]
    assert backbone, "the two variants should share backbone weights by name"
    for k in backbone:
        if s[k].dtype.is_floating_point and not k.endswith(("running_mean", "running_var")):
            assert torch.allclose(s[k], d[k], atol=1e-6), k
