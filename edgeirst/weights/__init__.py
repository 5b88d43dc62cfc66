"""Models shipped with the package: ``default`` and the other trained light variants.

Each shipped model is a pair ``<name>.onnx`` (runs with the core install) and ``<name>.pt``
(the checkpoint, for fine-tuning or the torch backend); both carry their metadata. A name
begins with the model's zoo name (``mshnet-w05``, ``light-sgmtlm-tiny``). ``aliases.json``
maps other names to shipped files (``default`` -> the model ``run`` and ``demo`` use), so a
model ships once. ``shipped_model("default")`` / ``default_model()`` -> a path. Any command
that takes a model accepts these names in place of a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeirst.errors import EdgeirstError

WEIGHTS_DIR = Path(__file__).resolve().parent
KINDS = ("onnx", "pt")


def aliases() -> dict[str, str]:
    """Alias -> shipped model file name (``default`` among them)."""
    path = WEIGHTS_DIR / "aliases.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_names(with_aliases: bool = True) -> list[str]:
    """Names of the shipped models (``default`` first, then the model it names), aliases
    included unless asked not to."""
    table = aliases()
    names = {p.stem for p in WEIGHTS_DIR.glob("*.onnx")} | (set(table) if with_aliases else set())
    return sorted(names, key=lambda n: (n != "default", n != table.get("default"), n))


def shipped_model(name: str = "default", kind: str = "onnx") -> Path:
    """Path of shipped model ``name`` (or an alias) of ``kind`` (``onnx`` or ``pt``)."""
    if kind not in KINDS:
        raise EdgeirstError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = WEIGHTS_DIR / f"{aliases().get(name, name)}.{kind}"
    if not path.is_file():
        have = ", ".join(shipped_names()) or "none"
        raise EdgeirstError(f"model {name!r} is not shipped in this install ({path.name}; shipped: {have}); "
                            "pass a model file instead (e.g. one made with `edgeirst export`)")
    return path


MODEL_SUFFIXES = (".onnx", ".pt", ".pth", ".engine", ".plan", ".trt")


def resolve_model(model: str | Path, backend: str = "auto") -> Path:
    """A model argument -> an existing file. ``default`` (or another shipped model's name) is a
    model shipped with the package: its ONNX, or its checkpoint when the torch backend is asked
    for (``backend="torch"``)."""
    path = Path(model).expanduser()
    if not path.exists() and not path.suffix:
        if str(model) == "default" or str(model) in shipped_names():
            return shipped_model(str(model), "pt" if backend == "torch" else "onnx")
    if not path.exists():
        raise EdgeirstError(f"model file {path} does not exist; pass a .pt, .onnx or .engine file, `default` "
                            f"or a shipped model name ({', '.join(shipped_names())})")
    if path.is_dir():
        raise EdgeirstError(f"model {path} is a directory; pass a .pt, .onnx or .engine file")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise EdgeirstError(f"model {path} has an unsupported suffix {path.suffix!r}; expected one of "
                            f"{', '.join(MODEL_SUFFIXES)} (or the word `default`)")
    return path


def default_model(kind: str = "onnx") -> Path:
    """Path of the shipped default model of ``kind``."""
    return shipped_model("default", kind)
