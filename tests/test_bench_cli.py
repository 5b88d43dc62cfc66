"""`edgeirst bench` end to end: real models through real onnxruntime / torch backends, tiny
sizes and two runs (no timing is asserted), plus the user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeirst.bench.models import resolve_models
from edgeirst.bench.power import PowerMonitor
from edgeirst.bench.rows import unavailable
from edgeirst.errors import EdgeirstError
from edgeirst.runtime.backends import tensorrt_available
from edgeirst.runtime.engine_build import read_onnx_meta
from edgeirst.weights import aliases, shipped_model

REQUIRED = {"model", "backend", "precision", "params", "gflops", "latency_ms", "fps", "machine"}
FAST = ["--runs", "2", "--warmup", "0", "--settle", "0", "--size", "64", "-q"]


def bench(*args: str, cache: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # busy shared cores: avoid thread-barrier stalls
    extra = ["--cache", str(cache)] if cache else []
    return subprocess.run([sys.executable, "-m", "edgeirst", "bench", *args, *extra], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_default_model_end_to_end(tmp_path):
    out = tmp_path / "out.json"
    r = bench("--models", "default", *FAST, "--json", str(out), "--csv", str(tmp_path / "o.csv"),
              "--md", str(tmp_path / "o.md"))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert REQUIRED <= set(row)
    assert row["model"] == "default" and row["weights"] == "shipped" and row["backend"] == "onnxruntime"
    assert row["runs"] == 2 and row["latency_ms"] > 0 and row["fps"] == pytest.approx(1e3 / row["latency_ms"], rel=1e-3)
    assert row["params"] > 0 and row["gflops"] > 0 and row["size"] == 64
    assert row["machine"]["libraries"]["onnxruntime"] and row["machine"]["date"].endswith("Z")
    shipped = read_onnx_meta(shipped_model("default")).metrics  # no --data: the val metrics it ships with
    assert row["iou"] is None and row["recorded"]["iou"] == shipped["iou"] and row["recorded"]["split"] == shipped["split"]
    assert "default" in r.stdout and "median ms" in r.stdout and "machine:" in r.stdout
    assert (tmp_path / "o.csv").read_text().startswith("model,weights,backend")
    assert (tmp_path / "o.md").read_text().startswith("| model |")
    assert sorted(os.listdir(tmp_path)) == ["o.csv", "o.md", "out.json"]  # no temporaries left


def test_int8_rows_name_the_session_settings_they_ran_with():
    from edgeirst.bench.measure import BenchConfig, run_bench

    result = run_bench(BenchConfig(models="default,default-int8", runs=1, warmup=0, settle_ms=0, size=64), progress=False)
    notes = [n for n in result.notes if n.startswith("onnxruntime session settings")]
    assert len(notes) == 1 and "of default-int8:" in notes[0]
    assert "graph_optimization_level=ORT_ENABLE_EXTENDED" in notes[0] and "EnsureUniqueDQForNodeUnit" in notes[0]


@pytest.mark.slow  # 24 s: export, checkpoint and torch rows of a random variant (2-core VM, busy)
def test_random_variant_on_onnxruntime_and_torch(tmp_path, synth_root):
    """Export + checkpoint of random weights, torch fp32 and bf16 autocast, and the rows that
    cannot run here say why."""
    out = tmp_path / "out.json"
    r = bench("--models", "random:light-sgmtlm-tiny", "--backends", "onnxruntime,torch,tensorrt",
              "--precisions", "fp32,bf16,int8", "--data", str(synth_root), "--split", "val", *FAST,
              "--json", str(out), cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    rows = {(d["backend"], d["precision"]): d for d in json.loads(out.read_text())}
    assert set(rows) == {("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("torch", "fp32"), ("torch", "bf16"),
                         ("tensorrt", "fp32"), ("tensorrt", "int8")}  # torch int8 and bf16 on ONNX: never run
    assert "not run: torch int8 (int8 runs on onnxruntime/tensorrt" in r.stdout
    assert "not run: onnxruntime bf16" in r.stdout and "not run: tensorrt bf16" in r.stdout
    for key in (("onnxruntime", "fp32"), ("torch", "fp32"), ("torch", "bf16")):
        assert rows[key]["latency_ms"] > 0 and rows[key]["weights"] == "random", key
        assert rows[key]["iou"] is None  # random weights: speed only, never scored
    assert rows[("onnxruntime", "int8")]["latency_ms"] > 0
    if not tensorrt_available():
        assert rows[("tensorrt", "fp32")]["note"].startswith("n/a: tensorrt does not import here")
    assert {p.suffix for p in (tmp_path / "cache").iterdir()} == {".onnx", ".pt", ".json"}  # exports, counts


def test_accuracy_plot_and_pipeline(tmp_path, synth_root):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (pip install 'edgeirst[plot]')")
    out, png = tmp_path / "out.json", tmp_path / "p.png"
    r = bench("--models", "default", "--data", str(synth_root), "--split", "val", "--pipeline",
              "synthetic://?seed=1&size=96x64", "--pipeline-frames", "6", *FAST, "--json", str(out), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    model, pipe = rows
    assert model["mode"] == "model" and 0.0 <= model["iou"] <= 1.0 and model["eval_split"] == "val"
    assert model["pd"] is not None and model["ap50"] is not None
    assert pipe["mode"] == "pipeline" and pipe["runs"] == 6 and pipe["fps"] > 0
    assert set(pipe["stages"]) == {"capture", "preprocess", "infer", "postprocess", "sinks"}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "pipeline stages" in r.stdout


# Jetson Orin Nano Super, JetPack 6.2 (L4T 36.4.3), as published in lkk688/edgeAI
# docs/curriculum/02a_linux_basics.md: VDD_IN = 4556 mW.
ORIN_NANO_LINE = ("07-14-2025 10:29:36 RAM 2147/7620MB (lfb 2x4MB) SWAP 1476/3810MB (cached 1MB) CPU [0%@729,0%@729,"
                  "0%@729,0%@729,0%@729,0%@729] GR3D_FREQ 0% cpu@47.687C soc2@46.718C soc0@47.468C gpu@48.625C "
                  "tj@48.625C soc1@48.25C VDD_IN 4556mW/4556mW VDD_CPU_GPU_CV 483mW/483mW VDD_SOC 1451mW/1451mW")


def replay_tegrastats(folder) -> str:
    """A ``tegrastats`` executable that prints a recorded Orin Nano line every --interval ms."""
    path = folder / "tegrastats"
    path.write_text("#!/bin/sh\nms=100\n[ \"$1\" = --interval ] && ms=$2\n"
                    f"while :; do echo '{ORIN_NANO_LINE}'; sleep $(awk \"BEGIN{{print $ms/1000}}\"); done\n")
    path.chmod(0o755)
    return str(path)


def test_power_monitor_reads_board_watts_through_the_jetson_sampler(tmp_path):
    pytest.importorskip("edgeirst.jetson.tegrastats", reason="edgeirst.jetson.tegrastats (issue 11) is not here yet")
    monitor, why = PowerMonitor.start(interval_ms=20, command=[replay_tegrastats(tmp_path)])
    assert why is None and monitor is not None
    try:
        t0 = time.monotonic()
        time.sleep(0.5)
        assert monitor.watts_since(t0) == pytest.approx(4.556)
        assert monitor.watts_since(time.monotonic() + 10) is None
        calls = []
        assert monitor.burst(lambda: calls.append(time.sleep(0.01)), seconds=0.3) == pytest.approx(4.556)
        assert len(calls) >= 10
    finally:
        monitor.stop()


def test_power_columns_on_a_device_with_tegrastats(tmp_path):
    pytest.importorskip("edgeirst.jetson.tegrastats", reason="edgeirst.jetson.tegrastats (issue 11) is not here yet")
    replay_tegrastats(tmp_path)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "edgeirst", "bench", "--models", "default", "--runs", "3", "--warmup", "0",
                        "--size", "64", "--settle", "0", "-q", "--json", str(out)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())[0]
    assert row["watts"] == pytest.approx(4.556) and row["fps_per_watt"] == pytest.approx(row["fps"] / 4.556, rel=1e-2)
    assert "FPS/W" in r.stdout and "power: tegrastats board watts" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--models", "mshnett"], "unknown model 'mshnett'; did you mean mshnet"),
    (["--models", "default", "--backends", "onnx-runtime"], "unknown backend 'onnx-runtime'"),
    (["--models", "default", "--precisions", "int4"], "unknown precision 'int4'"),
    (["--models", "default", "--runs", "0"], "--runs"),
    (["--models", "default", "--json", "/nonexistent-dir/out.json"], "folder /nonexistent-dir does not exist"),
    (["--models", "default", "--json", "/proc/edgeirst-bench.json"], "/proc/edgeirst-bench.json"),
    (["--models", "default", "--json", "x.json", "--md", "x.json"], "both write"),
    (["--models", "mtunet", "--size", "40"], "not a multiple of 16"),
    (["--models", "default", "--pipeline", "no-such-video.mp4"], "does not exist"),
    (["--models", "default", "--backends", "tensorrt"], None),
    (["--models", "default", "--backends", "torch", "--precisions", "int8"], "nothing to run: not run: torch int8"),
])
def test_bad_input_is_one_error_line(args, message, tmp_path):
    if args[-1] == "tensorrt" and tensorrt_available():
        pytest.skip("tensorrt imports here: its rows run")
    r = subprocess.run([sys.executable, "-m", "edgeirst", "bench", *args, "-q", "--cache", str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert message is None or message in lines[0]
    assert not any(p.suffix in (".json", ".md") for p in tmp_path.iterdir())  # no output written


def test_unavailable_reasons():
    src = resolve_models("default")[0]
    assert unavailable(src, "torch", "fp16", None, cuda=False) == "n/a: fp16 on torch needs CUDA (on CPU use bf16 autocast)"
    assert unavailable(src, "torch", "bf16", None, cuda=False) is None
    assert unavailable(src, "onnxruntime", "fp32", None, cuda=False) is None
    assert unavailable(src, "onnxruntime", "int8", None, cuda=False) == "n/a: int8 needs --data DIR to calibrate"


def test_model_names():
    assert [s.label for s in resolve_models("all")] == sorted(s.label for s in resolve_models("all"))
    assert len(resolve_models("all")) == 9
    shipped = resolve_models("shipped")
    assert shipped[0].label == aliases()["default"] and all(s.weights == "shipped" and s.onnx.is_file() for s in shipped)
    siwd = resolve_models("mtunet-siwd[seg],mtunet-siwd[det],default,default")
    assert [(s.name, s.kwargs) for s in siwd[:2]] == [("mtunet-siwd", {"heads": ["seg"]}),
                                                       ("mtunet-siwd", {"heads": ["det"]})]
    assert len(siwd) == 3  # duplicates dropped
    with pytest.raises(EdgeirstError, match="only the mtunet family"):
        resolve_models("mshnet[det]")


@pytest.mark.slow
def test_mtl_ratio_rows(tmp_path):
    """The six MTUNet forms (29M params each) exported and timed: slow on a CPU."""
    out = tmp_path / "out.json"
    r = bench("--mtl-ratio", *FAST, "--json", str(out), cache=tmp_path / "cache", timeout=1200)
    assert r.returncode == 0, r.stderr
    rows = {d["model"]: d for d in json.loads(out.read_text())}
    assert set(rows) == {"mtunet", "mtunet-det", "mtunet-seg", "mtunet-siwd", "mtunet-siwd[det]", "mtunet-siwd[seg]"}
    for joint, (a, b) in (("mtunet", ("mtunet-det", "mtunet-seg")), ("mtunet-siwd", ("mtunet-siwd[det]", "mtunet-siwd[seg]"))):
        m = rows[joint]["mtl"]
        assert m["singles"] == [a, b]
        assert m["ratio"] == pytest.approx((rows[a]["latency_ms"] + rows[b]["latency_ms"]) / rows[joint]["latency_ms"],
                                           rel=1e-2)
    assert "mtunet-det + mtunet-seg" in r.stdout


def test_a_quantized_model_runs_at_its_own_precision_only():
    from edgeirst.bench.rows import plan_rows
    from edgeirst.weights import shipped_names

    quantized = [n for n in shipped_names(with_aliases=False) if n.endswith("-int8")]
    if not quantized:
        pytest.skip("no INT8 model is shipped")
    src = resolve_models(quantized[0])[0]
    assert src.precision == "int8"
    rows, _ = plan_rows([src], ["onnxruntime", "torch"], ["fp32", "int8"], 256, 1, None, cuda=False)
    assert [(r.backend, r.precision) for r in rows] == [("onnxruntime", "int8")]
    assert rows[0].note is None or "calibrate" not in rows[0].note  # runs as it is, nothing to calibrate


def test_pruned_models_are_counted_with_their_own_channels(tmp_path):
    """A pruned checkpoint, and its INT8 ONNX (no checkpoint of its own), count the pruned network,
    not the registry network of the same name."""
    pytest.importorskip("torch")
    from edgeirst.bench.models import ModelFiles
    from edgeirst.checkpoint import load_checkpoint
    from edgeirst.models.complexity import count_params
    from edgeirst.weights import shipped_model, shipped_names

    pruned = [n for n in shipped_names(with_aliases=False) if "-p" in n and not n.endswith("-int8")]
    if not pruned:
        pytest.skip("no pruned model is shipped")
    expected = count_params(load_checkpoint(shipped_model(pruned[0], "pt"))[0])
    files = ModelFiles(tmp_path, 64)
    names = [pruned[0]] + [f"{pruned[0]}-int8"] * (f"{pruned[0]}-int8" in shipped_names())
    for src in resolve_models(",".join(names)):
        assert files.describe(src)["params"] == expected, src.label
