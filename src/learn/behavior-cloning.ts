/**
 * Behaviour cloning of demonstrations into a PPO learner's actor: the warm start for tasks where random
 * exploration almost never finds the reward (pick-place: PPO's starting noise grasps the cube in about 1 of 200
 * episodes). The actor's mean is fitted to the demonstrated actions by mean squared error, which is the Gaussian
 * policy's negative log-likelihood for a fixed standard deviation, so the log-std is left as configured: how
 * much PPO explores around the cloned behaviour stays the user's choice (`initLogStd`).
 *
 * The observation normaliser is fitted to the demonstrations first, so the actor learns on the inputs PPO will
 * give it; PPO's rollouts then keep updating the same running statistics. The critic is left alone: its targets
 * depend on the reward, which demonstrations do not carry (see `criticWarmup` in the trainer).
 */
import { Rng } from '../env/rng.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { Adam } from './adam.ts';
import type { PpoLearner } from './ppo.ts';

/** Transitions from a demonstrator: raw observations and the actions taken, row-major. */
export interface Demonstrations {
  /** [count, obsDim] raw observations, as the env gives them. */
  obs: Float32Array;
  /** [count, actDim] actions; values outside the action box [-1, 1] are clipped, as the env would. */
  actions: Float32Array;
  count: number;
}

export interface BcConfig {
  /** Passes over the demonstrations. */
  epochs: number;
  /** Transitions per gradient step (the last step of an epoch takes the remainder). */
  batchSize: number;
  /** Adam learning rate (an optimiser of its own: PPO's Adam moments start fresh afterwards). */
  learningRate: number;
  /** Seed of the minibatch shuffling (the learner's own random stream is not drawn from). */
  seed: number;
}

export const defaultBcConfig: Readonly<BcConfig> = Object.freeze({
  epochs: 50,
  batchSize: 256,
  learningRate: 1e-3,
  seed: 0,
});

export interface BcStats {
  /** Mean squared error of the mean action per epoch, averaged over its minibatches (as they were before each step). */
  epochLoss: number[];
  /** Mean squared error over all demonstrations after the last step. */
  finalLoss: number;
  gradientSteps: number;
}

export function checkDemonstrations(demos: Demonstrations, obsDim: number, actDim: number): void {
  const { count } = demos;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgument('demonstrations.count', `must be a positive integer, got ${count}`);
  }
  if (demos.obs.length !== count * obsDim) {
    throw new InvalidArgument(
      'demonstrations.obs',
      `expected ${count} x ${obsDim} = ${count * obsDim} values, got ${demos.obs.length}`,
    );
  }
  if (demos.actions.length !== count * actDim) {
    throw new InvalidArgument(
      'demonstrations.actions',
      `expected ${count} x ${actDim} = ${count * actDim} values, got ${demos.actions.length}`,
    );
  }
  for (const key of ['obs', 'actions'] as const) {
    const a = demos[key];
    const width = key === 'obs' ? obsDim : actDim;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) {
        throw new InvalidArgument(
          `demonstrations.${key}`,
          `must be finite, got ${a[i]} at row ${Math.floor(i / width)}, column ${i % width}`,
        );
      }
    }
  }
}

export function checkBcConfig(overrides: Partial<BcConfig> = {}): BcConfig {
  const cfg = { ...defaultBcConfig, ...overrides };
  const int = (field: 'epochs' | 'batchSize' | 'seed', min: number): void => {
    const v = cfg[field];
    if (!Number.isInteger(v) || v < min) {
      throw new InvalidArgument(`bc.${field}`, `must be an integer >= ${min}, got ${v}`);
    }
  };
  int('epochs', 1);
  int('batchSize', 1);
  int('seed', 0);
  if (!(cfg.learningRate > 0 && Number.isFinite(cfg.learningRate))) {
    throw new InvalidArgument('bc.learningRate', `must be a finite number > 0, got ${cfg.learningRate}`);
  }
  return cfg;
}

/** Fits `learner`'s observation normaliser and actor mean to `demos` (in place); between rollouts only. */
export function cloneBehavior(
  learner: PpoLearner,
  demos: Demonstrations,
  overrides: Partial<BcConfig> = {},
): BcStats {
  const cfg = checkBcConfig(overrides);
  const D = learner.obsDim;
  const A = learner.actDim;
  checkDemonstrations(demos, D, A);
  const count = demos.count;
  if (learner.config.normObs) learner.obsNorm.update(demos.obs, count);
  const inputs = new Float32Array(count * D);
  learner.normalizeInto(demos.obs, count, inputs);
  const targets = new Float32Array(count * A);
  for (let i = 0; i < targets.length; i++) {
    const a = demos.actions[i]!;
    targets[i] = a < -1 ? -1 : a > 1 ? 1 : a;
  }

  const model = learner.model;
  const actorParams = model.params.subarray(model.offsets.actor, model.offsets.logStd);
  const actorGrads = model.grads.subarray(model.offsets.actor, model.offsets.logStd);
  const adam = new Adam(actorParams.length, { eps: learner.config.adamEps });
  const rng = new Rng(cfg.seed);
  const B = Math.min(cfg.batchSize, count);
  const perm = new Uint32Array(count);
  for (let i = 0; i < count; i++) perm[i] = i;
  const mbObs = new Float32Array(B * D);
  const mbAct = new Float32Array(B * A);
  const dMean = new Float32Array(B * A);
  const epochLoss: number[] = [];
  let steps = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (let i = count - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const tmp = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = tmp;
    }
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < count; start += B) {
      const b = Math.min(B, count - start);
      for (let m = 0; m < b; m++) {
        const k = perm[start + m]!;
        for (let j = 0; j < D; j++) mbObs[m * D + j] = inputs[k * D + j]!;
        for (let j = 0; j < A; j++) mbAct[m * A + j] = targets[k * A + j]!;
      }
      model.zeroGrad();
      const mean = model.mean(mbObs, b);
      let loss = 0;
      const scale = 2 / (b * A);
      for (let i = 0; i < b * A; i++) {
        const err = mean[i]! - mbAct[i]!;
        loss += err * err;
        dMean[i] = scale * err;
      }
      model.actor.backward(dMean, b, false);
      adam.update(actorParams, actorGrads, cfg.learningRate);
      lossSum += loss / (b * A);
      batches++;
      steps++;
    }
    epochLoss.push(lossSum / batches);
  }
  model.zeroGrad();
  return { epochLoss, finalLoss: meanSquaredError(learner, inputs, targets, count), gradientSteps: steps };
}

/** Mean squared error of the actor's mean on normalised inputs [count, obsDim] against targets [count, actDim]. */
function meanSquaredError(
  learner: PpoLearner,
  inputs: Float32Array,
  targets: Float32Array,
  count: number,
): number {
  const D = learner.obsDim;
  const A = learner.actDim;
  const chunk = 1024;
  let sum = 0;
  for (let start = 0; start < count; start += chunk) {
    const b = Math.min(chunk, count - start);
    const mean = learner.model.mean(inputs.subarray(start * D, (start + b) * D), b);
    for (let i = 0; i < b * A; i++) {
      const err = mean[i]! - targets[start * A + i]!;
      sum += err * err;
    }
  }
  return sum / (count * A);
}
