"""Tracker: the assignment solver against scipy, ID stability, and what tracking does to
false alarms of a real (top-hat) detector on a noisy synthetic sequence."""

from __future__ import annotations

import click
import cv2
import numpy as np
import pytest

from edgeirst.postprocess import Targets, cluster_targets
from edgeirst.cli.stream_options import CONFIRM
from edgeirst.errors import EdgeirstError
from edgeirst.runtime.tracker import Tracker, TrackerConfig, assign


def test_assign_matches_scipy_on_random_matrices():
    linear_sum_assignment = pytest.importorskip("scipy.optimize").linear_sum_assignment
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(1, 9, 2)
        c = rng.random((n, m)) * 10
        r, k = assign(c)
        r2, k2 = linear_sum_assignment(c)
        assert len(r) == min(n, m) and len(set(k.tolist())) == len(k)
        assert np.isclose(c[r, k].sum(), c[r2, k2].sum())


def test_assign_respects_forbidden_pairs():
    inf = np.inf
    r, c = assign(np.array([[1.0, inf], [inf, inf], [inf, 2.0]]))
    assert r.tolist() == [0, 2] and c.tolist() == [0, 1]
    assert [x.tolist() for x in assign(np.full((2, 2), inf))] == [[], []]
    assert [x.tolist() for x in assign(np.zeros((0, 3)))] == [[], []]


def points(*xy):
    a = np.asarray(xy, np.float32).reshape(-1, 2)
    return Targets.from_boxes(np.concatenate([a - 1, a + 1], 1), np.ones(len(a)))


@pytest.mark.parametrize("method", ["hungarian", "nearest"])
def test_ids_stable_false_alarm_suppressed_short_miss_bridged(method):
    tr = Tracker(TrackerConfig(gate=6, m=3, n=5, max_missed=3, method=method))
    seen = []
    for i in range(20):
        a, b = (10 + 2 * i, 20), (60 - 2 * i, 40)  # two targets passing each other 20 px apart
        dets = [a] if i in (8, 9) else [a, b]  # b is missed for two frames
        if i == 5:
            dets.append((90, 5))  # a one-frame false alarm
        keep, ids = tr.update(points(*dets))
        seen.append((keep.tolist(), ids))
    assert seen[0] == ([], []) and seen[1] == ([], [])  # confirmation takes m=3 frames
    assert seen[2] == ([0, 1], [1, 2])
    assert seen[5] == ([0, 1], [1, 2])  # the false alarm (index 2) is not reported
    assert seen[8] == ([0], [1]) and seen[10] == ([0, 1], [1, 2])  # b keeps its ID across the gap
    assert all(ids == [1, 2] for k, ids in seen[10:])


def test_m_equals_one_reports_immediately():
    keep, ids = Tracker(TrackerConfig(m=1, n=1)).update(points((5, 5)))
    assert keep.tolist() == [0] and ids == [1]
    with pytest.raises(EdgeirstError, match="1 <= M <= N"):
        TrackerConfig(m=4, n=3)


def _tophat(frame: np.ndarray, k: float) -> Targets:
    """A classic small-target detector: frame minus its local mean, above k standard deviations."""
    f = frame.astype(np.float32)
    r = f - cv2.blur(f, (9, 9))
    return cluster_targets(r / np.float32(k * r.std()), 1.0)[0]


def _false_alarms_and_pd(track: bool, frames: int = 100):
    from edgeirst.data.synth import SynthConfig, SynthSequence

    cfg = SynthConfig(height=96, width=128, targets=(2, 2), background="cloud", scr=(5, 8), sizes=(1.0, 1.5),
                      noise=0.03, seed=1)
    tr = Tracker(TrackerConfig(gate=6, m=3, n=5)) if track else None
    fa = hits = total = 0
    for frame, mask in SynthSequence(cfg, frames):
        t = _tophat(frame, 3.0)
        if tr is not None:
            t = t.select(tr.update(t)[0])
        gt = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)[3][1:]
        d = np.linalg.norm(t.centroids[:, None] - gt[None], axis=2) if len(t) else np.zeros((0, len(gt)))
        fa += int((d.min(1) > 3).sum()) if len(t) else 0
        hits += int((d.min(0) <= 3).sum()) if len(t) else 0
        total += len(gt)
    return fa, hits / total


def test_tracking_cuts_false_alarms_on_noisy_sequence(capsys):
    fa_raw, pd_raw = _false_alarms_and_pd(track=False)
    fa_trk, pd_trk = _false_alarms_and_pd(track=True)
    with capsys.disabled():
        print(f"\n[tracker] 100 noisy frames, 2 targets: false alarms {fa_raw} -> {fa_trk} "
              f"({100 * (1 - fa_trk / max(fa_raw, 1)):.0f}% fewer), Pd {pd_raw:.3f} -> {pd_trk:.3f}")
    assert fa_raw > 500  # the detector is noisy on purpose
    assert fa_trk < 0.2 * fa_raw
    assert pd_trk >= pd_raw - 0.03  # only the m-1 confirmation frames are lost


def test_tracker_config_refuses_what_cannot_track():
    assert TrackerConfig(m=2, n=4).confirm == "2/4"
    for bad in ({"m": 0}, {"m": 6}, {"m": 2.0}, {"gate": 0}, {"gate": float("nan")}, {"gate": float("inf")},
                {"max_missed": -1}, {"method": "closest"}):
        with pytest.raises(EdgeirstError):
            TrackerConfig(**bad)


def test_confirm_option_reads_m_of_n_and_refuses_the_impossible():
    assert CONFIRM.convert("3/5", None, None) == (3, 5) and CONFIRM.convert(" 1 / 1 ", None, None) == (1, 1)
    for bad in ("3", "a/b", "0/5", "6/5", "3/5/7"):
        with pytest.raises(click.BadParameter, match="M/N"):
            CONFIRM.convert(bad, None, None)
