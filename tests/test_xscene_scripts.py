"""The cross-scene benchmark scripts end a user's mistake in one error line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["xscene.py", "xscene_confidence.py", "demo_scene.py"])
def test_an_unknown_model_is_one_error_line(script):
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "no-such-model"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "no-such-model" in lines[0], p.stderr


def test_demo_scene_scores_the_demo_stream_at_other_contrasts(tmp_path):
    """--scr draws the demo scene's targets at another signal-to-clutter ratio: the same frames'
    clutter and targets, so the counts are over the same targets."""
    import json

    counts = {}
    for scr in (("8", "15"), ("3", "8")):
        out = tmp_path / f"{scr[0]}.json"
        p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "demo_scene.py"), "default", "--frames", "4",
                            "--scr", *scr, "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        m = json.loads(out.read_text())
        assert m["scr"] == [float(s) for s in scr] and m["images"] == 4 and m["targets"] > 0
        assert f"at SCR {scr[0]}-{scr[1]}" in p.stdout
        counts[scr] = m["targets"]
    assert counts[("8", "15")] == counts[("3", "8")]
    # --by-target: every target of the scene, found in as many frames as Pd counts (the generator's
    # centre stands for the mask's centroid, so one frame's worth of slack)
    out = tmp_path / "by.json"
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "demo_scene.py"), "default", "--frames", "4",
                        "--by-target", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = json.loads(out.read_text())
    rows = m["by_target"]
    assert len(rows) * 4 == m["targets"] and all(0 <= r["found"] <= r["frames"] == 4 for r in rows)
    assert abs(sum(r["found"] for r in rows) - round(m["pd"] * m["targets"])) <= 1
    assert p.stdout.count("  target ") == len(rows)
    for args, says in ((["--scr", "9", "3"], "need 0 < LO <= HI, got 9 3"), (["--frames", "0"], "need at least 1, got 0")):
        p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "demo_scene.py"), *args], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].endswith(says), p.stderr
