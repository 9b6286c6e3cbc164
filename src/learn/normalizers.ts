/**
 * Running statistics for observation normalisation and reward scaling, as Gymnasium's `NormalizeObservation`
 * and `NormalizeReward` wrappers compute them (PPO implementation details 5-8 for continuous control).
 * Statistics are float64 and their state is plain numbers and Float64Arrays, so checkpoints can store them.
 */
import { InvalidArgument } from '../sim/errors.ts';

/** Serialisable state of a `RunningMeanStd`. */
export interface RunningMeanStdState {
  /** [dim] running mean. */
  mean: Float64Array;
  /** [dim] running population variance. */
  var: Float64Array;
  /** Number of samples merged so far, plus the initial pseudo-count. */
  count: number;
}

/**
 * Mean and variance of a stream of vectors, merged batch by batch with Chan et al.'s parallel formula (what
 * gym's `RunningMeanStd` does). Like gym it starts at mean 0, variance 1 with a pseudo-count (1e-4), so the
 * first normalisations are defined; pass 0 to get exactly the statistics of the data.
 */
export class RunningMeanStd {
  readonly dim: number;
  mean: Float64Array;
  var: Float64Array;
  count: number;
  private readonly batchMean: Float64Array;
  private readonly batchVar: Float64Array;

  constructor(dim: number, initialCount = 1e-4) {
    if (!Number.isInteger(dim) || dim < 1)
      throw new InvalidArgument('dim', `must be a positive integer, got ${dim}`);
    if (!(initialCount >= 0)) throw new InvalidArgument('initialCount', `must be >= 0, got ${initialCount}`);
    this.dim = dim;
    this.mean = new Float64Array(dim);
    this.var = new Float64Array(dim).fill(1);
    this.count = initialCount;
    this.batchMean = new Float64Array(dim);
    this.batchVar = new Float64Array(dim);
  }

  /** Merges a batch x: [B, dim] row-major. */
  update(x: ArrayLike<number>, batch: number): void {
    if (batch < 1) return;
    const D = this.dim;
    const bm = this.batchMean;
    const bv = this.batchVar;
    bm.fill(0);
    bv.fill(0);
    for (let r = 0; r < batch; r++) for (let j = 0; j < D; j++) bm[j] = bm[j]! + x[r * D + j]!;
    for (let j = 0; j < D; j++) bm[j] = bm[j]! / batch;
    // Two passes: the batch variance stays accurate when the mean is large compared to the spread.
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < D; j++) {
        const d = x[r * D + j]! - bm[j]!;
        bv[j] = bv[j]! + d * d;
      }
    }
    for (let j = 0; j < D; j++) bv[j] = bv[j]! / batch;
    this.mergeMoments(bm, bv, batch);
  }

  /** Merges another set of moments (mean, population variance over `count` samples). */
  mergeMoments(mean: ArrayLike<number>, variance: ArrayLike<number>, count: number): void {
    if (count <= 0) return;
    const total = this.count + count;
    for (let j = 0; j < this.dim; j++) {
      const delta = mean[j]! - this.mean[j]!;
      const m2 =
        this.var[j]! * this.count + variance[j]! * count + ((delta * delta * this.count) / total) * count;
      this.mean[j] = this.mean[j]! + (delta * count) / total;
      this.var[j] = m2 / total;
    }
    this.count = total;
  }

  getState(): RunningMeanStdState {
    return { mean: this.mean.slice(), var: this.var.slice(), count: this.count };
  }

  setState(state: RunningMeanStdState): void {
    if (state.mean.length !== this.dim || state.var.length !== this.dim) {
      throw new InvalidArgument(
        'normalizer.state',
        `expected mean and var of length ${this.dim}, got ${state.mean.length} and ${state.var.length}`,
      );
    }
    this.mean.set(state.mean);
    this.var.set(state.var);
    this.count = state.count;
  }
}

/**
 * Observation normalisation: (obs - mean) / sqrt(var + eps), clipped to [-clip, clip] (gym defaults: eps 1e-8,
 * clip 10 in CleanRL).
 */
export class ObservationNormalizer {
  readonly rms: RunningMeanStd;
  readonly clip: number;
  readonly eps: number;

  constructor(dim: number, options: { clip?: number; eps?: number; initialCount?: number } = {}) {
    this.rms = new RunningMeanStd(dim, options.initialCount ?? 1e-4);
    this.clip = options.clip ?? 10;
    this.eps = options.eps ?? 1e-8;
  }

  get dim(): number {
    return this.rms.dim;
  }

  /** Adds a batch [B, dim] to the statistics. */
  update(obs: ArrayLike<number>, batch: number): void {
    this.rms.update(obs, batch);
  }

  /** Writes the normalised batch [B, dim] into out (which may be obs itself). */
  normalize(obs: ArrayLike<number>, batch: number, out: Float32Array): void {
    const D = this.rms.dim;
    const { mean, var: variance } = this.rms;
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < D; j++) {
        const k = r * D + j;
        const z = (obs[k]! - mean[j]!) / Math.sqrt(variance[j]! + this.eps);
        out[k] = z < -this.clip ? -this.clip : z > this.clip ? this.clip : z;
      }
    }
  }

  getState(): RunningMeanStdState {
    return this.rms.getState();
  }

  setState(state: RunningMeanStdState): void {
    this.rms.setState(state);
  }
}

/** Serialisable state of a `RewardScaler`. */
export interface RewardScalerState {
  /** Statistics of the discounted return (dim 1). */
  rms: RunningMeanStdState;
  /** [numEnvs] discounted return of each env's current episode so far. */
  returns: Float64Array;
}

/**
 * Reward scaling by the running std of the discounted return (gym's `NormalizeReward`): rewards are divided,
 * not centred, so their sign and the optimal policy stay the same. Each env's return accumulator restarts when
 * its episode ends, terminated or truncated, since the next reward belongs to a new episode.
 */
export class RewardScaler {
  readonly numEnvs: number;
  readonly gamma: number;
  readonly clip: number;
  readonly eps: number;
  readonly rms: RunningMeanStd;
  returns: Float64Array;

  constructor(
    numEnvs: number,
    gamma: number,
    options: { clip?: number; eps?: number; initialCount?: number } = {},
  ) {
    if (!Number.isInteger(numEnvs) || numEnvs < 1) {
      throw new InvalidArgument('numEnvs', `must be a positive integer, got ${numEnvs}`);
    }
    this.numEnvs = numEnvs;
    this.gamma = gamma;
    this.clip = options.clip ?? 10;
    this.eps = options.eps ?? 1e-8;
    this.rms = new RunningMeanStd(1, options.initialCount ?? 1e-4);
    this.returns = new Float64Array(numEnvs);
  }

  /**
   * Updates the return statistics with one vector step and writes the scaled, clipped rewards [N] into out.
   * rewards, terminated, truncated: [N].
   */
  scale(
    rewards: ArrayLike<number>,
    terminated: ArrayLike<number | boolean>,
    truncated: ArrayLike<number | boolean>,
    out: Float32Array,
  ): void {
    const N = this.numEnvs;
    for (let n = 0; n < N; n++) this.returns[n] = this.returns[n]! * this.gamma + rewards[n]!;
    this.rms.update(this.returns, N);
    const inv = 1 / Math.sqrt(this.rms.var[0]! + this.eps);
    for (let n = 0; n < N; n++) {
      const r = rewards[n]! * inv;
      out[n] = r < -this.clip ? -this.clip : r > this.clip ? this.clip : r;
      if (terminated[n] || truncated[n]) this.returns[n] = 0;
    }
  }

  getState(): RewardScalerState {
    return { rms: this.rms.getState(), returns: this.returns.slice() };
  }

  setState(state: RewardScalerState): void {
    if (state.returns.length !== this.numEnvs) {
      throw new InvalidArgument(
        'rewardScaler.state.returns',
        `expected length ${this.numEnvs}, got ${state.returns.length}`,
      );
    }
    this.rms.setState(state.rms);
    this.returns.set(state.returns);
  }
}
