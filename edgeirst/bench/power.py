"""Board power during a bench, on devices with ``tegrastats`` (Jetson): watts and FPS/W per row.

The one tegrastats parser and sampler live in ``edgeirst.jetson.tegrastats`` (``parse_line``,
``TegrastatsSampler``; the deploy issue), which also decides which rail is the board's power
(``VDD_IN``, ``POM_5V_IN``, else the sum of rails). It is imported lazily: without ``tegrastats``
on the PATH, or without that module, the bench has no power columns and says why.

Interleaved chunks are often shorter than tegrastats' sampling interval, so power is not read
during the timed rounds: after them, each row runs back to back for ``BURST_S`` seconds (untimed)
and its watts are the mean of the samples taken during that burst
(``TegrastatsSampler.mean_watts(since=burst start)``); FPS/W = the row's FPS from the timed rounds
divided by those watts.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

INTERVAL_MS = 100
BURST_S = 2.0


class PowerMonitor:
    """``PowerMonitor.start()`` -> (monitor or None, why not); ``watts_since(t)``: mean board
    power (W) of the samples taken since ``time.monotonic()`` was ``t``; ``stop()``."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    @classmethod
    def start(cls, interval_ms: int = INTERVAL_MS,
              command: str | Sequence[str] | None = None) -> tuple["PowerMonitor | None", str | None]:
        if command is None and shutil.which("tegrastats") is None:
            return None, None  # not a Jetson: no power columns, nothing to say
        try:
            from edgeirst.jetson.tegrastats import TegrastatsSampler
        except ImportError:
            return None, "tegrastats is here but edgeirst.jetson.tegrastats is not: no power columns"
        sampler = TegrastatsSampler(interval_ms=interval_ms, command=list(command) if command else None)
        sampler.start()
        return cls(sampler), None

    def watts_since(self, since: float) -> float | None:
        return self.sampler.mean_watts(since=since)

    def burst(self, call: Callable[[], object], seconds: float = BURST_S, settle: float = 0.0) -> float | None:
        """Mean board watts while ``call()`` runs back to back for ``seconds`` (after ``settle``
        seconds idle); None when no sample came in that time."""
        time.sleep(settle)
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            call()
        return self.watts_since(start)

    def stop(self) -> None:
        self.sampler.stop()


__all__ = ["BURST_S", "PowerMonitor"]
