#!/usr/bin/env bash
# The cross-scene training runs on a lent GPU machine (issue 21), from the repository root after
# benchmarks/xscene/gpu/pack.py: bash benchmarks/xscene/gpu/train.sh OUTDIR [smoke]
# Three runs side by side, the default from scratch on the train split (batch 16 with the shipped
# recipe, batch 16 and batch 32 with more and harder negatives), each stopped by a time limit
# that leaves the whole call inside the tool's 10 minutes; OUTDIR gets each run's best.pt and
# summary.txt (commands, results.csv, log tails). smoke: the same commands on this CPU, one step
# an epoch, to check the command lines.
# Ran once, 2026-12-04 on an H200 (benchmarks/RESULTS.md, "Across scenes: from scratch on a lent
# GPU"): 5-15 s an epoch each with the GPU mostly idle (six processes and their loaders on 16 CPU
# cores), so the time limit stopped the from-scratch runs after 25-42 of their 60-80 epochs; batch 16 did best.
# Hence three runs with four loader workers each, so that each schedule can finish.
set -u
OUT=${1:?}; SMOKE=${2:-}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
if [ -z "$SMOKE" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
  nvidia-smi -L; python3 -c "import torch, edgeirst; print(torch.__version__, torch.cuda.is_available(), edgeirst.__file__)"
  DEV="--device cuda --no-amp --workers 4"; SCALE=1; STEPS=""; TOTAL=${TOTAL:-575}
else
  DEV="--device cpu --workers 0"; SCALE=0; STEPS="--max-steps 1"; TOTAL=100000
fi
D=/tmp/devdata$SMOKE; RUNS=/tmp/gpuruns$SMOKE; rm -rf $D $RUNS; mkdir -p $D $RUNS
python3 - "$D" <<'PY' || exit 4
import cv2, pathlib, shutil, sys
dst = pathlib.Path(sys.argv[1])
for ds in ("sirst", "sirst-v2-scenes"):
    src = pathlib.Path(".devdata") / ds
    shutil.copytree(src / "masks", dst / ds / "masks")
    if (src / "idx_427").exists():
        shutil.copytree(src / "idx_427", dst / ds / "idx_427")
    (dst / ds / "images").mkdir(parents=True)
    for f in (src / "images").iterdir():
        im = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)  # WebP decodes grey as BGR otherwise
        assert im is not None, f
        cv2.imwrite(str(dst / ds / "images" / (f.stem + ".png")), im)
shutil.copy(".devdata/lists/train-sub.txt", dst / "train-sub.txt")
print("data ready", sum(1 for _ in dst.rglob("*.png")), "png")
PY
REPO=$(pwd); cd /tmp  # the installed wheel, not the source tree (quantize/, runtime/ are mapped at install)
ep() { if [ "$SCALE" = 1 ]; then echo "$1"; else echo 1; fi; }
COMMON="--data $D/sirst --data $D/sirst-v2-scenes --split train --split $D/train-sub.txt --val-split val --val-split $REPO/benchmarks/xscene/val.txt --augment strong --ema 0.1 --target-crops 0.7 --threads 1 $DEV $STEPS"
go() { local name=$1; shift
  echo "== $name: edgeirst train $* $COMMON --out $RUNS/$name" >> $RUNS/commands.txt
  timeout -s TERM $TL python3 -m edgeirst train "$@" $COMMON --out $RUNS/$name > $RUNS/$name.log 2>&1 &
}
TL=$(( TOTAL - ($(date +%s) - T0) - 25 )); echo "training time limit ${TL}s"
D16="mshnet --width 0.5 --epochs $(ep 80) --batch 16 --size 256 --optimizer adam --lr 2e-3 --schedule cosine --val-every $(ep 4)"
go d-b16 $D16 --negatives 0.25 --hard-crops 0.5
go d-b16-neg $D16 --negatives 0.4 --hard-crops 0.7
go d-b32-neg mshnet --width 0.5 --epochs $(ep 100) --batch 32 --size 256 --optimizer adam --lr 3e-3 --schedule cosine --val-every $(ep 5) --negatives 0.4 --hard-crops 0.7
wait
S=$OUT/summary.txt
{ echo "wall $(( $(date +%s) - T0 ))s"; cat $RUNS/commands.txt
  for r in d-b16 d-b16-neg d-b32-neg; do
    echo "==== $r"; cat $RUNS/$r/results.csv 2>/dev/null; grep -v "it/s\]\|s/it\]" $RUNS/$r.log | tail -15
    [ -f $RUNS/$r/best.pt ] && cp $RUNS/$r/best.pt $OUT/$r-best.pt
  done; nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null; } > $S 2>&1
ls -la $OUT
