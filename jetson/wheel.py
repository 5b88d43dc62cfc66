"""The wheels a bundle carries, so a bare JetPack installs it offline, with no index and no build.

``device_wheel``: ``edgeirst-device``, the part of edgeirst a Jetson runs (``DEVICE_MODULES``: the
runtime, the launcher, the device check and what they import) with its own metadata,
``Requires-Python: >=3.8`` (JetPack 5.1+; the full ``edgeirst`` distribution, host side, needs
3.10). It carries no weight files: the bundle's model travels beside it as ``model.onnx``.

``installed_wheel``: a pure-Python dependency the device path imports (``DEVICE_DEPENDENCIES``:
tqdm, through ``edgeirst.data``), repacked from its installed files on this host, the way
pip installed them (RECORD lists them), so deploy needs no network and no pip cache.

Both are written directly with ``zipfile`` from the files the import system finds, so deploy works
from a checkout, an editable install or a plain ``pip install edgeirst`` alike, with fixed time
stamps and a fixed order: the same files give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import re
import zipfile
from pathlib import Path

import edgeirst
from edgeirst.errors import EdgeirstError
from edgeirst.io import atomic_output
from edgeirst.jetson.manifest import DEVICE_PYTHON

DEVICE_DIST = "edgeirst-device"
# Everything the device imports from edgeirst (tests check the launcher and the check import no more).
DEVICE_MODULES = (
    "edgeirst", "edgeirst.errors", "edgeirst.io", "edgeirst.meta", "edgeirst.preprocess", "edgeirst.postprocess",
    "edgeirst.confidence", "edgeirst.weights", "edgeirst.progress",
    "edgeirst.data", "edgeirst.data.check", "edgeirst.data.coco", "edgeirst.data.sirst", "edgeirst.data.synth",
    "edgeirst.runtime", "edgeirst.runtime.calibration", "edgeirst.runtime.capture", "edgeirst.runtime.cuda",
    "edgeirst.runtime.engine_build", "edgeirst.runtime.pipeline", "edgeirst.runtime.preview",
    "edgeirst.runtime.sinks", "edgeirst.runtime.sources", "edgeirst.runtime.tracker", "edgeirst.runtime.trt_api",
    "edgeirst.runtime.trt_policy", "edgeirst.runtime.trt_versions", "edgeirst.runtime.backends", "edgeirst.runtime.backends.base",
    "edgeirst.runtime.backends.onnxruntime", "edgeirst.runtime.backends.tensorrt",
    "edgeirst.jetson", "edgeirst.jetson.launch", "edgeirst.jetson.check", "edgeirst.jetson.config",
    "edgeirst.jetson.manifest", "edgeirst.jetson.detect", "edgeirst.jetson.power", "edgeirst.jetson.tegrastats",
    "edgeirst.jetson.profiles",
)
DEVICE_DATA = {"edgeirst.weights": ("aliases.json",)}  # package -> data files (no weights: model.onnx is beside)
# Pure-Python distributions the device path imports beyond JetPack's numpy and OpenCV.
DEVICE_DEPENDENCIES = ("tqdm",)
DEVICE_REQUIRES = ("numpy>=1.17",) + DEVICE_DEPENDENCIES  # opencv: JetPack's apt package, never a PyPI wheel
_DATE = (2020, 1, 1, 0, 0, 0)  # every entry's time stamp: the same files give the same bytes
_NOT_REPACKED = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


def _module_file(name: str) -> tuple[Path, str]:
    """(file on this host, path inside the wheel) of module ``name``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise EdgeirstError(f"{name} is not installed as Python source here; reinstall edgeirst (pip install .)")
    arc = name.replace(".", "/") + ("/__init__.py" if spec.submodule_search_locations is not None else ".py")
    return Path(spec.origin), arc


def device_files() -> dict[str, Path]:
    """Path inside the device wheel -> file on this host, for DEVICE_MODULES and DEVICE_DATA."""
    files = {}
    for m in DEVICE_MODULES:
        path, arc = _module_file(m)
        files[arc] = path
    for pkg, names in DEVICE_DATA.items():
        origin, arc = _module_file(pkg)
        for n in names:
            if (origin.parent / n).is_file():
                files[arc.rsplit("/", 1)[0] + "/" + n] = origin.parent / n
    return dict(sorted(files.items()))


def files_hash(files: dict[str, Path]) -> str:
    """sha256 over (path inside the wheel, content), in a fixed order: the wheel's identity."""
    h = hashlib.sha256()
    for arc, path in sorted(files.items()):
        data = path.read_bytes()
        h.update(len(arc).to_bytes(4, "big") + arc.encode() + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(target: Path, entries: dict[str, bytes], dist_info: str, wheel_meta: str) -> Path:
    """A py3-none-any wheel at ``target``: ``entries`` (path -> bytes), then ``dist_info``/WHEEL and RECORD."""
    entries = {**entries, f"{dist_info}/WHEEL": wheel_meta.encode()}
    record = "".join(f"{n},{_record_hash(b)},{len(b)}\n" for n, b in sorted(entries.items()))
    entries[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    with atomic_output(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, entries[name])
    return target


def _wheel_meta(generator: str) -> str:
    return f"Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def check_wheel(path: Path, option: str = "--wheel") -> Path:
    """``path`` if it is a wheel (a ``.whl`` zip archive with a ``*.dist-info/WHEEL`` entry, what
    pip installs from), else the EdgeirstError that names the option and the file."""
    what = None
    if path.suffix != ".whl":
        what = "does not end in .whl"
    else:
        try:
            with zipfile.ZipFile(path) as z:
                if not any(re.fullmatch(r"[^/]+\.dist-info/WHEEL", n) for n in z.namelist()):
                    what = "has no *.dist-info/WHEEL entry"
        except (OSError, zipfile.BadZipFile) as e:
            what = f"is not a zip archive ({getattr(e, 'strerror', None) or e})"
    if what:
        raise EdgeirstError(f"{option} {path} is not a wheel: it {what}; give a .whl file built by pip wheel "
                            "or python -m build")
    return path


def device_wheel_name() -> str:
    return f"{DEVICE_DIST.replace('-', '_')}-{edgeirst.__version__}-py3-none-any.whl"


def device_wheel(out_dir: Path, files: dict[str, Path] | None = None) -> Path:
    """Write the device wheel into ``out_dir``; returns its path."""
    files = files if files is not None else device_files()
    dist_info = f"{DEVICE_DIST.replace('-', '_')}-{edgeirst.__version__}.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {DEVICE_DIST}\nVersion: {edgeirst.__version__}\n"
                "Summary: edgeirst's device side: stream runtime, Jetson launcher and device check (JetPack 5.1+)\n"
                f"Requires-Python: >={DEVICE_PYTHON[0]}.{DEVICE_PYTHON[1]}\n"
                + "".join(f"Requires-Dist: {r}\n" for r in DEVICE_REQUIRES))
    entries = {arc: path.read_bytes() for arc, path in files.items()}
    entries[f"{dist_info}/METADATA"] = metadata.encode()
    return write_wheel(out_dir / device_wheel_name(), entries, dist_info, _wheel_meta(f"edgeirst {edgeirst.__version__}"))


def _admits(requires_python: str | None, version: tuple[int, int]) -> bool:
    """Whether a simple ``Requires-Python`` (``>=3.7``, ``>=3.8,<4``) admits ``version``."""
    for clause in (requires_python or "").split(","):
        m = re.fullmatch(r"\s*(>=|>|<|<=|!=|==)\s*(\d+)(?:\.(\d+))?(?:\.\*|\.\d+)*\s*", clause)
        if not m:
            continue
        want = (int(m.group(2)), int(m.group(3) or 0))
        ok = {">=": version >= want, ">": version > want, "<": version < want, "<=": version <= want,
              "!=": version != want, "==": version == want}[m.group(1)]
        if not ok:
            return False
    return True


def installed_wheel(dist_name: str, out_dir: Path) -> Path:
    """Repack the installed pure-Python distribution ``dist_name`` as a wheel in ``out_dir``."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise EdgeirstError(f"{dist_name} is not installed on this host; the bundle carries it for the device "
                            f"(pip install {dist_name})") from None
    wheel_text = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel_text or dist.files is None:
        raise EdgeirstError(f"{dist_name} {dist.version} here is not a pure-Python install with a RECORD; the device "
                            "needs a pure-Python wheel of it: pass one with --extra-wheel")
    if not _admits(dist.metadata["Requires-Python"], DEVICE_PYTHON):
        raise EdgeirstError(f"{dist_name} {dist.version} needs Python {dist.metadata['Requires-Python']}, the device "
                            f"has {DEVICE_PYTHON[0]}.{DEVICE_PYTHON[1]}: pass an older wheel of it with --extra-wheel")
    entries: dict[str, bytes] = {}
    dist_info = ""
    for f in dist.files:
        name = f.as_posix()
        if name.startswith("..") or "__pycache__" in f.parts or name.endswith((".pyc", ".pyo")):
            continue  # scripts outside site-packages and byte code: pip writes them again
        if f.parts[0].endswith(".dist-info"):
            dist_info = f.parts[0]
            if f.name in _NOT_REPACKED or f.name == "WHEEL":
                continue
        if name.endswith((".so", ".pyd", ".dylib")):
            raise EdgeirstError(f"{dist_name} has compiled files ({name}); pass a wheel for the device with --extra-wheel")
        entries[name] = Path(dist.locate_file(f)).read_bytes()
    target = out_dir / f"{dist_info[:-len('.dist-info')]}-py3-none-any.whl"
    return write_wheel(target, entries, dist_info, _wheel_meta(f"edgeirst {edgeirst.__version__} (repacked)"))
