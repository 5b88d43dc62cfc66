"""Device-side tests: they need only numpy, OpenCV and onnxruntime, and run on Python 3.8+.

They run in the host suite, and (tests/test_device_python.py) under pyenv's Python 3.8 and 3.10
in venvs with only those three packages, against the device wheel the bundle carries (unpacked
on PYTHONPATH, as install.sh does). No torch, no click, no host-side module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parents[2] / "edgeirst" / "weights"
SYN = "synthetic://?seed=3&size=96x80&frames=6&targets=2"
DEVICE_ENTRY_POINTS = ("edgeirst.jetson.launch", "edgeirst.jetson.check", "edgeirst.runtime.pipeline",
                       "edgeirst.runtime.backends.tensorrt", "edgeirst.runtime.engine_build",
                       "edgeirst.runtime.preview", "edgeirst.runtime.capture")


def _device_modules() -> list:
    """The modules of the edgeirst-device distribution on sys.path (empty on the host)."""
    try:
        files = importlib.metadata.distribution("edgeirst-device").files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    out = []
    for f in files:
        if f.suffix == ".py":
            parts = list(f.with_suffix("").parts)
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(out)


def test_every_device_module_imports_without_torch_or_click():
    """In a fresh interpreter: in the host suite other test modules have imported torch already."""
    modules = _device_modules() or list(DEVICE_ENTRY_POINTS)
    code = (f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'click') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    imported = ast.literal_eval(r.stdout.strip().splitlines()[-1])
    assert "torch" not in imported
    if _device_modules():  # the device wheel: what the launcher reaches is all inside it
        assert set(DEVICE_ENTRY_POINTS) <= set(modules)
        assert "click" not in imported


def test_the_toml_reader_reads_what_deploy_writes(tmp_path):
    from edgeirst.jetson.config import load_config

    text = ('# written by deploy\n[model]\nonnx = "model.onnx"\nprecision = "fp16"\ninput_size = [256, 320]\n\n'
            '[source]\nuri = "synthetic://?seed=1"\n\n[run]\nthreshold = 0.4\n\n[tracker]\nm = 2\nn = 4\n\n'
            '[sinks]\njsonl = "-"\n\n[engine]\nworkspace_mb = 512\n')
    (tmp_path / "edgeirst.toml").write_text(text)
    cfg = load_config(tmp_path / "edgeirst.toml")
    assert cfg.model.input_size == [256, 320] and cfg.source.uri == "synthetic://?seed=1"
    assert cfg.run.threshold == 0.4 and (cfg.run.tracker.m, cfg.run.tracker.n) == (2, 4)
    assert cfg.engine.workspace_mb == 512 and cfg.sinks.jsonl == "-"


def test_pipeline_runs_the_shipped_onnx_on_onnxruntime(tmp_path):
    from edgeirst.runtime.backends import BackendOptions
    from edgeirst.runtime.pipeline import RunConfig, run_stream
    from edgeirst.runtime.sinks import SinkOptions

    out = tmp_path / "o.jsonl"
    default = json.loads((WEIGHTS / "aliases.json").read_text())["default"]
    summary = run_stream(str(WEIGHTS / f"{default}.onnx"), [SYN], BackendOptions(backend="onnxruntime"),
                         SinkOptions(jsonl=str(out)), RunConfig(max_frames=4, report_every=0))
    assert summary.error is None and summary.frames == 4
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == [0, 1, 2, 3]
    assert summary.detections == sum(len(ln["detections"]) for ln in lines) > 0  # the tracker confirms by frame 3


def test_tracker_confirms_a_steady_target_and_postprocess_clusters_it():
    from edgeirst.postprocess import cluster_targets
    from edgeirst.runtime.tracker import Tracker, TrackerConfig

    tracker = Tracker(TrackerConfig(m=2, n=3))
    ids = []
    for step in range(3):
        prob = np.zeros((40, 50), np.float32)
        prob[10 + step:13 + step, 20:23] = 0.9
        targets, labels = cluster_targets(prob, 0.5)
        assert len(targets.scores) == 1 and labels.max() == 1
        keep, track_ids = tracker.update(targets)
        ids.append(list(track_ids))
    assert ids[0] == [] and ids[1] == ids[2] == [1]
