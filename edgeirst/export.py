"""Checkpoint -> ONNX with the model metadata inside (``metadata_props["edgeirst"]``).

We export with the TorchScript-based exporter at opset 17 (``dynamo=False``): torch 2.13's
default dynamo exporter emits opset 18, which onnxruntime's quantization pre-processing
rejects, and down-converting it to 17 fails on the Reduce* ops (measured: docs/measured-pitfalls.md).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgeirst.checkpoint import save_onnx
from edgeirst.errors import EdgeirstError
from edgeirst.io import os_error
from edgeirst.meta import ModelMeta


class _Outputs:
    """Wraps a model so that it returns its inference outputs as a tuple, in export order."""

    def __new__(cls, model, names):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, x):
                out = self.model(x)
                return tuple(out[n] for n in names)

        # eval() on the wrapper too: torch.onnx.export restores the wrapper's mode recursively
        # afterwards, which would silently put a fresh (training-mode) wrapper's model in training.
        return Wrapper().eval()


def export_onnx(model, meta: ModelMeta, out: str | Path, input_size: tuple[int, int] | None = None,
                dynamic: bool | None = None, opset: int = 17, simplify: bool = True) -> Path:
    """Export ``model`` (eval mode) to ``out``; returns the path.

    ``dynamic`` (default: ``meta.dynamic``) exports height and width as dynamic axes, so a
    fully convolutional model runs every frame at its native resolution.
    """
    out = Path(out)
    h, w = input_size or meta.input_size
    d = meta.size_divisor
    if h % d or w % d:
        raise EdgeirstError(f"export size {h}x{w} is not a multiple of the model's size divisor {d}")
    dynamic = meta.dynamic if dynamic is None else dynamic
    try:
        return _export(model, meta, out, h, w, dynamic, opset, simplify)
    except OSError as e:  # a full disk or a file-size limit while torch writes the graph
        raise os_error(e, out) from None


def _export(model, meta: ModelMeta, out: Path, h: int, w: int, dynamic: bool, opset: int, simplify: bool) -> Path:
    import onnx
    import torch

    names = list(meta.outputs)
    d = meta.size_divisor
    axes = None
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({n: {0: "batch", 2: f"{n}_h", 3: f"{n}_w"} for n in names})
    x = torch.zeros(1, meta.in_chans, h, w)
    model = model.eval()
    with tempfile.TemporaryDirectory(prefix="edgeirst-export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # we choose the TorchScript exporter on purpose
            torch.onnx.export(_Outputs(model, names), x, str(raw), input_names=["images"], output_names=names,
                              opset_version=opset, dynamic_axes=axes, dynamo=False, do_constant_folding=True)
        proto = onnx.load(str(raw))
    if simplify:
        proto = _simplify(proto)
    meta = meta.replace(input_size=(h, w), dynamic=bool(dynamic))
    if dynamic:
        meta = meta.replace(memory_per_pixel=measure_memory_per_pixel(proto, meta.in_chans, d))
    onnx.checker.check_model(proto)
    return save_onnx(proto, meta, out)


_MEMORY_PROBE = """
import sys, numpy as np, onnxruntime as ort
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
so = ort.SessionOptions(); so.intra_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
name, c, sizes = sess.get_inputs()[0].name, int(sys.argv[2]), [int(v) for v in sys.argv[3:]]
marks = []
for s in sizes:
    sess.run(None, {name: np.zeros((1, c, s, s), np.float32)})
    marks.append(peak())
print((marks[1] - marks[0]) / (sizes[1] ** 2 - sizes[0] ** 2))
"""


def measure_memory_per_pixel(proto, in_chans: int, divisor: int) -> float | None:
    """Bytes of onnxruntime CPU memory per input pixel: the growth of a fresh process's peak
    memory between a 256- and a 512-pixel square input (Linux; None where it cannot be read).
    The runtime scales down frames that would not fit (``edgeirst.preprocess.memory_pixel_budget``)."""

    import onnx

    if not Path("/proc/self/status").exists():
        return None
    small, large = (-(-256 // divisor) * divisor, -(-512 // divisor) * divisor)
    with tempfile.TemporaryDirectory(prefix="edgeirst-mem-") as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(proto, str(path))
        r = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), str(in_chans), str(small), str(large)],
                           capture_output=True, text=True, timeout=300)
    try:
        value = float(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return round(value, 1) if value > 0 else None


def _simplify(proto):
    """Constant folding and graph clean-up with onnxslim when installed (it is in the train extra)."""
    try:
        import onnxslim
    except ImportError:
        return proto
    return onnxslim.slim(proto)


def parity(model, onnx_path: str | Path, size: tuple[int, int], seed: int = 0) -> float:
    """Max absolute difference between torch and onnxruntime outputs on one random input."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    c = inp.shape[1]
    x = np.random.default_rng(seed).standard_normal((1, c, *size)).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    got = sess.run(names, {inp.name: x})
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x))
    return max(float(np.abs(ref[n].numpy() - g).max()) for n, g in zip(names, got))
