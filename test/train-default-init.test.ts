/**
 * `models/train_default.py --init` continues a DAgger round from the weights of an exported model. Checked against
 * onnxruntime-node on the shipped model: the PyTorch net the weights are loaded into gives the same progress as the
 * ONNX graph they came from, and a model of other tasks or another shape is refused by name.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { hasModules, runPython } from './python-helpers.ts';

const MODEL = 'models/default-progress.onnx';
const TASKS = ['drawer-open', 'pick-place', 'push', 'reach', 'stack'];
const dir = mkdtempSync(join(tmpdir(), 'pbridge-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads MODEL into a fresh ProgressNet(views, tasks) and writes its progress for a seeded input batch. */
const script = (views: number, tasks: string[]): string => `
import sys, json, numpy as np, torch
sys.path.insert(0, 'models')
import train_default as t
net = t.ProgressNet(${views}, ${tasks.length})
t.load_onnx_weights(net, '${MODEL}', ${JSON.stringify(tasks)})
net.eval()
x = np.random.RandomState(1).rand(3, ${3 * views}, 64, 64).astype(np.float32)
task = np.eye(${tasks.length}, dtype=np.float32)[[2, 3, 0]]
x.tofile('${dir}/images.f32'); task.tofile('${dir}/task.f32')
with torch.no_grad():
    p, _ = net(torch.from_numpy(x), torch.from_numpy(task))
print(json.dumps(p.squeeze(1).tolist()))
`;

const readF32 = (name: string): Float32Array => {
  // Small files come in a slice of Node's shared buffer pool: copy out exactly their bytes.
  const b = readFileSync(join(dir, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

describe.skipIf(!hasModules('torch, onnx, numpy'))('train_default.py --init', () => {
  it('loads the weights so the PyTorch net scores as the ONNX graph does', async () => {
    const r = await runPython(['-c', script(3, TASKS)], 60_000);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    const torchProgress = JSON.parse(r.stdout) as number[];
    const session = await ort.InferenceSession.create(MODEL);
    const out = await session.run({
      images: new ort.Tensor('float32', readF32('images.f32'), [3, 9, 64, 64]),
      task: new ort.Tensor('float32', readF32('task.f32'), [3, TASKS.length]),
    });
    const ortProgress = Array.from(out.progress!.data as Float32Array);
    expect(torchProgress).toHaveLength(3);
    torchProgress.forEach((p, i) => expect(p).toBeCloseTo(ortProgress[i]!, 5));
    // Not a constant: the three inputs (two tasks differ) are scored differently.
    expect(new Set(ortProgress.map((p) => p.toFixed(4))).size).toBeGreaterThan(1);
  });

  it('refuses a model trained on other tasks, and one whose layers have other shapes, naming what differs', async () => {
    const tasks = await runPython(['-c', script(3, ['reach'])], 60_000);
    expect(tasks.code).not.toBe(0);
    expect(tasks.stderr).toContain(`--init ${MODEL}: trained on tasks`);
    expect(tasks.stderr).toContain("this data set has ['reach']");
    const shape = await runPython(['-c', script(2, TASKS)], 60_000);
    expect(shape.code).not.toBe(0);
    expect(shape.stderr).toContain('conv.0.weight has shape [16, 9, 4, 4], expected [16, 6, 4, 4]');
  });
});
