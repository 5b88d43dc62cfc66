"""`edgeirst zoo`: every registered model with params and GMACs counted, beside the papers' figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from edgeirst.cli import main
from edgeirst.cli.zoo import FACTS_SIZES, GFLOPS_MEANS, count_facts, describe_zoo, format_table, recorded_facts
from edgeirst.models import create_model, list_models, model_entry
from edgeirst.models.complexity import count_macs, count_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on shared, busy cores, many tiny ops stall on thread barriers."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def zoo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # busy shared cores: avoid thread-barrier stalls
    return subprocess.run([sys.executable, "-m", "edgeirst", "zoo", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_rows_are_counted_not_typed():
    rows = describe_zoo(["mshnet", "mlsa-yolov8"], size=64, in_chans=1)
    assert [r["name"] for r in rows] == ["mshnet", "mlsa-yolov8"]
    for r in rows:
        model = create_model(r["name"], in_chans=1)
        assert r["params"] == count_params(model) and isinstance(r["params"], int)
        assert r["gflops"] == pytest.approx(count_macs(model, 64, 1) / 1e9, abs=1e-3) and r["gflops"] > 0
        assert r["tasks"] == list(model.spec.tasks)
        assert r["paper_params_m"] == model_entry(r["name"]).paper.params_m
    table = format_table(rows)
    assert "mshnet" in table and "mlsa-yolov8" in table and GFLOPS_MEANS in table


def test_cli_json_for_two_models():
    res = zoo("--json", "--size", "64", "--in-chans", "1", "mshnet", "mlsa-yolov8", timeout=120)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == ["mshnet", "mlsa-yolov8"]
    assert rows[0]["params"] == count_params(create_model("mshnet"))
    assert all(r["gflops"] > 0 and r["gflops_means"] == GFLOPS_MEANS and r["in_chans"] == 1 for r in rows)
    assert all({"tasks", "paper_params_m", "paper_gflops"} <= set(r) for r in rows)


@pytest.mark.parametrize("args, message", [(["dnanett"], "did you mean dnanet"),
                                           (["dnanet", "--size", "304"], None),
                                           (["dnanet", "--size", "300"], "multiple of 16")])
def test_cli_user_errors_are_one_line(args, message, capsys, monkeypatch):
    monkeypatch.setattr("edgeirst.models.complexity.count_macs", lambda *a, **k: 0)  # the check comes first
    if message is None:  # a valid size passes the check (counting is stubbed out: this is about the CLI)
        main(["zoo", *args])
        assert "dnanet" in capsys.readouterr().out
        return
    with pytest.raises(SystemExit) as e:
        main(["zoo", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and message in err[-1] and err[-1].startswith("error:")


def test_zoo_module_imports_no_torch():
    code = "import sys, edgeirst.cli.zoo; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr


def test_recorded_facts_cover_the_registry_and_its_paper_figures():
    """The cheap half of the check below: the recorded names, tasks, divisors and paper figures."""
    facts = recorded_facts()
    assert sorted(facts) == list_models()
    for name, f in facts.items():
        assert f["paper"] == asdict(model_entry(name).paper)
        assert {f"{s}x{c}" for s, c in FACTS_SIZES} == set(f["macs"]) and {str(c) for _, c in FACTS_SIZES} == set(f["params"])


@pytest.mark.slow
def test_recorded_facts_are_the_counts():
    """zoo_facts.json is what counting gives today (~40 s: every model at full width, twice);
    `python tools/zoo_facts.py` rewrites it."""
    facts = recorded_facts()
    for name in list_models():
        assert count_facts(name) == facts[name], f"{name}: run python tools/zoo_facts.py"


def test_cli_json_lists_every_model():
    # Every registered model at full width (the 29M / 45M ones included), from the recorded facts.
    res = zoo("--json", "--size", "320")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == list_models()
    for r in rows:
        assert isinstance(r["params"], int) and r["params"] > 0 and r["gflops"] > 0 and r["tasks"]
        assert {"paper_params_m", "paper_gflops"} <= set(r)
        if r["name"] in ("dnanet", "mshnet"):
            assert r["params"] / 1e6 == pytest.approx(r["paper_params_m"], rel=0.05)


def test_zoo_says_which_variants_have_shipped_weights_and_what_they_score():
    from edgeirst.runtime.engine_build import read_onnx_meta
    from edgeirst.weights import aliases, shipped_model, shipped_names

    rows = {r["name"]: r for r in describe_zoo(None, size=64, in_chans=1)}
    listed = {w["name"]: (name, w) for name, r in rows.items() for w in r["shipped"]}
    assert set(listed) == set(shipped_names(with_aliases=False))
    for shipped, (zoo_name, w) in listed.items():
        meta = read_onnx_meta(shipped_model(shipped))
        assert shipped.startswith(zoo_name) and meta.name == zoo_name
        split = w["val"]["split"]  # one dataset's split, or one per dataset (the cross-scene validation)
        assert (split if isinstance(split, str) else split[0]) == "val" and w["val"].get("ap50") == meta.metrics.get("ap50")
        assert w["aliases"] == sorted(a for a, t in aliases().items() if t == shipped)
        assert w["precision"] == meta.quant.get("precision", "fp32")
    default = aliases()["default"]
    assert f"{default}=default (" in format_table(list(rows.values()))


def test_zoo_names_the_onnxruntime_session_settings_int8_files_need():
    from edgeirst.runtime.engine_build import read_onnx_meta
    from edgeirst.weights import shipped_model

    rows = describe_zoo(["mshnet", "mtunet-siwd"])
    lines = [line for line in format_table(rows).splitlines() if line.startswith("onnxruntime session settings")]
    int8 = [w["name"] for r in rows for w in r["shipped"] if w["precision"] == "int8"]
    assert len(lines) == 2 and int8  # MSHNet's settings and MTUNet-SIWD's differ
    for name in int8:
        hints = read_onnx_meta(shipped_model(name)).quant["onnxruntime"]
        line = next(line for line in lines if f" {name}," in line or f" {name}:" in line)
        level = {"extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[hints["graph_optimization_level"]]
        assert f"graph_optimization_level={level}" in line and all(o in line for o in hints["disabled_optimizers"])
    assert not any(w["onnxruntime_session"] for r in rows for w in r["shipped"] if w["precision"] == "fp32")


@pytest.mark.slow  # 13 s: reads every shipped checkpoint in a subprocess that imports torch
def test_model_cards_are_what_the_shipped_metadata_says(tmp_path):
    """docs/models.md is `python tools/model_cards.py`'s output for the models shipped today (one
    card per model, with the commands that trained it); re-run the tool after shipping."""
    pytest.importorskip("torch")
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "models.md"
    res = subprocess.run([sys.executable, str(repo / "tools" / "model_cards.py"), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert text == (repo / "docs" / "models.md").read_text(), "run python tools/model_cards.py"
    from edgeirst.weights import aliases

    assert f"## `{aliases()['default']}` (also `default`)" in text and "edgeirst train mshnet" in text
