/**
 * PPO for continuous actions, following CleanRL's `ppo_continuous_action.py` and "The 37 implementation details
 * of PPO". The learner does not own the env: the caller drives it one vector step at a time.
 *
 *   const learner = new PpoLearner({ obsDim, actDim, numEnvs, seed });
 *   for (let it = 0; it < iterations; it++) {
 *     for (let t = 0; t < learner.config.numSteps; t++) {
 *       const { actions } = learner.act(obs);            // raw obs [N, obsDim]; unclipped actions [N, actDim]
 *       const res = env.step(clipToActionSpace(actions));
 *       learner.observe({ rewards: res.reward, terminated: res.terminated, truncated: res.truncated,
 *                         finalObs: res.info.final_obs });
 *       obs = res.obs;
 *     }
 *     const stats = learner.update(obs, it / iterations); // progress fraction anneals the learning rate
 *   }
 *
 * Rows of the rollout are whole transitions, which is Gymnasium's `same-step` autoreset: the obs after an ended
 * step is already the next episode's first, and the ended episode's last obs comes as `finalObs` (read where
 * truncated, to bootstrap). With `next-step` autoreset the reset steps would be fake transitions in the buffer.
 */
import { Rng, type RngState } from '../env/rng.ts';
import { InvalidArgument, RolloutOrderError } from '../sim/errors.ts';
import { Adam, clipGradNorm, type AdamState } from './adam.ts';
import { computeGae } from './gae.ts';
import {
  ObservationNormalizer,
  RewardScaler,
  type RewardScalerState,
  type RunningMeanStdState,
} from './normalizers.ts';
import { ActorCritic } from './policy.ts';
import { ppoLoss, ppoLossGrads, type PpoLossGrads } from './ppo-loss.ts';

// Defined with the other error classes; re-exported for callers that import it from the learner.
export { RolloutOrderError } from '../sim/errors.ts';

export interface PpoConfig {
  /** Adam learning rate at the start of training (annealed linearly to 0 when `annealLr`). */
  learningRate: number;
  /** Steps collected per env per rollout (T); the batch is numSteps * numEnvs transitions. */
  numSteps: number;
  /** Discount factor, in [0, 1]; also the discount of the reward scaler's return. */
  gamma: number;
  /** GAE lambda, in [0, 1]. */
  gaeLambda: number;
  /** Minibatches per epoch; must divide numSteps * numEnvs. */
  numMinibatches: number;
  /** Passes over the batch per update. */
  updateEpochs: number;
  /** Normalise advantages within each minibatch. */
  normAdv: boolean;
  /** Surrogate clipping range (also the value clipping range when `clipVloss`). */
  clipCoef: number;
  /** Clip the value loss around the values at collection time. */
  clipVloss: boolean;
  /** Weight of the entropy bonus. */
  entCoef: number;
  /** Weight of the value loss. */
  vfCoef: number;
  /** Global L2 norm the gradient is clipped to before each Adam step. */
  maxGradNorm: number;
  /** Stop the epochs of an update early once a minibatch's approx KL exceeds this; null never stops. */
  targetKl: number | null;
  /** Anneal the learning rate linearly from `learningRate` to 0 over the training (given progress fractions). */
  annealLr: boolean;
  /** Hidden layer widths of the actor MLP. */
  actorHidden: number[];
  /** Hidden layer widths of the critic MLP. */
  criticHidden: number[];
  /** Orthogonal-init gain of the actor's last layer (small: initial actions ignore the observation). */
  actorOutputGain: number;
  /** Orthogonal-init gain of the critic's last layer. */
  criticOutputGain: number;
  /** Initial log standard deviation of every action dimension. */
  initLogStd: number;
  /** Adam epsilon (1e-5 as CleanRL rather than PyTorch's 1e-8). */
  adamEps: number;
  /** Adam first-moment decay. */
  adamBeta1: number;
  /** Adam second-moment decay. */
  adamBeta2: number;
  /** Normalise observations by running mean and std. */
  normObs: boolean;
  /** Clip normalised observations to [-clipObs, clipObs]. */
  clipObs: number;
  /** Scale rewards by the running std of the discounted return. */
  normReward: boolean;
  /** Clip scaled rewards to [-clipReward, clipReward]. */
  clipReward: number;
  /** Added to the variances before the square root in both normalisers. */
  normEps: number;
}

export const defaultPpoConfig: Readonly<PpoConfig> = Object.freeze({
  learningRate: 3e-4,
  numSteps: 2048,
  gamma: 0.99,
  gaeLambda: 0.95,
  numMinibatches: 32,
  updateEpochs: 10,
  normAdv: true,
  clipCoef: 0.2,
  clipVloss: true,
  entCoef: 0,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  targetKl: null,
  annealLr: true,
  actorHidden: [64, 64],
  criticHidden: [64, 64],
  actorOutputGain: 0.01,
  criticOutputGain: 1,
  initLogStd: 0,
  adamEps: 1e-5,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  normObs: true,
  clipObs: 10,
  normReward: true,
  clipReward: 10,
  normEps: 1e-8,
});

/**
 * The defaults overlaid with `overrides`, checked. Throws InvalidArgument naming the field (`ppo.<field>`) and
 * its limit; unknown fields are errors too, since a misspelt hyperparameter would otherwise be ignored silently.
 */
export function checkPpoConfig(overrides: Partial<PpoConfig> = {}): PpoConfig {
  const known = Object.keys(defaultPpoConfig);
  for (const key of Object.keys(overrides)) {
    if (!known.includes(key)) {
      throw new InvalidArgument(`ppo.${key}`, `unknown field; valid fields: ${known.join(', ')}`);
    }
  }
  const cfg: PpoConfig = {
    ...defaultPpoConfig,
    actorHidden: [...defaultPpoConfig.actorHidden],
    criticHidden: [...defaultPpoConfig.criticHidden],
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) (cfg as unknown as Record<string, unknown>)[key] = value;
  }
  const fail = (field: keyof PpoConfig, limit: string): never => {
    const v: unknown = cfg[field];
    throw new InvalidArgument(
      `ppo.${field}`,
      `${limit}, got ${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`,
    );
  };
  const num = (field: keyof PpoConfig): number => {
    const v = cfg[field];
    if (typeof v !== 'number' || Number.isNaN(v)) fail(field, 'must be a number');
    return v as number;
  };
  const posInt = (field: keyof PpoConfig): void => {
    const v = num(field);
    if (!Number.isInteger(v) || v < 1) fail(field, 'must be a positive integer');
  };
  const inRange = (field: keyof PpoConfig, lo: number, hi: number): void => {
    const v = num(field);
    if (!(v >= lo && v <= hi)) fail(field, `must be in [${lo}, ${hi}]`);
  };
  const positive = (field: keyof PpoConfig): void => {
    if (!(num(field) > 0)) fail(field, 'must be > 0');
  };
  const nonNegative = (field: keyof PpoConfig): void => {
    const v = num(field);
    if (!(v >= 0 && Number.isFinite(v))) fail(field, 'must be a finite number >= 0');
  };
  const bool = (field: keyof PpoConfig): void => {
    if (typeof cfg[field] !== 'boolean') fail(field, 'must be true or false');
  };
  const hidden = (field: 'actorHidden' | 'criticHidden'): void => {
    const v: unknown = cfg[field];
    if (!Array.isArray(v) || !v.every((s) => Number.isInteger(s) && s >= 1)) {
      fail(field, 'must be an array of positive integer layer widths');
    }
  };

  positive('learningRate');
  if (!Number.isFinite(cfg.learningRate)) fail('learningRate', 'must be finite');
  posInt('numSteps');
  inRange('gamma', 0, 1);
  inRange('gaeLambda', 0, 1);
  posInt('numMinibatches');
  posInt('updateEpochs');
  bool('normAdv');
  positive('clipCoef');
  bool('clipVloss');
  nonNegative('entCoef');
  nonNegative('vfCoef');
  positive('maxGradNorm');
  if (cfg.targetKl !== null) positive('targetKl');
  bool('annealLr');
  hidden('actorHidden');
  hidden('criticHidden');
  positive('actorOutputGain');
  positive('criticOutputGain');
  num('initLogStd');
  if (!Number.isFinite(cfg.initLogStd)) fail('initLogStd', 'must be finite');
  positive('adamEps');
  for (const field of ['adamBeta1', 'adamBeta2'] as const) {
    const v = num(field);
    if (!(v >= 0 && v < 1)) fail(field, 'must be in [0, 1)');
  }
  bool('normObs');
  positive('clipObs');
  bool('normReward');
  positive('clipReward');
  positive('normEps');
  return cfg;
}

export interface PpoLearnerOptions {
  obsDim: number;
  actDim: number;
  /** Number of envs stepped together (N). */
  numEnvs: number;
  /** Seed of the learner's Rng: initial weights, action noise and minibatch shuffling. */
  seed: number;
  config?: Partial<PpoConfig>;
  /**
   * Rewards arrive after the rollout rather than with each step (progress shaping: a model's answers come in
   * late, and the shaped reward of a step needs the potential of the state after it). `observe` then takes no
   * rewards, and `setRolloutRewards` must give all of them before `update`.
   */
  deferredRewards?: boolean;
}

/** What `act` returns: views into the rollout row just filled (valid until the next update). */
export interface ActResult {
  /** [N, actDim] sampled actions, unclipped: clip them to the action space before stepping the env. */
  actions: Float32Array;
  /** [N] log-probabilities of the actions. */
  logProbs: Float32Array;
  /** [N] critic values of the observations. */
  values: Float32Array;
}

/** A sample taken outside the lock-step rollout (`sampleOne`), to be handed back through `loadRollout`. */
export interface DetachedSample {
  /** [obsDim] the observation as the networks saw it (normalised with the statistics of that moment). */
  obs: Float32Array;
  /** [actDim] the unclipped sampled action. */
  action: Float32Array;
  logProb: number;
  value: number;
}

/** A whole rollout gathered elsewhere, [T, N] row-major like the learner's own buffers. */
export interface RolloutRows {
  /** [T*N*obsDim] observations as the networks saw them (`DetachedSample.obs`). */
  obs: Float32Array;
  /** [T*N*actDim] unclipped actions. */
  actions: Float32Array;
  logProbs: Float32Array;
  values: Float32Array;
  /** [T*N] 1 where the transition ended the episode for good. */
  terminated: Uint8Array;
  /** [T*N] 1 where it was cut short: the return bootstraps from `finalValues`. */
  truncated: Uint8Array;
  /** [T*N] critic value of the state after a truncated transition (ignored elsewhere). */
  finalValues: Float32Array;
}

/** The env's answer to the actions of the latest `act`. */
export interface StepFeedback {
  /** [N] rewards (raw; the learner scales them when `normReward`). Absent with `deferredRewards`. */
  rewards?: ArrayLike<number>;
  /** [N] nonzero/true where the episode reached a true end of the MDP. */
  terminated: ArrayLike<number | boolean>;
  /** [N] nonzero/true where the episode was cut short (time limit, disconnect). */
  truncated: ArrayLike<number | boolean>;
  /** [N, obsDim] raw last observations of ended episodes; required when any env is truncated (not terminated). */
  finalObs?: ArrayLike<number>;
}

/** Statistics of one update. Losses, KL and clip fraction are means over the minibatches processed. */
export interface PpoStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  oldApproxKl: number;
  clipFrac: number;
  /** 1 - Var(returns - values) / Var(returns) over the batch; NaN when the returns do not vary. */
  explainedVariance: number;
  /** Mean global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used in this update. */
  learningRate: number;
  /** Epochs started (fewer than updateEpochs after a KL early stop). */
  epochs: number;
  earlyStopped: boolean;
  /** Minibatch gradient steps taken. */
  gradientSteps: number;
}

/**
 * Everything a learner needs to continue exactly where another left off (taken between rollouts). Plain
 * numbers, arrays and typed arrays, so a checkpoint module can serialise it field by field.
 */
export interface PpoLearnerState {
  /** Layout version of this object. */
  version: 1;
  obsDim: number;
  actDim: number;
  numEnvs: number;
  /** The hyperparameters the learner ran with (`PpoLearner.fromState` rebuilds from them). */
  config: PpoConfig;
  /** Flat parameters, layout [actor MLP | logStd [actDim] | critic MLP]; see policy.ts and mlp.ts. */
  params: Float32Array;
  /** Adam moments (same layout as params) and step count. */
  adam: AdamState;
  /** Observation statistics ([obsDim] mean and var, count). */
  obsNorm: RunningMeanStdState;
  /** Return statistics (dim 1) and the per-env discounted returns [numEnvs]. */
  rewardScaler: RewardScalerState;
  /** State of the learner's Rng (action noise, shuffling). */
  rng: RngState;
  /** Updates completed. */
  updates: number;
}

export class PpoLearner {
  readonly config: PpoConfig;
  readonly obsDim: number;
  readonly actDim: number;
  readonly numEnvs: number;
  readonly model: ActorCritic;
  readonly optimizer: Adam;
  readonly obsNorm: ObservationNormalizer;
  readonly rewardScaler: RewardScaler;
  readonly rng: Rng;
  /** Updates completed. */
  updates = 0;

  private t = 0;
  private awaitingFeedback = false;
  readonly deferredRewards: boolean;
  private rewardsSet = false;
  private readonly batchSize: number;
  private readonly minibatchSize: number;
  // Rollout buffers, [T, N, ...] row-major; obs are stored normalised, as the networks saw them.
  private readonly obs: Float32Array;
  private readonly actions: Float32Array;
  private readonly logProbs: Float32Array;
  private readonly values: Float32Array;
  private readonly rewards: Float32Array;
  private readonly terminated: Uint8Array;
  private readonly truncated: Uint8Array;
  private readonly finalValues: Float32Array;
  private readonly advantages: Float32Array;
  private readonly returns: Float32Array;
  private readonly rows: ActResult[];
  private readonly obsRows: Float32Array[];
  // Scratch for one vector step.
  private readonly stepObs: Float32Array;
  private readonly lastValues: Float32Array;
  // Minibatch buffers.
  private readonly perm: Uint32Array;
  private readonly mbObs: Float32Array;
  private readonly mbActions: Float32Array;
  private readonly mbLogProbs: Float32Array;
  private readonly mbValues: Float32Array;
  private readonly mbAdvantages: Float32Array;
  private readonly mbReturns: Float32Array;
  private readonly lossGrads: PpoLossGrads;
  private readonly predictBufs = new Map<
    number,
    { obs: Float32Array; actions: Float32Array; logProb: Float32Array }
  >();

  constructor(options: PpoLearnerOptions) {
    const { obsDim, actDim, numEnvs, seed } = options;
    this.deferredRewards = options.deferredRewards ?? false;
    if (!Number.isInteger(numEnvs) || numEnvs < 1) {
      throw new InvalidArgument('numEnvs', `must be a positive integer, got ${numEnvs}`);
    }
    if (!Number.isInteger(seed)) throw new InvalidArgument('seed', `must be an integer, got ${seed}`);
    const cfg = checkPpoConfig(options.config);
    this.batchSize = cfg.numSteps * numEnvs;
    if (this.batchSize % cfg.numMinibatches !== 0) {
      throw new InvalidArgument(
        'ppo.numMinibatches',
        `must divide numSteps * numEnvs = ${this.batchSize}, got ${cfg.numMinibatches}`,
      );
    }
    this.minibatchSize = this.batchSize / cfg.numMinibatches;
    this.config = cfg;
    this.model = new ActorCritic({
      obsDim,
      actDim,
      actorHidden: cfg.actorHidden,
      criticHidden: cfg.criticHidden,
    });
    this.obsDim = obsDim;
    this.actDim = actDim;
    this.numEnvs = numEnvs;
    this.rng = new Rng(seed);
    this.model.init(this.rng, {
      actorOutputGain: cfg.actorOutputGain,
      criticOutputGain: cfg.criticOutputGain,
      initLogStd: cfg.initLogStd,
    });
    this.optimizer = new Adam(this.model.params.length, {
      beta1: cfg.adamBeta1,
      beta2: cfg.adamBeta2,
      eps: cfg.adamEps,
    });
    this.obsNorm = new ObservationNormalizer(obsDim, { clip: cfg.clipObs, eps: cfg.normEps });
    this.rewardScaler = new RewardScaler(numEnvs, cfg.gamma, { clip: cfg.clipReward, eps: cfg.normEps });

    const T = cfg.numSteps;
    const TN = T * numEnvs;
    this.obs = new Float32Array(TN * obsDim);
    this.actions = new Float32Array(TN * actDim);
    this.logProbs = new Float32Array(TN);
    this.values = new Float32Array(TN);
    this.rewards = new Float32Array(TN);
    this.terminated = new Uint8Array(TN);
    this.truncated = new Uint8Array(TN);
    this.finalValues = new Float32Array(TN);
    this.advantages = new Float32Array(TN);
    this.returns = new Float32Array(TN);
    this.rows = [];
    this.obsRows = [];
    for (let t = 0; t < T; t++) {
      const o = t * numEnvs;
      this.obsRows.push(this.obs.subarray(o * obsDim, (o + numEnvs) * obsDim));
      this.rows.push({
        actions: this.actions.subarray(o * actDim, (o + numEnvs) * actDim),
        logProbs: this.logProbs.subarray(o, o + numEnvs),
        values: this.values.subarray(o, o + numEnvs),
      });
    }
    this.stepObs = new Float32Array(numEnvs * obsDim);
    this.lastValues = new Float32Array(numEnvs);
    const M = this.minibatchSize;
    this.perm = new Uint32Array(TN);
    this.mbObs = new Float32Array(M * obsDim);
    this.mbActions = new Float32Array(M * actDim);
    this.mbLogProbs = new Float32Array(M);
    this.mbValues = new Float32Array(M);
    this.mbAdvantages = new Float32Array(M);
    this.mbReturns = new Float32Array(M);
    this.lossGrads = ppoLossGrads(M, actDim);
  }

  /** A learner that continues from `state` (built with the config stored in it). */
  static fromState(state: PpoLearnerState): PpoLearner {
    const learner = new PpoLearner({
      obsDim: state.obsDim,
      actDim: state.actDim,
      numEnvs: state.numEnvs,
      seed: 0,
      config: state.config,
    });
    learner.loadState(state);
    return learner;
  }

  /** Steps of the current rollout collected so far (0 to numSteps). */
  get step(): number {
    return this.t;
  }

  /**
   * Samples actions for raw observations obs [N, obsDim], updates the observation statistics with them, and
   * records obs, actions, log-probs and values as row `step` of the rollout.
   */
  act(obs: ArrayLike<number>): ActResult {
    if (this.awaitingFeedback) throw new RolloutOrderError('act() called twice without observe() in between');
    if (this.t >= this.config.numSteps) {
      throw new RolloutOrderError(`the rollout is full (${this.config.numSteps} steps): call update() first`);
    }
    this.checkObs('obs', obs, this.numEnvs);
    const N = this.numEnvs;
    const row = this.obsRows[this.t]!;
    if (this.config.normObs) {
      this.obsNorm.update(obs, N);
      this.obsNorm.normalize(obs, N, row);
    } else {
      for (let i = 0; i < row.length; i++) row[i] = obs[i]!;
    }
    const out = this.rows[this.t]!;
    this.model.sample(row, N, this.rng, out.actions, out.logProbs);
    out.values.set(this.model.value(row, N));
    this.awaitingFeedback = true;
    return out;
  }

  /** Records the env's answer to the latest `act`, completing row `step` of the rollout. */
  observe(feedback: StepFeedback): void {
    if (!this.awaitingFeedback) throw new RolloutOrderError('observe() called without a preceding act()');
    const N = this.numEnvs;
    const rewards = feedback.rewards;
    if (this.deferredRewards !== (rewards === undefined)) {
      throw new InvalidArgument(
        'rewards',
        this.deferredRewards
          ? 'this learner takes rewards after the rollout (deferredRewards): use setRolloutRewards()'
          : 'required',
      );
    }
    for (const key of ['rewards', 'terminated', 'truncated'] as const) {
      const a = feedback[key];
      if (a !== undefined && a.length !== N) {
        throw new InvalidArgument(key, `expected ${N} values (one per env), got ${a.length}`);
      }
    }
    // Validate everything before writing anything, so a rejected call leaves the rollout and statistics as they were.
    let bootstrap = false;
    for (let n = 0; n < N; n++) {
      if (rewards && !Number.isFinite(rewards[n])) {
        throw new InvalidArgument('rewards', `must be finite, got ${rewards[n]} for env ${n}`);
      }
      if (feedback.truncated[n] && !feedback.terminated[n]) bootstrap = true;
    }
    if (bootstrap) {
      if (!feedback.finalObs) {
        throw new InvalidArgument(
          'finalObs',
          'required when an env is truncated: its value bootstraps the return',
        );
      }
      this.checkObs('finalObs', feedback.finalObs, N);
    }
    const o = this.t * N;
    for (let n = 0; n < N; n++) {
      this.terminated[o + n] = feedback.terminated[n] ? 1 : 0;
      this.truncated[o + n] = feedback.truncated[n] ? 1 : 0;
      this.finalValues[o + n] = 0;
    }
    if (rewards) this.storeRewards(this.t, rewards);
    if (bootstrap) {
      const values = this.criticValues(feedback.finalObs!, N);
      for (let n = 0; n < N; n++) {
        if (this.truncated[o + n] && !this.terminated[o + n]) this.finalValues[o + n] = values[n]!;
      }
    }
    this.awaitingFeedback = false;
    this.t++;
  }

  /** Row t of the rollout's rewards from raw ones, scaled in time order as they would have been step by step. */
  private storeRewards(t: number, raw: ArrayLike<number>): void {
    const N = this.numEnvs;
    const o = t * N;
    const row = this.rewards.subarray(o, o + N);
    if (this.config.normReward) {
      this.rewardScaler.scale(
        raw,
        this.terminated.subarray(o, o + N),
        this.truncated.subarray(o, o + N),
        row,
      );
    } else {
      for (let n = 0; n < N; n++) row[n] = raw[n]!;
    }
  }

  /**
   * One sample for one raw observation [obsDim], outside the lock-step rollout: for envs that step on their own
   * clocks (rigs), whose transitions are gathered by the caller and handed over whole with `loadRollout`.
   * Updates the observation statistics as `act` does.
   */
  sampleOne(obs: ArrayLike<number>): DetachedSample {
    this.checkObs('obs', obs, 1);
    const norm = new Float32Array(this.obsDim);
    if (this.config.normObs) {
      this.obsNorm.update(obs, 1);
      this.obsNorm.normalize(obs, 1, norm);
    } else {
      for (let i = 0; i < norm.length; i++) norm[i] = obs[i]!;
    }
    const action = new Float32Array(this.actDim);
    const logProb = new Float32Array(1);
    this.model.sample(norm, 1, this.rng, action, logProb);
    return { obs: norm, action, logProb: logProb[0]!, value: this.model.value(norm, 1)[0]! };
  }

  /** Critic values of raw observations [batch, obsDim] under the current statistics (a copy). */
  valuesOf(obs: ArrayLike<number>, batch: number): Float32Array {
    this.checkObs('obs', obs, batch);
    const norm = new Float32Array(batch * this.obsDim);
    this.normalizeInto(obs, batch, norm);
    return this.model.value(norm, batch).slice();
  }

  /**
   * Fills the whole rollout with transitions gathered elsewhere (`sampleOne`, possibly by another copy of this
   * learner), for a learner with `deferredRewards`; then `setRolloutRewards` and `update` as usual. Rows must
   * be sampled by the policy being updated or a recent copy: PPO's ratio is taken against their log-probs.
   */
  loadRollout(rows: RolloutRows): void {
    if (!this.deferredRewards) {
      throw new RolloutOrderError('loadRollout() is for learners created with deferredRewards');
    }
    if (this.t !== 0 || this.awaitingFeedback) {
      throw new RolloutOrderError(`loadRollout() replaces a whole rollout; this one is at step ${this.t}`);
    }
    const TN = this.config.numSteps * this.numEnvs;
    const sizes: [keyof RolloutRows, number][] = [
      ['obs', TN * this.obsDim],
      ['actions', TN * this.actDim],
      ['logProbs', TN],
      ['values', TN],
      ['terminated', TN],
      ['truncated', TN],
      ['finalValues', TN],
    ];
    for (const [key, n] of sizes) {
      const a = rows[key];
      if (a.length !== n)
        throw new InvalidArgument(`rollout.${key}`, `expected ${n} values, got ${a.length}`);
      if (a instanceof Float32Array) {
        for (let i = 0; i < n; i++) {
          if (!Number.isFinite(a[i])) {
            throw new InvalidArgument(`rollout.${key}`, `must be finite, got ${a[i]} at index ${i}`);
          }
        }
      }
    }
    this.obs.set(rows.obs);
    this.actions.set(rows.actions);
    this.logProbs.set(rows.logProbs);
    this.values.set(rows.values);
    this.terminated.set(rows.terminated);
    this.truncated.set(rows.truncated);
    for (let i = 0; i < TN; i++) {
      this.finalValues[i] = rows.truncated[i] && !rows.terminated[i] ? rows.finalValues[i]! : 0;
    }
    this.t = this.config.numSteps;
  }

  /**
   * All rewards of the full rollout, [T, N] raw, for a learner with `deferredRewards`; call once between the
   * last `observe` and `update`.
   */
  setRolloutRewards(raw: ArrayLike<number>): void {
    if (!this.deferredRewards) {
      throw new RolloutOrderError('setRolloutRewards() is for learners created with deferredRewards');
    }
    const { numSteps } = this.config;
    if (this.t !== numSteps || this.awaitingFeedback) {
      throw new RolloutOrderError(
        `setRolloutRewards() needs a full rollout of ${numSteps} steps, have ${this.t}`,
      );
    }
    if (this.rewardsSet) throw new RolloutOrderError('setRolloutRewards() called twice for one rollout');
    const N = this.numEnvs;
    if (raw.length !== numSteps * N) {
      throw new InvalidArgument('rewards', `expected ${numSteps * N} values ([T, N]), got ${raw.length}`);
    }
    for (let i = 0; i < raw.length; i++) {
      if (!Number.isFinite(raw[i])) {
        throw new InvalidArgument(
          'rewards',
          `must be finite, got ${raw[i]} at step ${Math.floor(i / N)}, env ${i % N}`,
        );
      }
    }
    const all = Float64Array.from(raw);
    for (let t = 0; t < numSteps; t++) this.storeRewards(t, all.subarray(t * N, (t + 1) * N));
    this.rewardsSet = true;
  }

  /**
   * Actions for evaluation or deployment: the mean action when `deterministic` (default), else a sample.
   * obs: raw [B, obsDim]; the statistics are used, not updated. Returns [B, actDim], a buffer reused by the
   * next call with the same B. Sampling draws from `options.rng`, by default the learner's own (which then
   * also changes the action noise and shuffling of later training).
   */
  predict(
    obs: ArrayLike<number>,
    batch: number,
    options: { deterministic?: boolean; rng?: Rng } = {},
  ): Float32Array {
    this.checkObs('obs', obs, batch);
    let bufs = this.predictBufs.get(batch);
    if (!bufs) {
      bufs = {
        obs: new Float32Array(batch * this.obsDim),
        actions: new Float32Array(batch * this.actDim),
        logProb: new Float32Array(batch),
      };
      this.predictBufs.set(batch, bufs);
    }
    this.normalizeInto(obs, batch, bufs.obs);
    if (options.deterministic ?? true) {
      bufs.actions.set(this.model.mean(bufs.obs, batch));
    } else {
      this.model.sample(bufs.obs, batch, options.rng ?? this.rng, bufs.actions, bufs.logProb);
    }
    return bufs.actions;
  }

  /**
   * One PPO update from the full rollout. nextObs: raw [N, obsDim] observations after the last step (their
   * values bootstrap unfinished episodes). progress: fraction of training done before this update, in [0, 1];
   * with `annealLr` the learning rate is learningRate * (1 - progress). `trainPolicy: false` updates the critic
   * only (the actor and log-std stay as they are): a critic warm-up for an actor that starts from demonstrations,
   * whose behaviour early policy-gradient steps on an untrained critic's advantages would wreck.
   */
  update(nextObs: ArrayLike<number>, progress = 0, options: { trainPolicy?: boolean } = {}): PpoStats {
    const trainPolicy = options.trainPolicy ?? true;
    const cfg = this.config;
    if (this.awaitingFeedback) throw new RolloutOrderError('update() called between act() and observe()');
    if (this.t !== cfg.numSteps) {
      throw new RolloutOrderError(`update() needs a full rollout of ${cfg.numSteps} steps, have ${this.t}`);
    }
    if (this.deferredRewards && !this.rewardsSet) {
      throw new RolloutOrderError('update() needs the rollout rewards first: call setRolloutRewards()');
    }
    if (!(progress >= 0 && progress <= 1))
      throw new InvalidArgument('progress', `must be in [0, 1], got ${progress}`);
    const N = this.numEnvs;
    const A = this.actDim;
    this.checkObs('nextObs', nextObs, N);
    this.lastValues.set(this.criticValues(nextObs, N));
    computeGae(
      {
        T: cfg.numSteps,
        N,
        rewards: this.rewards,
        values: this.values,
        terminated: this.terminated,
        truncated: this.truncated,
        finalValues: this.finalValues,
        lastValues: this.lastValues,
        gamma: cfg.gamma,
        lambda: cfg.gaeLambda,
      },
      this.advantages,
      this.returns,
    );

    const lr = cfg.annealLr ? cfg.learningRate * (1 - progress) : cfg.learningRate;
    const M = this.minibatchSize;
    const perm = this.perm;
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    const model = this.model;
    const sums = {
      policyLoss: 0,
      valueLoss: 0,
      entropy: 0,
      approxKl: 0,
      oldApproxKl: 0,
      clipFrac: 0,
      gradNorm: 0,
    };
    let steps = 0;
    let epochs = 0;
    let earlyStopped = false;
    for (let epoch = 0; epoch < cfg.updateEpochs && !earlyStopped; epoch++) {
      epochs++;
      // Fisher-Yates from our Rng, so the minibatch order is part of the reproducible state.
      for (let i = perm.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        const tmp = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = tmp;
      }
      let lastKl = 0;
      for (let start = 0; start < perm.length; start += M) {
        this.gatherMinibatch(start);
        model.zeroGrad();
        const mean = model.mean(this.mbObs, M);
        const value = model.value(this.mbObs, M);
        const res = ppoLoss(
          {
            B: M,
            A,
            mean,
            logStd: model.logStd,
            value,
            actions: this.mbActions,
            oldLogProb: this.mbLogProbs,
            oldValue: this.mbValues,
            advantages: this.mbAdvantages,
            returns: this.mbReturns,
          },
          cfg,
          this.lossGrads,
        );
        if (trainPolicy) {
          model.actor.backward(this.lossGrads.dMean, M, false);
          const dLogStd = this.lossGrads.dLogStd;
          for (let j = 0; j < A; j++) model.logStdGrad[j] = model.logStdGrad[j]! + dLogStd[j]!;
        }
        model.critic.backward(this.lossGrads.dValue, M, false);
        sums.gradNorm += clipGradNorm(model.grads, cfg.maxGradNorm);
        this.optimizer.update(model.params, model.grads, lr);
        sums.policyLoss += res.policyLoss;
        sums.valueLoss += res.valueLoss;
        sums.entropy += res.entropy;
        sums.approxKl += res.approxKl;
        sums.oldApproxKl += res.oldApproxKl;
        sums.clipFrac += res.clipFrac;
        lastKl = res.approxKl;
        steps++;
      }
      // CleanRL's check: the KL of the epoch's last minibatch decides whether another epoch runs.
      if (cfg.targetKl !== null && lastKl > cfg.targetKl) earlyStopped = true;
    }

    this.t = 0;
    this.rewardsSet = false;
    this.updates++;
    return {
      policyLoss: sums.policyLoss / steps,
      valueLoss: sums.valueLoss / steps,
      entropy: sums.entropy / steps,
      approxKl: sums.approxKl / steps,
      oldApproxKl: sums.oldApproxKl / steps,
      clipFrac: sums.clipFrac / steps,
      explainedVariance: explainedVariance(this.values, this.returns),
      gradNorm: sums.gradNorm / steps,
      learningRate: lr,
      epochs,
      earlyStopped,
      gradientSteps: steps,
    };
  }

  /** Copies the rollout rows perm[start .. start + minibatchSize) into the minibatch buffers. */
  private gatherMinibatch(start: number): void {
    const { perm, obs, actions, logProbs, values, advantages, returns } = this;
    const { mbObs, mbActions, mbLogProbs, mbValues, mbAdvantages, mbReturns } = this;
    const D = this.obsDim;
    const A = this.actDim;
    for (let m = 0; m < this.minibatchSize; m++) {
      const k = perm[start + m]!;
      const src = k * D;
      const dst = m * D;
      for (let j = 0; j < D; j++) mbObs[dst + j] = obs[src + j]!;
      for (let j = 0; j < A; j++) mbActions[m * A + j] = actions[k * A + j]!;
      mbLogProbs[m] = logProbs[k]!;
      mbValues[m] = values[k]!;
      mbAdvantages[m] = advantages[k]!;
      mbReturns[m] = returns[k]!;
    }
  }

  /** A copy of everything needed to resume exactly; only between rollouts (step 0). */
  state(): PpoLearnerState {
    if (this.t !== 0 || this.awaitingFeedback) {
      throw new RolloutOrderError(`state() is taken between rollouts; this one is at step ${this.t}`);
    }
    return {
      version: 1,
      obsDim: this.obsDim,
      actDim: this.actDim,
      numEnvs: this.numEnvs,
      config: structuredClone(this.config),
      params: this.model.params.slice(),
      adam: this.optimizer.getState(),
      obsNorm: this.obsNorm.getState(),
      rewardScaler: this.rewardScaler.getState(),
      rng: this.rng.getState(),
      updates: this.updates,
    };
  }

  /**
   * Restores a state from `state()` of a learner with the same dimensions and networks; any rollout in progress
   * is dropped. The config stored in the state is not applied (this learner keeps its own).
   */
  loadState(state: PpoLearnerState): void {
    if (state.version !== 1)
      throw new InvalidArgument('state.version', `must be 1, got ${String(state.version)}`);
    for (const key of ['obsDim', 'actDim', 'numEnvs'] as const) {
      if (state[key] !== this[key])
        throw new InvalidArgument(`state.${key}`, `must be ${this[key]}, got ${state[key]}`);
    }
    if (state.params.length !== this.model.params.length) {
      throw new InvalidArgument(
        'state.params',
        `expected ${this.model.params.length} parameters (hidden sizes ${JSON.stringify(this.config.actorHidden)} / ${JSON.stringify(this.config.criticHidden)}), got ${state.params.length}`,
      );
    }
    this.model.params.set(state.params);
    this.optimizer.setState(state.adam);
    this.obsNorm.setState(state.obsNorm);
    this.rewardScaler.setState(state.rewardScaler);
    this.rng.setState(state.rng);
    this.updates = state.updates;
    this.t = 0;
    this.rewardsSet = false;
    this.awaitingFeedback = false;
  }

  /** Raw obs [batch, obsDim] as the networks see them (normalised, or copied without `normObs`) into `out`. */
  normalizeInto(obs: ArrayLike<number>, batch: number, out: Float32Array): void {
    if (this.config.normObs) this.obsNorm.normalize(obs, batch, out);
    else for (let i = 0; i < batch * this.obsDim; i++) out[i] = obs[i]!;
  }

  /** Critic values of raw obs [N, obsDim] under the current statistics (not updated). */
  private criticValues(obs: ArrayLike<number>, N: number): Float32Array {
    this.normalizeInto(obs, N, this.stepObs);
    return this.model.value(this.stepObs, N);
  }

  private checkObs(field: string, obs: ArrayLike<number>, batch: number): void {
    if (obs.length !== batch * this.obsDim) {
      throw new InvalidArgument(
        field,
        `expected ${batch} x ${this.obsDim} = ${batch * this.obsDim} values, got ${obs.length}`,
      );
    }
  }
}

/** 1 - Var(y - yPred) / Var(y); NaN when y is constant (as CleanRL reports it). */
export function explainedVariance(yPred: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = y.length;
  let my = 0;
  let md = 0;
  for (let i = 0; i < n; i++) {
    my += y[i]!;
    md += y[i]! - yPred[i]!;
  }
  my /= n;
  md /= n;
  let vy = 0;
  let vd = 0;
  for (let i = 0; i < n; i++) {
    vy += (y[i]! - my) ** 2;
    vd += (y[i]! - yPred[i]! - md) ** 2;
  }
  return vy === 0 ? NaN : 1 - vd / vy;
}
