"""The shipped default model: ``default_model("onnx")`` / ``default_model("pt")`` -> its path."""

from __future__ import annotations

from pathlib import Path

from edgeirst.errors import EdgeirstError

WEIGHTS_DIR = Path(__file__).resolve().parent
KINDS = {"onnx": "default.onnx", "pt": "default.pt"}


def default_model(kind: str = "onnx") -> Path:
    """Path of the shipped default model of ``kind`` (``onnx`` or ``pt``)."""
    if kind not in KINDS:
        raise EdgeirstError(f"unknown default model kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = WEIGHTS_DIR / KINDS[kind]
    if not path.is_file():
        raise EdgeirstError(f"the default model ({KINDS[kind]}) is not shipped in this install yet; "
                            "pass a model file instead (e.g. one made with `edgeirst export`)")
    return path
