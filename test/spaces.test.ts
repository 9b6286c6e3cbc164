/** Spaces: samples stay in bounds, membership is exact, and the JSON form survives infinite bounds. */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { Box, Dict } from '../src/env/spaces.ts';

describe('Box', () => {
  it('samples bounded dimensions uniformly inside their bounds (mean near the midpoint)', () => {
    const box = new Box([2], new Float64Array([-1, 10]), new Float64Array([1, 20]));
    const rng = new Rng(1);
    let sum0 = 0;
    let sum1 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = box.sample(rng);
      expect(box.contains(x)).toBe(true);
      sum0 += x[0]!;
      sum1 += x[1]!;
    }
    // Standard error of a uniform mean: width / sqrt(12 n); 5 of them is a loose but failing-when-wrong bound.
    expect(Math.abs(sum0 / n)).toBeLessThan((5 * 2) / Math.sqrt(12 * n));
    expect(Math.abs(sum1 / n - 15)).toBeLessThan((5 * 10) / Math.sqrt(12 * n));
  });

  it('rejects wrong lengths, out-of-range and NaN entries', () => {
    const box = new Box([3], -1, 1);
    expect(box.contains([0, 0])).toBe(false);
    expect(box.contains([0, 1.0001, 0])).toBe(false);
    expect(box.contains([0, NaN, 0])).toBe(false);
    expect(box.contains([-1, 1, 0])).toBe(true);
  });

  it('writes infinite bounds as "inf" strings so the JSON round-trips', () => {
    const spec = JSON.parse(JSON.stringify(new Box([2], -Infinity, Infinity).toJSON()));
    expect(spec).toEqual({ type: 'Box', shape: [2], dtype: 'float32', low: '-inf', high: 'inf' });
    const dict = JSON.parse(JSON.stringify(new Dict({ state: new Box([1], 0, 1) }).toJSON()));
    expect(dict.spaces.state.high).toBe(1);
  });
});

describe('Rng', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const xs = Array.from({ length: 5 }, () => a.random());
    expect(Array.from({ length: 5 }, () => b.random())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.random())).not.toEqual(xs);
  });

  it('draws standard normals with mean 0 and variance 1', () => {
    const rng = new Rng(3);
    const n = 50000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(s2 / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });
});
