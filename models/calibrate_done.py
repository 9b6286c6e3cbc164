"""Writes per-task done biases (from models/calibrate-done.ts) into a progress model's graph.

    python3 models/calibrate_done.py MODEL.onnx BIASES.json [--out OUT.onnx]

The done head ends in Sigmoid(x); this makes it Sigmoid(x + task @ b), b[k] the bias of the k-th task of the
one-hot (the order of the model's `progress_bridge.task.instructions`, which BIASES.json lists as `tasks`). The
calibration goes into the metadata too, so the model says what was done to it. Needs python3-onnx only.
"""

import argparse
import json

import numpy as np
import onnx
from onnx import helper, numpy_helper


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("biases")
    ap.add_argument("--out")
    args = ap.parse_args()

    model = onnx.load(args.model)
    cal = json.load(open(args.biases))
    meta = {p.key: p for p in model.metadata_props}
    spec = json.loads(meta["progress_bridge"].value)
    if "done_calibration" in spec:
        raise SystemExit(f"{args.model} is already calibrated ({spec['done_calibration']['biases']})")
    tasks = spec["task"]["tasks"]
    if tasks != cal["tasks"]:
        raise SystemExit(f"task order differs: model {tasks}, biases {cal['tasks']}")
    task_input = spec["task"]["input"]
    done_name = spec["outputs"]["done"]

    graph = model.graph
    sig = next(n for n in graph.node if n.op_type == "Sigmoid" and list(n.output) == [done_name])
    logits = sig.input[0]
    b = np.array([[cal["biases"][t]] for t in tasks], dtype=np.float32)
    graph.initializer.append(numpy_helper.from_array(b, "done_task_bias"))
    shift = helper.make_node("MatMul", [task_input, "done_task_bias"], ["done_task_shift"], name="done_calibration_matmul")
    add = helper.make_node("Add", [logits, "done_task_shift"], ["done_calibrated_logits"], name="done_calibration_add")
    sig.input[0] = "done_calibrated_logits"
    # Topological order: the new nodes go right before the Sigmoid that now reads them.
    nodes = list(graph.node)
    at = nodes.index(sig)
    nodes[at:at] = [shift, add]
    del graph.node[:]
    graph.node.extend(nodes)

    spec["done_calibration"] = {
        "biases": cal["biases"],
        "seeds_from": cal["seeds"],
        "episodes_per_kind": cal["episodes"],
        "rule": cal["rule"],
        "method": "models/calibrate-done.ts: logit bias >= 0 per task; fewest false successes, best rule accuracy, middle of that range",
    }
    meta["progress_bridge"].value = json.dumps(spec)
    onnx.checker.check_model(model)
    onnx.save(model, args.out or args.model)
    print(f"done biases {cal['biases']} -> {args.out or args.model}")


if __name__ == "__main__":
    main()
