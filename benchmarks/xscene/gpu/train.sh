#!/usr/bin/env bash
# The cross-scene training runs on a lent GPU machine (issue 21), from the repository root after
# benchmarks/xscene/gpu/pack.py: bash benchmarks/xscene/gpu/train.sh OUTDIR [smoke]
# Six runs side by side (the default from scratch on the train split: the shipped recipe, with
# synthetic targets and grey-level remaps, at 384 px, at batch 16; the tiny and SIWD models with the final recipe), each stopped by a time limit
# that leaves the whole call inside the tool's 10 minutes; OUTDIR gets each run's best.pt and
# summary.txt (commands, results.csv, log tails). smoke: the same commands on this CPU, one step
# an epoch, to check the command lines (WDIR= the folder of the checkpoints to start from).
# Ran once, 2026-12-04 on an H200 (benchmarks/RESULTS.md, "Across scenes: from scratch on a lent
# GPU"): 5-15 s an epoch each, bound by data loading on the 16 CPU cores (the GPU mostly idle), so
# the time limit stopped the from-scratch runs after 25-42 of their 60-80 epochs. Next time: fewer
# runs side by side (three), more --workers each, so that each schedule finishes.
set -u
OUT=${1:?}; SMOKE=${2:-}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
if [ -z "$SMOKE" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
  nvidia-smi -L; python3 -c "import torch, edgeirst; print(torch.__version__, torch.cuda.is_available(), edgeirst.__file__)"
  DEV="--device cuda --no-amp --workers 2"; SCALE=1; STEPS=""; TOTAL=${TOTAL:-575}
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
COMMON="--data $D/sirst --data $D/sirst-v2-scenes --split train --split $D/train-sub.txt --val-split val --val-split $REPO/benchmarks/xscene/val.txt --augment strong --ema 0.1 --negatives 0.25 --target-crops 0.7 --threads 1 $DEV $STEPS"
if [ -z "$SMOKE" ]; then W=${WDIR:-/tmp/site/edgeirst/weights}; else W=${WDIR:-$REPO/edgeirst/weights}; fi
go() { local name=$1; shift
  echo "== $name: edgeirst train $* $COMMON --out $RUNS/$name" >> $RUNS/commands.txt
  timeout -s TERM $TL python3 -m edgeirst train "$@" $COMMON --out $RUNS/$name > $RUNS/$name.log 2>&1 &
}
TL=$(( TOTAL - ($(date +%s) - T0) - 25 )); echo "training time limit ${TL}s"
go d-scratch mshnet --width 0.5 --epochs $(ep 80) --batch 8 --size 256 --optimizer adam --lr 1e-3 --schedule cosine --val-every $(ep 4) --hard-crops 0.5
go d-scratch-s mshnet --width 0.5 --epochs $(ep 80) --batch 8 --size 256 --optimizer adam --lr 1e-3 --schedule cosine --val-every $(ep 4) --hard-crops 0.5 --synth-targets 0.2 --levels 0.25
go d-scratch-384 mshnet --width 0.5 --epochs $(ep 60) --batch 8 --size 384 --optimizer adam --lr 1e-3 --schedule cosine --val-every $(ep 4) --hard-crops 0.5
go d-scratch-b16 mshnet --width 0.5 --epochs $(ep 80) --batch 16 --size 256 --optimizer adam --lr 2e-3 --schedule cosine --val-every $(ep 4) --hard-crops 0.5
go tiny light-sgmtlm-tiny --init $W/light-sgmtlm-tiny.pt --epochs $(ep 40) --batch 16 --size 256 --optimizer adamw --lr 5e-4 --schedule cosine --val-every $(ep 4) --val-metric ap50 --threshold 0.25 --hard-crops 0.5
go siwd mtunet-siwd --width 0.25 --init $W/mtunet-siwd-w025.pt --epochs $(ep 30) --batch 8 --size 192 --optimizer adam --lr 2e-4 --schedule cosine --val-every $(ep 3) --hard-crops 0.5
wait
S=$OUT/summary.txt
{ echo "wall $(( $(date +%s) - T0 ))s"; cat $RUNS/commands.txt
  for r in d-scratch d-scratch-s d-scratch-384 d-scratch-b16 tiny siwd; do
    echo "==== $r"; cat $RUNS/$r/results.csv 2>/dev/null; grep -v "it/s\]\|s/it\]" $RUNS/$r.log | tail -15
    [ -f $RUNS/$r/best.pt ] && cp $RUNS/$r/best.pt $OUT/$r-best.pt
  done; nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null; } > $S 2>&1
ls -la $OUT
