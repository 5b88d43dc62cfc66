"""How much of `edgeirst demo`'s own scene a model finds: the demo's synthetic stream (same
generator, seed, size, targets and signal-to-clutter ratios as `edgeirst demo`'s defaults),
scored frame by frame against the generator's masks with the shared Evaluator (Pd, false alarms
per frame), without the tracker.

    python benchmarks/demo_scene.py default [--frames 150] [--scr 3 8] [--by-target] [--json out.json]

``--scr LO HI`` draws the same scene's targets at other signal-to-clutter ratios (``edgeirst demo
--scr LO-HI``). ``--by-target`` says which of the scene's targets the model misses: each target's
shape and SCR and in how many frames a foreground component lies within Pd's 3 px of it (the
generator's centre stands for the mask's centroid; the same greedy matching as Pd).
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
from edgeirst.evaluate import evaluate_backend, predict_sample
from edgeirst.io import write_text
from edgeirst.metrics import components_cropped, match_targets, rasterize_targets
from edgeirst.runtime import load_backend

DEMO = SynthConfig(height=256, width=320, targets=(1, 3), scr=(8.0, 15.0), fps=25.0, seed=0)  # `edgeirst demo`'s scene


@dataclass
class _Frame:
    id: str
    image: np.ndarray
    mask: np.ndarray
    centres: np.ndarray  # Kx2 (x, y) of the scene's targets in this frame


class DemoFrames:
    """The first ``n`` frames of the demo's stream as a dataset (``len``, ``[i]``); ``targets``:
    the scene's targets (shape, SCR; their positions are each frame's ``centres``)."""

    def __init__(self, n: int, cfg: SynthConfig = DEMO) -> None:
        seq = SynthSequence(cfg, frames=n)
        self.items = [_Frame(f"frame{i:04d}", img, mask, np.array([(t.x, t.y) for t in seq.targets]).reshape(-1, 2))
                      for i, (img, mask) in enumerate(seq)]
        self.targets = seq.targets

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _Frame:
        return self.items[i]


def by_target(backend, frames: DemoFrames) -> list[dict]:
    """Per target of the scene: its shape, SCR and in how many frames the model finds it (the
    evaluation's foreground and Pd's greedy matching, target by target)."""
    found = np.zeros(len(frames.targets), int)
    for f in frames.items:
        pred = predict_sample(backend, f)
        prob = pred.prob if pred.prob is not None else rasterize_targets(pred.targets, f.mask.shape)
        _, cents = components_cropped(prob > backend.meta.threshold)
        taken = np.zeros(len(cents), bool)
        for k, c in enumerate(f.centres):
            free = np.flatnonzero(~taken)
            hit = match_targets(c[None], cents[free])
            if hit.any():
                taken[free[np.argmax(hit)]] = True
                found[k] += 1
    return [{"target": k, "sigma_px": [round(t.sx, 2), round(t.sy, 2)], "scr": round(t.scr, 2),
             "found": int(found[k]), "frames": len(frames)} for k, t in enumerate(frames.targets)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="default")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--scr", type=float, nargs=2, metavar=("LO", "HI"), default=DEMO.scr,
                    help="targets' signal-to-clutter ratios (default: the demo's, 8 15)")
    ap.add_argument("--by-target", action="store_true", help="say in how many frames each of the scene's targets is found")
    ap.add_argument("--json", help="write the metrics here")
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error(f"--frames: need at least 1, got {args.frames}")
    if not 0 < args.scr[0] <= args.scr[1]:
        ap.error(f"--scr: need 0 < LO <= HI, got {args.scr[0]:g} {args.scr[1]:g}")
    frames = DemoFrames(args.frames, dataclasses.replace(DEMO, scr=tuple(args.scr)))
    with load_backend(args.model) as be:
        m, _ = evaluate_backend(be, frames, progress=False)
        targets = by_target(be, frames) if args.by_target else None
    found = round(m["pd"] * m["targets"])
    print(f"{args.model}: {found} of {m['targets']} targets in {m['images']} frames at SCR {args.scr[0]:g}-{args.scr[1]:g} (Pd {m['pd']:.3f}), "
          f"{m['fa_per_frame']:.3f} false alarms per frame, IoU {m['iou']:.3f}")
    for t in targets or ():
        print(f"  target {t['target']}: PSF sigma {t['sigma_px'][0]:g} x {t['sigma_px'][1]:g} px, SCR {t['scr']:g}: "
              f"found in {t['found']} of {t['frames']} frames")
    if args.json:
        extra = {"by_target": targets} if targets is not None else {}
        write_text(args.json, json.dumps({"model": args.model, "scr": list(args.scr), **m, **extra}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EdgeirstError, OSError) as e:  # an unknown model, an unwritable --json: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
