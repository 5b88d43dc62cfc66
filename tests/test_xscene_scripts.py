"""The cross-scene benchmark scripts end a user's mistake in one error line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["xscene.py", "xscene_confidence.py"])
def test_an_unknown_model_is_one_error_line(script):
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "no-such-model"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "no-such-model" in lines[0], p.stderr
