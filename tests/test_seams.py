"""The seams the next features rely on: one registry entry per model, checkpoints that carry
their structure (a pruned model reloads everywhere), strict metadata, a trainer with a model
passed in and callbacks, option objects down to the engine build, and no upward imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from torch import nn  # noqa: E402

from edgeirst.checkpoint import load_checkpoint, meta_for, save_checkpoint  # noqa: E402
from edgeirst.data.sirst import SirstDataset  # noqa: E402
from edgeirst.errors import EdgeirstError  # noqa: E402
from edgeirst.evaluate import evaluate_backend  # noqa: E402
from edgeirst.export import export_onnx  # noqa: E402
from edgeirst.meta import ModelMeta  # noqa: E402
from edgeirst.models import ModelEntry, ModelSpec, PaperFigures, Preset, create_model, register_model, unregister_model  # noqa: E402
from edgeirst.prune import Complexity, prune_channels  # noqa: E402
from edgeirst.runtime import load_backend  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.trainer import train  # noqa: E402
from test_runtime_helpers import REPO, run_cli  # noqa: E402


class TinySeg(nn.Module):
    """A user's own two-layer segmentation model."""

    def __init__(self, in_chans: int = 1, width: int = 8):
        super().__init__()
        self.spec = ModelSpec(tasks=("segmentation",), decode="cluster", outputs=("seg",), size_divisor=4)
        self.body = nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x):
        return {"seg": torch.sigmoid(self.head(self.body(x)))}


def test_a_model_is_one_registry_entry(synth_root, tmp_path):
    """Register -> train -> export -> evaluate, with nothing else edited."""
    entry = ModelEntry("tiny-seg", TinySeg, Preset("adam", 1e-3, 1, 2, 32), criterion="soft_iou_deep_supervision",
                       paper=PaperFigures(None, None, 64, "a test"), keep=("head",))
    register_model(entry)
    try:
        with pytest.raises(EdgeirstError, match="already registered"):
            register_model(entry)
        summary = train(TrainConfig(model="tiny-seg", data=str(synth_root), out=str(tmp_path / "run"), max_steps=2),
                        progress=False)
        model, meta, _ = load_checkpoint(summary["best"])
        onnx_path = export_onnx(model, meta, tmp_path / "tiny.onnx")
        with load_backend(onnx_path) as backend:
            metrics, _ = evaluate_backend(backend, SirstDataset(synth_root, "val"), progress=False)
        assert meta.name == "tiny-seg" and 0.0 <= metrics["iou"] <= 1.0 and metrics["images"] == 4
    finally:
        unregister_model("tiny-seg")
    with pytest.raises(EdgeirstError, match="unknown model 'tiny-seg'"):
        create_model("tiny-seg")


@pytest.fixture(scope="module")
def pruned_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("mshnet", width=0.25)
    before = Complexity.of(model, 64)
    prune_channels(model, "mshnet", 0.5, size=64)
    after = Complexity.of(model, 64)
    assert after.params < 0.7 * before.params and after.gmacs < before.gmacs
    path = tmp_path_factory.mktemp("pruned") / "pruned.pt"
    save_checkpoint(path, model, meta_for("mshnet", model, kwargs={"width": 0.25}, input_size=(64, 64)))
    return path, model


def test_pruned_checkpoint_reloads_with_its_structure(pruned_ckpt):
    path, model = pruned_ckpt
    again, meta, _ = load_checkpoint(path)
    x = torch.rand(1, 1, 64, 80)
    with torch.no_grad():
        assert torch.equal(model.eval()(x)["seg"], again(x)["seg"])
    convs = [m for m in again.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.weight.shape[0] == m.out_channels and m.weight.shape[1] * m.groups == m.in_channels for m in convs)


@pytest.mark.slow  # 17 s; the pruned-checkpoint reload tests below are fast (2-core VM, busy)
def test_pruned_checkpoint_in_eval_export_and_run(pruned_ckpt, synth_root, tmp_path):
    path, _ = pruned_ckpt
    r = run_cli("eval", path, "--data", synth_root, "--split", "val", "--json", timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["images"] == 4
    out = tmp_path / "pruned.onnx"
    r = run_cli("export", path, "--out", out, "--json", timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["max_abs_diff"] < 1e-4
    r = run_cli("run", path, "--backend", "torch", "--source", "synthetic://?size=64x64", "--max-frames", "2",
                "-q", "--json", timeout=180)
    assert r.returncode == 0 and json.loads(r.stdout)["frames"] == 2, r.stderr


def test_pruned_checkpoint_as_init_keeps_its_structure(pruned_ckpt, synth_root, tmp_path):
    path, model = pruned_ckpt
    cfg = TrainConfig(model="mshnet", data=str(synth_root), out=str(tmp_path / "ft"), model_kwargs={"width": 0.25},
                      epochs=1, batch=2, size=64, optimizer="sgd", lr=1e-12, max_steps=1, init=str(path), ema=0)
    tuned, _, _ = load_checkpoint(train(cfg, progress=False)["last"])
    assert Complexity.of(tuned, 64).params == Complexity.of(model, 64).params


def test_train_a_model_passed_in_with_callbacks(pruned_ckpt, synth_root, tmp_path):
    _, model = pruned_ckpt
    import copy

    seen = []
    cfg = TrainConfig(model="mshnet", data=str(synth_root), out=str(tmp_path / "cb"), model_kwargs={"width": 0.25},
                      epochs=2, batch=2, size=64, max_steps=1)
    summary = train(cfg, progress=False, model=copy.deepcopy(model),
                    callbacks=[lambda epoch, row, m: seen.append((epoch, "loss" in row, isinstance(m, nn.Module)))])
    assert seen == [(0, True, True), (1, True, True)]
    reloaded, _, _ = load_checkpoint(summary["best"])
    assert Complexity.of(reloaded, 64).params == Complexity.of(model, 64).params


def _meta_dict() -> dict:
    return ModelMeta("mshnet", kwargs={"width": 0.25}).to_dict()


def test_metadata_is_checked_not_silently_defaulted():
    ModelMeta.from_dict(_meta_dict())
    with pytest.raises(EdgeirstError, match="does not know: colour_space"):
        ModelMeta.from_dict({**_meta_dict(), "colour_space": "rgb"})
    with pytest.raises(EdgeirstError, match="format 7, newer"):
        ModelMeta.from_dict({**_meta_dict(), "format": 7})
    d = _meta_dict()
    del d["mean"], d["std"]
    with pytest.raises(EdgeirstError, match="lacks required field.* mean, std"):
        ModelMeta.from_dict(d)


def test_metadata_dict_is_what_its_json_holds():
    """A checkpoint stores to_dict(), an ONNX file to_json(): a tuple in the training config (a
    --synth-scr range) or a numpy metric must read back the same from both."""
    import numpy as np

    meta = ModelMeta("mshnet", kwargs={"width": 0.25}, train={"config": {"synth_scr": (3.0, 15.0)}},
                     metrics={"iou": np.float32(0.5), "targets": np.int64(97)})
    d = meta.to_dict()
    assert d["train"]["config"]["synth_scr"] == [3.0, 15.0] and d["metrics"] == {"iou": 0.5, "targets": 97}
    assert ModelMeta.from_json(meta.to_json()).to_dict() == d == ModelMeta.from_dict(d).to_dict()
    with pytest.raises(TypeError, match="object in model metadata"):
        ModelMeta("mshnet", train={"bad": object()}).to_dict()


def test_model_without_normalisation_is_refused_by_run(tmp_path):
    import onnx

    from test_runtime_helpers import tiny_onnx

    m = onnx.load(str(tiny_onnx(tmp_path)))
    d = json.loads({p.key: p.value for p in m.metadata_props}["edgeirst"])
    del d["mean"]
    onnx.helper.set_model_props(m, {"edgeirst": json.dumps(d)})
    onnx.save(m, str(tmp_path / "nomean.onnx"))
    r = run_cli("run", tmp_path / "nomean.onnx", "--source", "synthetic://?size=64x64", "--max-frames", "1")
    assert r.returncode == 2 and "lacks required field(s) mean" in r.stderr and "Traceback" not in r.stderr


def test_multi_source_run_asks_the_engine_for_its_batch(tmp_path):
    """`edgeirst run` with N sources builds engines for batch N (BuildOptions.max_batch)."""
    from edgeirst.runtime.backends import BackendOptions
    from edgeirst.runtime.pipeline import RunConfig, run_stream
    from test_runtime_helpers import tiny_onnx

    asked = []

    class Recording(BackendOptions):  # the real loader, recording what the engine build was asked for
        def load(self, model):
            asked.append(self.build.max_batch)
            return super().load(model)

    sources = [f"synthetic://?seed={i}&size=64x64&frames=2" for i in range(3)]
    summary = run_stream(str(tiny_onnx(tmp_path)), sources, Recording(), config=RunConfig(report_every=0))
    assert asked == [3] and summary.frames == 6


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('edgeirst'))))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_no_import_runs_from_a_lower_layer_up():
    assert not {m for m in _imported_after("import edgeirst.losses") if m.startswith("edgeirst.train")}
    assert not {m for m in _imported_after("import edgeirst.models") if m.startswith(("edgeirst.train", "edgeirst.losses"))}
    assert not {m for m in _imported_after("import edgeirst.export, edgeirst.checkpoint, edgeirst.weights")
                if m.startswith("edgeirst.runtime")}
