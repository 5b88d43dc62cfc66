"""A bare device, simulated (issue 22, item 6): pyenv's Python 3.8 with only numpy, OpenCV and
onnxruntime (standing in for JetPack 5's numpy, OpenCV and TensorRT), no pip index, no edgeirst,
no click, no torch. A freshly built bundle's ``install.sh`` and ``launch.sh`` must take it to its
first detections, before and after an edit of ``edgeirst.toml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_device_python import REPO, _pyenv, _venv

SOURCE = "synthetic://?seed=5&size=128x96&frames=40&targets=2"


def _device_env(python: Path, home: Path) -> dict:
    """What a device shell has: its own PATH and HOME, the interpreter install.sh is told to use,
    no pip index, and nothing of this host's Python environment."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "EDGEIRST_PYTHON": str(python),
           "PIP_NO_INDEX": "1", "OMP_NUM_THREADS": "1"}
    return env


def _sh(script: Path, *args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=script.parent)


def _detections(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def test_bare_jetpack5_python_installs_and_runs_a_fresh_bundle(tmp_path):
    python = _venv("device", _pyenv("3.8"))
    bundle = tmp_path / "bundle"
    r = subprocess.run([sys.executable, "-m", "edgeirst", "deploy", "bundle", "default", "--profile", "orin-nano",
                        "--out", str(bundle), "--source", SOURCE], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    env = _device_env(python, tmp_path / "home")
    (tmp_path / "home").mkdir()

    r = _sh(bundle / "install.sh", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: Python 3.8" in r.stdout and "ok: bundle files match manifest.json" in r.stdout
    assert "warning: TensorRT does not import" in r.stdout and "ok: the runtime does not import PyTorch" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr and "error:" not in r.stdout + r.stderr
    assert (bundle / "lib" / "edgeirst" / "jetson" / "launch.py").is_file() and (bundle / "lib" / "tqdm").is_dir()
    assert not (bundle / "lib" / "edgeirst" / "models").exists()  # host side stays on the host

    r = _sh(bundle / "launch.sh", "--max-frames", "8", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "running model.onnx on onnxruntime instead" in r.stderr and "Traceback" not in r.stderr
    assert "Python 3.8" in r.stderr
    first = _detections(r.stdout)
    assert [d["frame"] for d in first] == list(range(8)) and sum(len(d["detections"]) for d in first) > 0

    # a field engineer's edit: another source (the demo's contrast, where the default sees this
    # scene's targets), a stricter tracker, detections into a file
    toml = bundle / "edgeirst.toml"
    text = toml.read_text()
    text = text.replace(SOURCE, SOURCE.replace("seed=5", "seed=9&scr=8-15").replace("128x96", "160x120"))
    text = re.sub(r'(?m)^jsonl = "-"$', 'jsonl = "detections.jsonl"', text)
    text = re.sub(r"(?m)^m = \d+$", "m = 2", text)
    toml.write_text(text)
    r = _sh(bundle / "install.sh", env=env)  # re-checks the edited file (it is not under SHA256SUMS)
    assert r.returncode == 0 and "ok: edgeirst.toml is valid" in r.stdout, r.stdout + r.stderr
    r = _sh(bundle / "launch.sh", "--max-frames", "6", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    after = _detections((bundle / "detections.jsonl").read_text())
    assert [d["frame"] for d in after] == list(range(6)) and _detections(r.stdout) == []
    assert all("seed=9" in d["source"] for d in after) and sum(len(d["detections"]) for d in after) > 0

    # a broken edit is one line, exit 2, no traceback
    toml.write_text(text.replace("m = 2", "m = 9"))
    r = _sh(bundle / "launch.sh", "--max-frames", "2", env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def fresh_bundle(tmp_path_factory) -> Path:
    bundle = tmp_path_factory.mktemp("device") / "bundle"
    r = subprocess.run([sys.executable, "-m", "edgeirst", "deploy", "bundle", "default", "--profile", "orin-nano",
                        "--out", str(bundle), "--source", SOURCE], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return bundle


def test_install_on_a_python_without_numpy_opencv_or_onnxruntime_gives_advice_not_a_traceback(fresh_bundle, tmp_path):
    python = _pyenv("3.8")  # pyenv's own interpreter: the standard library only
    r = subprocess.run([str(python), "-c", "import numpy"], capture_output=True)
    if r.returncode == 0:
        pytest.skip(f"{python} has numpy installed")
    r = _sh(fresh_bundle / "install.sh", env=_device_env(python, tmp_path))
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in out, out
    for advice in ("error: numpy does not import: sudo apt install python3-numpy",
                   "error: OpenCV does not import", "sudo apt install python3-opencv",
                   "error: no backend: neither TensorRT", "error: edgeirst.jetson.launch does not import"):
        assert advice in out, out


def test_install_on_jetpack4s_python_is_refused_in_one_line(fresh_bundle, tmp_path):
    python = _pyenv("3.6")
    r = _sh(fresh_bundle / "install.sh", env=_device_env(python, tmp_path))
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "is Python 3.6" in lines[0] and "needs Python >= 3.8" in lines[0]


def test_deploy_works_from_a_plain_pip_install(tmp_path, fresh_bundle):
    """No source tree, no editable install: the device wheel is packed from the installed modules,
    byte for byte the same as from this checkout."""
    python = _venv("host")
    site = tmp_path / "site"
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                        "--disable-pip-version-check", "--target", str(site), str(REPO)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(site), "PIP_NO_INDEX": "1"}
    r = subprocess.run([str(python), "-m", "edgeirst", "deploy", "bundle", "default", "--profile", "orin-nano",
                        "--out", str(tmp_path / "B"), "--source", SOURCE], capture_output=True, text=True, timeout=600,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "of the installed edgeirst" in r.stderr and str(site) in r.stderr  # the model came from the install
    for whl in (fresh_bundle / "wheels").glob("*.whl"):
        assert (tmp_path / "B" / "wheels" / whl.name).read_bytes() == whl.read_bytes(), whl.name
