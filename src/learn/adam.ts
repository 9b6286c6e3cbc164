/**
 * Adam (Kingma & Ba 2015) on one flat parameter vector, written as `torch.optim.Adam` computes it so results
 * compare with CleanRL: eps is added to the bias-corrected sqrt(v), and PPO uses eps 1e-5 rather than 1e-8
 * (implementation detail 3).
 */
import { InvalidArgument } from '../sim/errors.ts';

export interface AdamOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-5. */
  eps?: number;
}

/** Serialisable optimiser state. */
export interface AdamState {
  /** [P] first moment. */
  m: Float32Array;
  /** [P] second moment. */
  v: Float32Array;
  /** Number of steps taken (the bias correction depends on it). */
  step: number;
}

export class Adam {
  readonly size: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
  step = 0;

  constructor(size: number, options: AdamOptions = {}) {
    this.size = size;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-5;
    if (!(this.beta1 >= 0 && this.beta1 < 1))
      throw new InvalidArgument('adam.beta1', `must be in [0, 1), got ${this.beta1}`);
    if (!(this.beta2 >= 0 && this.beta2 < 1))
      throw new InvalidArgument('adam.beta2', `must be in [0, 1), got ${this.beta2}`);
    if (!(this.eps > 0)) throw new InvalidArgument('adam.eps', `must be > 0, got ${this.eps}`);
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** One update of params in place from grads (both [P]) with learning rate lr. */
  update(params: Float32Array, grads: Float32Array, lr: number): void {
    if (params.length !== this.size || grads.length !== this.size) {
      throw new InvalidArgument(
        'adam.update',
        `expected params and grads of length ${this.size}, got ${params.length} and ${grads.length}`,
      );
    }
    this.step++;
    const { beta1: b1, beta2: b2, eps, m, v } = this;
    const stepSize = lr / (1 - b1 ** this.step);
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.step);
    for (let i = 0; i < params.length; i++) {
      const g = grads[i]!;
      const mi = b1 * m[i]! + (1 - b1) * g;
      const vi = b2 * v[i]! + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  }

  /**
   * Back to a fresh optimiser (zero moments, step 0). For a block of parameters that starts training late: with
   * the step count of the others, its bias correction would be spent and its first steps up to several times
   * the learning rate.
   */
  reset(): void {
    this.m.fill(0);
    this.v.fill(0);
    this.step = 0;
  }

  getState(): AdamState {
    return { m: this.m.slice(), v: this.v.slice(), step: this.step };
  }

  setState(state: AdamState): void {
    if (state.m.length !== this.size || state.v.length !== this.size) {
      throw new InvalidArgument(
        'adam.state',
        `expected moments of length ${this.size}, got ${state.m.length} and ${state.v.length}`,
      );
    }
    this.m.set(state.m);
    this.v.set(state.v);
    this.step = state.step;
  }
}

/**
 * Scales grads in place so their global L2 norm is at most maxNorm (as `torch.nn.utils.clip_grad_norm_`,
 * including its 1e-6 in the denominator). Returns the norm before clipping.
 */
export function clipGradNorm(grads: Float32Array, maxNorm: number): number {
  let sq = 0;
  for (let i = 0; i < grads.length; i++) sq += grads[i]! * grads[i]!;
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i] = grads[i]! * coef;
  return norm;
}
