"""A wheel of edgeirst itself, so a device installs the bundle offline, with no dependency pulled.

Built with ``pip wheel --no-deps --no-build-isolation --no-index`` from a copy of the source tree
this edgeirst was installed from (a checkout or an editable install), with ``SOURCE_DATE_EPOCH``
fixed so the same sources give the same bytes (zip time stamps are the only varying part).
The sources' hash is recorded in the manifest: a second ``deploy`` with unchanged sources reuses
the wheel it already wrote and builds nothing, so the bundle stays byte for byte the same even
with a build backend that is not reproducible.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import edgeirst
from edgeirst.errors import EdgeirstError

SOURCE_DATE_EPOCH = "1577836800"  # 2020-01-01: any fixed value makes zip time stamps reproducible
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".tmp")


def source_root() -> Path | None:
    """The source tree of the running edgeirst (its pyproject.toml names the project), else None."""

    root = Path(edgeirst.__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if re.search(r'^name\s*=\s*"edgeirst"\s*$', text, re.M) else None


def package_dirs(root: Path) -> list[str]:
    """The folders pyproject.toml's ``package-dir`` maps into the package (``edgeirst``, ``runtime``...)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r"^package-dir\s*=\s*\{(.*?)\}", text, re.M | re.S)
    dirs = re.findall(r'=\s*"([^"]+)"', m.group(1)) if m else []
    return sorted(set(dirs)) or ["edgeirst"]


def source_files(root: Path) -> list[Path]:
    """Every file that goes into the wheel's build: pyproject, readme, licence, package folders."""
    files = [root / n for n in ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "setup.cfg", "MANIFEST.in")
             if (root / n).is_file()]
    for d in package_dirs(root):
        base = root / d
        if not base.is_dir():
            raise EdgeirstError(f"package folder {base} named in {root / 'pyproject.toml'} is missing")
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(n for n in dirnames if n not in _SKIP_DIRS and not n.endswith(".egg-info"))
            files += [Path(dirpath) / f for f in sorted(filenames) if not f.endswith(_SKIP_SUFFIXES)]
    return files


def source_hash(root: Path, files: list[Path]) -> str:
    """sha256 over (relative path, content) of the sources, in a fixed order."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        rel = f.relative_to(root).as_posix().encode()
        data = f.read_bytes()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def build_wheel(root: Path, files: list[Path], out_dir: Path, timeout: float = 600) -> Path:
    """Build the wheel from a private copy of ``files`` (the source tree is not touched) into
    ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeirst-wheel-") as tmp:
        src, dist = Path(tmp) / "src", Path(tmp) / "dist"
        for f in files:
            dst = src / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                "-w", str(dist), str(src)]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise EdgeirstError(f"building the edgeirst wheel took over {timeout:.0f} s") from None
        wheels = sorted(dist.glob("edgeirst-*.whl"))
        if r.returncode != 0 or not wheels:
            tail = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()][-3:]
            hint = ("; install the build backend's wheel support: pip install 'edgeirst[deploy]'"
                    if "bdist_wheel" in (r.stderr + r.stdout) else "")
            raise EdgeirstError(f"cannot build the edgeirst wheel from {root}: {' | '.join(tail)}{hint}")
        target = out_dir / wheels[0].name
        shutil.copyfile(wheels[0], target)
        return target
