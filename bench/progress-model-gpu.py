#!/usr/bin/env python3
"""The default progress model on a CUDA GPU (PyTorch) against onnxruntime on the CPU, in one run on one machine.

  1. Agreement: the shipped ONNX model's weights loaded into models/train_default.py's ProgressNet on the GPU give
     the same progress and done as onnxruntime's CPU session on the same batch (so a GPU server scores as the
     embedded model does).
  2. Inference: images/s by batch size, from uint8 pixels on the host to outputs on the host (the copies a reward
     server pays), against onnxruntime CPU at batch 1 measured in the same run.
  3. Training: train_default.py's training step (loss, backward, AdamW) in frames/s on the GPU against the CPU.

Needs torch with CUDA, onnx and onnxruntime (Python). Not part of CI: this machine has no GPU.
  python3 bench/progress-model-gpu.py [--out bench/results/progress-model-gpu.md]
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "models"))
from train_default import MEAN, STD, ProgressNet, load_onnx_weights  # noqa: E402

TRAIN_BATCHES = (128, 1024)
MODEL = os.path.join(REPO, "models", "default-progress.onnx")


def model_spec(path):
    """The runtime's input spec, the tasks, and the per-task done bias that calibrate_done.py adds (zeros if none)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    tasks = meta["trained_on"].split(",")
    bias = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}.get("done_task_bias")
    bias = np.zeros((len(tasks), 1), np.float32) if bias is None else bias
    return json.loads(meta["progress_bridge"]), tasks, torch.from_numpy(bias.copy())


def timed(fn, min_seconds=1.0, warmup=3):
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return dt / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "progress-model-gpu.md"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,16,64,256,1024")
    args = ap.parse_args()
    if not torch.cuda.is_available() and args.device.startswith("cuda"):
        raise SystemExit("no CUDA device: this benchmark compares a GPU against the CPU")
    import onnxruntime as ort

    device = torch.device(args.device)
    spec, tasks, done_bias = model_spec(MODEL)
    views, size = len(spec["images"]["cameras"]), spec["images"]["height"]
    net = ProgressNet(views, len(tasks))
    load_onnx_weights(net, MODEL, tasks)
    net.eval().to(device)
    eye = torch.eye(len(tasks), device=device)
    done_bias = done_bias.to(device)
    rng = np.random.default_rng(0)
    batches = [int(b) for b in args.batches.split(",")]

    def pixels(n):
        return rng.integers(0, 256, size=(n, 3 * views, size, size), dtype=np.uint8)

    def ort_session(threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        return ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])

    def ort_inputs(px, task_index=0):
        x = (px.astype(np.float32) / 255.0 - MEAN) / STD
        t = np.zeros((len(px), len(tasks)), np.float32)
        t[:, task_index] = 1
        return {"images": x, "task": t}

    @torch.no_grad()
    def gpu_score(px, task_index=0):
        x = torch.from_numpy(px).to(device, non_blocking=False).float().div_(255.0).sub_(MEAN).div_(STD)
        task = eye[torch.full((len(px),), task_index, device=device)]
        # The calibrated bias goes on the done logit, where the ONNX graph adds it.
        out = net.logits(x, task)
        p, d = torch.sigmoid(out[:, 0]), torch.sigmoid(out[:, 1] + (task @ done_bias)[:, 0])
        return p.cpu().numpy(), d.cpu().numpy()

    # 1. Agreement on one batch per task.
    cpu1 = ort_session(1)
    worst = {"progress": 0.0, "done": 0.0}
    for ti in range(len(tasks)):
        px = pixels(256)
        ref_p, ref_d = cpu1.run(["progress", "done"], ort_inputs(px, ti))
        p, d = gpu_score(px, ti)
        worst["progress"] = max(worst["progress"], float(np.abs(p - ref_p[:, 0]).max()))
        worst["done"] = max(worst["done"], float(np.abs(d - ref_d[:, 0]).max()))
    print(f"agreement with onnxruntime CPU over {len(tasks)} x 256 states: max |diff| progress "
          f"{worst['progress']:.2e}, done {worst['done']:.2e}", flush=True)

    # 2. Inference throughput.
    threads = os.cpu_count() or 1
    cpu_all = ort_session(threads)
    rows = []
    base = None
    for b in batches:
        px = pixels(b)
        row = {"batch": b}
        for name, sess in (("ort1", cpu1), ("ortN", cpu_all)):
            # Pixel normalisation is part of the cost on both sides.
            row[name] = b / timed(lambda: sess.run(["progress", "done"], ort_inputs(px)))
        row["gpu"] = b / timed(lambda: gpu_score(px))
        if base is None:
            base = row["ort1"]
        rows.append(row)
        print(f"batch {b}: ort 1 thread {row['ort1']:.0f}/s, ort {threads} threads {row['ortN']:.0f}/s, "
              f"GPU {row['gpu']:.0f}/s", flush=True)

    # 3. Training step throughput (train_default.py's loss on random frames and labels).
    def train_rate(dev, batch, threads_):
        torch.set_num_threads(threads_)
        m = ProgressNet(views, len(tasks)).to(dev)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-4)
        e = torch.eye(len(tasks), device=dev)
        px = torch.from_numpy(pixels(batch))
        tp = torch.rand(batch, 1)
        td = (torch.rand(batch, 1) > 0.9).float()
        half = batch // 2

        def step():
            x = px.to(dev).float().div_(255.0).sub_(MEAN).div_(STD)
            p, d = m(x, e[torch.zeros(batch, dtype=torch.long, device=dev)])
            a, b_ = tp.to(dev), td.to(dev)
            loss = (F.mse_loss(p, a) * 10 + 20 * F.mse_loss(p[:half] - p[half:], a[:half] - a[half:])
                    + F.binary_cross_entropy(d, b_))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return batch / timed(step, min_seconds=2.0)

    train = []
    for batch in TRAIN_BATCHES:
        r = {"batch": batch, "cpu1": train_rate(torch.device("cpu"), batch, 1),
             "cpuN": train_rate(torch.device("cpu"), batch, threads), "gpu": train_rate(device, batch, 1)}
        train.append(r)
        print(f"train batch {batch}: CPU 1 thread {r['cpu1']:.0f} frames/s, CPU {threads} threads "
              f"{r['cpuN']:.0f}, GPU {r['gpu']:.0f}", flush=True)

    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    lines = [
        "## Progress model on a GPU",
        "",
        f"Written by `npm run bench:gpu` (bench/progress-model-gpu.py) on {gpu_name} with {threads} CPU cores "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}, onnxruntime {ort.__version__}. "
        "The shipped default progress model's weights, loaded into the training script's PyTorch net. Not run by "
        "CI (no GPU there); re-run it where a GPU is. A call's fixed cost (two copies and the kernel launches) "
        "makes the GPU slower than the CPU for one state at a time; it pays where the requests of many envs are "
        "batched, as the reward service batches them (`maxBatch`).",
        "",
        f"Agreement with onnxruntime's CPU session over {len(tasks)} tasks x 256 random states: largest difference "
        f"{worst['progress']:.1e} in progress, {worst['done']:.1e} in done.",
        "",
        "### Scoring throughput (states of 3 views at 64x64; uint8 pixels on the host to outputs on the host)",
        "",
        f"| batch | onnxruntime CPU, 1 thread, states/s | CPU, {threads} threads | GPU | GPU vs CPU 1 thread at batch 1 | "
        f"GPU vs CPU {threads} threads, same batch |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['ort1']:.0f} | {r['ortN']:.0f} | {r['gpu']:.0f} | {r['gpu'] / base:.1f}x | "
                     f"{r['gpu'] / r['ortN']:.1f}x |")
    lines += [
        "",
        "### Training step throughput (train_default.py's loss, AdamW)",
        "",
        f"| batch | CPU 1 thread, frames/s | CPU {threads} threads | GPU | GPU vs CPU 1 thread | GPU vs CPU {threads} threads |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in train:
        lines.append(f"| {r['batch']} | {r['cpu1']:.0f} | {r['cpuN']:.0f} | {r['gpu']:.0f} | "
                     f"{r['gpu'] / r['cpu1']:.1f}x | {r['gpu'] / r['cpuN']:.1f}x |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
