#!/usr/bin/env python3
"""Trains the default progress model on demos written by `pbridge demos` and exports it to ONNX.

The model sees the three task cameras (front, side, wrist) at 64x64 and a one-hot of the task, and predicts
  progress: the task's stage-based progress in [0, 1] (labels from `oracleProgress` on every frame, expert and
            perturbed episodes alike, so states off the expert's path are scored too), and
  done:     the probability that the success predicate holds.
Half of every batch are anchor frames and half their partners a few frames away in the same episode. Besides
each frame's own error, the loss penalises the error of the change in progress between the two: shaping rewards
are differences of neighbouring progress values, so a model whose errors jump from frame to frame gives a noisy
reward even when its absolute error is small.
The runtime (src/reward/onnx.ts) reads everything it needs to feed the model from the ONNX metadata written at
the end of this script, so this file and the TypeScript side share no constants but the metadata format.

Usage (Debian's python3-torch, python3-numpy and python3-onnx; CPU is enough, `--device cuda` uses a GPU):
  npm run train:reward-model        # regenerates demos, then runs this script
  /usr/bin/python3 models/train_default.py --data DEMOS [MORE_DEMOS ...] --out models/default-progress.onnx
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "progress-bridge.progress-model.v1"
DEMOS_FORMAT = "progress-bridge.demos.v1"
# Pixel normalisation: (x / 255 - MEAN) / STD, applied by the runtime before the model.
MEAN = 0.5
STD = 0.25


def load_task(path):
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != DEMOS_FORMAT:
        raise SystemExit(f"{path}: not a demos directory of format {DEMOS_FORMAT}")
    episodes = []
    with open(os.path.join(path, "episodes.jsonl")) as f:
        for line in f:
            ep = json.loads(line)
            # Memory-mapped: only the frames training keeps are copied into memory, so the data set can outgrow RAM.
            frames = np.load(os.path.join(path, ep["file"]), mmap_mode="r")  # [T+1, V, H, W, 3] uint8
            episodes.append((ep, frames))
    return meta, episodes


class ProgressNet(nn.Module):
    def __init__(self, views, tasks):
        super().__init__()
        c = 3 * views
        self.conv = nn.Sequential(
            # Narrow first layer: at 64x64 it dominates the cost, and the model runs beside the simulator.
            nn.Conv2d(c, 16, 4, stride=2, padding=1), nn.ReLU(),   # 32x32
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
        )
        self.fc = nn.Sequential(nn.Linear(64 * 16 + tasks, 256), nn.ReLU(), nn.Linear(256, 2))

    def logits(self, images, task):
        """[B, 2]: progress and done before their sigmoids (calibrate_done.py adds its bias to the done logit)."""
        return self.fc(torch.cat([self.conv(images).flatten(1), task], dim=1))

    def forward(self, images, task):
        out = self.logits(images, task)
        # Progress squashed into [0, 1]; done as a probability.
        return torch.sigmoid(out[:, 0:1]), torch.sigmoid(out[:, 1:2])


def load_onnx_weights(net, path, tasks):
    """Copies the initializers of an exported ProgressNet back into `net`; the calibrated done bias that
    calibrate_done.py adds is not part of the net and is calibrated again after training."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    trained_on = meta.get("trained_on", "").split(",")
    if trained_on != list(tasks):
        raise SystemExit(f"--init {path}: trained on tasks {trained_on}, this data set has {list(tasks)}")
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    state = net.state_dict()
    for name, value in state.items():
        if name not in weights:
            raise SystemExit(f"--init {path}: no initializer {name} (not a model written by this script?)")
        if tuple(weights[name].shape) != tuple(value.shape):
            raise SystemExit(f"--init {path}: {name} has shape {list(weights[name].shape)}, expected {list(value.shape)}")
        state[name] = torch.from_numpy(weights[name].copy())
    net.load_state_dict(state)


def to_input(frames_u8, device="cpu"):
    """[N, V, H, W, 3] uint8 -> [N, V*3, H, W] float32, normalised as the runtime does."""
    n, v, h, w, _ = frames_u8.shape
    # Bytes cross to the device, not floats: a quarter of the copy.
    x = torch.from_numpy(np.require(frames_u8, requirements="W")).to(device).float().div_(255.0)
    x = x.permute(0, 1, 4, 2, 3).reshape(n, v * 3, h, w)
    return (x - MEAN) / STD


def spearman(a, b):
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    d = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / d) if d > 0 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, nargs="+",
                    help="folders with one demos directory per task (several folders are merged by task)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-episodes", type=int, default=12, help="last N episodes per task held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is faster than 2 on a 2-core machine that also runs anything else")
    ap.add_argument("--frame-stride", type=int, default=2,
                    help="train on every k-th frame of each episode (neighbouring frames are nearly identical)")
    ap.add_argument("--pair-weight", type=float, default=20.0,
                    help="weight of the loss on progress differences between nearby frames of one episode")
    ap.add_argument("--max-pair-offset", type=int, default=4,
                    help="partners are 1..N kept frames after (or before) their anchor")
    ap.add_argument("--init", metavar="MODEL.onnx",
                    help="start from the weights of a model this script wrote (a DAgger round that adds data then "
                         "needs a few epochs at a lower --lr instead of a full training); its tasks must match")
    ap.add_argument("--device", default="cpu",
                    help="torch device to train on (cpu, cuda, cuda:1); random draws stay on the CPU, so one seed "
                         "draws the same batches and augmentations on every device")
    args = ap.parse_args()
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:
        raise SystemExit(f"--device {args.device}: not usable here ({str(e).splitlines()[0]})")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    dirs = {}
    for root in args.data:
        for d in sorted(os.listdir(root)):
            if os.path.isfile(os.path.join(root, d, "meta.json")):
                dirs.setdefault(d, []).append(os.path.join(root, d))
    tasks = sorted(dirs)
    if not tasks:
        raise SystemExit(f"no demos directories under {args.data}")
    metas, train, val = {}, [], []
    for ti, name in enumerate(tasks):
        for path in dirs[name]:
            meta, episodes = load_task(path)
            metas[name] = meta
            for i, (ep, frames) in enumerate(episodes):
                item = (ti, ep, frames)
                (val if i >= len(episodes) - args.val_episodes else train).append(item)
    cameras, size = metas[tasks[0]]["cameras"], metas[tasks[0]]["size"]
    for name in tasks:
        if metas[name]["cameras"] != cameras or metas[name]["size"] != size:
            raise SystemExit(f"{name}: cameras/size differ from {tasks[0]}")

    def flatten(items, stride):
        # Every stride-th frame, offset per episode so all phases of the task are covered; success frames always.
        picks = []
        for i, (_, ep, f) in enumerate(items):
            keep = np.zeros(len(f), bool)
            keep[i % stride::stride] = True
            keep |= np.asarray(ep["success_frames"], bool)
            picks.append(keep)
        frames = np.concatenate([f[k] for (_, _, f), k in zip(items, picks)])
        task = np.concatenate([np.full(k.sum(), ti) for (ti, _, _), k in zip(items, picks)])
        progress = np.concatenate([np.asarray(ep["oracle"], np.float32)[k] for (_, ep, _), k in zip(items, picks)])
        done = np.concatenate([np.asarray(ep["success_frames"], np.float32)[k] for (_, ep, _), k in zip(items, picks)])
        episode = np.concatenate([np.full(k.sum(), i) for i, k in enumerate(picks)])
        return frames, task, progress, done, episode

    xf, xt, yp, yd, xe = flatten(train, args.frame_stride)

    def partners(anchors):
        # Kept frames of one episode are contiguous, so a partner is a nearby index with the same episode id.
        off = np.random.randint(1, args.max_pair_offset + 1, size=len(anchors))
        fwd = np.minimum(anchors + off, len(xf) - 1)
        bwd = np.maximum(anchors - off, 0)
        return np.where(xe[fwd] == xe[anchors], fwd, np.where(xe[bwd] == xe[anchors], bwd, anchors))
    print(f"tasks {tasks}; train {len(xf)} frames from {len(train)} episodes; val {len(val)} episodes", flush=True)
    net = ProgressNet(len(cameras), len(tasks))
    if args.init:
        load_onnx_weights(net, args.init, tasks)
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    if args.batch % 2:
        raise SystemExit("--batch must be even: half anchors, half partners")
    steps = args.epochs * (len(xf) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    eye = torch.eye(len(tasks), device=device)
    # Success frames are rare (one per successful episode): weight them up so `done` is not always 0.
    pos_weight = float((1 - yd).sum() / max(1.0, yd.sum()))
    t0 = time.time()
    for epoch in range(args.epochs):
        perm = np.random.permutation(len(xf))
        net.train()
        total = 0.0
        half = args.batch // 2
        for b in range(len(xf) // args.batch):
            anchors = perm[b * half:(b + 1) * half]
            idx = np.concatenate([anchors, partners(anchors)])
            x = to_input(xf[idx], device)
            # Small shifts make the model rely on what is in the picture, not on exact pixel positions.
            dx, dy = np.random.randint(-2, 3, size=2)
            x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
            # One brightness change per pair: a change between anchor and partner would be a difference to learn.
            gain = (1 + 0.1 * (torch.rand(half, 1, 1, 1) - 0.5)).repeat(2, 1, 1, 1)
            bias = (0.1 * (torch.rand(half, 1, 1, 1) - 0.5)).repeat(2, 1, 1, 1)
            x = x * gain.to(device) + bias.to(device)
            p, d = net(x, eye[torch.from_numpy(xt[idx]).to(device)])
            tp = torch.from_numpy(yp[idx]).unsqueeze(1).to(device)
            td = torch.from_numpy(yd[idx]).unsqueeze(1).to(device)
            w = 1 + (pos_weight - 1) * td
            pair = F.mse_loss(p[:half] - p[half:], tp[:half] - tp[half:])
            loss = (F.mse_loss(p, tp) * 10 + args.pair_weight * pair
                    + (F.binary_cross_entropy(d, td, reduction="none") * w).mean() / pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / (len(xf) // args.batch):.4f} {time.time() - t0:.0f}s",
              flush=True)

    net.eval()
    with torch.no_grad():
        for ti, name in enumerate(tasks):
            vocs, correct, n = [], 0, 0
            # Per kind of off-expert play: the model's progress and the true one, and step sign agreement.
            explore = {k: ([], [], []) for k in ("random", "noisy", "policy")}
            for t_i, ep, frames in val:
                if t_i != ti:
                    continue
                p, d = net(to_input(frames, device), eye[np.full(len(frames), ti)])
                p = p.squeeze(1).cpu().numpy()
                if ep["policy"] == "expert" and ep["success"]:
                    vocs.append(spearman(p, np.arange(len(p))))
                if ep["policy"] in explore:
                    ps, ys, agree = explore[ep["policy"]]
                    y = np.asarray(ep["oracle"], np.float64)
                    ps.append(p)
                    ys.append(y)
                    # Steps whose true progress moved: does the model's change have the same sign?
                    dy, dp = np.diff(y), np.diff(p)
                    moved = np.abs(dy) > 0.002
                    agree.extend((np.sign(dp[moved]) == np.sign(dy[moved])).tolist())
                if ep["policy"] in ("expert", "perturbed", "random"):
                    correct += int((p[-1] > 0.95 or d[-1].item() > 0.5) == ep["success"])
                    n += 1
            figures = "".join(
                f", {k} corr {np.corrcoef(np.concatenate(ps), np.concatenate(ys))[0, 1]:.3f}"
                f" step agreement {np.mean(agree):.2f}"
                for k, (ps, ys, agree) in explore.items() if ps)
            print(f"val {name}: VOC {np.mean(vocs) if vocs else float('nan'):.3f} over {len(vocs)} demos, "
                  f"final-frame success accuracy {correct}/{n}{figures}", flush=True)

    net.to("cpu")
    images = torch.zeros(1, 3 * len(cameras), size, size)
    task = torch.zeros(1, len(tasks))
    tmp = args.out + ".tmp"
    torch.onnx.export(net, (images, task), tmp, input_names=["images", "task"], output_names=["progress", "done"],
                      dynamic_axes={"images": {0: "B"}, "task": {0: "B"}, "progress": {0: "B"}, "done": {0: "B"}},
                      opset_version=17)
    import onnx
    model = onnx.load(tmp)
    spec = {
        "format": FORMAT,
        "images": {"input": "images", "cameras": cameras, "height": size, "width": size, "layout": "NCHW",
                   "scale": 1 / 255, "mean": [MEAN] * 3, "std": [STD] * 3},
        "task": {"input": "task", "instructions": [metas[n]["instruction"] for n in tasks], "tasks": tasks},
        "outputs": {"progress": "progress", "done": "done"},
    }
    for k, v in {"progress_bridge": json.dumps(spec), "trained_on": ",".join(tasks),
                 "version": time.strftime("%Y-%m-%d")}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, tmp)
    # Newer torch exporters write the weights to a side file; onnx.load read them in and onnx.save wrote them
    # inline, so the side file is stale.
    if os.path.exists(tmp + ".data"):
        os.remove(tmp + ".data")
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
