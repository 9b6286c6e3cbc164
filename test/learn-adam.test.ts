/**
 * Adam and gradient clipping. Proves: one step equals the hand-worked torch.optim.Adam update (eps 1e-5 added
 * to the bias-corrected sqrt(v)); a restored optimiser state continues bit-identically; global-norm clipping
 * scales to the limit and leaves small gradients alone; reset() forgets the history (the next step is a first step).
 */
import { describe, expect, it } from 'vitest';
import { Adam, clipGradNorm } from '../src/learn/adam.ts';

describe('Adam', () => {
  it('first step equals the hand-worked update', () => {
    // lr 0.1, betas (0.9, 0.999), eps 1e-5; p = (1, -2), g = (0.5, -0.1).
    //   m = 0.1 g = (0.05, -0.01);     m_hat = m / (1 - 0.9) = g
    //   v = 0.001 g^2 = (2.5e-4, 1e-5); sqrt(v_hat) = sqrt(v / (1 - 0.999)) = |g| = (0.5, 0.1)
    //   p -= 0.1 * m_hat / (sqrt(v_hat) + 1e-5):
    //     p0 = 1 - 0.1 * 0.5 / 0.50001 = 1 - 0.0999980 = 0.9000020
    //     p1 = -2 + 0.1 * 0.1 / 0.10001 = -2 + 0.0999900 = -1.9000100
    const p = Float32Array.of(1, -2);
    const adam = new Adam(2);
    adam.update(p, Float32Array.of(0.5, -0.1), 0.1);
    expect(p[0]).toBeCloseTo(0.900002, 6);
    expect(p[1]).toBeCloseTo(-1.90001, 6);
    expect(adam.m[0]).toBeCloseTo(0.05, 7);
    expect(adam.v[1]).toBeCloseTo(1e-5, 9);
    expect(adam.step).toBe(1);
  });

  it('after reset() takes the hand-worked first step again, whatever came before', () => {
    // The same numbers as the first-step case: after reset the history (here 7 steps on other gradients) is gone.
    const p = Float32Array.of(1, -2);
    const adam = new Adam(2);
    const scratch = Float32Array.of(5, 5);
    for (let i = 0; i < 7; i++) adam.update(scratch, Float32Array.of(3 * i, -i), 0.01);
    adam.reset();
    expect(adam.step).toBe(0);
    adam.update(p, Float32Array.of(0.5, -0.1), 0.1);
    expect(p[0]).toBeCloseTo(0.900002, 6);
    expect(p[1]).toBeCloseTo(-1.90001, 6);
  });

  it('continues bit-identically from a restored state', () => {
    const grads = (i: number): Float32Array => Float32Array.of(Math.sin(i), Math.cos(3 * i), 0.1 * i);
    const pa = Float32Array.of(0.3, -0.2, 1);
    const a = new Adam(3);
    for (let i = 0; i < 5; i++) a.update(pa, grads(i), 1e-2);
    const saved = structuredClone(a.getState());
    const pb = pa.slice();
    const b = new Adam(3);
    b.setState(saved);
    for (let i = 5; i < 10; i++) {
      a.update(pa, grads(i), 1e-2);
      b.update(pb, grads(i), 1e-2);
    }
    expect(pb).toEqual(pa);
    expect(b.getState()).toEqual(a.getState());
  });

  it('rejects a state of the wrong size', () => {
    expect(() => new Adam(3).setState({ m: new Float32Array(2), v: new Float32Array(2), step: 1 })).toThrow(
      /adam.state/,
    );
  });
});

describe('clipGradNorm', () => {
  it('scales to the limit and returns the norm before clipping', () => {
    const g = Float32Array.of(3, 4);
    expect(clipGradNorm(g, 1)).toBe(5);
    expect(g[0]).toBeCloseTo(0.6, 6);
    expect(g[1]).toBeCloseTo(0.8, 6);
  });

  it('leaves gradients under the limit unchanged', () => {
    const g = Float32Array.of(0.3, 0.4);
    expect(clipGradNorm(g, 1)).toBeCloseTo(0.5, 7);
    expect(Array.from(g)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });
});
