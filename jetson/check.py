"""Device check after install: ``python -m edgeirst.jetson.check BUNDLE``.

Verifies the bundle's files against its manifest and what Python will import when the service
runs: edgeirst from the bundle, numpy, click, OpenCV (JetPack's, with GStreamer, not a PyPI
wheel that would shadow it and break ``csi://`` cameras), a backend (TensorRT with pycuda or
cuda-python, or onnxruntime), and that the runtime never imports PyTorch. Prints ``ok:``,
``warning:`` and ``error:`` lines; exit status 1 when there is an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import edgeirst
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.manifest import verify_bundle

PYPI_OPENCV = ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless")


def _version(module: str) -> str | None:
    """The version of an importable module, None when it does not import."""
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken optional module counts as absent
        return None
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(mod, "__version__", "?"))


def opencv_findings() -> list[tuple[str, str]]:
    """(level, message) about the OpenCV Python imports."""
    try:
        import cv2
    except ImportError as e:
        return [("error", f"OpenCV does not import ({e}); on a Jetson: sudo apt install python3-opencv (JetPack's, "
                          "with GStreamer); do not pip install opencv-python")]
    out = [("ok", f"OpenCV {cv2.__version__} from {Path(cv2.__file__).resolve().parent}")]
    pypi = []
    for dist in PYPI_OPENCV:
        try:
            pypi.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    gst = any(ln.strip().startswith("GStreamer:") and "YES" in ln for ln in cv2.getBuildInformation().splitlines())
    if pypi:
        out.append(("warning", f"{', '.join(pypi)} from PyPI is installed and shadows JetPack's OpenCV"
                               + ("" if gst else ": it has no GStreamer, so csi:// cameras and GStreamer pipelines "
                                                 "will not open (pip uninstall it on a Jetson)")))
    elif not gst:
        out.append(("warning", "this OpenCV has no GStreamer: csi:// cameras and GStreamer pipelines will not open"))
    return out


def run_checks(bundle: Path | None) -> list[tuple[str, str]]:
    findings: list[tuple[str, str]] = []
    add = findings.append
    py = sys.version_info
    add(("ok" if py >= (3, 10) else "error", f"Python {py[0]}.{py[1]}.{py[2]} ({sys.executable})"
         + ("" if py >= (3, 10) else ": edgeirst needs >= 3.10")))

    where = Path(edgeirst.__file__).resolve().parent
    inside = bundle is not None and (bundle.resolve() / "lib") in where.parents
    add(("ok" if inside or bundle is None else "warning",
         f"edgeirst {edgeirst.__version__} from {where}" + ("" if inside or bundle is None else
                                                           f" (not from {bundle / 'lib'}: PYTHONPATH?)")))
    if bundle is not None:
        problems = verify_bundle(bundle)
        add(("error", "bundle files: " + "; ".join(problems)) if problems else ("ok", "bundle files match manifest.json"))
    for module, fix in (("numpy", "sudo apt install python3-numpy"), ("click", "sudo apt install python3-click")):
        v = _version(module)
        add(("ok", f"{module} {v}") if v else ("error", f"{module} does not import: {fix}"))
    findings += opencv_findings()
    trt, ort = _version("tensorrt"), _version("onnxruntime")
    cuda = [m for m in ("pycuda", "cuda") if importlib.util.find_spec(m) is not None]
    if trt and cuda:
        add(("ok", f"TensorRT {trt} with {cuda[0]}: engines are built and run on the GPU"))
    elif trt:
        add(("warning", f"TensorRT {trt} imports but neither pycuda nor cuda-python does: running on onnxruntime "
                        "(sudo apt install python3-pycuda, or pip install pycuda)"))
    else:
        add(("warning", "TensorRT does not import for this Python: running on onnxruntime"))
    if ort:
        add(("ok", f"onnxruntime {ort}"))
    elif not (trt and cuda):
        add(("error", "no backend: neither TensorRT (+pycuda) nor onnxruntime imports"))
    for module in ("edgeirst.jetson.launch", "edgeirst.runtime.pipeline"):  # the modules the service imports
        try:
            importlib.import_module(module)
        except ImportError as e:
            add(("error", f"{module} does not import ({e}): see the lines above for what to install"))
            return findings
    if bundle is not None:
        try:  # the reader imports the runtime (numpy...): a bare device gets the lines above, not a traceback
            from edgeirst.jetson.config import load_config
        except ImportError as e:
            add(("error", f"edgeirst.jetson.config does not import ({e})"))
            return findings
        try:
            load_config(bundle / "edgeirst.toml")
            add(("ok", "edgeirst.toml is valid"))
        except EdgeirstError as e:
            add(("error", str(e)))

    add(("error", "the runtime imported PyTorch (a bug: report it)") if "torch" in sys.modules
        else ("ok", "the runtime does not import PyTorch"))
    return findings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    bundle = Path(args[0]) if args else None
    findings = run_checks(bundle)
    for level, message in findings:
        print(f"{level}: {message}", file=sys.stderr if level == "error" else sys.stdout, flush=True)
    return 1 if any(level == "error" for level, _ in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
