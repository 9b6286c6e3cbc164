/**
 * Gaussian policy and value function for continuous actions, as in CleanRL's `ppo_continuous_action.py`:
 * an actor MLP gives the action mean, a state-independent log-std vector gives the spread (PPO implementation
 * detail for continuous control), and a separate critic MLP gives the value.
 *
 * All parameters live in ONE flat vector so the optimiser, gradient clipping and checkpoints treat the model
 * as one array. Layout of `params` (and of `grads`):
 *
 *   [ actor MLP (see mlp.ts) | logStd [actDim] | critic MLP ]
 *
 * Actions are sampled unclipped and stored as sampled: the log-prob of a clipped action would belong to a
 * different distribution. Clip to the action space only when sending the action to the env.
 */
import type { Rng } from '../env/rng.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { Mlp } from './mlp.ts';

/** log(2 pi) / 2: the constant of a unit Gaussian's log-density. */
export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export interface ActorCriticOptions {
  obsDim: number;
  actDim: number;
  /** Hidden layer widths of the actor (default [64, 64]). */
  actorHidden?: readonly number[];
  /** Hidden layer widths of the critic (default [64, 64]). */
  criticHidden?: readonly number[];
}

export class ActorCritic {
  readonly obsDim: number;
  readonly actDim: number;
  readonly params: Float32Array;
  readonly grads: Float32Array;
  /** [obsDim] -> [actDim] action mean. */
  readonly actor: Mlp;
  /** [obsDim] -> [1] state value. */
  readonly critic: Mlp;
  /** [actDim] view of `params`: log standard deviation of each action dimension. */
  readonly logStd: Float32Array;
  readonly logStdGrad: Float32Array;
  /** Offsets of the three blocks in `params`. */
  readonly offsets: { actor: number; logStd: number; critic: number };

  constructor(options: ActorCriticOptions) {
    const { obsDim, actDim } = options;
    if (!Number.isInteger(obsDim) || obsDim < 1) {
      throw new InvalidArgument('obsDim', `must be a positive integer, got ${obsDim}`);
    }
    if (!Number.isInteger(actDim) || actDim < 1) {
      throw new InvalidArgument('actDim', `must be a positive integer, got ${actDim}`);
    }
    this.obsDim = obsDim;
    this.actDim = actDim;
    const actorHidden = options.actorHidden ?? [64, 64];
    const criticHidden = options.criticHidden ?? [64, 64];
    const nActor = Mlp.paramCount([obsDim, ...actorHidden, actDim]);
    const nCritic = Mlp.paramCount([obsDim, ...criticHidden, 1]);
    const total = nActor + actDim + nCritic;
    this.params = new Float32Array(total);
    this.grads = new Float32Array(total);
    this.offsets = { actor: 0, logStd: nActor, critic: nActor + actDim };
    const view = (a: Float32Array, from: number, n: number): Float32Array => a.subarray(from, from + n);
    this.actor = new Mlp(obsDim, actorHidden, actDim, {
      storage: { params: view(this.params, 0, nActor), grads: view(this.grads, 0, nActor) },
    });
    this.logStd = view(this.params, nActor, actDim);
    this.logStdGrad = view(this.grads, nActor, actDim);
    this.critic = new Mlp(obsDim, criticHidden, 1, {
      storage: {
        params: view(this.params, nActor + actDim, nCritic),
        grads: view(this.grads, nActor + actDim, nCritic),
      },
    });
  }

  /** Orthogonal init with the gains of the 37 details (0.01 policy head, 1 value head); log-std filled with `initLogStd`. */
  init(
    rng: Rng,
    options: { actorOutputGain?: number; criticOutputGain?: number; initLogStd?: number } = {},
  ): void {
    this.actor.init(rng, options.actorOutputGain ?? 0.01);
    this.critic.init(rng, options.criticOutputGain ?? 1);
    this.logStd.fill(options.initLogStd ?? 0);
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** Action means for obs [B, obsDim]: [B, actDim], the actor's reused output buffer. */
  mean(obs: ArrayLike<number>, batch: number): Float32Array {
    return this.actor.forward(obs, batch);
  }

  /** Values for obs [B, obsDim]: [B], the critic's reused output buffer. */
  value(obs: ArrayLike<number>, batch: number): Float32Array {
    return this.critic.forward(obs, batch);
  }

  /**
   * Samples actions a = mean + exp(logStd) * eps for obs [B, obsDim] into outActions [B, actDim] and their
   * log-probabilities into outLogProb [B].
   */
  sample(
    obs: ArrayLike<number>,
    batch: number,
    rng: Rng,
    outActions: Float32Array,
    outLogProb: Float32Array,
  ): void {
    const mean = this.mean(obs, batch);
    const A = this.actDim;
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < A; j++) {
        const k = r * A + j;
        outActions[k] = mean[k]! + Math.exp(this.logStd[j]!) * rng.normal();
      }
    }
    gaussianLogProb(outActions, mean, this.logStd, batch, A, outLogProb);
  }

  /** Entropy of the policy (the same for every observation, since the std does not depend on it). */
  entropy(): number {
    return gaussianEntropy(this.logStd);
  }
}

/**
 * log N(action | mean, exp(logStd)^2), summed over action dimensions. action, mean: [B, A]; logStd: [A];
 * out: [B].
 */
export function gaussianLogProb(
  action: Float32Array | Float64Array,
  mean: Float32Array | Float64Array,
  logStd: Float32Array | Float64Array,
  batch: number,
  A: number,
  out: Float32Array | Float64Array,
): void {
  for (let r = 0; r < batch; r++) {
    let s = 0;
    for (let j = 0; j < A; j++) {
      const ls = logStd[j]!;
      const z = (action[r * A + j]! - mean[r * A + j]!) * Math.exp(-ls);
      s += -0.5 * z * z - ls - HALF_LOG_2PI;
    }
    out[r] = s;
  }
}

/**
 * Gradient of one sample's log-prob, scaled by `scale`, added into dMean [A] (at `meanOffset`) and dLogStd [A]:
 * d/dmean = (a - mean) / std^2 and d/dlogStd = ((a - mean) / std)^2 - 1.
 */
export function addGaussianLogProbGrad(
  action: Float32Array | Float64Array,
  mean: Float32Array | Float64Array,
  logStd: Float32Array | Float64Array,
  offset: number,
  A: number,
  scale: number,
  dMean: Float32Array | Float64Array,
  dLogStd: Float32Array | Float64Array,
): void {
  for (let j = 0; j < A; j++) {
    const invStd = Math.exp(-logStd[j]!);
    const z = (action[offset + j]! - mean[offset + j]!) * invStd;
    dMean[offset + j] = dMean[offset + j]! + scale * z * invStd;
    dLogStd[j] = dLogStd[j]! + scale * (z * z - 1);
  }
}

/** Entropy of a diagonal Gaussian: sum over dimensions of logStd + (1 + log 2 pi) / 2. Its logStd gradient is 1. */
export function gaussianEntropy(logStd: Float32Array | Float64Array): number {
  let s = 0;
  for (let j = 0; j < logStd.length; j++) s += logStd[j]! + 0.5 + HALF_LOG_2PI;
  return s;
}
