"""TensorRT versions and what each takes: the one home of the version thresholds the engine
builder, the launcher, deploy's pre-flight and the bundle decide by.

Device side: the standard library only, Python 3.8-clean.
"""

from __future__ import annotations

from typing import Tuple

# The INT8 form a TensorRT release builds from: a QDQ (explicitly quantized) ONNX model from 8.6,
# a float model plus a calibration cache below (8.5's QDQ support misses ops our models use).
QDQ_MIN = (8, 6)


def version_tuple(text: str) -> Tuple[int, ...]:
    """``"8.5.2.2"`` -> ``(8, 5, 2, 2)``; non-numeric tails are dropped (``"10.3.0-1+cuda12.5"``)."""
    out = []
    for part in str(text).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out)
