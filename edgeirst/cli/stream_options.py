"""The options ``run`` and ``deploy`` share, and the one type each becomes.

How a stream is run (``--threshold``, ``--track``, ``--confirm``, ``--gate``, ``--fixed-size``,
``--agc``) becomes a ``RunConfig`` with its ``TrackerConfig``; how a TensorRT engine is built
(``--workspace-mb``, ``--dla-core``) goes into ``BuildOptions``. ``deploy`` writes those same
objects into the bundle's ``edgeirst.toml`` and the launcher reads them back, so a setting has
one form from the command line to the device. Defaults are read from the types, never written here.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import click

from edgeirst.cli.options import POSITIVE_FLOAT, PROBABILITY
from edgeirst.runtime.engine_build import BuildOptions
from edgeirst.runtime.pipeline import RunConfig
from edgeirst.runtime.tracker import TrackerConfig


class ConfirmType(click.ParamType):
    """Tracker confirmation ``M/N`` (M detections in the last N frames) -> ``(m, n)``, 1 <= M <= N."""

    name = "M/N"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            self.fail(f"{value!r} is not M/N with 1 <= M <= N, e.g. 3/5", param, ctx)
        return int(m.group(1)), int(m.group(2))


class AgcType(click.ParamType):
    """16-bit automatic gain percentiles ``LOW,HIGH`` -> ``(low, high)``, 0 <= LOW < HIGH <= 100."""

    name = "LOW,HIGH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            lo, hi = (float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not LOW,HIGH percentiles, e.g. 0.5,99.5", param, ctx)
        if not 0 <= lo < hi <= 100:  # also refuses nan
            self.fail(f"{value!r}: the percentiles must satisfy 0 <= LOW < HIGH <= 100", param, ctx)
        return lo, hi


CONFIRM, AGC = ConfirmType(), AgcType()
_TRACKER = TrackerConfig()
RUN_KEYS = ("threshold", "track", "confirm", "gate", "fixed_size", "agc")


def run_options(f: Callable) -> Callable:
    """The ``RunConfig`` options, for ``run`` and ``deploy``."""
    for option in reversed([
        click.option("--threshold", type=PROBABILITY, help="Score threshold in [0, 1] (default: the model's)."),
        click.option("--track/--no-track", default=RunConfig.track, show_default=True,
                     help="Report only targets confirmed by the temporal tracker, with track IDs."),
        click.option("--confirm", type=CONFIRM, default=_TRACKER.confirm, show_default=True,
                     help="Tracker M/N: confirm after M hits in N frames."),
        click.option("--gate", type=POSITIVE_FLOAT, default=_TRACKER.gate, show_default=True,
                     help="Tracker gate: largest centroid jump in pixels."),
        click.option("--fixed-size", is_flag=True, default=None,
                     help="Scale frames to the model's input size instead of padding (implied with several "
                          "sources and for a static model)."),
        click.option("--agc", type=AGC, help="16-bit automatic gain percentiles (default 0.5,100: the maximum is "
                                             "kept, small hot targets stay visible)."),
    ]):
        f = option(f)
    return f


def pop_run_config(params: dict[str, Any], **more: Any) -> RunConfig:
    """The ``RunConfig`` of the options ``run_options`` added (taken out of ``params``)."""
    p = {k: params.pop(k) for k in RUN_KEYS}
    m, n = p["confirm"]
    return RunConfig(threshold=p["threshold"], track=p["track"], fixed_size=p["fixed_size"], agc=p["agc"],
                     tracker=TrackerConfig(gate=p["gate"], m=m, n=n), **more)


def engine_options(f: Callable) -> Callable:
    """The ``BuildOptions`` options ``run`` and ``deploy`` share."""
    for option in reversed([
        click.option("--dla-core", type=click.IntRange(min=0),
                     help="TensorRT engine build: run on this DLA core (GPU fallback on)."),
        click.option("--workspace-mb", type=click.IntRange(min=16), default=BuildOptions.workspace_mb,
                     show_default=True, help="TensorRT engine build: workspace limit in MiB."),
    ]):
        f = option(f)
    return f
