"""Peak memory of one row: how far the process's peak resident set (or, on CUDA, torch's peak
allocation) rises above where it stood, while the row loads and warms up.

Freed heap memory is handed back to the OS first (``malloc_trim``), so a row that reuses what an
earlier row freed is still counted. Linux keeps the peak RSS in ``/proc/self/status`` (``VmHWM``) and resets it when ``5`` is written
to ``/proc/self/clear_refs``; where that is not possible the row's figure is None rather than a
process-lifetime peak that belongs to another row.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size of this process in MB (10^6 bytes)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024 / 1e6


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process (since start or the last reset) in MB."""
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024 / 1e6


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so that memory an earlier
    row (or an export) freed is not silently reused by the next row and missed by its peak."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """``with PeakMemory(cuda) as m: load and warm up`` -> ``m.mb``: the rise of the peak above
    the baseline, and ``m.kind`` (``rss`` or ``cuda``). ``cuda``: measure torch's CUDA
    allocator instead (``torch.cuda.max_memory_allocated``)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.kind = "cuda" if cuda else "rss"
        self.mb: float | None = None

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            release_free_memory()
            self._base = rss_mb()
            self._ok = reset_peak_rss() and self._base is not None
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self._base) / 1e6
        elif self._ok:
            peak = peak_rss_mb()
            self.mb = None if peak is None else max(0.0, peak - self._base)


__all__ = ["PeakMemory", "peak_rss_mb", "reset_peak_rss", "rss_mb"]
