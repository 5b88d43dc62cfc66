"""Why INT8 gains little on this CPU, and what the graph can fix: FP32 vs INT8 variants of one
model, onnxruntime CPU latency measured interleaved in one run, at the model's input size, batch 1.

    python benchmarks/quantize_speed.py [--model default] [--data ../shared/data/sirst]
        [--threads 1,2] [--rounds 8] [--reps 10] [--profile] [--keep DIR] [--only a,b]

Run it inside benchmarks/quiet.sh on the development VM. Variants (all calibrated on the same
real images):

* ``fp32``            the shipped model, onnxruntime defaults (ORT_ENABLE_ALL)
* ``fp32-ext``        the same at ORT_ENABLE_EXTENDED (no NCHWc layout), for fairness
* ``fp32-rewritten``  the FP32 model with edgeirst's exact float rewrites (stacked sibling convs,
  channel reductions as Conv / Split+Max), at ALL and (``-ext``) EXTENDED: what the rewrites
  alone buy, so that the INT8 gain is not credited with them
* ``int8-all-u8s8``   every op quantize_static supports, uint8 activations (the usual recipe)
* ``int8-all-s8s8``   the same with symmetric int8 activations (TensorRT's layout)
* ``int8-fast-convs`` only the convolutions MLAS runs on its fast int8 kernel (edgeirst's policy), ORT_ENABLE_ALL
* ``int8-fast-convs-ext``  the same at ORT_ENABLE_EXTENDED
* ``edgeirst``        ``edgeirst quantize --target cpu`` (fast convs + stacked sibling convs,
  its own session hint), loaded through edgeirst's onnxruntime backend

``--profile`` adds per-op-type kernel times (SessionOptions.enable_profiling, 1 thread) for
each variant: where the float islands and the Q/DQ passes go.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_variants(model: str, data: str, split: str, calib: int, folder: Path) -> dict[str, tuple[Path, dict]]:
    """name -> (onnx file, session hints) for every variant."""
    from edgeirst.quantize import QuantConfig, graph, policy, quantize_model
    from edgeirst.quantize.calibration import collect_ranges, save_ranges
    from edgeirst.runtime.calibration import calibration_inputs
    from edgeirst.quantize.int8 import quantize_int8
    from edgeirst.runtime.backends import resolve_model

    src = resolve_model(model, "onnxruntime")
    _, meta = graph.load_edgeirst_onnx(src)
    pre = graph.preprocess(src, folder / "fp32.pre.onnx")
    nodes = graph.describe_nodes(graph.load_edgeirst_onnx(src)[0], meta)
    ranges = collect_ranges(pre, calibration_inputs(data, split, calib, meta), "minmax", progress=False)
    cache = save_ranges(ranges, folder / "ranges.json")
    ops, exclude, _ = policy.select(nodes, "cpu")
    from edgeirst.quantize.model import _cpu_rewrites

    rewritten, *_ = _cpu_rewrites(pre, nodes, meta, folder / "fp32_rewritten.onnx")
    out = {"fp32": (src, {}), "fp32-ext": (src, {"graph_optimization_level": "extended"}),
           "fp32-rewritten": (rewritten, {}), "fp32-rewritten-ext": (rewritten, {"graph_optimization_level": "extended"})}
    out["int8-all-u8s8"] = (quantize_int8(pre, folder / "all_u8s8.onnx", cache, "minmax", "cpu", [], []), {})
    out["int8-all-s8s8"] = (quantize_int8(pre, folder / "all_s8s8.onnx", cache, "minmax", "tensorrt", [], []), {})
    fast = quantize_int8(pre, folder / "fast.onnx", cache, "minmax", "cpu", ops, exclude)
    out["int8-fast-convs"] = (fast, {})
    out["int8-fast-convs-ext"] = (fast, {"graph_optimization_level": "extended"})
    r = quantize_model(src, folder / "edgeirst.onnx", QuantConfig(data=data, split=split, calib_images=calib,
                                                                 val_split=None), progress=False)
    out["edgeirst"] = (r.path, None)  # None: through edgeirst's backend, hints from the model's metadata
    return out


def session(path: Path, hints: dict | None, threads: int, profile: bool = False):
    import onnxruntime as ort

    from edgeirst.runtime.backends.onnxruntime import session_options

    if hints is None:
        from edgeirst.meta import ModelMeta

        text = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta() \
            .custom_metadata_map["edgeirst"]
        hints = ModelMeta.from_json(text).quant.get("onnxruntime", {})
    so = session_options(ort, threads, hints)
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"edgeirst-prof-{os.getpid()}")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(hints.get("disabled_optimizers", [])))


def time_variants(variants: dict, x: np.ndarray, threads: list[int], rounds: int, reps: int) -> dict:
    sessions = {(v, t): session(p, h, t) for v, (p, h) in variants.items() for t in threads}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, {"images": x})
    times = {k: [] for k in sessions}
    for _ in range(rounds):  # interleaved: every variant sees the same machine states
        for k, s in sessions.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                s.run(None, {"images": x})
                times[k].append((time.perf_counter() - t0) * 1e3)
    return times


def profile_ops(variants: dict, x: np.ndarray, runs: int = 20) -> dict[str, dict[str, float]]:
    """variant -> op type -> mean kernel ms per run (1 thread)."""
    out = {}
    for v, (p, h) in variants.items():
        s = session(p, h, 1, profile=True)
        for _ in range(runs):
            s.run(None, {"images": x})
        events = json.loads(Path(s.end_profiling()).read_text())
        acc = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                acc[e["args"]["op_name"]] += e["dur"] / runs / 1e3
        out[v] = dict(acc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=os.environ.get("EDGEIRST_SIRST", str(REPO.parent / "shared" / "data" / "sirst")))
    ap.add_argument("--split", default="train", help="calibration split")
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the variant files in this folder (and reuse them when it already holds a set)")
    ap.add_argument("--only", default=None, help="comma-separated variants to time (fp32 is always included)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from edgeirst.data import SirstDataset
    from edgeirst.preprocess import prepare
    from edgeirst.quantize import graph
    from edgeirst.runtime.backends import resolve_model

    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="edgeirst-qspeed-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        index = folder / "variants.json"
        if args.keep and index.is_file():  # built by an earlier run: time only
            variants = {k: (Path(p), h) for k, (p, h) in json.loads(index.read_text()).items()}
        else:
            variants = build_variants(args.model, args.data, args.split, args.calib_images, folder)
            index.write_text(json.dumps({k: (str(p), h) for k, (p, h) in variants.items()}))
        if args.only:
            keep = {"fp32", *args.only.split(",")}
            variants = {k: v for k, v in variants.items() if k in keep}
        _, meta = graph.load_edgeirst_onnx(resolve_model(args.model, "onnxruntime"))
        frame = SirstDataset(args.data, "val")[0].image  # a real frame, letterboxed to the input size
        x = prepare(frame, meta, fixed=True)[0][None]
        times = time_variants(variants, x, threads, args.rounds, args.reps)
        prof = profile_ops(variants, x) if args.profile else {}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, onnxruntime " \
              f"{__import__('onnxruntime').__version__}, {stamp}"
    rows = []
    for t in threads:
        base = float(np.median(times[("fp32", t)]))
        for v in variants:
            med = float(np.median(times[(v, t)]))
            rows.append({"variant": v, "threads": t, "median_ms": med, "p10_ms": float(np.percentile(times[(v, t)], 10)),
                         "ratio": med / base})
    if args.json:
        print(json.dumps({"model": args.model, "input": list(x.shape), "machine": machine, "rows": rows,
                          "profile": prof}))
        return
    print(f"{args.model} at {x.shape[2]}x{x.shape[3]}, batch 1; {machine}; {args.rounds} rounds x {args.reps} runs, interleaved")
    print("| variant | threads | median ms | p10 ms | vs fp32 |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['threads']} | {r['median_ms']:.1f} | {r['p10_ms']:.1f} | {r['ratio']:.2f}x |")
    if prof:
        ops = sorted({o for p in prof.values() for o in p}, key=lambda o: -max(p.get(o, 0) for p in prof.values()))
        print("\nkernel ms per run by op type (1 thread, profiler):")
        print("| op | " + " | ".join(prof) + " |\n|---|" + "---|" * len(prof))
        for o in ops:
            print(f"| {o} | " + " | ".join(f"{prof[v].get(o, 0):.2f}" for v in prof) + " |")
        print("| total | " + " | ".join(f"{sum(prof[v].values()):.2f}" for v in prof) + " |")


if __name__ == "__main__":
    main()
