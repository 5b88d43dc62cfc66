"""Values and resources a user can push too far: nan and infinity in every float a command takes
(options, ranges, URL parameters), thread counts, frames and images larger than the memory the
process may really use. Each ends in one line, or, for one frame of a stream, in a skipped frame."""

from __future__ import annotations

import click
import pytest

from edgeirst.cli import cli
from edgeirst.cli.options import FiniteFloatRange, parse_range
from edgeirst.errors import EdgeirstError, finite_number
from test_hardening import one_error_line
from test_runtime_helpers import run_cli

OTHER_DEVELOPER = {"deploy"}  # converted where its options are being rewritten


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
        if path[0] in OTHER_DEVELOPER:
            continue
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
