/**
 * The PPO learner end to end. Proves: PPO learns two trivial continuous tasks written here within seconds, to a
 * return near each task's known optimum and far above the initial policy (a contextual bandit whose best action
 * is the observation; a 1-D point that must reach a target under a time limit, which exercises truncation
 * bootstrapping through `finalObs`); a learner restored from `state()` mid-training continues bit-identically to
 * one that was never interrupted; the Rng state round-trips; bad configs and out-of-order calls throw errors that
 * name the field or the rule.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import {
  checkPpoConfig,
  defaultPpoConfig,
  PpoLearner,
  RolloutOrderError,
  type PpoConfig,
} from '../src/learn/ppo.ts';
import { InvalidArgument } from '../src/sim/errors.ts';

interface StepOut {
  rewards: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  finalObs: Float32Array;
}

/** A vector env with same-step autoreset: after an ended step, `obs` is already the next episode's first. */
interface TestEnv {
  readonly obsDim: number;
  readonly actDim: number;
  readonly obs: Float32Array;
  readonly rng: Rng;
  step(actions: ArrayLike<number>): StepOut;
}

const clip = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/**
 * Contextual bandit: obs o ~ U(-1, 1)^2, reward -sum_j (clip(a_j, -2, 2) - o_j)^2, every episode one step
 * (terminated). The optimum a = o earns 0; the initial policy (mean ~0) earns -2/3 deterministically.
 */
class Bandit implements TestEnv {
  readonly obsDim = 2;
  readonly actDim = 2;
  readonly obs: Float32Array;
  readonly rng: Rng;
  private readonly out: StepOut;
  constructor(
    readonly N: number,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.obs = new Float32Array(N * 2);
    this.out = {
      rewards: new Float32Array(N),
      terminated: new Uint8Array(N).fill(1),
      truncated: new Uint8Array(N),
      finalObs: new Float32Array(N * 2),
    };
    this.resample();
  }
  private resample(): void {
    for (let i = 0; i < this.obs.length; i++) this.obs[i] = this.rng.uniform(-1, 1);
  }
  step(actions: ArrayLike<number>): StepOut {
    for (let n = 0; n < this.N; n++) {
      let r = 0;
      for (let j = 0; j < 2; j++) r -= (clip(actions[n * 2 + j]!, -2, 2) - this.obs[n * 2 + j]!) ** 2;
      this.out.rewards[n] = r;
    }
    this.out.finalObs.set(this.obs);
    this.resample();
    return this.out;
  }
}

/**
 * 1-D point: obs (x, g) with x, g ~ U(-1, 1); the action moves x by 0.25 * clip(a, -1, 1); reward -|x - g| after
 * the move; truncated after 16 steps (time limit, so the return of a cut episode must be bootstrapped). The best
 * return, moving at full speed to g and staying, is -sum_{k=1..16} max(|x0 - g| - 0.25 k, 0).
 */
class Point implements TestEnv {
  static readonly horizon = 16;
  readonly obsDim = 2;
  readonly actDim = 1;
  readonly obs: Float32Array;
  readonly rng: Rng;
  private readonly t: Int32Array;
  private readonly out: StepOut;
  constructor(
    readonly N: number,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.obs = new Float32Array(N * 2);
    this.t = new Int32Array(N);
    this.out = {
      rewards: new Float32Array(N),
      terminated: new Uint8Array(N),
      truncated: new Uint8Array(N),
      finalObs: new Float32Array(N * 2),
    };
    for (let n = 0; n < N; n++) this.reset(n);
  }
  reset(n: number): void {
    this.obs[n * 2] = this.rng.uniform(-1, 1);
    this.obs[n * 2 + 1] = this.rng.uniform(-1, 1);
    this.t[n] = 0;
  }
  step(actions: ArrayLike<number>): StepOut {
    for (let n = 0; n < this.N; n++) {
      const x = this.obs[n * 2]! + 0.25 * clip(actions[n]!, -1, 1);
      this.obs[n * 2] = x;
      this.out.rewards[n] = -Math.abs(x - this.obs[n * 2 + 1]!);
      this.t[n]! += 1;
      const done = this.t[n]! >= Point.horizon;
      this.out.truncated[n] = done ? 1 : 0;
      this.out.finalObs[n * 2] = x;
      this.out.finalObs[n * 2 + 1] = this.obs[n * 2 + 1]!;
      if (done) this.reset(n);
    }
    return this.out;
  }
  /** An independent copy in the same state (positions, step counters, random stream). */
  clone(): Point {
    const c = new Point(this.N, 0);
    c.obs.set(this.obs);
    c.t.set(this.t);
    c.rng.setState(this.rng.getState());
    return c;
  }
  static optimalReturn(x0: number, g: number): number {
    let r = 0;
    for (let k = 1; k <= Point.horizon; k++) r -= Math.max(Math.abs(x0 - g) - 0.25 * k, 0);
    return r;
  }
}

/** Runs `iterations` rollout + update cycles. */
function train(learner: PpoLearner, env: TestEnv, iterations: number, first = 0, total = iterations): void {
  for (let it = first; it < first + iterations; it++) {
    for (let t = 0; t < learner.config.numSteps; t++) {
      const { actions } = learner.act(env.obs);
      const res = env.step(actions);
      learner.observe(res);
    }
    learner.update(env.obs, it / total);
  }
}

/** Mean deterministic return of the bandit over fixed test contexts. */
function banditScore(learner: PpoLearner): number {
  const rng = new Rng(999);
  const B = 500;
  const obs = Float32Array.from({ length: B * 2 }, () => rng.uniform(-1, 1));
  const a = learner.predict(obs, B);
  let s = 0;
  for (let i = 0; i < B * 2; i++) s -= (clip(a[i]!, -2, 2) - obs[i]!) ** 2;
  return s / B;
}

/** Mean deterministic episode return on the point task over fixed starts, and the optimum's mean. */
function pointScore(learner: PpoLearner): { score: number; optimum: number } {
  const rng = new Rng(1234);
  const B = 200;
  const x = Float32Array.from({ length: B }, () => rng.uniform(-1, 1));
  const g = Float32Array.from({ length: B }, () => rng.uniform(-1, 1));
  let optimum = 0;
  for (let i = 0; i < B; i++) optimum += Point.optimalReturn(x[i]!, g[i]!);
  const obs = new Float32Array(B * 2);
  let score = 0;
  for (let t = 0; t < Point.horizon; t++) {
    for (let i = 0; i < B; i++) {
      obs[i * 2] = x[i]!;
      obs[i * 2 + 1] = g[i]!;
    }
    const a = learner.predict(obs, B);
    for (let i = 0; i < B; i++) {
      x[i] = x[i]! + 0.25 * clip(a[i]!, -1, 1);
      score -= Math.abs(x[i]! - g[i]!);
    }
  }
  return { score: score / B, optimum: optimum / B };
}

/** Small networks and batches so each learning test takes a few seconds on a shared 2-core machine. */
const fast: Partial<PpoConfig> = {
  numSteps: 32,
  numMinibatches: 4,
  updateEpochs: 10,
  learningRate: 3e-3,
  actorHidden: [16, 16],
  criticHidden: [16, 16],
};

describe('PpoLearner learns', () => {
  it('a contextual bandit whose best action is the observation', () => {
    const env = new Bandit(8, 1);
    const learner = new PpoLearner({ obsDim: 2, actDim: 2, numEnvs: 8, seed: 1, config: fast });
    const before = banditScore(learner);
    const t0 = performance.now();
    train(learner, env, 30);
    const after = banditScore(learner);
    console.log(
      `bandit: ${before.toFixed(3)} -> ${after.toFixed(3)} (optimum 0) in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    expect(before).toBeLessThan(-0.5);
    // Within 0.05 of the optimum 0: the mean squared error of the action is under 0.025 per dimension.
    expect(after).toBeGreaterThan(-0.05);
  });

  it('a 1-D point that must reach a target under a time limit', () => {
    const N = 8;
    const env = new Point(N, 2);
    const learner = new PpoLearner({
      obsDim: 2,
      actDim: 1,
      numEnvs: N,
      seed: 2,
      config: { ...fast, numSteps: 64, gamma: 0.95 },
    });
    const before = pointScore(learner);
    const t0 = performance.now();
    train(learner, env, 40);
    const after = pointScore(learner);
    console.log(
      `point: ${before.score.toFixed(3)} -> ${after.score.toFixed(3)} (optimum ${after.optimum.toFixed(3)}) in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    // Returns are negative: the initial policy does over 5x worse than the optimum, the trained one within 20%.
    expect(before.score).toBeLessThan(5 * before.optimum);
    expect(after.score).toBeGreaterThan(1.2 * after.optimum);
  });
});

describe('PpoLearner state', () => {
  it('a learner restored mid-training continues bit-identically to one never interrupted', () => {
    const N = 4;
    const config: Partial<PpoConfig> = {
      numSteps: 16,
      numMinibatches: 2,
      updateEpochs: 2,
      actorHidden: [8, 8],
      criticHidden: [8, 8],
      targetKl: 0.5,
    };
    const envA = new Point(N, 5);
    const a = new PpoLearner({ obsDim: 2, actDim: 1, numEnvs: N, seed: 5, config });
    train(a, envA, 2, 0, 5);
    // What a checkpoint would hold: copied through structuredClone, so nothing is shared with the live learner.
    const saved = structuredClone(a.state());
    const envB = envA.clone();
    const paramsAtSave = a.model.params.slice();

    train(a, envA, 3, 2, 5);
    const b = PpoLearner.fromState(saved);
    train(b, envB, 3, 2, 5);

    expect(b.model.params).toEqual(a.model.params);
    expect(Buffer.from(b.model.params.buffer).equals(Buffer.from(a.model.params.buffer))).toBe(true);
    expect(b.state()).toEqual(a.state());
    expect(b.updates).toBe(5);
    // The comparison is not vacuous: training moved the parameters after the save.
    expect(a.model.params).not.toEqual(paramsAtSave);
  });

  it('state() holds the documented fields with the documented shapes', () => {
    const learner = new PpoLearner({
      obsDim: 3,
      actDim: 2,
      numEnvs: 2,
      seed: 0,
      config: { numSteps: 4, numMinibatches: 2, actorHidden: [5], criticHidden: [6] },
    });
    const s = learner.state();
    const nActor = 5 * 3 + 5 + 2 * 5 + 2;
    const nCritic = 6 * 3 + 6 + 1 * 6 + 1;
    expect(s.version).toBe(1);
    expect(s.params.length).toBe(nActor + 2 + nCritic);
    expect(Array.from(s.params.subarray(nActor, nActor + 2))).toEqual([0, 0]); // log-std starts at 0
    expect(s.adam.m.length).toBe(s.params.length);
    expect(s.adam.step).toBe(0);
    expect(s.obsNorm.mean).toBeInstanceOf(Float64Array);
    expect(s.obsNorm.mean.length).toBe(3);
    expect(s.rewardScaler.returns.length).toBe(2);
    expect(s.rewardScaler.rms.mean.length).toBe(1);
    expect(Object.keys(s.rng).sort()).toEqual(['a', 'b', 'c', 'd', 'spare']);
    expect(() => learner.loadState({ ...s, obsDim: 4 })).toThrow(/state.obsDim/);
    expect(() => learner.loadState({ ...s, params: new Float32Array(3) })).toThrow(/state.params/);
  });

  it('Rng getState/setState continues the same sequence, including a cached normal', () => {
    const a = new Rng(42);
    a.normal(); // leaves the second normal of the pair cached
    const b = new Rng(0);
    b.setState(JSON.parse(JSON.stringify(a.getState())) as ReturnType<Rng['getState']>);
    const seqA = [a.normal(), a.random(), a.nextUint32(), a.normal(), a.int(10)];
    const seqB = [b.normal(), b.random(), b.nextUint32(), b.normal(), b.int(10)];
    expect(seqB).toEqual(seqA);
  });
});

describe('PpoLearner misuse', () => {
  it('checkPpoConfig fills defaults and names the field and the limit', () => {
    expect(checkPpoConfig()).toEqual({ ...defaultPpoConfig });
    expect(checkPpoConfig({ gamma: 0.9 }).gamma).toBe(0.9);
    expect(() => checkPpoConfig({ gamma: 1.5 })).toThrow(/ppo.gamma: must be in \[0, 1\], got 1.5/);
    expect(() => checkPpoConfig({ numSteps: 0 })).toThrow(/ppo.numSteps: must be a positive integer, got 0/);
    expect(() => checkPpoConfig({ learningRate: -1 })).toThrow(/ppo.learningRate: must be > 0/);
    expect(() => checkPpoConfig({ targetKl: 0 })).toThrow(/ppo.targetKl/);
    expect(() => checkPpoConfig({ actorHidden: [64, 0] })).toThrow(/ppo.actorHidden/);
    expect(() => checkPpoConfig({ normAdv: 1 as unknown as boolean })).toThrow(
      /ppo.normAdv: must be true or false/,
    );
    expect(() => checkPpoConfig({ learningrate: 1 } as Partial<PpoConfig>)).toThrow(
      /ppo.learningrate: unknown field/,
    );
    try {
      checkPpoConfig({ clipCoef: 0 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgument);
      expect((e as InvalidArgument).field).toBe('ppo.clipCoef');
      expect((e as InvalidArgument).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('rejects a minibatch count that does not divide the batch', () => {
    expect(
      () =>
        new PpoLearner({
          obsDim: 1,
          actDim: 1,
          numEnvs: 3,
          seed: 0,
          config: { numSteps: 10, numMinibatches: 4 },
        }),
    ).toThrow(/ppo.numMinibatches: must divide numSteps \* numEnvs = 30, got 4/);
  });

  it('enforces act / observe / update order and shapes', () => {
    const learner = new PpoLearner({
      obsDim: 2,
      actDim: 1,
      numEnvs: 2,
      seed: 0,
      config: { numSteps: 2, numMinibatches: 1, actorHidden: [4], criticHidden: [4] },
    });
    const obs = [0.1, 0.2, 0.3, 0.4];
    const none = [0, 0];
    expect(() => learner.observe({ rewards: [0, 0], terminated: none, truncated: none })).toThrow(
      RolloutOrderError,
    );
    expect(() => learner.act([1, 2, 3])).toThrow(/obs: expected 2 x 2 = 4 values, got 3/);
    learner.act(obs);
    expect(() => learner.act(obs)).toThrow(RolloutOrderError);
    expect(() => learner.observe({ rewards: [0], terminated: none, truncated: none })).toThrow(/rewards/);
    const scalerBefore = learner.rewardScaler.getState();
    expect(() => learner.observe({ rewards: [0, 0], terminated: none, truncated: [0, 1] })).toThrow(
      /finalObs/,
    );
    expect(learner.rewardScaler.getState()).toEqual(scalerBefore); // a rejected call changes nothing
    expect(learner.step).toBe(0);
    expect(() => learner.state()).toThrow(RolloutOrderError);
    learner.observe({ rewards: [0, 0], terminated: none, truncated: [0, 1], finalObs: obs });
    expect(() => learner.update(obs)).toThrow(/needs a full rollout of 2 steps, have 1/);
    learner.act(obs);
    learner.observe({ rewards: [1, 0], terminated: [1, 0], truncated: none });
    expect(() => learner.act(obs)).toThrow(/rollout is full/);
    expect(() => learner.update(obs, 2)).toThrow(/progress/);
    const stats = learner.update(obs, 0.5);
    expect(stats.learningRate).toBeCloseTo(defaultPpoConfig.learningRate * 0.5, 12);
    expect(stats.gradientSteps).toBe(defaultPpoConfig.updateEpochs);
    expect(Number.isFinite(stats.policyLoss) && Number.isFinite(stats.valueLoss)).toBe(true);
    expect(learner.step).toBe(0);
  });

  it('stops the epochs early once the approx KL passes targetKl', () => {
    const N = 4;
    const env = new Bandit(N, 3);
    const learner = new PpoLearner({
      obsDim: 2,
      actDim: 2,
      numEnvs: N,
      seed: 3,
      config: { ...fast, numSteps: 16, numMinibatches: 2, learningRate: 0.05, targetKl: 1e-6 },
    });
    for (let t = 0; t < 16; t++) learner.observe(env.step(learner.act(env.obs).actions));
    const stats = learner.update(env.obs);
    expect(stats.earlyStopped).toBe(true);
    expect(stats.epochs).toBe(1);
    expect(stats.gradientSteps).toBe(2);
  });
});
