"""Board power during a bench, on devices with ``tegrastats`` (Jetson): watts and FPS/W per row.

The one tegrastats parser lives in ``edgeirst.jetson.tegrastats`` (``parse_line``,
``TegrastatsSampler``; the deploy issue). It is imported lazily: without ``tegrastats`` on the
PATH, or without that module, the bench has no power columns and says why.

Rows are interleaved in short chunks, so a row's watts are the mean of the samples taken inside
its chunks' time windows (``watts_by_row``); a row whose chunks are all shorter than the
sampling interval gets None rather than a neighbour's power.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from typing import Any

# the board's input rail, by Jetson generation: Orin / Xavier NX, Nano / TX2 / Xavier, TX1
INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VDD_SYS_GPU")


def rail_mw(value: Any) -> float | None:
    """A rail reading -> instantaneous milliwatts. Accepts a number, ``(current, average)``, or a
    mapping with ``current``/``cur``/``now``/``mw``."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (tuple, list)) and value:
        return float(value[0])
    if isinstance(value, Mapping):
        for k in ("current", "cur", "now", "mw", "power_mw"):
            if k in value:
                return float(value[k])
    return None


def sample_watts(parsed: Mapping[str, Any]) -> float | None:
    """Board input power (W) of one parsed tegrastats line: the input rail when present, else the
    sum of all rails. ``parsed`` maps rails to readings under ``power``/``rails`` (or is that map)."""
    for key in ("watts", "total_w"):
        if isinstance(parsed.get(key), (int, float)):
            return float(parsed[key])
    rails = parsed.get("power") or parsed.get("rails") or parsed
    if not isinstance(rails, Mapping):
        return None
    for name in INPUT_RAILS:
        if name in rails and rail_mw(rails[name]) is not None:
            return rail_mw(rails[name]) / 1e3
    values = [rail_mw(v) for k, v in rails.items() if str(k).upper().startswith(("VDD", "POM", "VIN"))]
    values = [v for v in values if v is not None]
    return sum(values) / 1e3 if values else None


def watts_by_row(windows: Iterable[tuple[int, float, float]], samples: Iterable[tuple[float, float]]) -> dict[int, float]:
    """Mean watts per row from ``(row, start, end)`` windows and ``(time, watts)`` samples on
    the same clock; rows without a sample inside their windows are left out."""
    samples = sorted(samples)
    sums: dict[int, list[float]] = {}
    for row, start, end in windows:
        for t, w in samples:
            if start <= t <= end:
                sums.setdefault(row, []).append(w)
    return {row: sum(v) / len(v) for row, v in sums.items()}


class PowerMonitor:
    """``PowerMonitor.start()`` -> (monitor or None, why not). ``stop()`` -> ``[(time, watts)]``
    on ``time.monotonic``'s clock."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    @classmethod
    def start(cls, interval_ms: int = 100) -> tuple["PowerMonitor | None", str | None]:
        if shutil.which("tegrastats") is None:
            return None, None  # not a Jetson: no power columns, nothing to say
        try:
            from edgeirst.jetson.tegrastats import TegrastatsSampler
        except ImportError:
            return None, "tegrastats is here but edgeirst.jetson.tegrastats is not: no power columns"
        sampler = TegrastatsSampler(interval_ms=interval_ms)
        sampler.start()
        return cls(sampler), None

    def stop(self) -> list[tuple[float, float]]:
        samples = self.sampler.stop()
        if samples is None:
            samples = getattr(self.sampler, "samples", [])
        out = []
        for s in samples:
            t, parsed = (s if isinstance(s, tuple) else (getattr(s, "time", None), getattr(s, "__dict__", s)))
            w = sample_watts(parsed) if isinstance(parsed, Mapping) else None
            if t is not None and w is not None:
                out.append((float(t), w))
        return out


__all__ = ["PowerMonitor", "sample_watts", "watts_by_row"]
