/**
 * `pbridge train --rig NAME`: the built-in PPO trained on the episodes of connected rigs. The trainer is the rig
 * host's policy and observer at once: it samples an action for every observation of a trained rig (recording the
 * sample), learns each transition's shaped reward when the host settles it, and updates once `rolloutSteps`
 * on-policy transitions are ready, in a worker thread so the rigs' control loops never wait for an update. Rigs
 * may come and go: one that leaves has its episode truncated by the host and simply stops adding transitions.
 *
 * The learner is created by the first trained rig that says hello (its proprio length and action dimension), or
 * restored from a checkpoint; rigs whose dimensions differ are refused at hello. The learner acts in [-1, 1] per
 * action entry, as in simulation, and its actions are mapped affinely onto the rig's bounds, which every trained
 * rig must share (a rig's units may be metres or radians per second: a unit Gaussian there would be clipped into
 * bang-bang commands). Rigs not named in `rigs` are served the current policy's mean action and not trained on.
 */
import { PpoLearner, type PpoConfig, type PpoStats } from '../../learn/ppo.ts';
import type { RigEpisodeEnd, RigSpec } from '../../protocol/index.ts';
import { ProtocolError } from '../../protocol/index.ts';
import type { RigObserver, RigRewardEvent, RigStepEvent } from '../../bridge/rig/host.ts';
import type { RigPolicy, RigStepContext } from '../../rig/policy.ts';
import { InvalidArgument } from '../../sim/errors.ts';
import { checkIntField, type EpisodeRecord, type TrainCounters, type UpdateMetrics } from '../trainer.ts';
import { LEARNER_POLICY_NAME, RigTransitionCollector, type CollectorCounts } from './collector.ts';
import { UpdateWorker } from './update-client.ts';

export interface RigTrainConfig {
  /** Names of the rigs whose episodes train the learner (all of the same task). */
  rigs: string[];
  /** Progress model giving Phi: default | oracle | none | PATH.onnx | http(s)://... */
  reward: string;
  /** On-policy transitions to train on in total. */
  steps: number;
  /** Seed of the learner's initial weights and action noise. */
  seed: number;
  /** Transitions per update (the rollout, gathered from all trained rigs). */
  rolloutSteps: number;
  /** Checkpoint every this many updates (also at the end and when stopped). */
  checkpointEvery: number;
  /** Episode store root of the rig host. */
  storeDir: string;
  /** Learner hyperparameters; numSteps is `rolloutSteps`, gamma is also the shaping gamma. */
  ppo: Partial<PpoConfig>;
}

export const DEFAULT_RIG_PPO: Partial<PpoConfig> = {
  numMinibatches: 8,
  updateEpochs: 10,
  learningRate: 3e-4,
  gamma: 0.99,
};

export function defaultRigTrainConfig(overrides: Partial<RigTrainConfig> = {}): RigTrainConfig {
  return {
    rigs: [],
    reward: 'default',
    steps: 100_000,
    seed: 0,
    rolloutSteps: 1024,
    checkpointEvery: 1,
    storeDir: 'rig-episodes',
    ppo: { ...DEFAULT_RIG_PPO },
    ...overrides,
  };
}

export function checkRigTrainConfig(c: RigTrainConfig): void {
  const int = checkIntField;
  if (c.rigs.length === 0) throw new InvalidArgument('--rig', 'name at least one rig to train on');
  for (const name of c.rigs) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new InvalidArgument('--rig', `rig names are [A-Za-z0-9._-], 1 to 64 characters; got "${name}"`);
    }
  }
  int('steps', c.steps, 1, 1e10);
  int('seed', c.seed, 0, 2 ** 31 - 1);
  int('rollout', c.rolloutSteps, 8, 1_000_000);
  int('checkpoint-every', c.checkpointEvery, 1, 1e6);
  const mb = c.ppo.numMinibatches ?? DEFAULT_RIG_PPO.numMinibatches!;
  if (c.rolloutSteps % mb !== 0) {
    throw new InvalidArgument(
      'rollout',
      `must be a multiple of the ${mb} minibatches, got ${c.rolloutSteps}`,
    );
  }
}

export interface RigTrainHooks {
  onUpdate?(metrics: RigUpdateMetrics, learner: PpoLearner): void | Promise<void>;
  onCheckpoint?(learner: PpoLearner, counters: TrainCounters): Promise<void>;
  /** Every settled state of a trained rig (the viewer's Phi curves). */
  onReward?(e: RigRewardEvent): void;
  /** Every ended episode of a trained rig. */
  onEpisodeEnd?(rig: string, end: RigEpisodeEnd, totalSteps: number): void;
  /** About every `waitReportMs` while too few transitions are ready. */
  onWaiting?(counts: CollectorCounts & { needed: number }): void;
  /** The learner was created (dimensions fixed by this rig). */
  onLearner?(learner: PpoLearner, spec: RigSpec): void;
  shouldStop?(): boolean;
}

/** metrics.jsonl line of a rig run: the simulated run's fields plus where the transitions came from. */
export interface RigUpdateMetrics extends UpdateMetrics {
  rigs: {
    /** Transitions of this update per rig. */
    per_rig: Record<string, number>;
    /** Transitions left out so far because the executed action was not the sampled one. */
    skipped: number;
    /** Transitions dropped so far because their policy was more than one update old. */
    stale: number;
    /** Pieces the update's transitions were cut into (episode ends, gaps, rollout edges). */
    segments: number;
  };
}

/** The action bounds the learner's [-1, 1] actions are mapped onto (those of the trained rigs). */
export interface ActionBounds {
  low: number[];
  high: number[];
}

export interface RigTrainResult {
  learner: PpoLearner | undefined;
  counters: TrainCounters;
  stopped: boolean;
  wallSeconds: number;
}

const RECENT = 100;

export class RigTrainer implements RigPolicy, RigObserver {
  readonly name = LEARNER_POLICY_NAME;
  learner: PpoLearner | undefined;
  /** Fixed with the learner. */
  bounds: ActionBounds | undefined;
  readonly counters: TrainCounters;
  private collector: RigTransitionCollector | undefined;
  private readonly trained: Set<string>;
  private hooks: RigTrainHooks = {};
  private wake: (() => void) | undefined;
  private episodesSinceUpdate = 0;

  constructor(
    readonly config: RigTrainConfig,
    resume?: { learner: PpoLearner; counters: TrainCounters; bounds: ActionBounds },
  ) {
    checkRigTrainConfig(config);
    this.trained = new Set(config.rigs);
    this.counters = resume?.counters ?? { update: 0, step: 0, recent: [] };
    if (resume) {
      if (resume.bounds.low.length !== resume.learner.actDim) {
        throw new InvalidArgument('checkpoint.bounds', `needs ${resume.learner.actDim} entries`);
      }
      this.adopt(resume.learner, resume.bounds);
    }
  }

  /** Transitions ready for the learner and those left out so far (zeros before the learner exists). */
  transitions(): CollectorCounts {
    return this.collector?.counts() ?? { ready: 0, skipped: 0, stale: 0 };
  }

  get obsDim(): number | undefined {
    return this.learner?.obsDim;
  }

  get actDim(): number | undefined {
    return this.learner?.actDim;
  }

  /**
   * Called by the host at every rig's hello: the first trained rig fixes the learner's dimensions and action
   * bounds; later trained rigs must have the same bounds (the dimensions the host checks itself).
   */
  fit(spec: RigSpec): void {
    if (!this.trained.has(spec.name)) return;
    const { low, high } = spec.action;
    if (this.bounds) {
      if (low.length === this.bounds.low.length) {
        for (const [key, mine] of [
          ['low', this.bounds.low],
          ['high', this.bounds.high],
        ] as const) {
          const theirs = spec.action[key];
          const i = theirs.findIndex((v, k) => v !== mine[k]);
          if (i >= 0) {
            throw new ProtocolError(
              'SPEC_MISMATCH',
              `${theirs[i]}; the learner maps its actions onto the bounds of the first trained rig, ${key}[${i}] = ${mine[i]}`,
              `rig.action.${key}[${i}]`,
            );
          }
        }
      }
      return;
    }
    const i = low.findIndex((l, k) => !Number.isFinite(l) || !Number.isFinite(high[k]!) || !(high[k]! > l));
    if (i >= 0) {
      throw new ProtocolError(
        'SPEC_MISMATCH',
        `[${low[i]}, ${high[i]}]; the learner maps its actions onto finite bounds with low < high`,
        `rig.action.low[${i}]`,
      );
    }
    const obsDim = spec.proprio.names.length;
    if (obsDim < 1) {
      throw new ProtocolError(
        'SPEC_MISMATCH',
        'the learner needs at least one proprio value',
        'rig.proprio.names',
      );
    }
    const learner = new PpoLearner({
      obsDim,
      actDim: spec.action.dim,
      numEnvs: 1,
      seed: this.config.seed,
      config: { ...DEFAULT_RIG_PPO, ...this.config.ppo, numSteps: this.config.rolloutSteps },
      deferredRewards: true,
    });
    this.adopt(learner, { low: [...low], high: [...high] });
    this.hooks.onLearner?.(learner, spec);
  }

  act(obs: Float32Array, ctx?: RigStepContext): Float32Array {
    const learner = this.learner;
    if (!learner)
      throw new Error(`no learner yet: waiting for a trained rig (${this.config.rigs.join(', ')})`);
    if (ctx && this.trained.has(ctx.rig)) {
      const sample = learner.sampleOne(obs);
      this.collector!.sampled(ctx, sample, learner.updates);
      return this.toRig(sample.action);
    }
    return this.toRig(learner.predict(obs, 1));
  }

  /** [-1, 1] -> the rig's bounds (a new array; the host clips it into them). */
  private toRig(a: Float32Array): Float32Array {
    const { low, high } = this.bounds!;
    return Float32Array.from(a, (v, i) => low[i]! + ((v + 1) / 2) * (high[i]! - low[i]!));
  }

  onStep(e: RigStepEvent): void {
    if (this.trained.has(e.rig)) this.collector?.stepped(e);
  }

  onReward(e: RigRewardEvent): void {
    if (!this.trained.has(e.rig)) return;
    this.collector?.rewarded(e);
    this.hooks.onReward?.(e);
    this.wake?.();
  }

  onEpisodeEnd(rig: string, end: RigEpisodeEnd): void {
    if (!this.trained.has(rig)) return;
    const record: EpisodeRecord = { success: end.success, return: end.return, length: end.steps };
    this.counters.recent.push(record);
    if (this.counters.recent.length > RECENT) this.counters.recent.shift();
    this.episodesSinceUpdate++;
    this.hooks.onEpisodeEnd?.(rig, end, this.counters.step);
  }

  /**
   * Trains until `config.steps` transitions were used or `shouldStop` says so; rigs connect through the host
   * this trainer was given to (as policy and observer) whenever they like.
   */
  async run(hooks: RigTrainHooks = {}, waitReportMs = 10_000): Promise<RigTrainResult> {
    this.hooks = hooks;
    const t0 = performance.now();
    const B = this.config.rolloutSteps;
    const worker = new UpdateWorker();
    let stopped = false;
    try {
      while (this.counters.step < this.config.steps) {
        const tWait = performance.now();
        const ready = await this.waitForRollout(B, hooks, waitReportMs);
        if (!ready) {
          stopped = true;
          break;
        }
        const learner = this.learner!;
        // One update old is what an update in the background gives; older than that is dropped.
        const taken = this.collector!.take(B, (o, n) => learner.valuesOf(o, n), learner.updates - 1);
        if (!taken) continue;
        const waitS = (performance.now() - tWait) / 1000;
        const tUpdate = performance.now();
        const progress = Math.min(1, this.counters.step / this.config.steps);
        const next = await worker.update(learner.state(), taken.rows, taken.rewards, progress);
        // Observation statistics and action noise moved on while the update ran: keep those, take the rest.
        const now = learner.state();
        learner.loadState({ ...next.state, obsNorm: now.obsNorm, rng: now.rng });
        const updateS = (performance.now() - tUpdate) / 1000;
        this.counters.update++;
        this.counters.step += B;
        const metrics = this.metrics(taken.stats, next.stats, B, waitS, updateS);
        await hooks.onUpdate?.(metrics, learner);
        const last = this.counters.step >= this.config.steps;
        if (this.counters.update % this.config.checkpointEvery === 0 || last) {
          await hooks.onCheckpoint?.(learner, this.counters);
        }
        if (!last && hooks.shouldStop?.()) {
          stopped = true;
          if (this.counters.update % this.config.checkpointEvery !== 0)
            await hooks.onCheckpoint?.(learner, this.counters);
          break;
        }
      }
    } finally {
      this.wake = undefined;
      await worker.close();
    }
    return {
      learner: this.learner,
      counters: this.counters,
      stopped,
      wallSeconds: (performance.now() - t0) / 1000,
    };
  }

  private adopt(learner: PpoLearner, bounds: ActionBounds): void {
    if (
      learner.numEnvs !== 1 ||
      learner.config.numSteps !== this.config.rolloutSteps ||
      !learner.deferredRewards
    ) {
      throw new InvalidArgument(
        'learner',
        `a rig learner has 1 lane of ${this.config.rolloutSteps} steps and deferred rewards`,
      );
    }
    this.learner = learner;
    this.bounds = bounds;
    this.collector = new RigTransitionCollector(learner.obsDim, learner.actDim);
  }

  /** Resolves true once `batch` transitions are ready, false when asked to stop first. */
  private async waitForRollout(batch: number, hooks: RigTrainHooks, reportMs: number): Promise<boolean> {
    let lastReport = performance.now();
    for (;;) {
      if (this.collector && this.collector.counts().ready >= batch) return true;
      if (hooks.shouldStop?.()) return false;
      if (performance.now() - lastReport >= reportMs) {
        lastReport = performance.now();
        hooks.onWaiting?.({
          ...(this.collector?.counts() ?? { ready: 0, skipped: 0, stale: 0 }),
          needed: batch,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 250);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  private metrics(
    s: NonNullable<ReturnType<RigTransitionCollector['take']>>['stats'],
    u: PpoStats,
    batch: number,
    waitS: number,
    updateS: number,
  ): RigUpdateMetrics {
    const recent = this.counters.recent;
    const mean = (f: (e: EpisodeRecord) => number): number =>
      recent.length ? recent.reduce((a, e) => a + f(e), 0) / recent.length : NaN;
    const episodes = this.episodesSinceUpdate;
    this.episodesSinceUpdate = 0;
    return {
      update: this.counters.update,
      step: this.counters.step,
      episodes,
      success_rate: mean((e) => (e.success ? 1 : 0)),
      return_mean: mean((e) => e.return),
      episode_length_mean: mean((e) => e.length),
      reward: { shaped_mean: s.shapedMean, sparse_mean: s.sparseMean },
      phi: { ...s.phi, queried: batch, answered: s.answered, missing: batch - s.answered, late: 0 },
      losses: { policy: u.policyLoss, value: u.valueLoss, entropy: u.entropy },
      approx_kl: u.approxKl,
      clip_frac: u.clipFrac,
      explained_variance: u.explainedVariance,
      learning_rate: u.learningRate,
      timings: {
        rollout_s: waitS,
        reward_wait_s: 0,
        update_s: updateS,
        steps_per_s: batch / (waitS + updateS),
      },
      rigs: {
        per_rig: s.perRig,
        skipped: this.collector!.counts().skipped,
        stale: this.collector!.counts().stale,
        segments: s.segments,
      },
    };
  }
}
