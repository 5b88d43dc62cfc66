"""How much of `edgeirst demo`'s own scene a model finds: the demo's synthetic stream (same
generator, seed, size, targets and signal-to-clutter ratios as `edgeirst demo`'s defaults),
scored frame by frame against the generator's masks with the shared Evaluator (Pd, false alarms
per frame), without the tracker.

    python benchmarks/demo_scene.py default [--frames 150] [--scr 3 8] [--json out.json]

``--scr LO HI`` draws the same scene's targets at other signal-to-clutter ratios (``edgeirst demo
--scr LO-HI``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass

import numpy as np

from edgeirst.data.synth import SynthConfig, SynthSequence
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend
from edgeirst.io import write_text
from edgeirst.runtime import load_backend

DEMO = SynthConfig(height=256, width=320, targets=(1, 3), scr=(8.0, 15.0), fps=25.0, seed=0)  # `edgeirst demo`'s scene


@dataclass
class _Frame:
    id: str
    image: np.ndarray
    mask: np.ndarray


class DemoFrames:
    """The first ``n`` frames of the demo's stream as a dataset (``len``, ``[i]``)."""

    def __init__(self, n: int, cfg: SynthConfig = DEMO) -> None:
        self.items = [_Frame(f"frame{i:04d}", img, mask) for i, (img, mask) in enumerate(SynthSequence(cfg, frames=n))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _Frame:
        return self.items[i]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="default")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--scr", type=float, nargs=2, metavar=("LO", "HI"), default=DEMO.scr,
                    help="targets' signal-to-clutter ratios (default: the demo's, 8 15)")
    ap.add_argument("--json", help="write the metrics here")
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error(f"--frames: need at least 1, got {args.frames}")
    if not 0 < args.scr[0] <= args.scr[1]:
        ap.error(f"--scr: need 0 < LO <= HI, got {args.scr[0]:g} {args.scr[1]:g}")
    frames = DemoFrames(args.frames, dataclasses.replace(DEMO, scr=tuple(args.scr)))
    with load_backend(args.model) as be:
        m, _ = evaluate_backend(be, frames, progress=False)
    found = round(m["pd"] * m["targets"])
    print(f"{args.model}: {found} of {m['targets']} targets in {m['images']} frames at SCR {args.scr[0]:g}-{args.scr[1]:g} (Pd {m['pd']:.3f}), "
          f"{m['fa_per_frame']:.3f} false alarms per frame, IoU {m['iou']:.3f}")
    if args.json:
        write_text(args.json, json.dumps({"model": args.model, "scr": list(args.scr), **m}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EdgeirstError, OSError) as e:  # an unknown model, an unwritable --json: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
