"""Helpers for the runtime tests (no tests here): a tiny MSHNet exported to ONNX with its
metadata, and the matching .pt checkpoint, built once per session under pytest's base temp."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_KWARGS = {"width": 0.25}


def tiny_meta(**changes):
    """The tiny model's metadata, as edgeirst's own ``meta_for`` writes it."""
    from edgeirst.checkpoint import meta_for

    meta = meta_for("mshnet", _tiny_model(), kwargs=dict(TINY_KWARGS), input_size=(64, 64), threshold=0.5)
    return meta.replace(**changes) if changes else meta


def _tiny_model():
    import torch

    from edgeirst.models import create_model

    torch.manual_seed(0)
    return create_model("mshnet", **TINY_KWARGS).eval()


def tiny_checkpoint(base: Path) -> Path:
    """A real checkpoint written by ``edgeirst.checkpoint.save_checkpoint``."""
    from edgeirst.checkpoint import save_checkpoint

    path = base / "tiny_mshnet.pt"
    if not path.exists():
        save_checkpoint(path, _tiny_model(), tiny_meta())
    return path


def export_onnx(path: Path, meta=None, static_hw: tuple[int, int] | None = None) -> Path:
    """The tiny model exported by ``edgeirst.export.export_onnx`` (metadata inside)."""
    from edgeirst.export import export_onnx as export

    hw = static_hw or (64, 64)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        return export(_tiny_model(), meta or tiny_meta(input_size=hw), path, input_size=hw, dynamic=static_hw is None)


def tiny_onnx(base: Path) -> Path:
    path = base / "tiny_mshnet.onnx"
    if not path.exists():
        export_onnx(path)
    return path


def onnx_variant(base: Path, name: str, meta=None, static_hw: tuple[int, int] | None = None,
                 dynamic_batch: bool = False) -> Path:
    """The tiny ONNX with other metadata (``meta=False``: none) and/or a fixed input size,
    edited with onnx instead of exported again (export is the slow part of these tests)."""
    import onnx

    m = onnx.load(str(tiny_onnx(base)))
    del m.metadata_props[:]
    if static_hw is not None:
        for value in (m.graph.input[0], m.graph.output[0]):
            dims = value.type.tensor_type.shape.dim
            for d, size in zip(dims, (1, 1) + tuple(static_hw)):
                d.dim_value = size
        meta = meta or tiny_meta(dynamic=False, input_size=static_hw)
    if dynamic_batch:
        for value in (m.graph.input[0], m.graph.output[0]):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    if meta is not False:
        onnx.helper.set_model_props(m, {"edgeirst": (meta or tiny_meta()).to_json()})
    path = base / name
    onnx.save(m, str(path))
    return path


def edgeirst_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeirst", *map(str, args)]


def run_cli(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(edgeirst_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)


def write_video(path: Path, frames: int = 12, hw: tuple[int, int] = (96, 128), fps: float = 10.0) -> Path:
    """A real mp4v video with a bright moving blob, written with OpenCV."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (hw[1], hw[0]))
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((*hw, 3), 30, np.uint8)
        cv2.circle(img, (10 + 5 * i, hw[0] // 2), 3, (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return path


def read_jsonl(path):
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def char_device(path, major: int, minor: int):
    """A character device made in a test folder (never the machine's own /dev entries: tests run
    as root, and the bug under test would replace them); 1,3 is null, 1,7 is full."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e.strerror}): no CAP_MKNOD")
    return path


def cli_in_process(*args) -> subprocess.CompletedProcess:
    """``edgeirst ARGS`` run in this process through ``edgeirst.cli.main`` (its one-line error
    handling included), as a CompletedProcess for ``one_error_line``: no interpreter start, no
    torch import per call (arguments may hold what a shell cannot pass, such as a NUL byte)."""
    import contextlib
    import io

    from edgeirst.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    status = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:  # a traceback, as the process would print it
            import traceback

            err.write(traceback.format_exc())
            status = 1
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())
