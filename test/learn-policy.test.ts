/**
 * Gaussian policy pieces. Proves: log-prob and entropy equal the closed forms on hand-worked numbers; their
 * gradients w.r.t. mean and log-std match central finite differences; sampling draws from N(mean, exp(logStd)^2)
 * and reports the log-prob of the sampled (unclipped) action; the flat parameter layout is
 * [actor | logStd | critic] with log-std initialised to 0.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import {
  ActorCritic,
  addGaussianLogProbGrad,
  gaussianEntropy,
  gaussianLogProb,
  HALF_LOG_2PI,
} from '../src/learn/policy.ts';
import { Mlp } from '../src/learn/mlp.ts';

describe('Gaussian log-prob and entropy', () => {
  it('match hand-worked values', () => {
    // One sample, two dims: a = (1, 0.5), mean = (0, 0), logStd = (0, ln 2).
    //   dim 0: z = 1,    -0.5 * 1      - 0     - 0.918939 = -1.418939
    //   dim 1: z = 0.25, -0.5 * 0.0625 - 0.693147 - 0.918939 = -1.643336
    //   sum = -3.062275
    const out = new Float64Array(1);
    gaussianLogProb(Float64Array.of(1, 0.5), Float64Array.of(0, 0), Float64Array.of(0, Math.LN2), 1, 2, out);
    expect(out[0]).toBeCloseTo(-3.062275, 5);
    // Entropy per dim: logStd + 0.5 + 0.918939 -> 1.418939 + 2.112086 = 3.531024.
    expect(gaussianEntropy(Float64Array.of(0, Math.LN2))).toBeCloseTo(3.531024, 5);
    expect(HALF_LOG_2PI).toBeCloseTo(0.918939, 6);
  });

  it('log-prob gradients w.r.t. mean and log-std match finite differences; entropy gradient is 1', () => {
    const rng = new Rng(3);
    const B = 3;
    const A = 4;
    const action = Float64Array.from({ length: B * A }, () => rng.normal());
    const mean = Float64Array.from({ length: B * A }, () => rng.normal());
    const logStd = Float64Array.from({ length: A }, () => 0.5 * rng.normal());
    const weights = Float64Array.from({ length: B }, () => rng.normal());
    // L = sum_r w_r * logp_r
    const L = (): number => {
      const lp = new Float64Array(B);
      gaussianLogProb(action, mean, logStd, B, A, lp);
      return lp.reduce((s, v, r) => s + v * weights[r]!, 0);
    };
    const dMean = new Float64Array(B * A);
    const dLogStd = new Float64Array(A);
    for (let r = 0; r < B; r++)
      addGaussianLogProbGrad(action, mean, logStd, r * A, A, weights[r]!, dMean, dLogStd);
    const h = 1e-6;
    const fd = (arr: Float64Array, k: number, f: () => number): number => {
      const s = arr[k]!;
      arr[k] = s + h;
      const p = f();
      arr[k] = s - h;
      const m = f();
      arr[k] = s;
      return (p - m) / (2 * h);
    };
    for (let k = 0; k < mean.length; k++) expect(dMean[k]).toBeCloseTo(fd(mean, k, L), 6);
    for (let k = 0; k < A; k++) expect(dLogStd[k]).toBeCloseTo(fd(logStd, k, L), 6);
    for (let k = 0; k < A; k++) expect(fd(logStd, k, () => gaussianEntropy(logStd))).toBeCloseTo(1, 6);
  });
});

describe('ActorCritic', () => {
  it('lays parameters out as [actor | logStd | critic] in one flat vector', () => {
    const ac = new ActorCritic({ obsDim: 5, actDim: 3, actorHidden: [8], criticHidden: [4, 4] });
    const nActor = Mlp.paramCount([5, 8, 3]);
    const nCritic = Mlp.paramCount([5, 4, 4, 1]);
    expect(ac.params.length).toBe(nActor + 3 + nCritic);
    expect(ac.offsets).toEqual({ actor: 0, logStd: nActor, critic: nActor + 3 });
    ac.init(new Rng(1));
    expect(Array.from(ac.logStd)).toEqual([0, 0, 0]);
    ac.params[nActor + 1] = 0.25;
    expect(ac.logStd[1]).toBe(0.25);
    ac.critic.params[0] = 9;
    expect(ac.params[nActor + 3]).toBe(9);
  });

  it('samples unclipped actions from N(mean, std^2) and returns their log-probs', () => {
    const ac = new ActorCritic({ obsDim: 2, actDim: 2, actorHidden: [4], criticHidden: [4] });
    const rng = new Rng(11);
    ac.init(rng, { actorOutputGain: 1 });
    ac.logStd.set([Math.log(0.5), Math.log(3)]);
    const B = 20000;
    const obs = new Float32Array(B * 2).fill(0.3);
    const actions = new Float32Array(B * 2);
    const logProb = new Float32Array(B);
    ac.sample(obs, B, rng, actions, logProb);
    const mean = ac.mean(obs, 1);
    for (let j = 0; j < 2; j++) {
      let s = 0;
      let ss = 0;
      for (let r = 0; r < B; r++) s += actions[r * 2 + j]!;
      const m = s / B;
      for (let r = 0; r < B; r++) ss += (actions[r * 2 + j]! - m) ** 2;
      const std = Math.exp(ac.logStd[j]!);
      expect(Math.abs(m - mean[j]!)).toBeLessThan((4 * std) / Math.sqrt(B));
      expect(Math.sqrt(ss / B) / std).toBeCloseTo(1, 1);
    }
    // Some samples exceed [-1, 1]: stored as drawn, not clipped.
    expect(actions.some((a) => Math.abs(a) > 1)).toBe(true);
    const check = new Float32Array(3);
    gaussianLogProb(actions, ac.mean(obs, 3), ac.logStd, 3, 2, check);
    for (let r = 0; r < 3; r++) expect(logProb[r]).toBeCloseTo(check[r]!, 5);
  });
});
