"""What the INT8 default gains under edgeirst's onnxruntime session and under a plain one: the
shipped `default-int8` and `default` ONNX files, each loaded by a plain
``onnxruntime.InferenceSession`` (one intra-op thread, nothing else set) and by edgeirst's
onnxruntime backend (one thread, plus the session settings in the model's metadata), timed
interleaved in rounds on the same 256x256 input.

    python benchmarks/int8_session.py [--runs 200] [--rounds 20] [--out benchmarks/results/int8-session.md]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort

from edgeirst.bench.rows import input_batch
from edgeirst.io import write_text
from edgeirst.machine import describe, machine_stamp
from edgeirst.runtime import load_backend
from edgeirst.runtime.backends.onnxruntime import session_hints, session_notes
from edgeirst.weights import shipped_model

MODELS = ("default", "default-int8")


def plain_session(path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="timed runs per session")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (runs are split evenly)")
    ap.add_argument("--out", help="write the markdown table here")
    args = ap.parse_args()

    sessions, hints = {}, {}
    for name in MODELS:
        backend = load_backend(shipped_model(name), "onnxruntime", providers="cpu", threads=1)
        hints[name] = session_hints(backend.meta)
        sessions[(name, "plain")] = plain_session(shipped_model(name))
        sessions[(name, "edgeirst")] = backend.session
        meta = backend.meta
    x = input_batch(meta, 256, 1)
    feeds = {key: {s.get_inputs()[0].name: x} for key, s in sessions.items()}
    for key, s in sessions.items():  # warm-up
        for _ in range(5):
            s.run(None, feeds[key])
    times = {key: [] for key in sessions}
    rng = np.random.default_rng(0)
    per_round = args.runs // args.rounds
    for _ in range(args.rounds):
        for i in rng.permutation(len(sessions)):
            key = list(sessions)[i]
            for _ in range(per_round):
                t0 = time.perf_counter()
                sessions[key].run(None, feeds[key])
                times[key].append((time.perf_counter() - t0) * 1e3)
    med = {key: float(np.median(v)) for key, v in times.items()}
    lines = ["| session | `default` (FP32) median ms (p90) | `default-int8` median ms (p90) | INT8 / FP32 |",
             "|---|---|---|---|"]
    for kind, label in (("plain", "plain `onnxruntime.InferenceSession(path)`, 1 thread"),
                        ("edgeirst", "edgeirst's onnxruntime backend, 1 thread")):
        cells = [f"{med[(m, kind)]:.1f} ({np.percentile(times[(m, kind)], 90):.1f})" for m in MODELS]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {med[('default-int8', kind)] / med[('default', kind)]:.2f}x |")
    stamp = machine_stamp()
    text = "\n".join([
        "# INT8 default under two onnxruntime sessions", "",
        f"`python benchmarks/int8_session.py --runs {args.runs} --rounds {args.rounds}`: {args.runs} runs per "
        f"session in {args.rounds} interleaved rounds (shuffled order per round), 5 warm-up runs, one 256x256 "
        "synthetic frame.", "", *lines, "",
        *session_notes([(m, hints[m]) for m in MODELS]), "",
        f"machine: {describe(stamp)}", ""])
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
