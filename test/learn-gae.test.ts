/**
 * GAE with terminated and truncated kept apart. Proves: the backward recursion equals a plain forward-sum
 * reference (A_t = sum_l (gamma lambda)^l delta_{t+l} up to the end of the episode or rollout) on random
 * [T, N] data with terminations and truncations mixed; a hand-worked case gives the written-out numbers;
 * truncation bootstraps from the final observation's value and termination from 0, and neither lets the
 * advantage flow across the episode boundary.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { computeGae, type GaeInput } from '../src/learn/gae.ts';

/** Reference: for each (t, n) sum the discounted TD errors forward until the episode or the rollout ends. */
function referenceGae(g: GaeInput): { adv: Float64Array; ret: Float64Array } {
  const { T, N, gamma, lambda } = g;
  const delta = (t: number, n: number): number => {
    const k = t * N + n;
    let next: number;
    if (g.terminated[k]) next = 0;
    else if (g.truncated[k]) next = g.finalValues[k]!;
    else next = t + 1 < T ? g.values[k + N]! : g.lastValues[n]!;
    return g.rewards[k]! + gamma * next - g.values[k]!;
  };
  const adv = new Float64Array(T * N);
  const ret = new Float64Array(T * N);
  for (let n = 0; n < N; n++) {
    for (let t = 0; t < T; t++) {
      let sum = 0;
      let w = 1;
      for (let u = t; u < T; u++) {
        sum += w * delta(u, n);
        const k = u * N + n;
        if (g.terminated[k] || g.truncated[k]) break;
        w *= gamma * lambda;
      }
      adv[t * N + n] = sum;
      ret[t * N + n] = sum + g.values[t * N + n]!;
    }
  }
  return { adv, ret };
}

describe('computeGae', () => {
  it('equals the forward-sum reference on random data with terminations and truncations', () => {
    const rng = new Rng(7);
    for (const [T, N, gamma, lambda] of [
      [64, 5, 0.99, 0.95],
      [17, 3, 0.9, 1],
      [9, 2, 0.5, 0],
    ] as const) {
      const size = T * N;
      const terminated = new Uint8Array(size);
      const truncated = new Uint8Array(size);
      const finalValues = new Float32Array(size);
      for (let k = 0; k < size; k++) {
        const u = rng.random();
        if (u < 0.08) terminated[k] = 1;
        else if (u < 0.16) truncated[k] = 1;
        else if (u < 0.18) terminated[k] = truncated[k] = 1; // both: the MDP ended, 0 wins
        if (truncated[k]) finalValues[k] = rng.normal();
      }
      const input: GaeInput = {
        T,
        N,
        rewards: Float32Array.from({ length: size }, () => rng.normal()),
        values: Float32Array.from({ length: size }, () => rng.normal()),
        terminated,
        truncated,
        finalValues,
        lastValues: Float32Array.from({ length: N }, () => rng.normal()),
        gamma,
        lambda,
      };
      const adv = new Float32Array(size);
      const ret = new Float32Array(size);
      computeGae(input, adv, ret);
      const ref = referenceGae(input);
      for (let k = 0; k < size; k++) {
        expect(adv[k]).toBeCloseTo(ref.adv[k]!, 4);
        expect(ret[k]).toBeCloseTo(ref.ret[k]!, 4);
      }
    }
  });

  it('gives the hand-worked numbers', () => {
    // gamma = 0.5, lambda = 0.5, so gamma * lambda = 0.25. Layout [T = 3, N = 2]: index t * 2 + n.
    // env 0: r = (1, 0, 2), V = (0.5, 1, 1), terminated at t = 1, last value 4.
    //   t = 2: delta = 2 + 0.5 * 4 - 1 = 3                 A = 3
    //   t = 1: terminated, delta = 0 + 0 - 1 = -1           A = -1 (nothing flows back from t = 2)
    //   t = 0: delta = 1 + 0.5 * 1 - 0.5 = 1                A = 1 + 0.25 * -1 = 0.75
    //   returns = A + V = (1.25, 0, 4)
    // env 1: r = (0, 1, 1), V = (2, 2, 0), truncated at t = 0 with final value 4, last value 2.
    //   t = 2: delta = 1 + 0.5 * 2 - 0 = 2                  A = 2
    //   t = 1: delta = 1 + 0.5 * 0 - 2 = -1                 A = -1 + 0.25 * 2 = -0.5
    //   t = 0: truncated, delta = 0 + 0.5 * 4 - 2 = 0       A = 0 (bootstrapped from the final value 4,
    //          not from V(t = 1) = 2, and nothing flows back from t = 1)
    //   returns = (2, 1.5, 2)
    const adv = new Float32Array(6);
    const ret = new Float32Array(6);
    computeGae(
      {
        T: 3,
        N: 2,
        rewards: [1, 0, 0, 1, 2, 1],
        values: [0.5, 2, 1, 2, 1, 0],
        terminated: [0, 0, 1, 0, 0, 0],
        truncated: [0, 1, 0, 0, 0, 0],
        finalValues: [0, 4, 0, 0, 0, 0],
        lastValues: [4, 2],
        gamma: 0.5,
        lambda: 0.5,
      },
      adv,
      ret,
    );
    expect(Array.from(adv)).toEqual([0.75, 0, -1, -0.5, 3, 2]);
    expect(Array.from(ret)).toEqual([1.25, 2, 0, 1.5, 4, 2]);
  });

  it('rejects buffers shorter than T * N, naming the buffer', () => {
    const z = new Float32Array(4);
    const input = {
      T: 2,
      N: 2,
      rewards: z,
      values: z,
      terminated: z,
      truncated: z,
      finalValues: new Float32Array(3),
      lastValues: z,
      gamma: 0.9,
      lambda: 0.9,
    };
    expect(() => computeGae(input, z, z)).toThrow(/gae.finalValues/);
  });
});
