"""MTUNet's headline claim, measured: one shared-backbone multi-task network against its two
single-task networks run back to back.

The paper reports 16.8 ms for ``mtunet`` against 29.4 ms for ``mtunet-det`` + ``mtunet-seg``
on an RTX 3070 (1.75x). The same comparison for the SIWD-backbone variant uses
``mtunet-siwd`` with one head (``mtunet-siwd[det]``, ``mtunet-siwd[seg]``: the registry has
only the two-head form). Ratio = (det + seg) / joint, from the medians of one interleaved run;
the spread is the range of the same ratio computed round by round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeirst.bench.rows import Row

# joint model -> its two single-task forms
MTL_SETS: dict[str, tuple[str, str]] = {
    "mtunet": ("mtunet-det", "mtunet-seg"),
    "mtunet-siwd": ("mtunet-siwd[det]", "mtunet-siwd[seg]"),
}
PAPER = {"mtunet": {"joint_ms": 16.8, "singles_ms": 29.4, "ratio": round(29.4 / 16.8, 2), "device": "RTX 3070",
                    "size": 320}}


def mtl_models() -> list[str]:
    """Every model the ratios need, joint models first."""
    return list(MTL_SETS) + [s for pair in MTL_SETS.values() for s in pair]


def attach_mtl(rows: list[Row]) -> list[dict[str, Any]]:
    """For every backend/precision/size where a joint model and both its single-task forms were
    measured, set ``mtl`` on the joint row and return the ratios."""
    index = {(r.model, r.backend, r.precision, r.size): r for r in rows
             if r.mode == "model" and r.latency_ms is not None}
    out = []
    for (model, backend, precision, size), joint in list(index.items()):
        if model not in MTL_SETS:
            continue
        singles = [index.get((s, backend, precision, size)) for s in MTL_SETS[model]]
        if any(s is None for s in singles):
            continue
        singles_ms = sum(s.latency_ms for s in singles)
        per_round = [sum(v) / j for *v, j in zip(*(s.rounds_ms for s in singles), joint.rounds_ms) if j > 0]
        entry = {"joint": model, "singles": list(MTL_SETS[model]), "backend": backend, "precision": precision,
                 "size": size, "joint_ms": round(joint.latency_ms, 3),
                 "singles_ms": [round(s.latency_ms, 3) for s in singles], "sum_ms": round(singles_ms, 3),
                 "ratio": round(singles_ms / joint.latency_ms, 3),
                 "ratio_rounds": [round(float(np.min(per_round)), 3), round(float(np.max(per_round)), 3)]
                 if per_round else None,
                 "paper": PAPER.get(model)}
        joint.mtl = entry
        out.append(entry)
    return out


def describe_mtl(entry: dict[str, Any]) -> str:
    """One line: ``mtunet-det + mtunet-seg = 812.1 + 700.3 = 1512.4 ms vs mtunet 830.2 ms: 1.82x ...``."""
    a, b = entry["singles"]
    da, db = entry["singles_ms"]
    spread = entry["ratio_rounds"]
    text = (f"{a} + {b} = {da:.1f} + {db:.1f} = {entry['sum_ms']:.1f} ms vs {entry['joint']} {entry['joint_ms']:.1f} ms: "
            f"{entry['ratio']:.2f}x" + (f" (rounds {spread[0]:.2f}-{spread[1]:.2f}x)" if spread else "")
            + f" [{entry['backend']} {entry['precision']} {entry['size']}x{entry['size']}]")
    paper = entry.get("paper")
    if paper:
        text += (f"; paper: {paper['singles_ms']} vs {paper['joint_ms']} ms = {paper['ratio']:.2f}x on an "
                 f"{paper['device']} at {paper['size']}")
    return text


__all__ = ["MTL_SETS", "attach_mtl", "describe_mtl", "mtl_models"]
