"""Configuration and result of ``quantize_model``: typed, checked where they enter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError, finite_number
from edgeirst.metrics import METRICS

PRECISIONS = ("int8", "fp16")
TARGETS = ("cpu", "tensorrt")
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_MAX_DROP = {"iou": 0.01, "pd": 0.01}


@dataclass
class QuantConfig:
    """How to quantize an exported model.

    Attributes:
        precision: ``int8`` (QDQ, calibrated on real images) or ``fp16`` (IO and sensitive ops fp32).
        target: ``cpu`` writes the layout onnxruntime's x86/ARM kernels run fastest (uint8
            asymmetric activations, int8 symmetric per-channel weights, int8 only where the
            int8 kernel beats fp32); ``tensorrt`` writes symmetric int8 QDQ (zero point 0
            everywhere) that TensorRT 8.6+/10 builds as an explicit-INT8 engine.
        data: SIRST-style dataset root for calibration and the accuracy guard (int8 needs it).
        split: calibration split.
        calib_images: number of calibration images (spread evenly over the split).
        method: activation range calibration: ``minmax``, ``entropy`` (KL) or ``percentile``.
        val_split: split the accuracy guard evaluates on (None: no guard, no fallback).
        max_drop: the accuracy budget, absolute, per metric (``{"iou": 0.01, "pd": 0.01}``);
            for metrics where lower is better (Fa) a rise counts as a drop.
        max_fallback_rounds: how many re-quantizations the guard may try.
    """

    precision: str = "int8"
    target: str = "cpu"
    data: str | None = None
    split: str = "train"
    calib_images: int = 64
    method: str = "minmax"
    val_split: str | None = "val"
    max_drop: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_DROP))
    max_fallback_rounds: int = 6

    def check(self) -> "QuantConfig":
        """Raise EdgeirstError for a configuration that cannot work; return self."""
        if self.precision not in PRECISIONS:
            raise EdgeirstError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        if self.target not in TARGETS:
            raise EdgeirstError(f"unknown target {self.target!r}; expected one of {', '.join(TARGETS)}")
        if self.method not in METHODS:
            raise EdgeirstError(f"unknown calibration method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.precision == "int8" and not self.data:
            raise EdgeirstError("int8 quantization calibrates on real images: pass --data DIR (a SIRST-style dataset)")
        if self.data is not None and not Path(self.data).expanduser().is_dir():
            raise EdgeirstError(f"dataset folder {self.data} does not exist; expected a SIRST-style folder "
                                "(images/, masks/, split lists)")
        if self.val_split is not None and not self.data:
            raise EdgeirstError("the accuracy guard evaluates on --data: pass --data DIR or --val-split none")
        if self.calib_images < 1:
            raise EdgeirstError(f"calib_images must be at least 1, got {self.calib_images}")
        unknown = sorted(set(self.max_drop) - set(METRICS))
        if unknown:
            raise EdgeirstError(f"unknown metric(s) {', '.join(unknown)} in max_drop; known: {', '.join(METRICS)}")
        if any(not (v >= 0) for v in self.max_drop.values()):
            raise EdgeirstError(f"max_drop budgets must be >= 0, got {self.max_drop}")
        return self


def parse_max_drop(text: str) -> dict[str, float]:
    """``"iou=0.01,pd=0.01"`` -> ``{"iou": 0.01, "pd": 0.01}`` (checked against the metrics table)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            out[key.strip().lower()] = finite_number(value, "--max-drop")
        except EdgeirstError:
            sep = ""
        if not sep:
            raise EdgeirstError(f"--max-drop expects METRIC=VALUE pairs such as iou=0.01,pd=0.01, got {text!r}")
    unknown = sorted(set(out) - set(METRICS))
    if unknown:
        raise EdgeirstError(f"unknown metric(s) {', '.join(unknown)} in --max-drop; known: {', '.join(METRICS)}")
    return out


class OverBudget(EdgeirstError):
    """No placement held the accuracy budget: the measured drops (positive = worse), the nodes the
    last attempt kept float and how many could have been. Nothing was written."""

    def __init__(self, message: str, drops: dict[str, float], kept_float: list[str], candidates: int) -> None:
        super().__init__(message)
        self.drops, self.kept_float, self.candidates = drops, kept_float, candidates


@dataclass
class QuantResult:
    """What ``quantize_model`` wrote and measured.

    ``decisions`` holds one entry per quantizable node: ``{"node", "op", "precision", "reason"}``
    plus ``"sqnr_drop_db"`` where the sensitivity analysis ran. ``kept_float`` names the nodes the
    accuracy guard kept in float. ``within_budget`` is None when no guard ran.
    """

    path: Path
    precision: str
    target: str
    calibration_cache: Path | None
    metrics_fp32: dict | None
    metrics_quant: dict | None
    kept_float: list[str]
    decisions: list[dict]
    within_budget: bool | None = None
    drops: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "precision": self.precision, "target": self.target,
                "calibration_cache": str(self.calibration_cache) if self.calibration_cache else None,
                "metrics_fp32": self.metrics_fp32, "metrics_quant": self.metrics_quant,
                "within_budget": self.within_budget, "drops": self.drops, "kept_float": self.kept_float,
                "decisions": self.decisions}
