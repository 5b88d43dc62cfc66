"""Temporal tracker for point-like targets: centroid association with gating, M-of-N
confirmation, stable track IDs.

Each frame, live tracks predict their centroid (constant velocity), detections are assigned to
tracks by minimum total distance (Hungarian, ``assign``) among pairs closer than ``gate``
pixels, unmatched detections start tentative tracks, and a track is confirmed once it was
detected in ``m`` of its last ``n`` frames. Only detections on confirmed tracks are reported
(with the track's ID), which suppresses one-frame false alarms at the cost of ``m - 1`` frames
of latency on a new target. IDs are handed out at confirmation, so they count real tracks.
numpy only.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.postprocess import Targets


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a rectangular cost matrix (rows, cols), like
    ``scipy.optimize.linear_sum_assignment``: shortest augmenting paths with potentials, O(n^3).
    Infinite costs are forbidden pairs; rows that can only take forbidden pairs stay unassigned."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transposed = cost.shape[0] > cost.shape[1]
    c = cost.T if transposed else cost
    n, m = c.shape  # n <= m
    finite = np.isfinite(c)
    big = (np.abs(c[finite]).max() + 1.0) * (n + 1) if finite.any() else 1.0
    c = np.where(finite, c, big)
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j] = row (1-based) assigned to column j; column 0 is the root
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = c[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    keep = finite[rows, cols]
    rows, cols = rows[keep], cols[keep]
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


METHODS = ("hungarian", "nearest")


@dataclass
class TrackerConfig:
    """gate: largest centroid distance (source pixels) between a prediction and a detection;
    m, n: confirm after m detections in the last n frames; max_missed: frames a track may go
    undetected before it is dropped; method: ``hungarian`` or ``nearest`` (greedy)."""

    gate: float = 8.0
    m: int = 3
    n: int = 5
    max_missed: int = 5
    method: str = "hungarian"

    def __post_init__(self) -> None:
        if not (isinstance(self.m, int) and isinstance(self.n, int) and 1 <= self.m <= self.n):
            raise EdgeirstError(f"tracker confirmation M/N needs integers 1 <= M <= N, got {self.m}/{self.n}")
        if not (isinstance(self.gate, (int, float)) and 0 < self.gate < float("inf")):
            raise EdgeirstError(f"tracker gate must be a positive number of pixels, got {self.gate!r}")
        if not (isinstance(self.max_missed, int) and self.max_missed >= 0):
            raise EdgeirstError(f"tracker max_missed must be an integer >= 0, got {self.max_missed!r}")
        if self.method not in METHODS:
            raise EdgeirstError(f"tracker method must be one of {', '.join(METHODS)}, got {self.method!r}")

    @property
    def confirm(self) -> str:
        """M/N as ``--confirm`` spells it."""
        return f"{self.m}/{self.n}"


@dataclass
class Track:
    cx: float
    cy: float
    vx: float = 0.0
    vy: float = 0.0
    history: collections.deque = field(default_factory=collections.deque)  # hit/miss of the last n frames
    id: int | None = None  # set at confirmation
    missed: int = 0

    def predicted(self) -> tuple[float, float]:
        return self.cx + self.vx, self.cy + self.vy


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.cfg = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, targets: Targets) -> tuple[np.ndarray, list[int]]:
        """Feed one frame's targets; returns (indices of the targets to report, their track IDs)."""
        cfg = self.cfg
        cents = targets.centroids.reshape(-1, 2).astype(np.float64)
        pred = np.array([t.predicted() for t in self.tracks], np.float64).reshape(-1, 2)
        dist = np.linalg.norm(pred[:, None, :] - cents[None, :, :], axis=2) if len(pred) and len(cents) \
            else np.zeros((len(pred), len(cents)))
        cost = np.where(dist <= cfg.gate, dist, np.inf)
        rows, cols = assign(cost) if cfg.method == "hungarian" else _greedy(cost)
        matched_t = set(rows.tolist())
        report, ids = [], []
        for r, c in zip(rows.tolist(), cols.tolist()):
            t = self.tracks[r]
            x, y = cents[c]
            t.vx, t.vy = 0.5 * t.vx + 0.5 * (x - t.cx), 0.5 * t.vy + 0.5 * (y - t.cy)
            t.cx, t.cy = x, y
            t.history.append(True)
            t.missed = 0
            if t.id is None and sum(t.history) >= cfg.m:
                t.id, self._next_id = self._next_id, self._next_id + 1
            if t.id is not None:
                report.append(c)
                ids.append(t.id)
        for i, t in enumerate(self.tracks):
            if i not in matched_t:
                t.history.append(False)
                t.missed += 1
                t.cx, t.cy = t.predicted()
        self.tracks = [t for t in self.tracks if t.missed <= (cfg.max_missed if t.id is not None else cfg.n - cfg.m)]
        matched_d = set(cols.tolist())
        for c in range(len(cents)):
            if c not in matched_d:
                t = Track(float(cents[c, 0]), float(cents[c, 1]), history=collections.deque(maxlen=cfg.n))
                t.history.append(True)
                if cfg.m == 1:
                    t.id, self._next_id = self._next_id, self._next_id + 1
                    report.append(c)
                    ids.append(t.id)
                self.tracks.append(t)
        order = np.argsort(report, kind="stable")
        return np.asarray(report, np.int64)[order], [ids[i] for i in order]


def _greedy(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour association: repeatedly take the closest remaining allowed pair."""
    rows, cols = [], []
    if cost.size:
        flat = np.argsort(cost, axis=None)
        used_r, used_c = set(), set()
        for k in flat:
            r, c = divmod(int(k), cost.shape[1])
            if not np.isfinite(cost[r, c]):
                break
            if r not in used_r and c not in used_c:
                used_r.add(r)
                used_c.add(c)
                rows.append(r)
                cols.append(c)
    order = np.argsort(rows)
    return np.asarray(rows, np.int64)[order], np.asarray(cols, np.int64)[order]
