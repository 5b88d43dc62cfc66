"""After a core install (no extras) every command works or ends in one line naming the extra.

The core-only environment is tests/core_only/sitecustomize.py on PYTHONPATH: it hides every
optional dependency (torch, onnx, ...) from the import system and from importlib.metadata, as an
install without them would; the CLI runs for real in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeirst.models import list_models
from edgeirst.weights import aliases

CORE_ONLY = Path(__file__).resolve().parent / "core_only"


def core_only(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CORE_ONLY), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def test_the_environment_hides_torch_and_onnx(tmp_path):
    code = ("import importlib.metadata as md, importlib.util as u, onnxruntime, cv2, click, tqdm\n"
            "print(u.find_spec('torch'), u.find_spec('onnx'), any(d.metadata['Name'] == 'torch' for d in md.distributions()))\n"
            "import torch")
    res = core_only("-c", code, cwd=tmp_path)
    assert res.stdout.split() == ["None", "None", "False"], res.stderr
    assert res.returncode == 1 and "ModuleNotFoundError: No module named 'torch'" in res.stderr


@pytest.mark.parametrize("command, needs", [
    (["export", "default", "--out", "x.onnx"], "PyTorch"),
    (["quantize", "default", "--data", ".", "--out", "q.onnx"], "onnx"),
    (["prune", "default", "--data", ".", "--target-gflops", "1", "--out", "p.pt"], "PyTorch"),
    (["train", "mshnet", "--data", ".", "--out", "run"], "PyTorch"),
    (["zoo", "--size", "64"], "PyTorch"),  # a size the registry's facts do not record is counted
])
def test_commands_that_need_the_train_extra_say_so_in_one_line(command, needs, tmp_path):
    res = core_only("-m", "edgeirst", *command, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error: edgeirst {command[0]} needs {needs}: pip install 'edgeirst[train]'"
    assert "Traceback" not in res.stderr and not list(tmp_path.iterdir())


def test_zoo_answers_from_its_recorded_facts_without_torch(tmp_path):
    res = core_only("-m", "edgeirst", "zoo", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split()[0] for line in res.stdout.splitlines()[2:2 + len(list_models())]]
    assert rows == list_models()
    assert f"{aliases()['default']}=default" in res.stdout
