"""Distillation (`edgeirst train --teacher`): the teacher sees each crop under its own input
normalisation, the term is BCE against its pooled probabilities, and it reaches the student's
weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_runtime_helpers import run_cli  # noqa: E402

from edgeirst.checkpoint import load_checkpoint  # noqa: E402
from edgeirst.meta import ModelMeta  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.distill import Teacher, distill_loss  # noqa: E402
from edgeirst.train.trainer import train  # noqa: E402


def test_teacher_sees_the_crop_under_its_own_normalisation():
    student = ModelMeta(name="light-sgmtlm-tiny", mean=(0.3,), std=(0.1,), in_chans=1)
    teacher = Teacher("default", student, torch.device("cpu"))
    unit = 0.3 + 0.02 * torch.randn(2, 1, 32, 48, generator=torch.Generator().manual_seed(0))
    unit[:, :, 14:17, 20:23] = 0.9  # a small bright target
    got = teacher((unit - 0.3) / 0.1)
    with torch.no_grad():
        want = teacher.model((unit - teacher.meta.mean[0]) / teacher.meta.std[0])["seg"]
    assert got.shape == (2, 1, 32, 48) and not got.requires_grad
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert want[0, 0, 15, 21] > 0.5  # the teacher finds the target
    # a student-normalised crop is not what the teacher was trained on: feeding it raw differs
    with torch.no_grad():
        raw = teacher.model((unit - 0.3) / 0.1)["seg_logit"]
        own = teacher.model((unit - teacher.meta.mean[0]) / teacher.meta.std[0])["seg_logit"]
    assert (raw - own).abs().max() > 1.0


def test_distill_loss_is_bce_against_the_pooled_teacher_map():
    student = torch.tensor([[[[0.2, 0.9]]]])  # 1x1x1x2
    teacher = torch.tensor([[[[0.0, 0.4], [0.2, 0.2]], [[1.0, 1.0], [1.0, 0.6]]]]).reshape(1, 1, 2, 4)
    # pooled 2x4 -> 1x2: means of [0, .4, 1, 1] = 0.6 and [.2, .2, 1, .6] = 0.5
    t = torch.tensor([0.6, 0.5])
    s = torch.tensor([0.2, 0.9])
    want = -(t * s.log() + (1 - t) * (1 - s).log()).mean()
    torch.testing.assert_close(distill_loss(student, teacher), want)


def test_a_teacher_must_segment():
    student = ModelMeta(name="mshnet", in_chans=1)
    with pytest.raises(Exception, match="no segmentation output"):
        Teacher("light-sgmtlm-tiny", student, torch.device("cpu"))


def _run(synth_root, out, **extra):
    cfg = TrainConfig(model="light-sgmtlm-tiny", data=str(synth_root), split="train", val_split=None, out=str(out),
                      epochs=1, batch=4, size=64, optimizer="adam", lr=1e-2, max_steps=2, ema=0.0, seed=0, **extra)
    summary = train(cfg, progress=False)
    model, meta, _ = load_checkpoint(summary["best"])
    return model, meta


def test_the_teacher_term_reaches_the_students_weights(synth_root, tmp_path):
    plain, _ = _run(synth_root, tmp_path / "plain")
    taught, meta = _run(synth_root, tmp_path / "taught", teacher="default", distill_weight=5.0)
    assert meta.train["config"]["teacher"] == "default"
    a, b = plain.state_dict(), taught.state_dict()
    # the saliency head (the map the teacher's term trains) moves differently
    name = next(k for k in a if k.startswith("saliency.") and k.endswith("weight"))
    assert not torch.equal(a[name], b[name])


def test_train_refuses_a_teacher_without_a_segmentation_map(synth_root, tmp_path):
    r = run_cli("train", "light-sgmtlm-tiny", "--data", str(synth_root), "--teacher", "light-sgmtlm-tiny",
                "--val-split", "none", "--epochs", "1", "--max-steps", "1", "--size", "64", "--batch", "2",
                "--out", str(tmp_path / "r"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: --teacher light-sgmtlm-tiny") and "no segmentation output" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_distill_weight_without_a_teacher_is_refused(synth_root, tmp_path):
    r = run_cli("train", "mshnet", "--data", str(synth_root), "--distill-weight", "3", "--val-split", "none",
                "--epochs", "1", "--max-steps", "1", "--size", "64", "--batch", "2", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and r.stderr.startswith("error: --distill-weight") and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
