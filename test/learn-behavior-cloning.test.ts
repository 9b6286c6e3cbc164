/**
 * Behaviour cloning into a PPO learner, and the critic-only update that follows it. Proves: the actor learns a
 * known smooth teacher from its demonstrations to a small error on observations it never saw, through an
 * observation normaliser fitted to the demonstrations' own mean; targets outside the action box are cloned as the
 * env would apply them (clipped); the log-std, the critic and the learner's random stream are left alone; bad
 * demonstrations are refused by field; and `update(..., { trainPolicy: false })` moves the critic only.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { cloneBehavior, type Demonstrations } from '../src/learn/behavior-cloning.ts';
import { PpoLearner } from '../src/learn/ppo.ts';
import { InvalidArgument } from '../src/sim/errors.ts';

const D = 3;
const A = 2;
// Raw observations far from zero mean and unit scale, so cloning only works through a fitted normaliser.
const MEAN = [5, -2, 0.3];
const STD = [2, 0.5, 0.05];

/** The teacher: a = tanh(W z) on the standardised observation z; smooth and inside the action box. */
function teacher(obs: Float32Array, row: number, out: Float32Array, at: number): void {
  const z = [0, 1, 2].map((j) => (obs[row * D + j]! - MEAN[j]!) / STD[j]!);
  out[at] = Math.tanh(0.8 * z[0]! - 0.5 * z[1]!);
  out[at + 1] = Math.tanh(0.3 * z[0]! + 0.6 * z[2]! - 0.2);
}

function sampleDemos(count: number, seed: number): Demonstrations {
  const rng = new Rng(seed);
  const obs = new Float32Array(count * D);
  const actions = new Float32Array(count * A);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < D; j++) obs[r * D + j] = MEAN[j]! + STD[j]! * rng.normal();
    teacher(obs, r, actions, r * A);
  }
  return { obs, actions, count };
}

const makeLearner = (): PpoLearner =>
  new PpoLearner({ obsDim: D, actDim: A, numEnvs: 4, seed: 3, config: { numSteps: 8, numMinibatches: 2 } });

describe('behaviour cloning', () => {
  it('fits a known teacher to a small error on unseen observations, through a normaliser fitted to the demos', () => {
    const learner = makeLearner();
    const demos = sampleDemos(4000, 1);
    const stats = cloneBehavior(learner, demos, { epochs: 60, batchSize: 128, learningRate: 3e-3 });

    // The normaliser's mean is the demos' sample mean (computed here independently).
    for (let j = 0; j < D; j++) {
      let sum = 0;
      for (let r = 0; r < demos.count; r++) sum += demos.obs[r * D + j]!;
      expect(learner.obsNorm.getState().mean[j]).toBeCloseTo(sum / demos.count, 3);
    }
    // Held-out observations from the same distribution: the teacher's actions have variance ~0.3 per dimension;
    // the clone must get within 1% of that.
    const test = sampleDemos(500, 2);
    const pred = learner.predict(test.obs, test.count, { deterministic: true });
    let se = 0;
    for (let i = 0; i < pred.length; i++) se += (pred[i]! - test.actions[i]!) ** 2;
    expect(se / pred.length).toBeLessThan(3e-3);
    // The reported losses describe that: falling, and the final one on the demos is small as well.
    expect(stats.epochLoss[0]).toBeGreaterThan(10 * stats.epochLoss.at(-1)!);
    expect(stats.finalLoss).toBeLessThan(3e-3);
    expect(stats.gradientSteps).toBe(60 * Math.ceil(4000 / 128));
  });

  it('clones actions outside the box as the env applies them (clipped), not as written', () => {
    const learner = makeLearner();
    const demos = sampleDemos(1000, 4);
    for (let r = 0; r < demos.count; r++) {
      demos.actions[r * A] = 3;
      demos.actions[r * A + 1] = -7;
    }
    cloneBehavior(learner, demos, { epochs: 100, learningRate: 3e-3 });
    const pred = learner.predict(demos.obs.subarray(0, 10 * D), 10, { deterministic: true });
    for (let r = 0; r < 10; r++) {
      expect(pred[r * A]).toBeCloseTo(1, 1);
      expect(pred[r * A + 1]).toBeCloseTo(-1, 1);
    }
  });

  it('leaves the log-std, the critic and the learner random stream as they were', () => {
    const learner = makeLearner();
    const { offsets, params } = learner.model;
    const before = params.slice();
    const rngBefore = learner.rng.getState();
    cloneBehavior(learner, sampleDemos(500, 5), { epochs: 3 });
    expect(params.subarray(offsets.logStd)).toEqual(before.subarray(offsets.logStd));
    expect(params.subarray(0, offsets.logStd)).not.toEqual(before.subarray(0, offsets.logStd));
    expect(learner.rng.getState()).toEqual(rngBefore);
  });

  it('refuses demonstrations of the wrong size or with non-finite values, naming the field', () => {
    const learner = makeLearner();
    const good = sampleDemos(10, 6);
    const cases: [Demonstrations, RegExp][] = [
      [{ ...good, count: 0 }, /demonstrations\.count: must be a positive integer, got 0/],
      [{ ...good, obs: good.obs.subarray(3) }, /demonstrations\.obs: expected 10 x 3 = 30 values, got 27/],
      [
        { ...good, actions: new Float32Array(21) },
        /demonstrations\.actions: expected 10 x 2 = 20 values, got 21/,
      ],
    ];
    const nan = sampleDemos(10, 6);
    nan.obs[7] = NaN;
    cases.push([nan, /demonstrations\.obs: must be finite, got NaN at row 2, column 1/]);
    for (const [demos, message] of cases) {
      expect(() => cloneBehavior(learner, demos)).toThrow(InvalidArgument);
      expect(() => cloneBehavior(learner, demos)).toThrow(message);
    }
    expect(() => cloneBehavior(learner, good, { epochs: 0 })).toThrow(/bc\.epochs: must be an integer >= 1/);
  });
});

describe('critic-only update (the warm-up after cloning)', () => {
  it('moves the critic and leaves the actor and log-std exactly as they were', () => {
    const learner = new PpoLearner({
      obsDim: D,
      actDim: A,
      numEnvs: 4,
      seed: 9,
      config: { numSteps: 8, numMinibatches: 2 },
    });
    const rng = new Rng(10);
    const obs = new Float32Array(4 * D);
    const fill = (): void => {
      for (let i = 0; i < obs.length; i++) obs[i] = rng.normal();
    };
    for (let t = 0; t < 8; t++) {
      fill();
      const { actions } = learner.act(obs);
      const rewards = Float32Array.from({ length: 4 }, (_, n) => -Math.abs(actions[n * A]! - obs[n * D]!));
      learner.observe({ rewards, terminated: new Uint8Array(4), truncated: new Uint8Array(4) });
    }
    fill();
    const { offsets, params } = learner.model;
    const before = params.slice();
    const stats = learner.update(obs, 0, { trainPolicy: false });
    expect(params.subarray(0, offsets.critic)).toEqual(before.subarray(0, offsets.critic));
    expect(params.subarray(offsets.critic)).not.toEqual(before.subarray(offsets.critic));
    expect(stats.valueLoss).toBeGreaterThan(0);
  });
});
