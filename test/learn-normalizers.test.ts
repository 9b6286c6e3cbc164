/**
 * Running statistics. Proves: merging batches of any sizes (Chan et al.'s parallel formula) gives the mean and
 * population variance of all the data at once, also for data far from 0; the gym-style pseudo-count prior
 * (mean 0, var 1, count 1e-4) is merged like one more batch; observations are normalised and clipped; reward
 * scaling divides by the std of the running discounted return, whose per-env accumulator restarts after
 * terminated or truncated; states round-trip.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { ObservationNormalizer, RewardScaler, RunningMeanStd } from '../src/learn/normalizers.ts';

function batchStats(x: ArrayLike<number>, B: number, D: number): { mean: number[]; var: number[] } {
  const mean = new Array<number>(D).fill(0);
  const variance = new Array<number>(D).fill(0);
  for (let r = 0; r < B; r++) for (let j = 0; j < D; j++) mean[j]! += x[r * D + j]! / B;
  for (let r = 0; r < B; r++) for (let j = 0; j < D; j++) variance[j]! += (x[r * D + j]! - mean[j]!) ** 2 / B;
  return { mean, var: variance };
}

describe('RunningMeanStd', () => {
  it('merged chunks equal the statistics of the whole batch', () => {
    const rng = new Rng(1);
    const D = 3;
    const B = 200;
    // Offsets and scales that differ per dimension, one far from 0, to exercise the merge's cancellation.
    const x = Float64Array.from(
      { length: B * D },
      (_, k) => [1000, -3, 0][k % D]! + [5, 0.01, 1][k % D]! * rng.normal(),
    );
    const rms = new RunningMeanStd(D, 0);
    let at = 0;
    for (const size of [1, 7, 50, 13, 129]) {
      rms.update(x.subarray(at * D, (at + size) * D), size);
      at += size;
    }
    expect(at).toBe(B);
    const ref = batchStats(x, B, D);
    expect(rms.count).toBe(B);
    for (let j = 0; j < D; j++) {
      expect(rms.mean[j]! / ref.mean[j]!).toBeCloseTo(1, 10);
      expect(rms.var[j]! / ref.var[j]!).toBeCloseTo(1, 9);
    }
  });

  it("treats gym's initial mean 0, var 1, count 1e-4 as one more batch", () => {
    const rng = new Rng(2);
    const x = Float64Array.from({ length: 40 }, () => 2 + rng.normal());
    const rms = new RunningMeanStd(1);
    rms.update(x.subarray(0, 15), 15);
    rms.update(x.subarray(15), 25);
    const {
      mean: [m],
      var: [v],
    } = batchStats(x, 40, 1);
    const eps = 1e-4;
    const n = 40 + eps;
    const mean = (40 * m!) / n;
    const variance = (eps * 1 + 40 * v! + (m! * m! * eps * 40) / n) / n;
    expect(rms.count).toBeCloseTo(n, 12);
    expect(rms.mean[0]).toBeCloseTo(mean, 12);
    expect(rms.var[0]).toBeCloseTo(variance, 12);
  });
});

describe('ObservationNormalizer', () => {
  it('normalises by the running statistics and clips to +-clip', () => {
    const norm = new ObservationNormalizer(2, { initialCount: 0, clip: 3 });
    norm.update([0, 10, 2, 10, 4, 10, 6, 10], 4); // dim 0: mean 3, var 5; dim 1: constant 10, var 0
    const out = new Float32Array(4);
    norm.normalize([3 + Math.sqrt(5), 10, 100, 9], 2, out);
    expect(out[0]).toBeCloseTo(1, 5);
    expect(out[1]).toBe(0);
    expect(out[2]).toBe(3); // (100 - 3) / sqrt(5) clipped
    expect(out[3]).toBe(-3); // -1 / sqrt(1e-8) clipped
  });

  it('round-trips its state', () => {
    const a = new ObservationNormalizer(2);
    a.update([1, 2, 3, 4], 2);
    const b = new ObservationNormalizer(2);
    b.setState(structuredClone(a.getState()));
    expect(b.getState()).toEqual(a.getState());
    expect(() => new ObservationNormalizer(3).setState(a.getState())).toThrow(/normalizer.state/);
  });
});

describe('RewardScaler', () => {
  it('divides by the std of the discounted return, restarting each env after terminated or truncated', () => {
    const gamma = 0.9;
    const scaler = new RewardScaler(2, gamma, { initialCount: 0, clip: 1e9 });
    const rng = new Rng(4);
    const seen: number[] = [];
    const G = [0, 0];
    for (let t = 0; t < 30; t++) {
      const rewards = [rng.normal() + 1, 2 * rng.normal()];
      const terminated = [t % 7 === 6, false];
      const truncated = [false, t % 5 === 4];
      const out = new Float32Array(2);
      scaler.scale(rewards, terminated, truncated, out);
      for (let n = 0; n < 2; n++) {
        G[n] = G[n]! * gamma + rewards[n]!;
        seen.push(G[n]!);
      }
      const {
        var: [v],
      } = batchStats(seen, seen.length, 1);
      for (let n = 0; n < 2; n++) {
        expect(out[n]).toBeCloseTo(rewards[n]! / Math.sqrt(v! + 1e-8), 4);
        if (terminated[n] || truncated[n]) G[n] = 0;
      }
      expect(Array.from(scaler.returns)).toEqual(G.map((g) => expect.closeTo(g, 9)));
    }
  });

  it('clips scaled rewards', () => {
    // A hundred one-step episodes of reward s, then one of 5 s: the returns {s x 100, 5 s} have
    // var = 100 * (4 s)^2 / 101^2 = 0.157 s^2, so the last reward scales to 5 s / (0.396 |s|) = +-12.6 -> +-10.
    for (const s of [1, -1]) {
      const scaler = new RewardScaler(1, 0.99, { clip: 10 });
      const out = new Float32Array(1);
      for (let t = 0; t < 100; t++) scaler.scale([s], [true], [false], out);
      scaler.scale([5 * s], [false], [true], out);
      expect(out[0]).toBe(10 * s);
    }
  });
});
