/**
 * Seeded random numbers for resets and random policies. sfc32 seeded through splitmix32: fast, 128-bit state,
 * and the same sequence on every platform, which "same seed, same trajectory, bit for bit" needs.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Standard normal (Marsaglia polar method). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    for (;;) {
      const u = 2 * this.random() - 1;
      const v = 2 * this.random() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spare = v * f;
        return u * f;
      }
    }
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /**
   * The whole generator state as plain numbers, for checkpoints: a generator given it by `setState` continues
   * with exactly the numbers this one would have drawn (the cached second normal included).
   */
  getState(): RngState {
    return { a: this.a, b: this.b, c: this.c, d: this.d, spare: this.spare ?? null };
  }

  setState(state: RngState): void {
    this.a = state.a | 0;
    this.b = state.b | 0;
    this.c = state.c | 0;
    this.d = state.d | 0;
    this.spare = state.spare ?? undefined;
  }
}

/** Generator state from `Rng.getState`: the four sfc32 words and the cached normal (null when none). */
export interface RngState {
  a: number;
  b: number;
  c: number;
  d: number;
  spare: number | null;
}

/** A seed from the OS's entropy, for resets without a seed (as Gymnasium does). */
export function entropySeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
