"""Fair timing: latency statistics and the interleaved schedule every row is measured with.

Timings on shared machines drift by 20-35% within tens of seconds. So no row is measured in
one block: the runs are split into rounds, each round runs a chunk of every row, and the order
of the rows rotates from round to round (a seeded shuffle, then rotated by one position per
round). The schedule is fixed before anything runs, so a slow row changes nobody's order, and
every row gets exactly the same number of runs in every round. We report the spread (min, IQR,
p90, p99, per-round medians), not one figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeirst.errors import EdgeirstError


def latency_stats(ms: Sequence[float]) -> dict[str, float | int]:
    """Summary of latencies in milliseconds: n, median, mean, p90, p99, min, max and the
    inter-quartile range (percentiles interpolate linearly between samples, numpy's default)."""
    a = np.asarray(ms, np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    q25, q50, q75, q90, q99 = np.percentile(a, [25, 50, 75, 90, 99])
    return {"n": int(a.size), "median": float(q50), "mean": float(a.mean()), "p90": float(q90), "p99": float(q99),
            "min": float(a.min()), "max": float(a.max()), "iqr": float(q75 - q25)}


def chunk_sizes(runs: int, rounds: int) -> list[int]:
    """``runs`` split over ``rounds`` as evenly as possible (earlier rounds take the remainder)."""
    if runs < 1 or rounds < 1:
        raise EdgeirstError(f"runs and rounds must be at least 1, got runs={runs}, rounds={rounds}")
    rounds = min(rounds, runs)
    return [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]


def schedule(n_rows: int, runs: int, rounds: int, seed: int = 0) -> list[list[tuple[int, int]]]:
    """The plan: for each round, ``(row, count)`` pairs in the order they run.

    Round ``r`` runs rows in the order of a seeded permutation rotated left by ``r``, so over
    ``n_rows`` rounds each row takes every position once; every row runs ``count`` times in a
    round and ``runs`` times in all.
    """
    if n_rows < 1:
        return []
    base = np.random.default_rng(seed).permutation(n_rows).tolist()
    plan = []
    for r, count in enumerate(chunk_sizes(runs, rounds)):
        k = r % n_rows
        plan.append([(row, count) for row in base[k:] + base[:k]])
    return plan


@dataclass
class Timed:
    """What an interleaved run measured: ``samples[row][round]`` latencies in ms, and the
    ``(row, start, end)`` wall-clock window (``time.monotonic``) of every chunk, for matching
    power samples to rows."""

    samples: list[list[list[float]]]
    windows: list[tuple[int, float, float]] = field(default_factory=list)

    def flat(self, row: int) -> list[float]:
        return [v for chunk in self.samples[row] for v in chunk]

    def round_medians(self, row: int) -> list[float]:
        return [float(np.median(c)) for c in self.samples[row] if c]


def run_interleaved(calls: Sequence[Callable[[], object]], plan: list[list[tuple[int, int]]],
                    on_chunk: Callable[[int, int, int, bool], None] | None = None, settle: float = 0.0) -> Timed:
    """Run ``calls[row]()`` as ``plan`` (see ``schedule``) says, timing each call with
    ``time.perf_counter``. ``settle``: seconds of idle before each chunk, untimed, so that the
    previous row's worker threads (onnxruntime and OpenMP spin-wait after a call) have gone
    quiet before the next row starts. ``on_chunk(round, row, count, done)`` is called right before (done
    False) and right after (done True) each chunk, for progress and power readings."""
    timed = Timed([[[] for _ in plan] for _ in calls])
    for r, chunk in enumerate(plan):
        for row, count in chunk:
            fn = calls[row]
            out = timed.samples[row][r]
            if settle > 0:
                time.sleep(settle)
            if on_chunk is not None:
                on_chunk(r, row, count, False)
            start = time.monotonic()
            for _ in range(count):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1e3)
            timed.windows.append((row, start, time.monotonic()))
            if on_chunk is not None:
                on_chunk(r, row, count, True)
    return timed


__all__ = ["Timed", "chunk_sizes", "latency_stats", "run_interleaved", "schedule"]
