"""Device check after install: ``python -m edgeirst.jetson.check BUNDLE``.

Verifies the bundle's files against its manifest and what Python will import when the service
runs: Python >= 3.8, edgeirst from the bundle, numpy, OpenCV (JetPack's, with GStreamer, not a
PyPI wheel that would shadow it and break ``csi://`` cameras), a backend (TensorRT >= 8.5 with
pycuda, cuda-python or JetPack's libcudart, or onnxruntime), and that the runtime never imports
PyTorch. Prints ``ok:``, ``warning:`` and ``error:`` lines, each with its fix; exit status 1 when
there is an error. Imports only the standard library and edgeirst's pure-Python modules at the
top, so a bare device gets the advice lines, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import edgeirst
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.manifest import DEVICE_PYTHON, verify_bundle

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


def bindings_only(trt_version: str) -> str:
    """Why TensorRT ``trt_version`` cannot run edgeirst's engines ("" when it can)."""
    try:  # edgeirst.runtime's package imports numpy: when it is missing, its own error line says so
        from edgeirst.runtime.trt_api import MIN_JETPACK, api_for
    except ImportError:
        return ""
    return "" if api_for(trt_version) else (f"TensorRT {trt_version} has only the bindings API (edgeirst needs >= "
                                            f"8.5, JetPack {MIN_JETPACK}+): running on onnxruntime")


def cuda_apis() -> list:
    """The CUDA bindings the TensorRT backend can use here (edgeirst.runtime.cuda needs numpy)."""
    try:
        from edgeirst.runtime.cuda import available_apis
    except ImportError:  # numpy is missing: its own error line says so
        return []
    return available_apis()


def opencv_findings() -> list[tuple[str, str]]:
    """(level, message) about the OpenCV Python imports."""
    try:
        import cv2
    except ImportError as e:  # missing, or built for another numpy
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
    good = py[:2] >= DEVICE_PYTHON
    add(("ok" if good else "error", f"Python {py[0]}.{py[1]}.{py[2]} ({sys.executable})"
         + ("" if good else ": edgeirst's device side needs >= %d.%d (JetPack 5.1 or newer)" % DEVICE_PYTHON)))

    where = Path(edgeirst.__file__).resolve().parent
    inside = bundle is not None and (bundle.resolve() / "lib") in where.parents
    add(("ok" if inside or bundle is None else "warning",
         f"edgeirst {edgeirst.__version__} from {where}" + ("" if inside or bundle is None else
                                                           f" (not from {bundle / 'lib'}: PYTHONPATH?)")))
    if bundle is not None:
        problems = verify_bundle(bundle)
        add(("error", "bundle files: " + "; ".join(problems)) if problems else ("ok", "bundle files match manifest.json"))
    v = _version("numpy")
    add(("ok", f"numpy {v}") if v else ("error", "numpy does not import: sudo apt install python3-numpy"))
    findings += opencv_findings()
    trt, ort = _version("tensorrt"), _version("onnxruntime")
    cuda = cuda_apis()
    if trt and bindings_only(trt):
        add(("warning", bindings_only(trt)))
        trt = None
    elif trt and cuda:
        add(("ok", f"TensorRT {trt} with {cuda[0]}: engines are built and run on the GPU"))
    elif trt:
        add(("warning", f"TensorRT {trt} imports but no CUDA binding does (pycuda, cuda-python or JetPack's "
                        "libcudart): running on onnxruntime (sudo apt install python3-pycuda)"))
    else:
        add(("warning", "TensorRT does not import for this Python: running on onnxruntime"))
    if ort:
        add(("ok", f"onnxruntime {ort}"))
    elif not (trt and cuda):
        add(("error", "no backend: neither TensorRT (with a CUDA binding) nor onnxruntime imports (JetPack: sudo apt "
                      "install python3-libnvinfer; elsewhere pip install onnxruntime)"))
    for module in ("edgeirst.jetson.launch", "edgeirst.runtime.pipeline"):  # the modules the service imports
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - a missing or broken dependency, named in the lines above
            add(("error", f"{module} does not import ({type(e).__name__}: {e}): see the lines above for what to install"))
            return findings
    if bundle is not None:
        try:  # the reader imports the runtime (numpy...): a bare device gets the lines above, not a traceback
            from edgeirst.jetson.config import load_config
        except ImportError as e:  # as above
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
