"""Training step time per model and speed setting on this CPU (memory format, bf16 autocast).

    python benchmarks/train_speed.py [--models mshnet:width=0.5,light-sgmtlm-tiny,mtunet-siwd:width=0.25]
                                     [--threads 1] [--batch 16] [--size 256] [--steps 3] [--rounds 2]

One forward + loss + backward + optimiser step on a real-sized batch, each (model, setting)
measured in interleaved rounds after a warm-up step; prints the median seconds per step and
per epoch of 256 images (SIRST's train split), and the speed-up of each setting over NCHW fp32.
Settings that the machine cannot run safely are reported, not hidden: channels_last crashes
SIWD models on torch 2.13 CPU, so it runs in a subprocess and a crash is recorded as such.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

SETTINGS = {"nchw-fp32": (False, False), "channels_last-fp32": (True, False), "nchw-bf16": (False, True),
            "channels_last-bf16": (True, True)}

_STEP = r"""
import json, sys, time, torch
from edgeirst.losses import criterion_for
from edgeirst.models import create_model
name, kwargs, cl, bf16, threads, batch, size, steps = json.loads(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = create_model(name, **kwargs)
crit = criterion_for(name, model.spec, mean_target_size=5.0)
opt = torch.optim.Adam(model.parameters(), 1e-3)
x = torch.randn(batch, 1, size, size)
mask = torch.zeros(batch, 1, size, size)
mask[:, :, size // 2:size // 2 + 4, size // 2:size // 2 + 4] = 1
boxes = [torch.tensor([[size / 2, size / 2, size / 2 + 4, size / 2 + 4]]) for _ in range(batch)]
fmt = torch.channels_last if cl else torch.contiguous_format
model = model.to(memory_format=fmt).train()
x = x.contiguous(memory_format=fmt)
times = []
for i in range(steps + 1):
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    loss, _ = crit({k: v.float() for k, v in out.items()}, {"image": x, "mask": mask, "boxes": boxes}, 10)
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t)
print(json.dumps(times[1:]))
"""


def parse_models(text: str) -> list[tuple[str, dict]]:
    out = []
    for item in text.split(","):
        name, _, args = item.partition(":")
        kwargs = {k: float(v) for k, v in (a.split("=") for a in args.split(";") if a)}
        out.append((name, kwargs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mshnet:width=0.5,light-sgmtlm-tiny,mtunet-siwd:width=0.25")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = {(m, k, s): [] for m, k in [(n, json.dumps(kw)) for n, kw in parse_models(args.models)]
            for s in args.settings.split(",")}
    failed: dict = {}
    for _ in range(args.rounds):
        for (name, kwargs, setting) in rows:
            if (name, kwargs, setting) in failed:
                continue
            cl, bf16 = SETTINGS[setting]
            job = json.dumps([name, json.loads(kwargs), cl, bf16, args.threads, args.batch, args.size, args.steps])
            r = subprocess.run([sys.executable, "-c", _STEP, job], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                tail = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
                failed[(name, kwargs, setting)] = f"crashed (exit {r.returncode}): {tail[:120]}"
                continue
            rows[(name, kwargs, setting)] += json.loads(r.stdout.strip().splitlines()[-1])
    stamp = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": args.threads,
             "batch": args.batch, "size": args.size}
    result = []
    for (name, kwargs, setting), times in rows.items():
        med = statistics.median(times) if times else None
        base = rows.get((name, kwargs, "nchw-fp32"))
        speedup = statistics.median(base) / med if med and base else None
        result.append({"model": name, "kwargs": json.loads(kwargs), "setting": setting, "step_s": med,
                       "epoch_s_256_images": med * 256 / args.batch if med else None, "speedup_vs_nchw_fp32": speedup,
                       "error": failed.get((name, kwargs, setting)), **stamp})
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{stamp['date']}, {args.threads} thread(s), batch {args.batch}, {args.size}x{args.size}")
    print(f"{'model':<32}{'setting':<22}{'s/step':>8}{'s/epoch':>9}{'speed-up':>10}")
    for r in result:
        label = r["model"] + (f" {r['kwargs']}" if r["kwargs"] else "")
        if r["error"]:
            print(f"{label:<32}{r['setting']:<22}  {r['error']}")
        else:
            print(f"{label:<32}{r['setting']:<22}{r['step_s']:>8.2f}{r['epoch_s_256_images']:>9.1f}"
                  f"{r['speedup_vs_nchw_fp32']:>9.2f}x")


if __name__ == "__main__":
    main()
