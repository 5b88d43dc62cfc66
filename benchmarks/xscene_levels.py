"""How a model's hits on the held-apart SIRST-v2 target images depend on the frame's grey levels:
each image as recorded, then with its levels remapped as another camera's gain and offset would
deliver them, scored by the model's peak probability on the target's mask and its foreground
pixels (>= 0.5) in the whole frame (segmentation models). A model that only finds a clear target once its dark sky is
brightened has learnt NUAA-SIRST's levels, not targets.

    python benchmarks/xscene_levels.py default [runs/new/best.pt ...]
    python benchmarks/xscene_levels.py default --pooled   # each part of the cross-scene validation as
        # recorded and with every 8-bit frame's median moved to NUAA val's median (a per-frame offset
        # at inference), with `edgeirst eval`'s metrics
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from edgeirst.data.sirst import open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend, prepare
from edgeirst.runtime import load_backend

from xscene import DATA, PARTS  # noqa: E402  (benchmarks/ is the script's own folder)

REMAPS = {  # 8-bit grey levels -> 8-bit grey levels
    "as recorded": lambda a: a,
    "+60": lambda a: a + 60,
    "x0.5 +100": lambda a: a * 0.5 + 100,
    "x2": lambda a: a * 2,
    "gamma 0.5": lambda a: 255 * (a / 255) ** 0.5,
}


class MedianShifted:
    """A dataset whose 8-bit frames are offset so that each frame's median is ``level``."""

    def __init__(self, ds, level: float) -> None:
        self.ds, self.level = ds, level

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        s = self.ds[i]
        if s.image.dtype != np.uint8:
            return s
        g = s.image.astype(np.float32)
        return dataclasses.replace(s, image=np.clip(g - np.median(g) + self.level, 0, 255).astype(np.uint8))


def pooled(models: list[str], backend: str) -> None:
    nuaa = open_datasets(*PARTS["NUAA val"])
    level = float(np.median([np.median(nuaa[i].image) for i in range(len(nuaa))]))
    print(f"NUAA val's median frame median: {level:g} grey levels")
    print("| model | set | grey levels | IoU | Pd | AP50 | FA per frame |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        with load_backend(model, backend) as be:
            for name, (data, splits) in PARTS.items():
                ds = open_datasets(data, splits)
                for tag, d in (("as recorded", ds), (f"median moved to {level:g}", MedianShifted(ds, level))):
                    m, _ = evaluate_backend(be, d, progress=False)
                    cells = ["-" if m.get(k) is None or m[k] != m[k] else f"{m[k]:.4f}" for k in ("iou", "pd", "ap50")]
                    print(f"| `{model}` | {name} | {tag} | " + " | ".join(cells) + f" | {m['fa_per_frame']:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--pooled", action="store_true", help="the validation's metrics with each frame's median moved")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"error: {DATA} not found (the cross-scene data lives beside the repository)", file=sys.stderr)
        return 2
    if args.pooled:
        pooled(args.models, args.backend)
        return 0
    data, splits = PARTS["scenes val"]
    ds = open_datasets(data, splits)
    print("| model | image | " + " | ".join(REMAPS) + " |")
    print("|---|---|" + "---|" * len(REMAPS))
    for model in args.models:
        hits = dict.fromkeys(REMAPS, 0)
        with load_backend(model, args.backend) as be:
            for k in range(len(ds)):
                s = ds[k]
                if s.image.dtype != np.uint8:
                    continue  # the remaps are in 8-bit grey levels
                g, mask = s.image.astype(np.float32), s.mask > 0
                cells = []
                for name, remap in REMAPS.items():
                    x, _ = prepare(np.clip(remap(g), 0, 255).astype(np.uint8), be.meta)
                    out = be.infer(x[None])
                    if "seg" not in out:
                        print(f"error: {model} has no segmentation map ('seg' output)", file=sys.stderr)
                        return 2
                    prob = out["seg"][0, 0]
                    peak = float(prob[:mask.shape[0], :mask.shape[1]][mask].max())
                    hits[name] += peak >= 0.5
                    cells.append(f"{peak:.2f} / {int((prob >= 0.5).sum())}")
                print(f"| `{model}` | {s.id} | " + " | ".join(cells) + " |", flush=True)
        print(f"| `{model}` | targets hit (peak >= 0.5) | " + " | ".join(str(hits[n]) for n in REMAPS) + " |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EdgeirstError, OSError) as e:  # an unknown model, an unreadable file: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
