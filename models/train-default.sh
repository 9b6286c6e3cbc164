#!/usr/bin/env bash
# Rebuilds models/default-progress.onnx: demos for every built-in task rendered by our cameras, then
# models/train_default.py (PyTorch on CPU: Debian's python3-torch, python3-numpy and python3-onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DEMOS_DIR:-models/.demos}"
EPISODES="${EPISODES:-150}"
PY="${PYTHON:-/usr/bin/python3}"
for task in reach push pick-place drawer-open stack; do
  node bin/pbridge.js demos --env "$task" --episodes "$EPISODES" --perturbed 0.4 --hold 5 --seed 0 \
    --cameras front,side,wrist --size 64 --out "$DATA/$task"
done
"$PY" models/train_default.py --data "$DATA" --out models/default-progress.onnx "$@"
