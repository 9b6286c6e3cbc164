/**
 * Gymnasium-style spaces. Only what the envs and clients need: a float32 Box and a Dict of spaces. The JSON
 * form (`toJSON`) is what the CLI prints and what remote clients receive.
 */
import type { Rng } from './rng.ts';

export interface BoxSpec {
  type: 'Box';
  shape: number[];
  dtype: 'float32' | 'uint8';
  /** Bounds; infinite ones are written as the strings "inf" / "-inf" so they survive JSON. */
  low: Bound | Bound[];
  high: Bound | Bound[];
}

export type Bound = number | 'inf' | '-inf';

function bound(v: number): Bound {
  if (Number.isFinite(v)) return v;
  return v > 0 ? 'inf' : '-inf';
}

export class Box {
  readonly type = 'Box';
  readonly size: number;
  constructor(
    readonly shape: readonly number[],
    readonly low: number | Float64Array,
    readonly high: number | Float64Array,
    readonly dtype: 'float32' | 'uint8' = 'float32',
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  lowAt(i: number): number {
    return typeof this.low === 'number' ? this.low : this.low[i]!;
  }

  highAt(i: number): number {
    return typeof this.high === 'number' ? this.high : this.high[i]!;
  }

  /** Uniform sample for bounded dimensions, standard normal for unbounded ones (as Gymnasium does). */
  sample(rng: Rng, out = new Float32Array(this.size)): Float32Array {
    for (let i = 0; i < this.size; i++) {
      const lo = this.lowAt(i);
      const hi = this.highAt(i);
      out[i] = Number.isFinite(lo) && Number.isFinite(hi) ? rng.uniform(lo, hi) : rng.normal();
    }
    return out;
  }

  contains(x: ArrayLike<number>): boolean {
    if (x.length !== this.size) return false;
    for (let i = 0; i < this.size; i++) {
      const v = x[i]!;
      if (!(v >= this.lowAt(i) && v <= this.highAt(i))) return false;
    }
    return true;
  }

  toJSON(): BoxSpec {
    const bounds = (b: number | Float64Array): Bound | Bound[] =>
      typeof b === 'number' ? bound(b) : Array.from(b, bound);
    return {
      type: 'Box',
      shape: [...this.shape],
      dtype: this.dtype,
      low: bounds(this.low),
      high: bounds(this.high),
    };
  }
}

export class Dict {
  readonly type = 'Dict';
  constructor(readonly spaces: Readonly<Record<string, Box>>) {}

  toJSON(): { type: 'Dict'; spaces: Record<string, BoxSpec> } {
    const spaces: Record<string, BoxSpec> = {};
    for (const [k, v] of Object.entries(this.spaces)) spaces[k] = v.toJSON();
    return { type: 'Dict', spaces };
  }
}

export type Space = Box | Dict;
