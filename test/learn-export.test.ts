/**
 * Exporting a PpoLearner to ONNX. Proves: after real updates (so the weights and observation statistics are no
 * longer their initial values) onnxruntime's output equals `learner.predict(obs, B, { deterministic: true })`
 * within 1e-5 for batches 1 and 9, with the mean clipped to [-1, 1] by default and unclipped on request; a learner
 * without observation normalisation exports an identity normalisation; observation and action names land in the
 * metadata as JSON arrays; a wrong number of names is refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/env/rng.ts';
import { exportLearnerPolicy } from '../src/learn/export.ts';
import { PpoLearner, type PpoConfig } from '../src/learn/ppo.ts';
import { loadOnnxPolicy, readOnnxMetadata } from '../src/onnx/index.ts';
import { InvalidArgument } from '../src/sim/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pbridge-learn-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OBS_DIM = 5;
const ACT_DIM = 3;
const N = 2;
// Observations far from zero mean and unit scale, so a missing or wrong normalisation cannot pass unnoticed.
const OBS_CENTER = [3, -2, 0, 10, -0.5];
const OBS_SCALE = [0.5, 2, 1, 4, 0.1];

function randomObs(rng: Rng, batch: number): Float32Array {
  const obs = new Float32Array(batch * OBS_DIM);
  for (let r = 0; r < batch; r++) {
    for (let j = 0; j < OBS_DIM; j++) obs[r * OBS_DIM + j] = OBS_CENTER[j]! + OBS_SCALE[j]! * rng.normal();
  }
  return obs;
}

/** A learner after `updates` PPO updates on random observations and rewards. */
function trainedLearner(seed: number, updates: number, config: Partial<PpoConfig> = {}): PpoLearner {
  const learner = new PpoLearner({
    obsDim: OBS_DIM,
    actDim: ACT_DIM,
    numEnvs: N,
    seed,
    config: { numSteps: 32, numMinibatches: 4, updateEpochs: 2, learningRate: 3e-3, ...config },
  });
  const rng = new Rng(seed + 1);
  let obs = randomObs(rng, N);
  for (let u = 0; u < updates; u++) {
    for (let t = 0; t < learner.config.numSteps; t++) {
      const { actions } = learner.act(obs);
      // Reward the first action dimension for being large, so the mean actually moves.
      const rewards = Array.from({ length: N }, (_, n) => actions[n * ACT_DIM]! + rng.normal());
      learner.observe({ rewards, terminated: [0, t % 7 === 6 ? 1 : 0], truncated: [0, 0] });
      obs = randomObs(rng, N);
    }
    learner.update(obs, u / updates);
  }
  return learner;
}

const clip1 = (v: number): number => Math.min(1, Math.max(-1, v));

async function expectMatches(
  learner: PpoLearner,
  path: string,
  batch: number,
  expected: (v: number) => number,
): Promise<void> {
  const policy = await loadOnnxPolicy(path, { obsDim: OBS_DIM, actDim: ACT_DIM });
  try {
    const obs = randomObs(new Rng(100 + batch), batch);
    const got = await policy.run(obs, batch);
    const want = learner.predict(obs, batch, { deterministic: true }).map(expected);
    expect(got.length).toBe(batch * ACT_DIM);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
  } finally {
    await policy.close();
  }
}

describe('exportLearnerPolicy', () => {
  it('gives the learner’s deterministic actions, normalisation folded in, for batches 1 and 9', async () => {
    const learner = trainedLearner(1, 4);
    // The statistics really moved away from the initial (0, 1): the graph must use them.
    expect(Math.abs(learner.obsNorm.rms.mean[3]! - 10)).toBeLessThan(1);
    const path = join(dir, 'trained.onnx');
    await exportLearnerPolicy(learner, path);
    for (const batch of [1, 9]) await expectMatches(learner, path, batch, clip1);
  });

  it('clips the mean to [-1, 1] by default, and leaves it alone with actionBounds: null', async () => {
    const learner = trainedLearner(2, 2);
    // Push one output dimension's mean well outside the action space through its bias.
    const head = learner.model.actor.layers.at(-1)!;
    head.b[0] = 2.5;
    head.b[1] = -2.5;
    const obs = randomObs(new Rng(7), 9);
    const mean = learner.predict(obs, 9, { deterministic: true });
    expect(mean[0]).toBeGreaterThan(1);

    const clipped = join(dir, 'clipped.onnx');
    await exportLearnerPolicy(learner, clipped);
    for (const batch of [1, 9]) await expectMatches(learner, clipped, batch, clip1);
    expect((await readOnnxMetadata(clipped)).metadata.action_clip).toBe('bounds');

    const raw = join(dir, 'raw.onnx');
    await exportLearnerPolicy(learner, raw, { actionBounds: null });
    for (const batch of [1, 9]) await expectMatches(learner, raw, batch, (v) => v);
    expect((await readOnnxMetadata(raw)).metadata.action_clip).toBe('none');
  });

  it("maps [-1, 1] onto a rig's bounds with actionScale, clipped to them", async () => {
    const learner = trainedLearner(3, 2);
    const head = learner.model.actor.layers.at(-1)!;
    head.b[2] = 3; // outside [-1, 1]: must come out clipped to high[2]
    const low = [-0.5, 0, 10];
    const high = [0.5, 2, 12];
    const path = join(dir, 'scaled.onnx');
    await exportLearnerPolicy(learner, path, { actionScale: { low, high } });
    const policy = await loadOnnxPolicy(path, { obsDim: OBS_DIM, actDim: ACT_DIM });
    try {
      const obs = randomObs(new Rng(11), 9);
      const got = await policy.run(obs, 9);
      const mean = learner.predict(obs, 9, { deterministic: true });
      for (let i = 0; i < mean.length; i++) {
        const k = i % ACT_DIM;
        const want = Math.min(
          high[k]!,
          Math.max(low[k]!, low[k]! + ((mean[i]! + 1) / 2) * (high[k]! - low[k]!)),
        );
        expect(Math.abs(got[i]! - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
      }
      expect(Array.from({ length: 9 }, (_, r) => got[r * ACT_DIM + 2])).toEqual(Array(9).fill(12));
    } finally {
      await policy.close();
    }
  });

  it('exports an identity normalisation for a learner without normObs', async () => {
    const learner = trainedLearner(3, 2, { normObs: false });
    const path = join(dir, 'no-norm.onnx');
    await exportLearnerPolicy(learner, path, { actionBounds: null });
    for (const batch of [1, 9]) await expectMatches(learner, path, batch, (v) => v);
    expect((await readOnnxMetadata(path)).metadata.obs_clip).toBe('Infinity');
  });

  it('records observation and action names and the caller’s metadata', async () => {
    const learner = trainedLearner(4, 1);
    const path = join(dir, 'named.onnx');
    const obsNames = ['a', 'b', 'c,with comma', 'd', 'e'];
    const actNames = ['dx', 'dy', 'grip'];
    await exportLearnerPolicy(learner, path, { obsNames, actNames, metadata: { env: 'test', step: '64' } });
    const meta = (await readOnnxMetadata(path)).metadata;
    expect(JSON.parse(meta.obs_names!)).toEqual(obsNames);
    expect(JSON.parse(meta.act_names!)).toEqual(actNames);
    expect(meta.env).toBe('test');
    expect(meta.step).toBe('64');
    expect(meta.obs_dim).toBe('5');
    expect(meta.hidden_sizes).toBe('64,64');

    const unnamed = join(dir, 'unnamed.onnx');
    await exportLearnerPolicy(learner, unnamed);
    expect((await readOnnxMetadata(unnamed)).metadata.obs_names).toBeUndefined();
  });

  it("records the policy's action standard deviation, in the file's action units", async () => {
    const learner = trainedLearner(6, 2);
    learner.model.logStd.set([-1, 0, 0.5]);
    const plain = join(dir, 'std.onnx');
    await exportLearnerPolicy(learner, plain);
    const std = JSON.parse((await readOnnxMetadata(plain)).metadata.action_std!) as number[];
    [Math.exp(-1), 1, Math.exp(0.5)].forEach((want, k) => expect(std[k]).toBeCloseTo(want, 5));
    // A rig range [0, 4] stretches [-1, 1] by 2: the spread stretches with it.
    const scaled = join(dir, 'std-scaled.onnx');
    await exportLearnerPolicy(learner, scaled, { actionScale: { low: [0, 0, 0], high: [4, 4, 4] } });
    const wide = JSON.parse((await readOnnxMetadata(scaled)).metadata.action_std!) as number[];
    [2 * Math.exp(-1), 2, 2 * Math.exp(0.5)].forEach((want, k) => expect(wide[k]).toBeCloseTo(want, 5));
  });

  it('refuses a list of names of the wrong length, naming the field', async () => {
    const learner = trainedLearner(5, 1);
    const err = await exportLearnerPolicy(learner, join(dir, 'bad.onnx'), { actNames: ['x'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as InvalidArgument).field).toBe('actNames');
    expect((err as Error).message).toContain('expected 3');
  });
});
