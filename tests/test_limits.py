"""Values and resources a user can push too far: nan and infinity in every float a command takes
(options, ranges, URL parameters), thread counts, frames and images larger than the memory the
process may really use. Each ends in one line, or, for one frame of a stream, in a skipped frame."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import click
import cv2
import numpy as np
import pytest

from edgeirst.cli import cli
from edgeirst.cli.options import MAX_THREADS, FiniteFloatRange, parse_range
from edgeirst.errors import EdgeirstError, finite_number
from test_hardening import one_error_line
from test_runtime_helpers import REPO, read_jsonl, run_cli

SHIPPED_TINY = REPO / "edgeirst" / "weights" / "light-sgmtlm-tiny.onnx"

def _commands(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def test_every_float_option_refuses_nan_and_infinity():
    plain, checked = [], 0
    for path, cmd in _commands(cli):
        for p in cmd.params:
            if isinstance(p.type, click.types.FloatParamType):  # FloatRange too
                if isinstance(p.type, FiniteFloatRange):
                    checked += 1
                else:
                    plain.append(f"{' '.join(path)} {p.opts[0]}")
    assert plain == [] and checked >= 10


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_the_one_finite_check(text):
    with pytest.raises(EdgeirstError, match="finite"):
        finite_number(text, "x")
    with pytest.raises(click.BadParameter, match="finite"):
        FiniteFloatRange(0, 1).convert(text, None, None)
    assert finite_number("0.25", "x") == 0.25


def test_ranges_refuse_a_number_too_large_to_be_finite():
    with pytest.raises(EdgeirstError, match="--scr"):
        parse_range("3-" + "9" * 400, "--scr")
    assert parse_range("3-8", "--scr") == (3.0, 8.0)


@pytest.mark.parametrize("args, words", [
    (["run", "default", "--source", "synthetic://", "--threshold", "nan"], "--threshold"),
    (["eval", "default", "--data", ".", "--threshold", "nan"], "--threshold"),
    (["train", "mshnet", "--data", ".", "--lr", "inf"], "--lr"),
    (["train", "mshnet", "--data", ".", "--ema", "nan"], "--ema"),
    (["prune", "default", "--target-params", "inf", "--out", "p.pt"], "--target-params"),
    (["run", "default", "--source", "synthetic://?scr=nan", "--max-frames", "1"], "scr"),
    (["run", "default", "--source", "synthetic://?fps=inf", "--max-frames", "1"], "fps"),
    (["data", "synth", "/tmp/edgeirst-never-written", "--images", "1", "--scr", "1-" + "9" * 400], "--scr"),
    (["run", "default", "--source", "synthetic://", "--agc", "nan,99"], "--agc"),
    (["quantize", "default", "--out", "q.onnx", "--max-drop", "iou=nan"], "--max-drop"),
])
def test_nan_and_infinity_are_one_line(args, words):
    line = one_error_line(run_cli(*args, timeout=120))
    assert words in line and any(w in line for w in ("finite", "percentiles", "MIN-MAX", "METRIC=VALUE")), line


# -- threads and memory --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["run", "default", "--source", "synthetic://", "--threads", "100000"],
                                  ["bench", "--threads", "100000"],
                                  ["train", "mshnet", "--data", ".", "--workers", "100000"]])
def test_thread_counts_are_bounded_by_the_machine(args):
    line = one_error_line(run_cli(*args, timeout=120))
    assert "100000" in line and f"<={MAX_THREADS}" in line


def _address_space(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def test_the_memory_budget_reads_the_process_limit():
    code = ("from edgeirst.preprocess import available_memory; import resource; "
            "print(available_memory(), resource.getrlimit(resource.RLIMIT_AS)[0])")
    free = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[0])
    limited = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             preexec_fn=_address_space(3 << 30)).stdout.split()
    assert int(limited[1]) == 3 << 30 and int(limited[0]) < min(free, 3 << 30)


def _frames(folder: Path, big_hw=(3000, 12000)) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    small = rng.integers(20, 60, (64, 64), dtype=np.uint8)
    cv2.imwrite(str(folder / "0.png"), small)
    cv2.imwrite(str(folder / "1.png"), rng.integers(20, 60, big_hw, dtype=np.uint8))
    cv2.imwrite(str(folder / "2.png"), small)
    return folder


def test_a_frame_that_cannot_get_its_memory_is_skipped_and_the_run_goes_on(tmp_path):
    import onnx

    m = onnx.load(str(SHIPPED_TINY))  # a model that understates its memory: the budget lets the frame through
    meta = json.loads({p.key: p.value for p in m.metadata_props}["edgeirst"])
    onnx.helper.set_model_props(m, {"edgeirst": json.dumps({**meta, "memory_per_pixel": 1.0})})
    onnx.save(m, str(tmp_path / "liar.onnx"))
    p = run_cli("run", tmp_path / "liar.onnx", "--source", _frames(tmp_path / "f"), "--no-track", "-q", "--json",
                "--jsonl", tmp_path / "o.jsonl", timeout=120, preexec_fn=_address_space(2500 << 20))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "12000x3000" in errors[0] and "skipped" in errors[0] and "MiB" in errors[0]
    summary = json.loads(p.stdout)
    assert summary["frames"] == 2 and summary["frames_skipped"] == 1 and summary["error"] is None
    assert [r["frame"] for r in read_jsonl(tmp_path / "o.jsonl")] == [0, 2]


def test_eval_refuses_an_image_over_the_budget_and_takes_a_long_thin_one(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, hw in (("big", (3000, 12000)), ("line", (1, 100000))):
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.full(hw, 40, np.uint8))
        cv2.imwrite(str(root / "masks" / f"{name}_pixels0.png"), np.zeros(hw, np.uint8))
        (root / f"{name}.txt").write_text(name + "\n")
    line = one_error_line(run_cli("eval", SHIPPED_TINY, "--data", root, "--split", root / "big.txt", "-q",
                                  timeout=120, preexec_fn=_address_space(2500 << 20)))
    assert "image big is 12000x3000" in line and "GiB" in line
    p = run_cli("eval", SHIPPED_TINY, "--data", root, "--split", root / "line.txt", "-q", "--json",
                timeout=60, preexec_fn=_address_space(2500 << 20))
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["images"] == 1
