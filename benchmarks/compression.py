"""FP32 vs INT8 (and, later, pruned and pruned+INT8) in one table: params, GMACs, file size,
val IoU/nIoU/Pd/Fa/AP50 and onnxruntime CPU latency, latencies measured interleaved.

    python benchmarks/compression.py [--models default,dnanet-w025] [--extra NAME=model.onnx ...]
        [--data ../shared/data/sirst] [--calib-images 64] [--rounds 8] [--out benchmarks/COMPRESSION.md]

Every model (a shipped name or an FP32 .onnx from ``edgeirst export``, e.g. a pruned checkpoint
exported) gets an FP32 row and an INT8 row (``edgeirst quantize --target cpu``, checked on val
against its FP32 model). ``--extra`` adds rows for more files, so pruned variants join the table
without changing this script. GMACs count convolutions (as ``edgeirst zoo`` does) from the ONNX
graph at 320x320; latency is one real val frame letterboxed to the model's input size, batch 1,
onnxruntime defaults (plus the INT8 model's own session hint), all rows interleaved. Run it
inside benchmarks/quiet.sh on the development VM.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeirst.io import write_text

REPO = Path(__file__).resolve().parents[1]


def conv_gmacs(path: Path, size: int = 320) -> float:
    """Multiply-adds of the convolutions (and Gemm/MatMul with constant weights) at size x size."""
    from edgeirst.quantize import graph

    proto, meta = graph.load_edgeirst_onnx(path)
    total = 0
    for n in graph.describe_nodes(proto, meta.replace(input_size=(size, size))):
        if n.in_channels is not None and n.out_hw is not None:
            k = int(np.prod(n.kernel)) if n.kernel else 1
            total += n.out_hw[0] * n.out_hw[1] * n.out_channels * (n.in_channels // n.groups) * k
    return total / 1e9


def params(path: Path) -> int:
    """Weights and biases in the file (int8 initializers count once; scales and zero points not)."""
    import onnx

    proto = onnx.load(str(path))
    skip = {i for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") for i in n.input[1:]}
    return int(sum(np.prod(i.dims) for i in proto.graph.initializer
                   if i.name not in skip and len(i.dims) and i.data_type != onnx.TensorProto.INT64))


def latency(files: dict[str, Path], x: np.ndarray, rounds: int, reps: int, threads: int) -> dict[str, float]:
    """Median ms per model, interleaved, through edgeirst's onnxruntime backend."""
    from edgeirst.runtime import load_backend

    backends = {k: load_backend(p, "onnxruntime", providers="cpu", threads=threads) for k, p in files.items()}
    for b in backends.values():
        for _ in range(3):
            b.infer(x)
    times = {k: [] for k in files}
    for _ in range(rounds):
        for k, b in backends.items():
            for _ in range(reps):
                t = time.perf_counter()
                b.infer(x)
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated shipped names or .onnx files (default: all shipped)")
    ap.add_argument("--extra", action="append", default=[], help="NAME=FILE.onnx rows to add (e.g. pruned exports)")
    ap.add_argument("--data", default=os.environ.get("EDGEIRST_SIRST", str(REPO.parent / "shared" / "data" / "sirst")))
    ap.add_argument("--calib-images", type=int, default=64)
    ap.add_argument("--method", default="minmax")
    ap.add_argument("--max-drop", default="iou=0.01,pd=0.01", help="accuracy budget for the INT8 check")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the INT8 files and measured metrics in this folder; a later run with the same "
                         "folder only re-times them")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()

    from edgeirst.data import SirstDataset
    from edgeirst.preprocess import prepare
    from edgeirst.quantize import QuantConfig, parse_max_drop, quantize_model
    from edgeirst.quantize.guard import evaluate
    from edgeirst.runtime.backends import resolve_model
    from edgeirst.weights import shipped_names

    names = args.models.split(",") if args.models else shipped_names(with_aliases=False)
    sources = {n: resolve_model(n, "onnxruntime") for n in names}
    for item in args.extra:
        name, sep, file = item.partition("=")
        if not sep:
            raise SystemExit(f"--extra expects NAME=FILE.onnx, got {item!r}")
        sources[name] = resolve_model(file, "onnxruntime")
    rows: dict[str, dict] = {}
    files: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="edgeirst-compress-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        done = folder / "rows.json"  # with --keep: quantized and evaluated once, timed on every run
        if args.keep and done.is_file():
            saved = json.loads(done.read_text())
            rows, files = saved["rows"], {k: Path(v) for k, v in saved["files"].items()}
        else:
            for name, src in sources.items():
                q = quantize_model(src, folder / f"{name}-int8.onnx",
                                   QuantConfig(data=args.data, calib_images=args.calib_images, method=args.method,
                                               max_drop=parse_max_drop(args.max_drop)))
                files[f"{name}"] = src
                files[f"{name}-int8"] = q.path
                rows[name] = {"metrics": q.metrics_fp32}
                rows[f"{name}-int8"] = {"metrics": q.metrics_quant, "kept": len(q.kept_float),
                                        "within": q.within_budget, "drops": q.drops,
                                        "int8_convs": sum(d["precision"] == "int8" and d["op"] == "Conv"
                                                          for d in q.decisions)}
            for key, path in files.items():
                rows[key].update(params=params(path), gmacs=conv_gmacs(sources[key.removesuffix("-int8")]),
                                 size=path.stat().st_size)
                if rows[key]["metrics"] is None:
                    rows[key]["metrics"] = evaluate(path, args.data, "val")
            done.write_text(json.dumps({"rows": rows, "files": {k: str(v) for k, v in files.items()}}))
        from edgeirst.quantize import graph

        _, meta = graph.load_edgeirst_onnx(sources[next(iter(sources))])
        x = prepare(SirstDataset(args.data, "val")[0].image, meta, fixed=True)[0][None]
        ms = latency(files, x, args.rounds, args.reps, args.threads)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, onnxruntime "
             f"{__import__('onnxruntime').__version__}, {stamp}. Latency: {x.shape[2]}x{x.shape[3]}, batch 1, "
             f"threads {args.threads or 'default'}, median of {args.rounds} interleaved rounds x {args.reps} runs.",
             "", "| model | params | GMACs@320 | file | IoU | nIoU | Pd | Fa (1e-6) | AP50 | CPU ms | vs FP32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in rows.items():
        m = r["metrics"]
        base = ms[key.removesuffix("-int8")]
        note = ""
        if "int8_convs" in r:
            note = f" ({r['int8_convs']} int8 convs" + (f", {r['kept']} kept float" if r.get("kept") else "") + \
                ("" if r.get("within", True) else ", over budget") + ")"
        lines.append(f"| {key}{note} | {r['params'] / 1e6:.3f}M | {r['gmacs']:.2f} | {r['size'] / 2**20:.2f} MiB | "
                     f"{m['iou']:.4f} | {m['niou']:.4f} | {m['pd']:.4f} | {m['fa'] * 1e6:.1f} | {m['ap50']:.4f} | "
                     f"{ms[key]:.1f} | {ms[key] / base:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
