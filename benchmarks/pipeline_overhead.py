"""Pipeline overhead: per-stage medians of `edgeirst run` and the share of frame time that is
not inference (capture, preprocess, post-process + tracker, JSONL sink).

    python benchmarks/pipeline_overhead.py                       # tiny MSHNet, 320x256 synthetic
    python benchmarks/pipeline_overhead.py --model m.onnx --source clip.mp4 --frames 300

Without --model a tiny MSHNet (width 0.25, random weights: timing only) is exported to a
temporary ONNX file, which needs torch; the measured run itself never imports it. Frames are
processed at native size (pad-only letterbox), as `edgeirst run` does by default.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import warnings
from pathlib import Path


def export_tiny(path: Path, width: float) -> Path:
    """A randomly initialised MSHNet of ``width`` through the project's exporter (timing only)."""
    from edgeirst.checkpoint import meta_for
    from edgeirst.export import export_onnx
    from edgeirst.models import create_model

    model = create_model("mshnet", width=width).eval()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        return export_onnx(model, meta_for("mshnet", model, kwargs={"width": width}, input_size=(64, 64)), path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="ONNX model (default: export a tiny MSHNet)")
    ap.add_argument("--width", type=float, default=0.25, help="width of the exported tiny MSHNet")
    ap.add_argument("--source", default="synthetic://?seed=0&targets=2&size=320x256")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5, help="frames left out of the medians")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="edgeirst-bench-"))
    model = Path(args.model) if args.model else export_tiny(tmp / "tiny_mshnet.onnx", args.width)

    from edgeirst.runtime import load_backend
    from edgeirst.runtime.pipeline import Pipeline, RunConfig
    from edgeirst.runtime.sinks import JsonlSink
    from edgeirst.runtime.sources import open_source

    backend = load_backend(model, "onnxruntime", **({"threads": args.threads} if args.threads else {}))
    pipe = Pipeline(backend, [open_source(args.source)], [JsonlSink(str(tmp / "out.jsonl"))],
                    RunConfig(max_frames=args.frames + args.warmup, report_every=0))
    summary = pipe.run()
    stages = pipe.times.summary(since=args.warmup)
    med = {s: v["median_ms"] for s, v in stages.items()}
    frame = sum(med.values())
    on_thread = med["preprocess"] + med["postprocess"] + med["sinks"]
    result = {
        "model": str(model) if args.model else f"mshnet width={args.width} (random weights)",
        "source": args.source, "frames": summary.frames - args.warmup, "fps": summary.fps,
        "median_ms": med, "overhead_ms": round(on_thread + med["capture"], 3), "frame_ms": round(frame, 3),
        "overhead_ratio": round((on_thread + med["capture"]) / frame, 4),
        "overhead_ratio_pipeline_thread": round(on_thread / (on_thread + med["infer"]), 4),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['model']} on {args.source}: {result['frames']} frames, {summary.fps:.1f} fps")
    for s, v in stages.items():
        print(f"  {s:<11} median {v['median_ms']:8.2f} ms   p95 {v['p95_ms']:8.2f} ms")
    print(f"  overhead (all but infer) {result['overhead_ms']:.2f} ms of {frame:.2f} ms per frame = "
          f"{100 * result['overhead_ratio']:.1f}%  (pipeline thread only: "
          f"{100 * result['overhead_ratio_pipeline_thread']:.1f}%)")
    print(f"  {result['machine']}, {result['date']}")


if __name__ == "__main__":
    main()
