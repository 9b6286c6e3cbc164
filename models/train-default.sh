#!/usr/bin/env bash
# Rebuilds models/default-progress.onnx: demos for every built-in task rendered by our cameras, then
# models/train_default.py (PyTorch on CPU: Debian's python3-torch, python3-numpy and python3-onnx), then the
# done head's calibration (models/calibrate-done.ts, models/calibrate_done.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DEMOS_DIR:-models/.demos}"
EPISODES="${EPISODES:-150}"
PY="${PYTHON:-/usr/bin/python3}"
RANDOM_EPISODES="${RANDOM_EPISODES:-160}"
NOISY_EPISODES="${NOISY_EPISODES:-200}"
for task in reach push pick-place drawer-open stack; do
  # push gets twice the demos: its cube is a few pixels at 64x64 and its progress the hardest to read.
  n="$EPISODES"; [ "$task" = push ] && n=$((2 * EPISODES))
  node bin/pbridge.js demos --env "$task" --episodes "$n" --perturbed 0.4 --hold 5 --seed 0 \
    --cameras front,side,wrist --size 64 --out "$DATA/expert/$task"
  # What an untrained policy does, so its states get low, steady progress instead of noise.
  node bin/pbridge.js demos --env "$task" --episodes "$RANDOM_EPISODES" --random --seed 50000 \
    --cameras front,side,wrist --size 64 --out "$DATA/random/$task"
  # What a half-trained policy does: the expert with noise of every strength, so the small steps forward and back
  # that shaping rewards are seen off the expert's path too.
  n="$NOISY_EPISODES"; [ "$task" = push ] && n=$((2 * NOISY_EPISODES))
  node bin/pbridge.js demos --env "$task" --episodes "$n" --noisy --hold 5 --seed 70000 \
    --cameras front,side,wrist --size 64 --out "$DATA/noisy/$task"
done
"$PY" models/train_default.py --data "$DATA/expert" "$DATA/random" "$DATA/noisy" \
  --out models/default-progress.onnx "$@"
# Decision calibration of the done head on seeds used for nothing else (from 500,000): one logit bias per task.
npx tsx models/calibrate-done.ts models/default-progress.onnx --episodes 25 --out models/default-progress.calibration.json
"$PY" models/calibrate_done.py models/default-progress.onnx models/default-progress.calibration.json
