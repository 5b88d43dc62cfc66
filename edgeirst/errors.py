"""The one exception type for errors a user can cause.

The CLI prints an ``EdgeirstError`` as a single ``error: ...`` line and exits 2, and an
``EdgeirstWarning`` as one ``warning: ...`` line. Anything else
is a bug and propagates with its traceback. Messages say what was expected, what came, and
how to fix it.
"""

from __future__ import annotations

import re


class EdgeirstError(Exception):
    """A user-caused error: missing file, bad dataset layout, corrupt model, unknown name."""


class EdgeirstWarning(UserWarning):
    """Something a user should know that does not stop the work (data as it is in the wild: a
    mask saved at another resolution, a split whose masks are all empty). The CLI prints each as
    one ``warning: ...`` line, once per message."""


EXTRAS = ("train", "jetson", "plot", "test")  # pyproject's optional dependency groups

# Top-level module of every optional dependency -> (what to call it, the extra that installs it).
# tests/test_packaging.py checks it against pyproject.toml's optional dependencies, both ways.
OPTIONAL_MODULES = {
    "torch": ("PyTorch", "train"),
    "onnx": ("onnx", "train"),
    "onnxslim": ("onnxslim", "train"),
    "torch_pruning": ("torch-pruning", "train"),
    "pycocotools": ("pycocotools", "train"),
    "pycuda": ("pycuda", "jetson"),
    "matplotlib": ("matplotlib", "plot"),
    "pytest": ("pytest", "test"),
    "scipy": ("scipy", "test"),
    "importlinter": ("import-linter", "test"),
    "vermin": ("vermin", "test"),
}


def missing_module(error: ModuleNotFoundError, command: str | None = None) -> EdgeirstError | None:
    """The user error for an optional dependency that is not installed (``edgeirst export needs
    PyTorch: pip install 'edgeirst[train]'``), or None when ``error`` names no optional module
    (then it is a bug and keeps its traceback)."""
    top = (error.name or "").partition(".")[0]
    if top not in OPTIONAL_MODULES:
        return None
    label, extra = OPTIONAL_MODULES[top]
    who = f"edgeirst {command}" if command else "this command"
    return EdgeirstError(f"{who} needs {label}: pip install 'edgeirst[{extra}]'")


def missing_extra(package: str, extra: str) -> EdgeirstError:
    """The error raised when an optional dependency is not installed; ``extra`` is one of
    ``EXTRAS`` (a test keeps the two in step with pyproject.toml)."""
    if extra not in EXTRAS:
        raise ValueError(f"no extra {extra!r} in pyproject.toml")
    return EdgeirstError(
        f"{package} is not installed; install it with: pip install 'edgeirst[{extra}]'"
    )


# The largest side of a frame or input size any option or URL parameter takes: TensorRT's and
# OpenCV's practical limit, far above any sensor (a larger number is a typo, and would ask for
# terabytes before anything checked memory).
MAX_SIDE = 16384


def finite_number(value, what: str) -> float:
    """``value`` (a number or its text) as a finite float, or the EdgeirstError that names ``what``:
    the one check behind every float a user gives (options, URL parameters, ranges), since nan
    passes every comparison and inf passes every lower bound."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EdgeirstError(f"{what}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise EdgeirstError(f"{what}: {value!r} is not a finite number")
    return number


def parse_range(text: str, option: str, kind=float) -> tuple:
    """``"8-15"`` or ``"8"`` -> (min, max) of ``kind``, both >= 0 and min <= max, or the EdgeirstError
    that names ``option`` and the expected form (options and URL parameters alike)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(?:-\s*([0-9.]+))?\s*", str(text))

    def number(s: str):
        return kind(s) if kind is not float else finite_number(s, option)  # "1" * 400 reads as inf

    try:
        lo, hi = (number(m.group(1)), number(m.group(2) or m.group(1))) if m else (None, None)
    except (ValueError, EdgeirstError):
        lo = hi = None
    if lo is None:
        raise EdgeirstError(f"{option} {text!r} is not N or MIN-MAX (non-negative {kind.__name__}s)")
    if lo > hi:
        raise EdgeirstError(f"{option} {text!r}: MIN {lo} is greater than MAX {hi}")
    return lo, hi
