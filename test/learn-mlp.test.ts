/**
 * MLP forward/backward and orthogonal init. Proves: the forward pass matches a float64 reference that reads the
 * documented parameter layout (W [out, in] row-major, then b, layer by layer); every parameter gradient and the
 * input gradient match central finite differences of that reference; layer views alias the flat vectors;
 * orthogonal init gives W W^T = gain^2 I (out <= in) or W^T W = gain^2 I (out > in) with zero biases.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { fastTanh, Mlp, orthogonalInit } from '../src/learn/mlp.ts';

/** Float64 forward with the documented layout: per layer W [out, in] row-major then b; tanh on hidden layers. */
function refForward(
  sizes: readonly number[],
  params: ArrayLike<number>,
  x: ArrayLike<number>,
  B: number,
): Float64Array {
  let act = Float64Array.from({ length: B * sizes[0]! }, (_, i) => x[i]!);
  let off = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l]!;
    const nOut = sizes[l + 1]!;
    const next = new Float64Array(B * nOut);
    for (let r = 0; r < B; r++) {
      for (let o = 0; o < nOut; o++) {
        let s = params[off + nOut * nIn + o]!;
        for (let i = 0; i < nIn; i++) s += params[off + o * nIn + i]! * act[r * nIn + i]!;
        next[r * nOut + o] = l + 2 === sizes.length ? s : Math.tanh(s);
      }
    }
    off += nOut * nIn + nOut;
    act = next;
  }
  return act;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

describe('Mlp', () => {
  for (const hidden of [[], [5], [6, 4], [4, 7, 3]]) {
    it(`gradients of every parameter and of the input match finite differences (hidden ${JSON.stringify(hidden)})`, () => {
      const rng = new Rng(hidden.length + 1);
      // Six rows: one block of four in the kernels plus two in their remainder loop.
      const B = 6;
      const net = new Mlp(3, hidden, 2);
      // Random biases too, so their gradients are tested away from 0; scale keeps tanh out of saturation.
      net.params.set(randn(rng, net.params.length, 0.7));
      const x = randn(rng, B * 3);
      const upstream = randn(rng, B * 2);

      const out = net.forward(x, B);
      const ref = refForward(net.sizes, net.params, x, B);
      for (let i = 0; i < ref.length; i++) expect(out[i]).toBeCloseTo(ref[i]!, 5);

      // L = sum(out * upstream), so dL/dout = upstream.
      net.zeroGrad();
      const dx = net.backward(upstream, B);
      const p64 = Float64Array.from(net.params);
      const h = 1e-6;
      for (let k = 0; k < p64.length; k++) {
        const saved = p64[k]!;
        p64[k] = saved + h;
        const lp = dot(refForward(net.sizes, p64, x, B), upstream);
        p64[k] = saved - h;
        const lm = dot(refForward(net.sizes, p64, x, B), upstream);
        p64[k] = saved;
        const fd = (lp - lm) / (2 * h);
        expect(Math.abs(net.grads[k]! - fd)).toBeLessThan(1e-5 + 1e-4 * Math.abs(fd));
      }
      const x64 = Float64Array.from(x);
      for (let k = 0; k < x64.length; k++) {
        const saved = x64[k]!;
        x64[k] = saved + h;
        const lp = dot(refForward(net.sizes, net.params, x64, B), upstream);
        x64[k] = saved - h;
        const lm = dot(refForward(net.sizes, net.params, x64, B), upstream);
        x64[k] = saved;
        const fd = (lp - lm) / (2 * h);
        expect(Math.abs(dx[k]! - fd)).toBeLessThan(1e-5 + 1e-4 * Math.abs(fd));
      }
    });
  }

  it('accumulates gradients across backward calls until zeroGrad', () => {
    const rng = new Rng(9);
    const net = new Mlp(2, [3], 1);
    net.init(rng, 1);
    const x = randn(rng, 2 * 2);
    net.forward(x, 2);
    net.zeroGrad();
    net.backward([1, 1], 2);
    const once = net.grads.slice();
    net.forward(x, 2);
    net.backward([1, 1], 2);
    for (let i = 0; i < once.length; i++) expect(net.grads[i]).toBeCloseTo(2 * once[i]!, 6);
  });

  it('layer views alias the flat parameter and gradient vectors in the documented order', () => {
    const net = new Mlp(3, [4], 2);
    expect(net.params.length).toBe(Mlp.paramCount([3, 4, 2]));
    expect(net.params.length).toBe(4 * 3 + 4 + 2 * 4 + 2);
    const [l0, l1] = net.layers;
    expect([l0!.weightOffset, l0!.biasOffset, l1!.weightOffset, l1!.biasOffset]).toEqual([0, 12, 16, 24]);
    l1!.W[1 * 4 + 2] = 7; // row 1 (output 1), column 2 (input 2)
    expect(net.params[16 + 1 * 4 + 2]).toBe(7);
    net.grads[12] = 3;
    expect(l0!.gb[0]).toBe(3);
  });

  it('uses caller storage when given one, so several networks can share one flat vector', () => {
    const big = new Float32Array(100);
    const grads = new Float32Array(100);
    const n = Mlp.paramCount([2, 3, 1]);
    const net = new Mlp(2, [3], 1, {
      storage: { params: big.subarray(10, 10 + n), grads: grads.subarray(10, 10 + n) },
    });
    net.init(new Rng(1), 1);
    expect(big.subarray(0, 10).every((v) => v === 0)).toBe(true);
    expect(big.subarray(10, 10 + n).some((v) => v !== 0)).toBe(true);
    expect(() => new Mlp(2, [3], 1, { storage: { params: big, grads } })).toThrow(/mlp.storage/);
  });
});

describe('orthogonal init', () => {
  /** Max |(W W^T)_ij - gain^2 delta_ij| over the Gram matrix of the shorter side. */
  function gramError(W: Float32Array, rows: number, cols: number, gain: number): number {
    const byRows = rows <= cols;
    const k = byRows ? rows : cols;
    const at = (v: number, i: number): number => (byRows ? W[v * cols + i]! : W[i * cols + v]!);
    const len = byRows ? cols : rows;
    let err = 0;
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        let s = 0;
        for (let i = 0; i < len; i++) s += at(a, i) * at(b, i);
        err = Math.max(err, Math.abs(s - (a === b ? gain * gain : 0)));
      }
    }
    return err;
  }

  for (const [rows, cols, gain] of [
    [64, 64, Math.SQRT2],
    [6, 64, 0.01],
    [1, 64, 1],
    [64, 17, Math.SQRT2],
    [5, 3, 2],
  ] as const) {
    it(`${rows}x${cols} with gain ${gain.toFixed(3)}: Gram matrix of the shorter side is gain^2 I`, () => {
      const W = new Float32Array(rows * cols);
      orthogonalInit(W, rows, cols, gain, new Rng(rows * 100 + cols));
      expect(gramError(W, rows, cols, gain)).toBeLessThan(1e-5 * Math.max(1, gain * gain));
    });
  }

  it('Mlp.init uses sqrt(2) on hidden layers, the given gain on the last, zero biases, and is seeded', () => {
    const a = new Mlp(8, [16, 16], 3);
    a.init(new Rng(5), 0.01);
    a.layers.forEach((layer, l) => {
      const gain = l === 2 ? 0.01 : Math.SQRT2;
      expect(gramError(layer.W, layer.outSize, layer.inSize, gain)).toBeLessThan(1e-5);
      expect(layer.b.every((v) => v === 0)).toBe(true);
    });
    const b = new Mlp(8, [16, 16], 3);
    b.init(new Rng(5), 0.01);
    expect(b.params).toEqual(a.params);
  });
});

describe('fastTanh', () => {
  it('agrees with Math.tanh to 1e-13 relative error, from the Taylor range to saturation, and keeps NaN', () => {
    const rng = new Rng(9);
    let worst = 0;
    const check = (x: number): void => {
      const want = Math.tanh(x);
      const err = Math.abs(fastTanh(x) - want) / Math.max(Math.abs(want), 1e-300);
      worst = Math.max(worst, err);
    };
    for (let i = 0; i < 20_000; i++) check(rng.uniform(-25, 25));
    for (let i = 0; i < 5_000; i++) check(rng.uniform(-0.05, 0.05));
    // The edges of each branch: the Taylor cut at 1/32, the saturation at 20.
    for (const x of [0, 1e-300, 0.03125, -0.03125, 0.0312499, 19.99, 20, 20.01, -20, 700, -700]) check(x);
    expect(worst).toBeLessThan(1e-13);
    expect(fastTanh(Infinity)).toBe(1);
    expect(fastTanh(-Infinity)).toBe(-1);
    expect(fastTanh(NaN)).toBeNaN();
    expect(Object.is(fastTanh(-0), -0)).toBe(true);
  });
});
