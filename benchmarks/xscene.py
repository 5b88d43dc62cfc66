"""The cross-scene validation: models scored on NUAA-SIRST val, on held-apart SIRST-v2 scenes
(other sensors and recording sessions), on held-apart background families (empty frames), and on
all of them as one set, with the same metrics as `edgeirst eval` (false alarms per frame included).

The split lists are in benchmarks/xscene/ (see its README.md); the data in ../shared/data.

    python benchmarks/xscene.py default runs/new/best.pt ... [--md benchmarks/results/xscene.md]

``--frames`` also lists, for the held-apart background frames, each frame with a false alarm and
how many (a figure over 20 frames can rest on one or two of them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeirst.data.sirst import open_datasets
from edgeirst.errors import EdgeirstError
from edgeirst.evaluate import evaluate_backend, predict_sample
from edgeirst.io import write_text
from edgeirst.machine import describe, machine_stamp
from edgeirst.runtime import load_backend

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
PARTS = {
    "NUAA val": ([DATA / "sirst"], ["val"]),
    "scenes val": ([DATA / "sirst-v2-scenes"], [str(HERE / "xscene" / "scenes-val.txt")]),
    "backgrounds val": ([DATA / "sirst-v2-scenes"], [str(HERE / "xscene" / "backgrounds-val.txt")]),
    "cross-scene (all)": ([DATA / "sirst", DATA / "sirst-v2-scenes"], ["val", str(HERE / "xscene" / "val.txt")]),
}
COLS = ("iou", "niou", "pd", "fa", "ap50", "fa_per_frame", "fa_frames")


def _cell(v, k: str) -> str:
    if v is None or v != v:
        return "-"
    return f"{v * 1e6:.1f}" if k == "fa" else f"{v:.3f}" if k.startswith("fa_") else f"{v:.4f}"


def _by_frame(backend, dataset) -> str:
    """'frame: count, ...' for the frames of a background-only set where the model finds anything."""
    found = []
    for i in range(len(dataset)):
        s = dataset[i]
        n = len(predict_sample(backend, s).targets)
        if n:
            found.append(f"{Path(s.id).name}: {n}")
    return ", ".join(found) or "none"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--md", help="write the table (markdown) here")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--frames", action="store_true", help="list the background frames with false alarms")
    args = ap.parse_args(argv)
    lines = ["| model | set | images | targets | IoU | nIoU | Pd | Fa 1e-6 | AP50 | FA/frame | FA frames |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        with load_backend(model, args.backend) as be:
            for name, (data, splits) in PARTS.items():
                m, _ = evaluate_backend(be, open_datasets(data, splits), progress=False)
                row = f"| `{model}` | {name} | {m['images']} | {m['targets']} | " + \
                    " | ".join(_cell(m[k], k) for k in COLS) + " |"
                print(row, flush=True)
                lines.append(row)
            if args.frames:
                print(f"false alarms by background frame: {_by_frame(be, open_datasets(*PARTS['backgrounds val']))}")
    if args.md:
        write_text(args.md, f"Measured on {describe(machine_stamp())}.\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EdgeirstError, OSError) as e:  # an unknown model, an unreadable file: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
