"""Option parsing and click types shared by several commands (one meaning for each option)."""

from __future__ import annotations

import ast
import os
import re

import click

from edgeirst.errors import MAX_SIDE, EdgeirstError, finite_number, parse_range  # noqa: F401 (re-exported)


def parse_kv(pairs: tuple[str, ...]) -> dict:
    """``("width=0.5", "deep_supervision=False")`` -> ``{"width": 0.5, "deep_supervision": False}``."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise EdgeirstError(f"expected KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k.strip()] = v
    return out


def one_or_list(values) -> str | list[str] | None:
    """A repeatable option as configs store it: one value as itself, several as a list, none as None."""
    values = [str(v) for v in values]
    return None if not values else values[0] if len(values) == 1 else values


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses nan and infinity (nan passes every comparison, so a plain
    range would let it through)."""

    def convert(self, value, param, ctx):
        try:
            finite_number(value, "value")
        except EdgeirstError:
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(value, param, ctx)


FINITE_FLOAT = FiniteFloatRange()

# Threads and processes a command may start: a few per core (more only thrash, and 100000 threads
# exhaust memory before anything runs).
MAX_THREADS = 4 * (os.cpu_count() or 1)


def threads(minimum: int = 0) -> click.IntRange:
    """The type of every thread or process count option: ``minimum`` to ``MAX_THREADS``."""
    return click.IntRange(minimum, MAX_THREADS)
POSITIVE_FLOAT = FiniteFloatRange(min=0, min_open=True)
PROBABILITY = FiniteFloatRange(0, 1)


class DeviceType(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (checked here; availability is checked on use)."""

    name = "device"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
            return text
        self.fail(f"{value!r} is not a device; expected auto, cpu, cuda or cuda:N", param, ctx)


DEVICE = DeviceType()




class SizeType(click.ParamType):
    """A frame or input size, the one meaning of ``--size`` in every command: ``N`` (square) or
    ``WxH`` (width x height, as video tools write it: 320x256 is 320 wide), each side 1 to
    ``MAX_SIDE``. Converts to (H, W); what fits in memory is checked where the model is known."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not a size; expected N or WxH, e.g. 256 or 320x256", param, ctx)
        w = int(m.group(1))
        h = int(m.group(2) or m.group(1))
        if h < 1 or w < 1:
            self.fail(f"{value!r}: width and height must be positive", param, ctx)
        if max(h, w) > MAX_SIDE:
            self.fail(f"{value!r}: width and height may be at most {MAX_SIDE}", param, ctx)
        return (h, w)


SIZE = SizeType()
