"""Progress: a tqdm bar on a terminal, plain whole lines anywhere else (logs, CI, pipes)."""

from __future__ import annotations

import io
import subprocess
import sys

from tqdm import tqdm

import edgeirst.progress as progress
from edgeirst.progress import PlainProgress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_tqdm_anything_else_plain_lines():
    assert type(progress_bar(range(3), file=Terminal())) is tqdm
    assert type(progress_bar(range(3), file=io.StringIO())) is PlainProgress


def test_plain_lines_every_tenth_and_at_the_end(monkeypatch):
    out = io.StringIO()
    with progress_bar(total=100, desc="eval", unit="img", file=out, mininterval=0) as bar:
        for _ in range(100):
            bar.update()
            bar.set_postfix_str("x")  # redraw requests do not add lines
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and out.getvalue().endswith("\n")
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(0, 101, 10)]
    assert lines[-1].startswith("eval: 100% 100/100")


def test_plain_lines_every_30_s_without_a_total(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    bar = progress_bar(desc="train", file=out, mininterval=0)
    for _ in range(10):
        now[0] += 10.0
        bar.update()
    bar.close()
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["0it", "3it", "6it", "9it", "10it"]


def test_a_command_writing_to_a_pipe_prints_lines(tmp_path):
    res = subprocess.run([sys.executable, "-m", "edgeirst", "data", "synth", str(tmp_path / "s"), "--images", "3"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and "synth: 100% 3/3" in res.stderr
