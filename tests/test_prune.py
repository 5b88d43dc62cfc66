"""Structured pruning on the real models, the real torch-pruning graph and the real trainer:
every family prunes and still runs, a size target is reached by the smallest ratio, and
`edgeirst prune` writes a self-describing checkpoint that reloads anywhere."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="pruning needs the train extra (torch)")
pytest.importorskip("torch_pruning", reason="pruning needs the train extra (torch-pruning)")

from torch import nn  # noqa: E402

import edgeirst.prune  # noqa: E402

from edgeirst.checkpoint import load_checkpoint  # noqa: E402
from edgeirst.errors import EdgeirstError  # noqa: E402
from edgeirst.models import create_model  # noqa: E402
from edgeirst.prune import Complexity, prune_channels, prune_to_target  # noqa: E402
from edgeirst.train import TrainConfig  # noqa: E402
from edgeirst.train.trainer import train  # noqa: E402
from test_runtime_helpers import run_cli  # noqa: E402

FAMILIES = [("mshnet", {"width": 0.25}), ("dnanet", {"width": 0.25}), ("mtunet-siwd", {"width": 0.25}),
            ("light-sgmtlm-tiny", {}), ("mlsa-yolov8", {})]


@pytest.mark.parametrize("name, kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_prunes_and_keeps_its_heads(name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        shapes = {k: v.shape for k, v in model(x).items()}
    before = Complexity.of(model, 64)
    prune_channels(model, name, 0.5, size=64)
    after = Complexity.of(model, 64)
    assert after.params < 0.75 * before.params and after.gmacs < before.gmacs
    with torch.no_grad():
        assert {k: v.shape for k, v in model(x).items()} == shapes  # heads' outputs untouched
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.weight.shape[0] == m.out_channels and m.weight.shape[1] * m.groups == m.in_channels for m in convs)


def test_size_target_is_reached_by_a_small_ratio_not_the_largest(monkeypatch):
    """Size is not monotonic in the ratio (groups too small to round are left whole), so the search
    must not bisect over [0, 0.95] (0.9 leaves MSHNet w0.5 at 70% of its GMACs, 0.75 at 40%)."""
    torch.manual_seed(0)
    model = create_model("mshnet", width=0.5)
    start = Complexity.of(model, 64).gmacs
    pruned, ratio = prune_to_target(model, "mshnet", 64, target_gmacs=0.5 * start)
    got = Complexity.of(pruned, 64).gmacs
    assert 0.4 * start < got <= 0.5 * start, (ratio, got / start)
    assert 0.5 < ratio < 0.75
    assert prune_to_target(create_model("mshnet", width=0.5), "mshnet", 64, target_gmacs=start * 2)[1] == 0.0
    monkeypatch.setattr(edgeirst.prune, "GRID", (0.5, 0.8))  # a shorter search for the unreachable target
    with pytest.raises(EdgeirstError, match="by 80% still does not reach the target"):
        prune_to_target(create_model("mshnet", width=0.25), "mshnet", 64, target_params=10)


def test_a_small_ratio_does_not_halve_the_narrow_layers():
    """Kept channels round to the nearest multiple of 4, not down: at 10% an 8-channel layer keeps
    all 8 (torch-pruning's rounding kept 4, which wiped a small model out before fine-tuning)."""
    from edgeirst.prune import kept_channels

    assert [kept_channels(8, n) for n in (1, 2, 3, 6)] == [8, 8, 4, 4]
    assert (kept_channels(16, 4), kept_channels(12, 2), kept_channels(64, 16), kept_channels(3, 2)) == (12, 12, 48, 3)
    model = create_model("mtunet-siwd", width=0.25).eval()
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    prune_channels(model, "mtunet-siwd", 0.1, size=64)
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert all(after[n] == 8 for n, c in before.items() if c == 8)
    assert any(after[n] < c for n, c in before.items() if c >= 64)  # the wide layers give the channels


def test_layers_named_by_keep_stay_whole():
    """`--keep backbone.ups.3` (the full-resolution stage every head reads) keeps its channels."""
    model = create_model("mtunet-siwd", width=0.25).eval()
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    prune_channels(model, "mtunet-siwd", 0.4, size=64, keep=("backbone.ups.3", "backbone.stem"))
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    kept = [n for n in before if n.startswith(("backbone.ups.3.", "backbone.stem."))]
    assert kept and all(after[n] == before[n] for n in kept)
    assert sum(after.values()) < 0.8 * sum(before.values())
    with torch.no_grad():
        assert set(model(torch.rand(1, 1, 64, 64))) == {"heatmap", "wh", "offset", "seg"}


@pytest.fixture(scope="module")
def trained(synth_root, tmp_path_factory):
    torch.manual_seed(0)
    cfg = TrainConfig(model="mshnet", data=str(synth_root), out=str(tmp_path_factory.mktemp("run")),
                      model_kwargs={"width": 0.25}, epochs=1, batch=4, size=64, max_steps=2)
    return train(cfg, progress=False)["best"]


@pytest.mark.slow  # 67 s: prune + fine-tune through the CLI; the library tests below are fast (2-core VM, busy)
def test_prune_command_fine_tunes_and_writes_a_self_describing_checkpoint(trained, synth_root, tmp_path):
    out = tmp_path / "pruned.pt"
    r = run_cli("prune", trained, "--data", synth_root, "--ratio", "0.5", "--steps", "2", "--finetune-epochs", "1",
                "--count-size", "64", "--out", out, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["pruned_from"] == str(trained) and result["ratio"] == 0.5 and result["steps"] == 2
    assert result["after"]["params"] < 0.7 * result["before"]["params"]
    assert {"iou", "niou", "pd", "fa", "ap50"} <= set(result["after"])
    model, meta, _ = load_checkpoint(out)  # nothing about pruning is passed in
    assert Complexity.of(model, 64).params == result["after"]["params"]
    assert meta.train["pruning"]["before"] == result["before"] and meta.metrics["split"] == "val"
    r = run_cli("prune", trained, "--data", synth_root, "--ratio", "0.3", "--count-size", "64", "--out", tmp_path / "t.pt",
                timeout=300)
    assert r.returncode == 0, r.stderr
    assert "before" in r.stdout and "GMACs" in r.stdout and "IoU" in r.stdout


@pytest.mark.parametrize("args, match", [
    (["--ratio", "0.5", "--target-params", "1000"], "exactly one of --ratio"),
    (["--ratio", "1.5"], "--ratio"),
    (["--ratio", "0.5", "--importance", "taylor"], "need --data"),
    (["--ratio", "0.5", "--keep", "encoder.nope"], "--keep encoder.nope: no convolution of mshnet"),
])
def test_prune_command_refuses_bad_input_in_one_line(trained, tmp_path, args, match):
    out = tmp_path / "p.pt"
    r = run_cli("prune", trained, *args, "--val-split", "none", "--out", out, timeout=120)
    assert r.returncode != 0 and match in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_prune_command_never_overwrites_its_input(trained):
    before = trained.read_bytes() if hasattr(trained, "read_bytes") else open(trained, "rb").read()
    r = run_cli("prune", trained, "--ratio", "0.5", "--val-split", "none", "--out", trained, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert open(trained, "rb").read() == before


def test_fine_tuning_a_pruned_checkpoint_keeps_its_structure_and_record(trained, synth_root, tmp_path):
    """`edgeirst train --init pruned.pt` (a longer fine-tune after `prune`) trains the pruned
    channels, not a fresh full-width model, and its checkpoints still say what they were pruned from."""
    pruned = tmp_path / "pruned.pt"
    r = run_cli("prune", trained, "--ratio", "0.5", "--count-size", "64", "--val-split", "none", "--out", pruned,
                timeout=300)
    assert r.returncode == 0, r.stderr
    p_model, p_meta, _ = load_checkpoint(pruned)
    cfg = TrainConfig(model="mshnet", data=str(synth_root), out=str(tmp_path / "ft"), model_kwargs={"width": 0.25},
                      epochs=1, batch=4, size=64, max_steps=2, init=str(pruned))
    model, meta, _ = load_checkpoint(train(cfg, progress=False)["best"])
    assert Complexity.of(model, 64).params == Complexity.of(p_model, 64).params
    assert meta.train["pruning"] == p_meta.train["pruning"]
    assert meta.train["pruning"]["pruned_from"] == str(trained)


def test_fine_tuning_keeps_the_recipe_the_model_was_selected_by(trained, synth_root, tmp_path):
    """A detector trained with --val-metric ap50 and EMA is fine-tuned (and its best epoch chosen)
    the same way after pruning, not by the trainer's IoU default."""
    from edgeirst.prune import PruneConfig, _finetune_config

    _, meta, _ = load_checkpoint(trained)
    recipe = {**meta.train["config"], "val_metric": "ap50", "ema": 0.2, "lr": 5e-4}
    meta = meta.replace(train={**meta.train, "config": recipe})
    cfg = _finetune_config(PruneConfig(model=str(trained), out=tmp_path / "p.pt", data=synth_root, finetune_epochs=2,
                                       lr=1e-4), meta, tmp_path / "step1")
    assert (cfg.val_metric, cfg.ema, cfg.lr, cfg.epochs) == ("ap50", 0.2, 1e-4, 2)
    older = {k: v for k, v in meta.train.items() if k != "config"} | {"optimizer": "adam", "size": 48, "batch": 3}
    cfg = _finetune_config(PruneConfig(model=str(trained), out=tmp_path / "p.pt", data=synth_root), meta.replace(
        train=older), tmp_path / "step1")  # a checkpoint from before train.config: its recorded recipe is used
    assert (cfg.optimizer, cfg.size, cfg.batch) == ("adam", 48, 3)
