"""Shipped models side by side: params, GMACs, val metrics (from the model's own metadata) and
onnxruntime CPU latency, measured interleaved on the same real frames at native resolution.

    python benchmarks/shipped_models.py [--data ../shared/data/sirst] [--rounds 5] [--threads 0] [--json]

Timings on these shared machines drift 20-35% within tens of seconds (docs/measured-pitfalls.md): models are
run in alternation, frame by frame, and we report medians and the ratio to the fastest.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np

from edgeirst.data import SirstDataset
from edgeirst.preprocess import prepare
from edgeirst.runtime import load_backend
from edgeirst.weights import shipped_model, shipped_names

REPO = Path(__file__).resolve().parents[1]


def complexity(name: str, size: int = 320) -> tuple[int, float]:
    """(params, GMACs at size x size, 1 channel) of a shipped checkpoint; needs torch."""
    from edgeirst.checkpoint import load_checkpoint
    from edgeirst.models.complexity import count_macs, count_params

    model, meta, _ = load_checkpoint(shipped_model(name, "pt"))
    return count_params(model), count_macs(model, size=size, in_chans=meta.in_chans) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "sirst"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--frames", type=int, default=40, help="val frames per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    names = shipped_names(with_aliases=False)
    backends = {n: load_backend(n, "onnxruntime", threads=args.threads) for n in names}
    ds = SirstDataset(args.data, args.split)
    frames = [ds[i].image for i in range(min(args.frames, len(ds)))]
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        for img in frames:
            for n, b in backends.items():  # interleaved: every model sees the same machine state
                x, _ = prepare(img, b.meta)
                t = time.perf_counter()
                b.infer(x[None])
                times[n].append((time.perf_counter() - t) * 1e3)
    rows = []
    for n, b in backends.items():
        params, gmacs = complexity(n)
        m = b.meta.metrics
        rows.append({"name": n, "model": b.meta.name, "kwargs": b.meta.kwargs, "params": params, "gmacs_320": round(gmacs, 3),
                     "median_ms": round(float(np.median(times[n])), 2), "p90_ms": round(float(np.percentile(times[n], 90)), 2),
                     "epochs": b.meta.train.get("epochs"), "train_split": b.meta.train.get("split"),
                     **{k: m.get(k) for k in ("iou", "niou", "pd", "fa", "ap50", "ap")}})
        b.close()
    fastest = min(r["median_ms"] for r in rows)
    for r in rows:
        r["latency_ratio"] = round(r["median_ms"] / fastest, 2)
    stamp = f"{platform.node()} {platform.machine()}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    if args.json:
        print(json.dumps({"machine": stamp, "rows": rows}, indent=1))
        return
    print(f"{len(frames)} {args.split} frames x {args.rounds} rounds, native resolution, onnxruntime CPU; {stamp}")
    print("| name | model | params | GMACs@320 | median ms | ratio | IoU | nIoU | Pd | Fa (1e-6) | AP50 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['model']} {r['kwargs']} | {r['params'] / 1e6:.3f}M | {r['gmacs_320']:.2f} | {r['median_ms']:.1f} | "
              f"{r['latency_ratio']:.2f} | {r['iou']:.4f} | {r['niou']:.4f} | {r['pd']:.4f} | {r['fa'] * 1e6:.1f} | {r['ap50']:.4f} |")


if __name__ == "__main__":
    main()
