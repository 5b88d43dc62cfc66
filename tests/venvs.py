"""Cached virtual environments for the device-side tests: Pythons with only what a device has.

``device``: numpy, opencv-python-headless and onnxruntime (standing in for JetPack's numpy, OpenCV
and TensorRT) plus pytest, on pyenv's Python 3.8 or 3.10 (JetPack 5 and 6). ``trt10``/``trt11``:
NVIDIA's ``tensorrt-lean`` runtime of each major (they install and import without a GPU), with
cuda-bindings, numpy and OpenCV (edgeirst.runtime imports them), to check the names the runtime
calls against the real modules. ``host``: edgeirst's core dependencies, setuptools and wheel, for a
plain (non-editable) install of edgeirst.

Each lives in ``$EDGEIRST_TEST_VENVS`` (default ``~/.cache/edgeirst-test``) under a folder keyed by
the interpreter's version and the package list, built once (pip, from the index) and reused; CI
builds them up front with ``python tests/venvs.py``. A test whose venv cannot be built skips
with the reason (no such Python, no wheels for it, no index).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("EDGEIRST_TEST_VENVS") or Path.home() / ".cache" / "edgeirst-test")
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
PACKAGES = {
    "device": ("numpy", "opencv-python-headless", "onnxruntime", "pytest"),
    "trt10": ("tensorrt-lean==10.*", "cuda-bindings", "numpy", "opencv-python-headless"),
    "trt11": ("tensorrt-lean==11.*", "numpy", "opencv-python-headless"),
    "host": ("numpy", "opencv-python-headless", "onnxruntime", "click", "tqdm", "tomli-w", "setuptools>=64", "wheel"),
}
DEVICE_PYTHONS = ("3.8", "3.10")  # JetPack 5.1.x and 6.x


class Unavailable(Exception):
    """The venv cannot be built here; the message is the skip reason."""


def pyenv_python(version: str) -> Path:
    """pyenv's newest ``version`` interpreter (``"3.8"`` -> ``~/.pyenv/versions/3.8.18/bin/python``)."""
    found = sorted(glob.glob(str(PYENV / f"{version}.*" / "bin" / "python")),
                   key=lambda p: [int(x) for x in Path(p).parents[1].name.split(".") if x.isdigit()])
    if not found:
        raise Unavailable(f"no Python {version} from pyenv under {PYENV}")
    return Path(found[-1])


def venv(kind: str, python: Path | None = None, timeout: float = 1200) -> Path:
    """The venv's python for ``kind`` on ``python`` (default: this interpreter), built if missing."""
    python = Path(python or sys.executable)
    r = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"{python} does not run")
    version = r.stdout.strip()
    key = hashlib.sha256(repr((kind, version, PACKAGES[kind])).encode()).hexdigest()[:10]
    home = CACHE / f"{kind}-py{version}-{key}"
    exe = home / "bin" / "python"
    if (home / "ready").is_file():
        return exe
    shutil.rmtree(home, ignore_errors=True)  # an earlier build that did not finish
    home.parent.mkdir(parents=True, exist_ok=True)
    steps = [[str(python), "-m", "venv", str(home)],
             [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES[kind]]]
    for argv in steps:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"building the {kind} venv on Python {version} took over {timeout:.0f} s") from None
        if r.returncode != 0:
            tail = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip() and "WARNING" not in ln][-1:]
            raise Unavailable(f"cannot build the {kind} venv on Python {version} ({' '.join(argv[2:4])}): "
                              f"{' '.join(tail)}")
    (home / "ready").write_text(version + "\n")
    return exe


def main() -> int:
    """Build every venv the tests use (CI, before pytest); prints what could not be built."""
    wanted = [("trt10", None), ("trt11", None), ("host", None)]
    for v in DEVICE_PYTHONS:
        try:
            wanted.append(("device", pyenv_python(v)))
        except Unavailable as e:
            print(f"warning: {e}: the device tests on it will skip", file=sys.stderr)
    for kind, python in wanted:
        try:
            print(f"{kind}: {venv(kind, python)}")
        except Unavailable as e:
            print(f"warning: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
