/**
 * PpoLearner checkpoints on disk. Proves: a learner loaded from a checkpoint (new, or restored into one built with
 * another seed) takes the same next actions and reaches bit-identical weights, optimiser moments, statistics and
 * Rng state after further updates as the learner that was saved; `extra` comes back as written; a truncated or
 * damaged file is CheckpointCorrupt naming the path, and so is a valid checkpoint that is not a learner's; a
 * checkpoint of another observation/action size (or network) is refused naming the field and the path; saving
 * mid-rollout is a RolloutOrderError (rebuilt from its code across threads) and writes nothing; saving over a
 * checkpoint leaves no temporary files.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/env/rng.ts';
import {
  loadLearnerCheckpoint,
  readLearnerCheckpoint,
  restoreLearnerCheckpoint,
  saveLearnerCheckpoint,
} from '../src/learn/checkpoint-io.ts';
import { PpoLearner, type PpoLearnerState } from '../src/learn/ppo.ts';
import { CheckpointCorrupt, errorFromCode, InvalidArgument, RolloutOrderError } from '../src/sim/errors.ts';
import { writeCheckpoint } from '../src/util/checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'pbridge-learner-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 3;
const CONFIG = { numSteps: 16, numMinibatches: 4, updateEpochs: 2, learningRate: 1e-3 };

function makeLearner(obsDim: number, actDim: number, seed: number): PpoLearner {
  return new PpoLearner({ obsDim, actDim, numEnvs: N, seed, config: CONFIG });
}

/**
 * A deterministic stream of observations, rewards and episode ends, driven by its own Rng so two learners can be
 * fed identical data. Truncations with finalObs exercise the bootstrap path; rewards depend on the actions.
 */
function runUpdates(learner: PpoLearner, data: Rng, updates: number, total = 20): void {
  const D = learner.obsDim;
  const obs = (): Float32Array => Float32Array.from({ length: N * D }, () => 1 + 2 * data.normal());
  let o = obs();
  for (let u = 0; u < updates; u++) {
    for (let t = 0; t < learner.config.numSteps; t++) {
      const { actions } = learner.act(o);
      const rewards = Array.from({ length: N }, (_, n) => actions[n * learner.actDim]! + data.normal());
      const terminated = Array.from({ length: N }, () => (data.random() < 0.05 ? 1 : 0));
      const truncated = terminated.map((d) => (d === 0 && data.random() < 0.05 ? 1 : 0));
      learner.observe({ rewards, terminated, truncated, finalObs: obs() });
      o = obs();
    }
    learner.update(o, Math.min(1, learner.updates / total));
  }
}

const bits = (a: Float32Array | Float64Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function expectSameState(a: PpoLearnerState, b: PpoLearnerState): void {
  expect(bits(a.params).equals(bits(b.params))).toBe(true);
  expect(bits(a.adam.m).equals(bits(b.adam.m))).toBe(true);
  expect(bits(a.adam.v).equals(bits(b.adam.v))).toBe(true);
  expect(a.adam.step).toBe(b.adam.step);
  expect(bits(a.obsNorm.mean).equals(bits(b.obsNorm.mean))).toBe(true);
  expect(bits(a.obsNorm.var).equals(bits(b.obsNorm.var))).toBe(true);
  expect(a.obsNorm.count).toBe(b.obsNorm.count);
  expect(bits(a.rewardScaler.rms.var).equals(bits(b.rewardScaler.rms.var))).toBe(true);
  expect(bits(a.rewardScaler.returns).equals(bits(b.rewardScaler.returns))).toBe(true);
  expect(a.rng).toEqual(b.rng);
  expect(a.updates).toBe(b.updates);
  expect(a.config).toEqual(b.config);
}

/** A learner after 3 updates, saved to `path`; returns it and the data stream positioned after them. */
async function savedLearner(
  path: string,
  obsDim = 4,
  actDim = 2,
): Promise<{ learner: PpoLearner; data: Rng }> {
  const learner = makeLearner(obsDim, actDim, 11);
  const data = new Rng(99);
  runUpdates(learner, data, 3);
  await saveLearnerCheckpoint(path, learner, {
    step: 3 * CONFIG.numSteps * N,
    env: 'test',
    nested: { a: [1, 2] },
  });
  return { learner, data };
}

describe('learner checkpoints', () => {
  it('a loaded learner continues bit for bit like the saved one', async () => {
    const path = join(dir, 'roundtrip.pbck');
    const { learner: original, data } = await savedLearner(path);
    const { learner: loaded, extra } = await loadLearnerCheckpoint(path);
    expect(extra).toEqual({ step: 144, env: 'test', nested: { a: [1, 2] } });
    expectSameState(loaded.state(), original.state());

    // Both see the same data from here on; the Rng of the data stream is cloned for the second.
    const dataCopy = new Rng(0);
    dataCopy.setState(data.getState());
    runUpdates(original, data, 3);
    runUpdates(loaded, dataCopy, 3);
    expect(loaded.updates).toBe(6);
    expectSameState(loaded.state(), original.state());
    const probe = Float32Array.from({ length: N * 4 }, (_, i) => Math.sin(i));
    expect(bits(loaded.act(probe).actions).equals(bits(original.act(probe).actions))).toBe(true);
  });

  it('restores into an existing learner built with another seed', async () => {
    const path = join(dir, 'restore.pbck');
    const { learner: original, data } = await savedLearner(path);
    const other = makeLearner(4, 2, 12345);
    const { extra } = await restoreLearnerCheckpoint(path, other);
    expect(extra.step).toBe(144);
    const dataCopy = new Rng(0);
    dataCopy.setState(data.getState());
    runUpdates(original, data, 2);
    runUpdates(other, dataCopy, 2);
    expectSameState(other.state(), original.state());
  });

  it('a truncated file is CheckpointCorrupt naming the path', async () => {
    const path = join(dir, 'truncated.pbck');
    await savedLearner(path);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const err = await loadLearnerCheckpoint(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorrupt);
    expect((err as CheckpointCorrupt).reason).toBe('truncated');
    expect((err as CheckpointCorrupt).path).toBe(path);
    expect((err as Error).message).toContain(path);
  });

  it('a damaged byte in the weights is CheckpointCorrupt (checksum), not garbage weights', async () => {
    const path = join(dir, 'flipped.pbck');
    await savedLearner(path);
    const bytes = readFileSync(path);
    bytes[bytes.length - 200]! ^= 0x10;
    writeFileSync(path, bytes);
    const err = await readLearnerCheckpoint(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorrupt);
    expect((err as CheckpointCorrupt).reason).toBe('checksum_mismatch');
    expect((err as Error).message).toContain(path);
  });

  it('a checkpoint that is not a learner’s is refused, saying what is missing', async () => {
    const path = join(dir, 'foreign.pbck');
    await writeCheckpoint(path, { meta: { kind: 'something-else', step: 1 }, arrays: {} });
    const err = await loadLearnerCheckpoint(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorrupt);
    expect((err as CheckpointCorrupt).reason).toBe('malformed');
    expect((err as Error).message).toMatch(/meta\.kind.*something-else/);
  });

  it('a checkpoint of another observation or action size is refused, naming the dimension', async () => {
    const path = join(dir, 'dims.pbck');
    await savedLearner(path, 5, 2);
    const intoSmaller = await restoreLearnerCheckpoint(path, makeLearner(4, 2, 0)).catch((e: unknown) => e);
    expect(intoSmaller).toBeInstanceOf(InvalidArgument);
    expect((intoSmaller as InvalidArgument).field).toBe('obsDim');
    expect((intoSmaller as Error).message).toMatch(/obsDim 5.*obsDim 4/);
    expect((intoSmaller as Error).message).toContain(path);

    const wrongAct = await loadLearnerCheckpoint(path, { obsDim: 5, actDim: 3 }).catch((e: unknown) => e);
    expect(wrongAct).toBeInstanceOf(InvalidArgument);
    expect((wrongAct as InvalidArgument).field).toBe('actDim');
    expect((wrongAct as Error).message).toMatch(/actDim 2.*actDim 3/);

    const otherNet = new PpoLearner({
      obsDim: 5,
      actDim: 2,
      numEnvs: N,
      seed: 0,
      config: { ...CONFIG, actorHidden: [32, 32] },
    });
    const wrongNet = await restoreLearnerCheckpoint(path, otherNet).catch((e: unknown) => e);
    expect(wrongNet).toBeInstanceOf(InvalidArgument);
    expect((wrongNet as InvalidArgument).field).toBe('state.params');
    expect((wrongNet as Error).message).toContain(path);
  });

  it('saving mid-rollout is a RolloutOrderError (rebuilt from its code across threads) and writes nothing; overwriting leaves no temporary files', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const path = join(sub, 'ckpt.pbck');
    const learner = makeLearner(4, 2, 1);
    learner.act(new Float32Array(N * 4));
    await expect(saveLearnerCheckpoint(path, learner, { step: 0 })).rejects.toBeInstanceOf(RolloutOrderError);
    // The class lives with the other error classes now, so it also survives a thread boundary by its code.
    expect(errorFromCode('ROLLOUT_ORDER', 'x')).toBeInstanceOf(RolloutOrderError);
    expect(existsSync(path)).toBe(false);

    await savedLearner(path);
    await savedLearner(path);
    expect(readdirSync(sub)).toEqual(['ckpt.pbck']);
    await expect(saveLearnerCheckpoint(path, makeLearner(4, 2, 1), { step: -1 })).rejects.toThrow(
      /extra\.step/,
    );
  });
});
