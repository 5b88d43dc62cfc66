"""A one-epoch smoke train of every variant in the zoo (reduced width, tiny synthetic data):
targets, criterion, optimisation step, validation through the shared eval loop, checkpoint."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from edgeirst.checkpoint import load_checkpoint  # noqa: E402
from edgeirst.models import list_models  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.trainer import train  # noqa: E402

SMALL = {"mlsa-yolov8": {"width": 0.125}}


@pytest.mark.parametrize("name", list_models())
def test_one_epoch_of_every_variant(name, synth_root, tmp_path):
    cfg = TrainConfig(model=name, data=str(synth_root), out=str(tmp_path / name), epochs=1, batch=2, size=64,
                      max_steps=2, model_kwargs=SMALL.get(name, {"width": 0.25}), lr=1e-3, optimizer="adam",
                      warmup_epochs=0)
    summary = train(cfg, progress=False)
    model, meta, ckpt = load_checkpoint(summary["best"])
    assert meta.name == name and meta.metrics["images"] > 0
    assert all(math.isfinite(meta.metrics[k]) for k in ("iou", "pd", "fa", "ap50"))
    assert torch.isfinite(torch.tensor(float((tmp_path / name / "results.csv").read_text().splitlines()[1].split(",")[2])))
