"""End-to-end stream FPS against engine-only FPS: how much of a model's speed the pipeline keeps.

For each model, interleaved over several rounds (every measurement sees the same machine states):
the engine alone (``backend.infer`` on one prepared frame, back to back after 5 untimed runs, as
`bench` times it) and ``edgeirst run``'s library form (its clock starts after the pipeline's own
2 untimed warm-up inferences) on a 256x256 ``synthetic://`` source and on a 256x256 video
file written from it (mp4v), each ``--frames`` frames. The ratio end-to-end / engine-only is the
share of the engine's speed a user keeps. Run it with training paused:

    benchmarks/quiet.sh python benchmarks/pipeline_speed.py --md benchmarks/results/pipeline-speed.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgeirst.io import write_text
from edgeirst.machine import describe, machine_stamp
from edgeirst.preprocess import prepare
from edgeirst.runtime.backends import BackendOptions
from edgeirst.runtime.pipeline import RunConfig, run_stream
from edgeirst.runtime.sinks import SinkOptions
from edgeirst.runtime.sources import open_source

SYNTHETIC = "synthetic://?seed=0&targets=2&size=256x256&fps=1000"


def write_video(path: Path, frames: int) -> Path:
    """The synthetic source's first ``frames`` frames as an mp4v file (8-bit grey as BGR)."""
    cap = open_source(SYNTHETIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (256, 256))
    try:
        for _ in range(frames):
            f = cap.read()
            img = f.image if f.image.dtype == np.uint8 else (f.image >> 8).astype(np.uint8)
            writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
        cap.stop()
    return path


def engine_fps(model: str, n: int) -> float:
    with BackendOptions().load(model) as be:
        image = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
        x = prepare(image, be.meta, fixed=not be.meta.dynamic)[0][None]
        for _ in range(5):
            be.infer(x)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            be.infer(x)
            times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def stream_fps(model: str, source: str, frames: int) -> float:
    summary = run_stream(model, [source], BackendOptions(), SinkOptions(),
                         RunConfig(max_frames=frames, report_every=0), log=lambda _: None)
    return summary.fps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="light-sgmtlm-tiny,default-int8")
    ap.add_argument("--frames", type=int, default=300, help="frames per end-to-end run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", help="write the table here")
    args = ap.parse_args(argv)
    models = args.models.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgeirst-pipeline-speed-") as tmp:
        video = str(write_video(Path(tmp) / "synthetic-256.mp4", args.frames))
        sources = {"synthetic 256x256": SYNTHETIC, "video 256x256": video}
        for r in range(args.rounds):
            for model in models:
                results.setdefault(model, {"engine": []})["engine"].append(engine_fps(model, args.frames))
                for name, src in sources.items():
                    results[model].setdefault(name, []).append(stream_fps(model, src, args.frames))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    lines = [f"Pipeline speed on {describe(machine_stamp())}, `python benchmarks/pipeline_speed.py "
             f"{' '.join(argv if argv is not None else sys.argv[1:])}`: median over {args.rounds} interleaved rounds, "
             f"{args.frames} frames per end-to-end run, onnxruntime on the CPU, default threads.", "",
             "| model | engine-only FPS | synthetic 256x256 FPS (ratio) | video 256x256 FPS (ratio) "
             "| ratios per round, synthetic | ratios per round, video |",
             "|---|---|---|---|---|---|"]
    for model, v in results.items():
        eng = statistics.median(v["engine"])
        names = ("synthetic 256x256", "video 256x256")
        cells = [f"{statistics.median(v[s]):.1f} ({statistics.median(v[s]) / eng:.2f}x)" for s in names]
        rounds = [", ".join(f"{f / e:.2f}" for f, e in zip(v[s], v["engine"])) for s in names]
        lines.append(f"| `{model}` | {eng:.1f} | {cells[0]} | {cells[1]} | {rounds[0]} | {rounds[1]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
