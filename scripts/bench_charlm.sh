#!/usr/bin/env bash
# Issue 3 quality/speed comparison: Recurrent vs PyTorch (../shared/peers/charlm_torch.py) on
# tinyshakespeare, same architecture (Embedding(V,256) -> 2-layer LSTM(256) -> Linear), same
# contiguous 90/10 split, Adam 2e-3, clip 5, B=32, T=128, same wall-clock training budget, 2 threads.
#
#   bash scripts/bench_charlm.sh [SHARED_DIR=../shared] [BUDGET_SECONDS=300]
#
# Three runs, one after the other (run nothing else meanwhile; the machine has 2 cores):
#   1. PyTorch, BUDGET seconds (B=32, T=128, constant Adam 2e-3).
#   2. Recurrent, BUDGET seconds, its own recipe on the same architecture and split: B=64, T=64,
#      Adam 3e-3 with a cosine schedule planned over 1,900 steps (the budget stops it earlier).
#   3. Recurrent, 60 s at PyTorch's exact batch shape and optimizer (B=32, T=128, Adam 2e-3):
#      the like-for-like characters/s.
# Prints characters/s and validation losses and the ratios. PyTorch reports "windowed"
# (zero state per 128-char window) and "streaming" (32 streams, state carried) validation losses;
# Recurrent reports its own validation (32 streams, state carried — like "streaming") and, with
# `recurrent eval`, the loss over the whole validation text read as one stream.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${1:-../shared}"
BUDGET="${2:-300}"
DATA="$SHARED/data/tinyshakespeare.txt"
OUT="${BENCH_OUT:-/tmp/recurrent-bench-charlm}"
rm -rf "$OUT"; mkdir -p "$OUT"
swift build -c release >/dev/null
python3 -c "import torch" 2>/dev/null || { echo "needs PyTorch: pip install torch" >&2; exit 1; }

echo "== PyTorch ($BUDGET s)"
python3 "$SHARED/peers/charlm_torch.py" "$DATA" --budget "$BUDGET" --threads 2 --out "$OUT/torch.json" \
  | tee "$OUT/torch.log" | grep -vE "^step" || true

echo "== Recurrent ($BUDGET s, B64 T64 cosine)"
.build/release/recurrent train --data "$DATA" --out "$OUT/run" --cell lstm --layers 2 --hidden 256 \
  --embedding 256 --seq-len 64 --batch 64 --optimizer adam --lr 0.003 --schedule cosine --steps 1900 \
  --clip 5 --split 90,10 --time-budget "$BUDGET" --eval-every 100000 --threads 2 --seed 1234 --json \
  > "$OUT/ours.jsonl" 2> "$OUT/ours.log"
echo "== Recurrent (60 s, B32 T128 constant Adam 2e-3: speed at PyTorch's batch shape)"
.build/release/recurrent train --data "$DATA" --out "$OUT/same" --cell lstm --layers 2 --hidden 256 \
  --embedding 256 --seq-len 128 --batch 32 --optimizer adam --lr 0.002 --clip 5 --split 90,10 \
  --time-budget 60 --eval-every 100000 --threads 2 --seed 1234 --json > "$OUT/same.jsonl" 2> "$OUT/same.log"
# The validation text = the last 10% of the characters (the same split as charlm_torch.py).
python3 - "$DATA" "$OUT/val.txt" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(t[int(0.9 * len(t)):])
PY
.build/release/recurrent eval --checkpoint "$OUT/run/latest" --data "$OUT/val.txt" --json --threads 2 > "$OUT/eval.json"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
torch = json.load(open(os.path.join(out, "torch.json")))
events = [json.loads(l) for l in open(os.path.join(out, "ours.jsonl")) if l.startswith("{")]
ev = json.loads(open(os.path.join(out, "eval.json")).read().strip().splitlines()[-1])
val = [e for e in events if e.get("event") == "validation"]
done = [e for e in events if e.get("event") == "done"]
steps = [e for e in events if e.get("event") == "step"]
ours_cps = steps[-1]["chars_per_s"]
same = [json.loads(l) for l in open(os.path.join(out, "same.jsonl")) if l.startswith("{")]
same_cps = [e for e in same if e.get("event") == "step"][-1]["chars_per_s"]
def g(d, *ks):
    for k in ks:
        if k in d: return d[k]
print()
t_cps = g(torch, "chars_per_s", "train_chars_per_s", "chars_per_sec")
t_win = g(torch, "val_loss_windowed", "val_windowed", "val_loss")
t_str = g(torch, "val_loss_streaming", "val_streaming")
print(f"{'':28}{'PyTorch':>12}{'Recurrent':>12}")
print(f"{'chars/s, B32 T128':28}{t_cps:>12,.0f}{same_cps:>12,.0f}   ratio {same_cps / t_cps:.2f}x")
print(f"{'chars/s, our recipe B64 T64':28}{'':>12}{ours_cps:>12,.0f}   ratio {ours_cps / t_cps:.2f}x")
print(f"{'val loss, streams carried':28}{t_str:>12.4f}{val[-1]['loss']:>12.4f}")
print(f"{'val loss, torch windowed':28}{t_win:>12.4f}")
print(f"{'val loss, one stream (eval)':28}{'':>12}{ev['loss']:>12.4f}")
print(f"steps: torch {g(torch, 'steps')}, ours {steps[-1]['step'] if steps else '?'}")
PY
