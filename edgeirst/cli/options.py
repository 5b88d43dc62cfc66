"""Option parsing shared by several commands."""

from __future__ import annotations

import ast

from edgeirst.errors import EdgeirstError


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
