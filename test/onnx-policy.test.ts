import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  exportPolicyOnnx,
  GraphBuilder,
  loadOnnxPolicy,
  readOnnxMetadata,
  type PolicyExportSpec,
} from '../src/onnx/index.ts';
import {
  FileNotFoundError,
  InvalidArgument,
  InvalidOnnxModel,
  OnnxSignatureMismatch,
} from '../src/sim/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pbridge-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mulberry32: a seeded stream so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(r: () => number, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

function randomSpec(seed: number, obsDim: number, hidden: number[], actDim: number): PolicyExportSpec {
  const r = rng(seed);
  const sizes = [obsDim, ...hidden, actDim];
  return {
    obsDim,
    actDim,
    layers: sizes.slice(1).map((out, i) => ({
      W: randomArray(r, out * sizes[i]!, -1, 1),
      b: randomArray(r, out, -0.5, 0.5),
      activation: i < hidden.length ? ('tanh' as const) : ('none' as const),
    })),
    obsMean: randomArray(r, obsDim, -2, 2),
    obsStd: randomArray(r, obsDim, 0.5, 2),
    obsClip: 3,
    metadata: { env: 'push', seed: String(seed), note: 'ünïcode ✓', empty: '' },
  };
}

/** The policy written out as plain loops in float64, independent of the graph the exporter builds. */
function reference(spec: PolicyExportSpec, obs: Float32Array, batch: number): Float64Array {
  const out = new Float64Array(batch * spec.actDim);
  const std = spec.obsStd
    ? Array.from(spec.obsStd)
    : Array.from(spec.obsVar!, (v) => Math.fround(Math.sqrt(v + (spec.obsEps ?? 1e-8))));
  for (let n = 0; n < batch; n++) {
    let x = Array.from({ length: spec.obsDim }, (_, j) => {
      const z = (obs[n * spec.obsDim + j]! - spec.obsMean[j]!) / std[j]!;
      return Math.min(spec.obsClip, Math.max(-spec.obsClip, z));
    });
    for (const layer of spec.layers) {
      const y = Array.from({ length: layer.b.length }, (_, o) => {
        let s = layer.b[o]!;
        for (let i = 0; i < x.length; i++) s += layer.W[o * x.length + i]! * x[i]!;
        return layer.activation === 'tanh' ? Math.tanh(s) : s;
      });
      x = y;
    }
    x.forEach((v, j) => {
      const lo = spec.actionLow === undefined ? -Infinity : pick(spec.actionLow, j);
      const hi = spec.actionHigh === undefined ? Infinity : pick(spec.actionHigh, j);
      out[n * spec.actDim + j] = Math.min(hi, Math.max(lo, v));
    });
  }
  return out;
}

const pick = (v: number | ArrayLike<number>, j: number): number => (typeof v === 'number' ? v : v[j]!);

async function expectMatchesReference(spec: PolicyExportSpec, name: string): Promise<void> {
  const path = join(dir, name);
  await exportPolicyOnnx(spec, path);
  const policy = await loadOnnxPolicy(path, { obsDim: spec.obsDim, actDim: spec.actDim });
  try {
    for (const batch of [1, 7]) {
      // Scale 10 against std <= 2 and clip 3: many inputs land beyond the clip, so the clip is exercised.
      const obs = randomArray(rng(batch), batch * spec.obsDim, -10, 10);
      const got = await policy.run(obs, batch);
      const want = reference(spec, obs, batch);
      expect(got.length).toBe(want.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst, `${name} batch ${batch}`).toBeLessThan(1e-5);
    }
  } finally {
    await policy.close();
  }
}

function buildWith(
  name: string,
  io: { input?: [string, ...(number | string)[]]; output?: [string, ...(number | string)[]]; op?: string },
): string {
  const [inName, ...inShape] = io.input ?? ['obs', 'B', 3];
  const [outName, ...outShape] = io.output ?? ['action', 'B', 3];
  const g = new GraphBuilder('wrong');
  g.addInput(inName, 'float32', inShape);
  g.addNode(io.op ?? 'Identity', [inName], { outputs: [outName] });
  g.addOutput(outName, 'float32', outShape);
  const path = join(dir, name);
  writeFileSync(path, g.toBytes());
  return path;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('exported policy vs. a plain TypeScript forward pass', () => {
  it('two tanh hidden layers, std given', async () => {
    await expectMatchesReference(randomSpec(1, 11, [32, 16], 4), 'a.onnx');
  });

  it('var + eps, no observation clip, per-dimension and scalar action bounds', async () => {
    const spec = randomSpec(2, 5, [8], 3);
    const r = rng(3);
    spec.obsVar = Float32Array.from(spec.obsStd!, (s) => s * s);
    spec.obsEps = 1e-4;
    delete spec.obsStd;
    spec.obsClip = Infinity;
    spec.actionLow = Float32Array.of(-0.1, -0.2, -0.3);
    spec.actionHigh = 0.25;
    // Large weights so the bounds actually bite.
    spec.layers[1]!.W = randomArray(r, 3 * 8, -4, 4);
    await expectMatchesReference(spec, 'b.onnx');
  });

  it('a single linear layer (no hidden layer)', async () => {
    await expectMatchesReference(randomSpec(4, 3, [], 2), 'c.onnx');
  });

  it('writes atomically: only the finished file is left in the directory', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    await exportPolicyOnnx(randomSpec(5, 3, [4], 2), join(sub, 'p.onnx'));
    expect(readdirSync(sub)).toEqual(['p.onnx']);
  });
});

describe('metadata', () => {
  it('round-trips through the file, with the signature and the exporter keys', async () => {
    const spec = randomSpec(6, 11, [32, 16], 4);
    const path = join(dir, 'meta.onnx');
    await exportPolicyOnnx(spec, path);
    const info = await readOnnxMetadata(path);
    expect(info.metadata).toEqual({
      'pbridge.format': 'mlp-gaussian-policy/1',
      obs_dim: '11',
      act_dim: '4',
      hidden_sizes: '32,16',
      activations: 'tanh,tanh,none',
      obs_clip: '3',
      action_clip: 'none',
      env: 'push',
      seed: '6',
      note: 'ünïcode ✓',
      empty: '',
    });
    expect(info.irVersion).toBe(8);
    expect(info.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(info.inputs).toEqual([{ name: 'obs', elemType: 'float32', shape: ['B', 11] }]);
    expect(info.outputs).toEqual([{ name: 'action', elemType: 'float32', shape: ['B', 4] }]);
    const policy = await loadOnnxPolicy(path);
    expect(policy.metadata).toEqual(info.metadata);
    expect([policy.obsDim, policy.actDim]).toEqual([11, 4]);
    await policy.close();
  });

  it('refuses user keys that would overwrite the exporter keys', async () => {
    const spec = randomSpec(7, 3, [4], 2);
    spec.metadata = { obs_dim: '99' };
    await expect(exportPolicyOnnx(spec, join(dir, 'x.onnx'))).rejects.toThrow(/metadata\.obs_dim/);
  });
});

describe('bad specs, bad files, wrong signatures', () => {
  it('a spec whose shapes do not chain is refused before anything is written', async () => {
    const spec = randomSpec(8, 3, [4], 2);
    spec.layers[1]!.W = new Float32Array(7);
    const path = join(dir, 'never.onnx');
    const err = await rejection(exportPolicyOnnx(spec, path));
    expect(err).toBeInstanceOf(InvalidArgument);
    expect(err.message).toMatch(/layers\[1\]\.W: has 7 values, expected 8 for \[2, 4\]/);
    expect(readdirSync(dir)).not.toContain('never.onnx');
  });

  it('a missing file is FileNotFoundError', async () => {
    await expect(loadOnnxPolicy(join(dir, 'missing.onnx'))).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(readOnnxMetadata(join(dir, 'missing.onnx'))).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it('truncated and garbage files are InvalidOnnxModel naming the file and the byte', async () => {
    const good = join(dir, 'good.onnx');
    await exportPolicyOnnx(randomSpec(9, 11, [32], 4), good);
    const bytes = readFileSync(good);
    const bad = join(dir, 'bad.onnx');
    for (const at of [1, 3, 20, bytes.length >> 1, bytes.length - 1]) {
      writeFileSync(bad, bytes.subarray(0, at));
      const err = await rejection(loadOnnxPolicy(bad));
      expect(err, `cut at ${at}`).toBeInstanceOf(InvalidOnnxModel);
      expect(err.message).toContain(bad);
      expect(err.message).toMatch(/byte \d+|no graph/);
    }
    writeFileSync(bad, 'definitely not a protobuf ☃');
    expect(await rejection(loadOnnxPolicy(bad))).toBeInstanceOf(InvalidOnnxModel);
  });

  it('a model onnxruntime refuses keeps onnxruntime’s reason', async () => {
    const path = buildWith('unknown-op.onnx', { op: 'NoSuchOp' });
    const err = await rejection(loadOnnxPolicy(path));
    expect(err).toBeInstanceOf(InvalidOnnxModel);
    expect(err.message).toMatch(/onnxruntime refused it: .*NoSuchOp/);
  });

  it('wrong names, fixed batch and wrong sizes name the tensor and the expected shape', async () => {
    const cases: [string, Parameters<typeof buildWith>[1], string, RegExp][] = [
      [
        'in-name.onnx',
        { input: ['observation', 'B', 3] },
        'obs',
        /no input named obs \(expected obs float32 \[B, obs_dim\]\); its inputs are: observation float32 \[B, 3\]/,
      ],
      ['out-name.onnx', { output: ['mean', 'B', 3] }, 'action', /no output named action/],
      ['fixed-batch.onnx', { input: ['obs', 1, 3], output: ['action', 1, 3] }, 'obs', /fixed batch size 1/],
      [
        'rank.onnx',
        { input: ['obs', 'B', 3, 1], output: ['action', 'B', 3, 1] },
        'obs',
        /rank 3, expected 2/,
      ],
    ];
    for (const [file, io, tensor, pattern] of cases) {
      const err = await rejection(loadOnnxPolicy(buildWith(file, io)));
      expect(err, file).toBeInstanceOf(OnnxSignatureMismatch);
      expect((err as OnnxSignatureMismatch).tensor, file).toBe(tensor);
      expect(err.message, file).toMatch(pattern);
    }
    const ok = buildWith('ok.onnx', {});
    const err = await rejection(loadOnnxPolicy(ok, { obsDim: 12 }));
    expect(err.message).toMatch(
      /expected obs float32 \[B, 12\], got obs float32 \[B, 3\]: obs_dim is 3, expected 12/,
    );
    const policy = await loadOnnxPolicy(ok, { obsDim: 3, actDim: 3 });
    expect(Array.from(await policy.run(Float32Array.of(1, 2, 3, 4, 5, 6), 2))).toEqual([1, 2, 3, 4, 5, 6]);
    await expect(policy.run(new Float32Array(5), 2)).rejects.toThrow(
      /batch \* obs_dim = 2 \* 3 = 6 values, got 5/,
    );
    await expect(policy.run(new Float32Array(0), 0)).rejects.toBeInstanceOf(InvalidArgument);
    await policy.close();
  });
});
