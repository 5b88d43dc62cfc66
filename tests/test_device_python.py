"""The device side on the Pythons and TensorRT/CUDA modules a Jetson has (issue 22, items 3-4).

- the device wheel: its metadata (Requires-Python >= 3.8), contents (no weights) and bytes;
- vermin: the device wheel's modules use nothing newer than Python 3.8;
- tests/device under pyenv's Python 3.8 and 3.10 with only numpy, OpenCV and onnxruntime;
- every TensorRT name the runtime calls, and the table of each release's API (runtime/trt_api.py),
  checked against tensorrt-lean 10.x and 11.x; every CUDA runtime name against cuda-bindings and
  the ctypes libcudart binding.

The venvs come from tests/venvs.py (cached; CI builds them first); a test whose venv cannot be
built here skips with the reason.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import venvs
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.wheel import DEVICE_DEPENDENCIES, device_wheel, installed_wheel
from edgeirst.runtime import cuda, trt_api

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_lib(tmp_path_factory) -> Path:
    """The device wheel and its dependencies' wheels, unpacked as install.sh does."""
    out = tmp_path_factory.mktemp("device")
    wheels = [device_wheel(out / "wheels")] + [installed_wheel(d, out / "wheels") for d in DEVICE_DEPENDENCIES]
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            z.extractall(out / "lib")
    return out / "lib"


def _venv(kind: str, python: Path | None = None) -> Path:
    try:
        return venvs.venv(kind, python)
    except venvs.Unavailable as e:
        pytest.skip(str(e))


def _pyenv(version: str) -> Path:
    try:
        return venvs.pyenv_python(version)
    except venvs.Unavailable as e:
        pytest.skip(str(e))


def _run(python: Path, argv: list[str], lib: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env.update(PYTHONPATH=str(lib), PIP_NO_INDEX="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    # run from beside lib/: from the repository, its edgeirst/ folder would shadow the device wheel's
    return subprocess.run([str(python), *argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=lib.parent)


# -- the device wheel ---------------------------------------------------------------------------
def test_device_wheel_says_python_38_and_carries_no_weights(tmp_path, device_lib):
    whl = device_wheel(tmp_path / "a")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        meta = z.read("edgeirst_device-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.8" in meta and "Requires-Dist: tqdm" in meta and "Name: edgeirst-device" in meta
    assert not [n for n in names if n.endswith((".onnx", ".pt"))] and "edgeirst/weights/aliases.json" in names
    assert not [n for n in names if n.startswith(("edgeirst/models", "edgeirst/train", "edgeirst/cli", "edgeirst/quantize"))]
    assert whl.stat().st_size < 300_000
    again = device_wheel(tmp_path / "b")  # the same files give the same bytes
    assert hashlib.sha256(whl.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def test_repacked_dependency_wheel_installs_its_files(device_lib):
    assert (device_lib / "tqdm" / "__init__.py").is_file() and not list(device_lib.glob("tqdm/**/*.pyc"))
    record = next(device_lib.glob("tqdm-*.dist-info")) / "RECORD"
    rows = [ln.split(",") for ln in record.read_text().splitlines()]
    assert all(r[1].startswith("sha256=") for r in rows if not r[0].endswith("RECORD"))


def test_a_missing_dependency_is_one_line(tmp_path):
    with pytest.raises(EdgeirstError, match="not-a-dist-xyz is not installed on this host"):
        installed_wheel("not-a-dist-xyz", tmp_path)


def test_device_modules_are_python38_clean(device_lib):
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).is_file():
        pytest.skip("vermin is in the test extra: pip install -e '.[test]'")
    r = subprocess.run([vermin, "-t=3.8-", "--no-tips", "--violations", "--no-make-paths-absolute",
                        str(device_lib / "edgeirst")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.parametrize("version", venvs.DEVICE_PYTHONS)
def test_device_tests_pass_on_jetpack_pythons(version, device_lib):
    """tests/device on JetPack 5's and 6's Python, with only numpy, OpenCV and onnxruntime."""
    python = _venv("device", _pyenv(version))
    device_tests = str(REPO / "tests" / "device")
    r = _run(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--confcutdir", device_tests, device_tests],
             device_lib)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "4 passed" in r.stdout and f"Python {version}" not in r.stderr


# -- TensorRT and CUDA names against the real modules -------------------------------------------
# Classes the lean runtime does not ship (the builder needs the full tensorrt package and a GPU).
BUILDER_ONLY = {"Builder", "OnnxParser", "NetworkDefinitionCreationFlag", "IBuilderConfig", "INetworkDefinition",
                "IInt8EntropyCalibrator2"}
CHECK_TRT = r"""
import json, sys
import tensorrt_lean as trt
from edgeirst.runtime.trt_api import api_for
api = api_for(trt.__version__)
def has(name):
    obj = trt
    for part in name.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True
skip = set(sys.argv[1].split(","))
print(json.dumps({"version": trt.__version__, "release": list(api.release), "installable": api.installable,
                  "missing": sorted(n for n in api.names() if n.split(".")[0] not in skip and not has(n)),
                  "present_but_lacking": sorted(n for n in api.lacks() if n.split(".")[0] not in skip and has(n)),
                  "builder_only_in_lean": sorted(n for n in skip if hasattr(trt, n))}))
"""


@pytest.mark.parametrize("kind,major", [("trt10", 10), ("trt11", 11)])
def test_trt_api_table_matches_tensorrt_lean(kind, major, device_lib):
    python = _venv(kind)
    r = _run(python, ["-c", CHECK_TRT, ",".join(sorted(BUILDER_ONLY))], device_lib)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert int(got["version"].split(".")[0]) == major and got["installable"] == f"tensorrt-lean=={major}.*"
    assert got["missing"] == [], f"TensorRT {got['version']} lacks names the table says it has"
    assert got["present_but_lacking"] == [], f"TensorRT {got['version']} has names the table says are gone"
    assert got["builder_only_in_lean"] == []  # else check them here too


def test_trt_api_table_rows():
    assert trt_api.api_for("8.4.1") is None and trt_api.api_for("8.2.1") is None  # JetPack 4, 5.0.2: refused
    jp5, jp6, jp61, jp7, t11 = (trt_api.api_for(v) for v in ("8.5.2", "8.6.2", "10.3.0", "10.13.3", "11.4.0"))
    assert jp5.release == (8, 5) and jp6.release == (8, 6) and jp61.release == (10, 3) and jp7.release == (10, 13)
    assert trt_api.EXPLICIT_BATCH in jp5.names() and trt_api.STRONGLY_TYPED not in jp6.names()
    assert {trt_api.STRONGLY_TYPED, "BuilderFlag.FP16"} <= jp61.names()
    assert "BuilderFlag.FP16" in t11.lacks() and trt_api.EXPLICIT_BATCH in t11.lacks() and t11.typed_only


class _Flags:  # TensorRT's NetworkDefinitionCreationFlag values (EXPLICIT_BATCH 0, STRONGLY_TYPED 1 in 10.x)
    class NetworkDefinitionCreationFlag:
        EXPLICIT_BATCH, STRONGLY_TYPED = 0, 1


def test_network_flags_by_release():
    assert trt_api.api_for("8.6.2").network_flags(_Flags, typed_by_model=True) == 1  # explicit batch
    assert trt_api.api_for("10.3.0").network_flags(_Flags, typed_by_model=True) == 2  # strongly typed
    assert trt_api.api_for("10.3.0").network_flags(_Flags, typed_by_model=False) == 0  # FP16 flag applies
    assert trt_api.api_for("11.4.0").network_flags(_Flags, typed_by_model=True) == 0  # always typed
    # precision flags apply exactly where the network is not strongly typed (INT8 on 8.x QDQ models too)
    assert [trt_api.api_for(v).strong(True) for v in ("8.5.2", "8.6.2", "10.3.0", "11.4.0")] == [False, False, True, True]
    assert [trt_api.api_for(v).strong(False) for v in ("8.6.2", "10.3.0", "11.4.0")] == [False, False, True]


# The objects edgeirst's TensorRT code calls methods on, by the names it gives them.
OWNERS = {"engine": "ICudaEngine", "ctx": "IExecutionContext", "context": "IExecutionContext", "_runtime": "Runtime",
          "builder": "Builder", "config": "IBuilderConfig", "parser": "OnnxParser", "network": "INetworkDefinition",
          "profile": "IOptimizationProfile", "calib_profile": "IOptimizationProfile"}


def _trt_names_used(path: Path) -> set:
    """``trt.A.B`` chains in a source file, and ``engine.m``/``ctx.m``/``builder.m``... as ``ICudaEngine.m``..."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name) or len(chain) < (1 if base.id != "self" else 2):
            continue
        chain = chain if base.id == "self" else [base.id] + chain
        if chain[0] == "trt":
            out.add(".".join(chain[1:3]))
        elif chain[0] in OWNERS and not hasattr(Path, chain[1]):  # engine_build's `engine` is also a Path
            out.add(f"{OWNERS[chain[0]]}.{chain[1]}")
    return {n for n in out if "__" not in n}


def test_the_code_calls_only_names_in_the_table():
    known = set().union(*(a.names() for a in trt_api.RELEASES.values()))
    prefixes = {k.rsplit(".", 1)[0] for k in known}
    used = _trt_names_used(REPO / "runtime" / "backends" / "tensorrt.py") | \
        _trt_names_used(REPO / "runtime" / "engine_build.py")
    assert {"IExecutionContext.execute_async_v3", "Builder.create_network", "BuilderFlag.FP16"} <= used
    assert sorted(used - known - prefixes) == []


def test_cuda_bindings_have_every_name_and_fail_in_one_line_without_a_driver(device_lib):
    python = _venv("trt10")
    script = ("from edgeirst.runtime import cuda\nfrom edgeirst.errors import EdgeirstError\n"
              "rt = cuda._import_cudart()\n"
              "def has(n):\n    o = rt\n    for p in n.split('.'):\n        o = getattr(o, p, None)\n    return o is not None\n"
              "print('missing', [n for n in cuda.CUDART_CALLS if not has(n)])\n"
              "try:\n    cuda.CudaDevice(0, 'cuda-python')\nexcept EdgeirstError as e:\n    print('error', e)\n")
    r = _run(python, ["-c", script], device_lib)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "missing []" in r.stdout
    if "error" in r.stdout:  # no GPU here: one clear line, no traceback
        assert "error no usable CUDA GPU here (cuda-python):" in r.stdout and "Traceback" not in r.stderr


def test_libcudart_binding_has_every_name():
    for name in cuda.CUDART_CALLS:
        obj = cuda.LibCudart
        for part in name.split("."):
            obj = getattr(obj, part)


def test_libcudart_absent_is_a_clear_error(monkeypatch):
    with pytest.raises(ImportError, match="the CUDA runtime library is not found: /nonexistent/libcudart.so"):
        cuda.LibCudart(("/nonexistent/libcudart.so",))
    monkeypatch.setattr(cuda, "CUDART_NAMES", ("/nonexistent/libcudart.so",))
    if "libcudart" in cuda.available_apis():
        pytest.fail("available_apis found libcudart at a path that does not exist")
    if not cuda.available_apis():  # nothing else installed: the error names what to install
        with pytest.raises(EdgeirstError, match=r"pip install 'edgeirst\[jetson\]'"):
            cuda.CudaDevice(0)
    with pytest.raises(EdgeirstError, match="libcudart .* is not found"):
        cuda.CudaDevice(0, "libcudart")


def test_libcudart_without_a_gpu_is_one_line():
    try:
        rt = cuda.LibCudart()
    except ImportError as e:
        pytest.skip(f"no libcudart on this machine: {e}")
    err, count = rt.cudaGetDeviceCount()
    if err == 0 and count > 0:
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(EdgeirstError, match=r"no usable CUDA GPU here \(libcudart\): \S"):
        cuda.CudaDevice(0, "libcudart")


@pytest.mark.parametrize("api", ["pycuda", "cuda-python", "libcudart"])
def test_buffers_round_trip_on_a_gpu(api):
    """Where a GPU and the binding are present: data up to the GPU and back, copied and mapped
    (ran on an H200 through each of cuda-python and libcudart, benchmarks/xscene/gpu/cuda_check.py)."""
    if api not in cuda.available_apis():
        pytest.skip(f"{api} does not import here")
    try:
        dev = cuda.CudaDevice(0, api)
    except EdgeirstError as e:
        pytest.skip(str(e))
    try:
        assert cuda.round_trip(dev, mapped=False, shape=(2, 64, 64))
        assert cuda.round_trip(dev, mapped=True, shape=(2, 64, 64))
    finally:
        dev.close()
