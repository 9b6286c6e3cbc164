/**
 * The training loop of `pbridge train`: a vector env (same-step autoreset, so a rollout row never holds a fake
 * reset transition), the built-in PPO learner, and the reward service with progress shaping in between.
 *
 * Per update: collect `numSteps` vector steps while the model's answers come in asynchronously; then wait for the
 * outstanding answers (up to a deadline), fix the potentials, shape the rewards with the learner's gamma, and
 * update. Every `checkpointEvery` updates the learner is checkpointed and every env starts a fresh episode from a
 * seed derived from the run seed and the update number. Because those boundaries are part of the schedule of
 * every run, a run resumed from a checkpoint repeats exactly what the uninterrupted run did (episodes open at a
 * boundary end there, bootstrapped like a truncation).
 */
import { VectorEnv, type VectorStepResult } from '../vector/vector-env.ts';
import { resolveTask } from '../env/registry.ts';
import { PpoLearner, type PpoConfig, type PpoStats } from '../learn/ppo.ts';
import { openProgressModel, type OpenedModel } from '../reward/open-model.ts';
import { RewardService } from '../reward/service.ts';
import { checkShapingConfig } from '../reward/shaping.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { parseRewardChoice, type RewardChoice } from './reward-choice.ts';
import { RolloutRewards, type RolloutRewardStats } from './rollout-rewards.ts';
import {
  evaluatePolicy,
  learnerEvalPolicy,
  openEvalEnv,
  type EvalEnv,
  type EvalSummary,
} from './evaluate.ts';
import { cloneBehavior } from '../learn/behavior-cloning.ts';
import { collectExpertDemonstrations } from './demonstrations.ts';

export interface TrainConfig {
  /** Task registry name or path to a task module. */
  env: string;
  /** default | oracle | sparse | dense | naive | progress | path.onnx | http(s)://... (see reward-choice.ts). */
  reward: string;
  /** Progress model for the naive and progress ablations. */
  model: string;
  /** Total env steps (all envs together). */
  steps: number;
  seed: number;
  /** Envs stepped together. */
  numEnvs: number;
  /** Worker threads of the vector env. */
  workers: number;
  /** Scale k of the shaping term. */
  shapingScale: number;
  /** Query the progress model every this many control steps (hold Phi in between). */
  queryStride: number;
  /** Longest wait for outstanding model answers after a rollout, in ms (then they are imputed). */
  rewardDeadlineMs: number;
  /** Checkpoint (and start fresh episodes) every this many updates. */
  checkpointEvery: number;
  /** Learner hyperparameters (gamma here is also the shaping gamma). */
  ppo: Partial<PpoConfig>;
  /** Execution providers for ONNX progress models. */
  providers: string[];
  /** Evaluate the mean action every this many updates and after the last (0: never). */
  evalEvery: number;
  /** Episodes per evaluation; episode e starts from seed evalSeed + e, the same seeds every time. */
  evalEpisodes: number;
  /** First seed of the evaluation episodes (`pbridge eval --seed` with the same value replays them). */
  evalSeed: number;
  /** Scripted-expert episodes whose successful ones the actor is cloned from before PPO starts (0: no warm start). */
  demos: number;
  /** First seed of the demonstration episodes (away from the evaluation seeds, so evaluation is on unseen starts). */
  demoSeed: number;
  /** Passes of behaviour cloning over the demonstrations. */
  bcEpochs: number;
  /** Updates at the start that train only the critic, the actor held as cloned (0: none). */
  criticWarmup: number;
}

export const DEFAULT_TRAIN_PPO: Partial<PpoConfig> = {
  numSteps: 128,
  numMinibatches: 8,
  updateEpochs: 10,
  learningRate: 3e-4,
  gamma: 0.99,
};

/**
 * The starting exploration noise of a run with demonstrations unless `ppo.initLogStd` says otherwise: std 0.37.
 * At PPO's usual std 1 the noise swamps the cloned behaviour (pick-place: 60% success with the cloned mean
 * action, 4% with std-1 noise, and PPO from there stays under 6%; docs/training.md).
 */
export const DEMOS_INIT_LOG_STD = -1;

export function defaultTrainConfig(overrides: Partial<TrainConfig> = {}): TrainConfig {
  const config: TrainConfig = {
    env: 'push',
    reward: 'default',
    model: 'default',
    steps: 500_000,
    seed: 0,
    numEnvs: 16,
    workers: 2,
    shapingScale: 1,
    queryStride: 1,
    rewardDeadlineMs: 30_000,
    checkpointEvery: 10,
    ppo: { ...DEFAULT_TRAIN_PPO },
    providers: ['cpu'],
    evalEvery: 0,
    evalEpisodes: 50,
    evalSeed: 1_000_000,
    demos: 0,
    demoSeed: 2_000_000,
    bcEpochs: 200,
    criticWarmup: 0,
    ...overrides,
  };
  if (config.demos > 0 && config.ppo.initLogStd === undefined) {
    config.ppo = { ...config.ppo, initLogStd: DEMOS_INIT_LOG_STD };
  }
  return config;
}

/** One line of metrics.jsonl. */
export interface UpdateMetrics {
  update: number;
  step: number;
  /** Episodes that ended during this update's rollout. */
  episodes: number;
  /** Success rate and mean sparse return over the most recent 100 ended episodes. */
  success_rate: number;
  return_mean: number;
  episode_length_mean: number;
  reward: { shaped_mean: number; sparse_mean: number };
  phi: RolloutRewardStats['phi'] & { queried: number; answered: number; missing: number; late: number };
  losses: { policy: number; value: number; entropy: number };
  approx_kl: number;
  clip_frac: number;
  explained_variance: number;
  learning_rate: number;
  /** steps_per_s counts rollout, reward wait and update: an evaluation's time is in eval.seconds. */
  timings: { rollout_s: number; reward_wait_s: number; update_s: number; steps_per_s: number };
  /** On evaluation updates only. */
  eval?: EvalMetrics;
}

/** The learner's mean action on the fixed evaluation episodes. */
export interface EvalMetrics {
  episodes: number;
  success_rate: number;
  return_mean: number;
  episode_length_mean: number;
  /** Better than every evaluation before it in this run (success rate, then return): the policy worth keeping. */
  best: boolean;
  seconds: number;
}

export interface TrainHooks {
  onUpdate?(metrics: UpdateMetrics, learner: PpoLearner): void | Promise<void>;
  /** Called at each checkpoint boundary with the learner and the counters to store. */
  onCheckpoint?(learner: PpoLearner, counters: TrainCounters): Promise<void>;
  /** After every env was reset (start, checkpoint boundaries), for live viewers. `episodeOf(n)`: env n's episode id. */
  onReset?(venv: VectorEnv, episodeOf: (env: number) => number, images?: Record<string, Uint8Array>): void;
  /** After every vector step, for live viewers. */
  onStep?(
    venv: VectorEnv,
    res: VectorStepResult,
    totalSteps: number,
    episodeOf: (env: number) => number,
  ): void;
  /** Each progress-model answer as it arrives. */
  onAnswer?(env: number, episode: number, state: number, phi: number): void;
  /** Sub-envs whose body poses the vector env shares (`venv.poses(n)`); default 0. */
  poseEnvs?: number;
  /** Before the behaviour-cloning warm start of a fresh run with `demos` > 0 (it can take minutes). */
  beforeWarmStart?(episodes: number): void;
  /** After it. */
  onWarmStart?(warmStart: WarmStart): void;
  /** Checked between updates: true stops the run after the current update (e.g. on SIGINT). */
  shouldStop?(): boolean;
}

/** What a checkpoint stores besides the learner. */
export interface TrainCounters {
  update: number;
  step: number;
  recent: EpisodeRecord[];
  /** The best evaluation so far (absent before the first, and in checkpoints of runs without evaluation). */
  best?: BestEval;
  /** The behaviour-cloning warm start the run began with (absent without demonstrations). */
  warmStart?: WarmStart;
}

export interface BestEval {
  update: number;
  step: number;
  success_rate: number;
  return_mean: number;
}

export interface EpisodeRecord {
  success: boolean;
  return: number;
  length: number;
}

const RECENT = 100;

/** Throws InvalidArgument naming `field` unless v is an integer in [min, max]. */
export function checkIntField(field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgument(field, `must be an integer in [${min}, ${max}], got ${v}`);
  }
}

function checkConfig(c: TrainConfig): void {
  const int = checkIntField;
  int('steps', c.steps, 1, 1e10);
  int('seed', c.seed, 0, 2 ** 31 - 1);
  int('envs', c.numEnvs, 1, 1024);
  int('workers', c.workers, 1, Math.min(64, c.numEnvs));
  int('query-stride', c.queryStride, 1, 1000);
  int('checkpoint-every', c.checkpointEvery, 1, 1e6);
  int('eval-every', c.evalEvery, 0, 1e6);
  int('eval-episodes', c.evalEpisodes, 1, 100_000);
  int('eval-seed', c.evalSeed, 0, 2 ** 32 - 1 - c.evalEpisodes);
  int('demos', c.demos, 0, 100_000);
  int('demo-seed', c.demoSeed, 0, 2 ** 32 - 1 - c.demos);
  int('bc-epochs', c.bcEpochs, 1, 100_000);
  int('critic-warmup', c.criticWarmup, 0, 1e6);
  if (!(c.rewardDeadlineMs >= 0 && c.rewardDeadlineMs <= 600_000)) {
    throw new InvalidArgument('reward-deadline-ms', `must be in [0, 600000], got ${c.rewardDeadlineMs}`);
  }
}

/** A seed for the fresh episodes of checkpoint boundary `update` (a pure function of the run seed and it). */
export function boundarySeed(seed: number, update: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(update + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 1; // < 2^31, so seed + i stays a valid seed for every sub-env
}

/** What the behaviour-cloning warm start did (summary.json's `warm_start`). */
export interface WarmStart {
  /** Expert episodes run, and those that succeeded and were cloned. */
  episodes: number;
  successes: number;
  transitions: number;
  epochs: number;
  /** Mean squared error of the actor's mean action on the demonstrations: the first epoch's, and after the last. */
  loss_first_epoch: number;
  loss_final: number;
  /**
   * The cloned actor's mean action on the evaluation episodes, before any PPO update (with `evalEvery` > 0): what
   * behaviour cloning alone achieves, the baseline of what PPO adds. Not a candidate for policy-best.onnx.
   */
  eval?: { episodes: number; success_rate: number; return_mean: number };
  seconds: number;
}

export interface TrainResult {
  counters: TrainCounters;
  learner: PpoLearner;
  choice: RewardChoice;
  model: string | undefined;
  wallSeconds: number;
  stopped: boolean;
}

/**
 * Runs training. `resume` continues from saved learner state and counters. The caller owns the run directory
 * (hooks write metrics and checkpoints).
 */
export async function train(
  config: TrainConfig,
  hooks: TrainHooks = {},
  resume?: { learner: PpoLearner; counters: TrainCounters },
): Promise<TrainResult> {
  checkConfig(config);
  const choice = parseRewardChoice(config.reward, config.model);
  const task = await resolveTask(config.env);
  const opened: OpenedModel | undefined = choice.model
    ? await openProgressModel(choice.model, { onnx: { executionProviders: config.providers } })
    : undefined;
  const cameras = opened?.cameras ?? [];
  const venv = await VectorEnv.create({
    task: config.env,
    numEnvs: config.numEnvs,
    workers: config.workers,
    autoreset: 'same-step',
    envOptions: cameras.length > 0 ? { images: { cameras, size: opened!.size } } : {},
    poseEnvs: hooks.poseEnvs ?? 0,
    // Frames are rendered only for the states the model is asked about.
    imageEvery: config.queryStride,
  });
  const service = opened
    ? new RewardService(opened.model, { maxBatch: 64, maxWaitMs: 2, maxInFlight: 2 })
    : undefined;
  const t0 = performance.now();
  let evalEnv: EvalEnv | undefined;
  try {
    const learner =
      resume?.learner ??
      new PpoLearner({
        obsDim: venv.obsDim,
        actDim: venv.actDim,
        numEnvs: config.numEnvs,
        seed: config.seed,
        config: { ...DEFAULT_TRAIN_PPO, ...config.ppo },
        deferredRewards: true,
      });
    /** The mean action on the fixed evaluation episodes; its own env in this thread, no draws from the learner. */
    const evaluateLearner = async (): Promise<EvalSummary> => {
      evalEnv ??= await openEvalEnv(config.env);
      return evaluatePolicy(learnerEvalPolicy(learner), evalEnv, config.evalEpisodes, config.evalSeed);
    };
    let warmStart: WarmStart | undefined;
    if (!resume && config.demos > 0) {
      hooks.beforeWarmStart?.(config.demos);
      warmStart = await cloneExpert(config, learner);
      if (config.evalEvery > 0) {
        const e = await evaluateLearner();
        warmStart.eval = { episodes: e.episodes, success_rate: e.success_rate, return_mean: e.mean_return };
      }
      hooks.onWarmStart?.(warmStart);
    }
    const ppo = learner.config;
    const shaping = checkShapingConfig({ mode: choice.mode, gamma: ppo.gamma, scale: config.shapingScale });
    const rewardsOf = new RolloutRewards({
      numEnvs: config.numEnvs,
      numSteps: ppo.numSteps,
      shaping,
      service,
      instruction: task.instruction,
      cameras,
      imageSize: opened?.size ?? 0,
      stride: config.queryStride,
      ...(hooks.onAnswer ? { onAnswer: hooks.onAnswer } : {}),
    });
    const episodeOf = (n: number): number => rewardsOf.episodeOf(n);
    const perUpdate = ppo.numSteps * config.numEnvs;
    const totalUpdates = Math.max(1, Math.ceil(config.steps / perUpdate));
    const counters: TrainCounters = resume?.counters ?? {
      update: 0,
      step: 0,
      recent: [],
      ...(warmStart ? { warmStart } : {}),
    };
    const N = config.numEnvs;
    const A = venv.actDim;
    const D = venv.obsDim;
    const actions = new Float32Array(N * A);
    const finalObs = new Float32Array(N * D);
    const epReturn = new Float64Array(N);
    const rewardsRow = new Float64Array(N);
    let obs: Float32Array = new Float32Array(0);
    let stopped = false;

    while (counters.update < totalUpdates) {
      if (counters.update % config.checkpointEvery === 0 || obs.length === 0) {
        // A resume between boundaries (after a stop request) also starts fresh episodes here.
        const r = await venv.reset({ seed: boundarySeed(config.seed, counters.update) });
        obs = r.obs;
        epReturn.fill(0);
        rewardsOf.start({ ...(r.images ? { images: r.images } : {}), progress: r.info.progress });
        hooks.onReset?.(venv, episodeOf, r.images);
      }
      const tRollout = performance.now();
      let ended = 0;
      for (let t = 0; t < ppo.numSteps; t++) {
        const act = learner.act(obs);
        // The learner keeps the unclipped sample for its log-probabilities; the env gets it clipped to its box.
        for (let i = 0; i < actions.length; i++) {
          const a = act.actions[i]!;
          actions[i] = a < -1 ? -1 : a > 1 ? 1 : a;
        }
        const res = await venv.step(actions);
        for (let n = 0; n < N; n++)
          rewardsRow[n] = res.rewards[n]! + (choice.dense ? res.info.dense_reward[n]! : 0);
        rewardsOf.step({
          rewards: rewardsRow,
          terminated: res.terminated,
          truncated: res.truncated,
          episodeStep: res.info.episode_step,
          ...(res.images ? { images: res.images } : {}),
          progress: res.info.progress,
        });
        const final = res.info.final_obs;
        if (final) finalObs.set(final);
        learner.observe({ terminated: res.terminated, truncated: res.truncated, finalObs });
        for (let n = 0; n < N; n++) {
          epReturn[n]! += res.rewards[n]!;
          if (res.terminated[n] || res.truncated[n]) {
            counters.recent.push({
              success: res.info.final_info!.is_success[n] === 1,
              return: epReturn[n]!,
              length: res.info.final_info!.episode_step[n]!,
            });
            if (counters.recent.length > RECENT) counters.recent.shift();
            epReturn[n] = 0;
            ended++;
          }
        }
        hooks.onStep?.(venv, res, counters.step + (t + 1) * N, episodeOf);
        obs = res.obs;
      }
      const rolloutS = (performance.now() - tRollout) / 1000;
      const { rewards, stats } = await rewardsOf.finish(config.rewardDeadlineMs);
      learner.setRolloutRewards(rewards);
      const tUpdate = performance.now();
      // The critic warm-up's steps must not spend the actor's Adam bias correction: PPO proper starts fresh.
      if (config.criticWarmup > 0 && counters.update === config.criticWarmup) learner.optimizer.reset();
      const u: PpoStats = learner.update(obs, counters.update / totalUpdates, {
        trainPolicy: counters.update >= config.criticWarmup,
      });
      const updateS = (performance.now() - tUpdate) / 1000;
      counters.update++;
      counters.step += perUpdate;
      let evaluation: EvalMetrics | undefined;
      if (
        config.evalEvery > 0 &&
        (counters.update % config.evalEvery === 0 || counters.update === totalUpdates)
      ) {
        const tEval = performance.now();
        // No draws from the learner's stream, so training runs as it would without.
        const e = await evaluateLearner();
        const best = counters.best;
        const better =
          !best ||
          e.success_rate > best.success_rate ||
          (e.success_rate === best.success_rate && e.mean_return > best.return_mean);
        if (better) {
          counters.best = {
            update: counters.update,
            step: counters.step,
            success_rate: e.success_rate,
            return_mean: e.mean_return,
          };
        }
        evaluation = {
          episodes: e.episodes,
          success_rate: e.success_rate,
          return_mean: e.mean_return,
          episode_length_mean: e.mean_episode_length,
          best: better,
          seconds: (performance.now() - tEval) / 1000,
        };
      }
      const recent = counters.recent;
      const mean = (f: (e: EpisodeRecord) => number): number =>
        recent.length ? recent.reduce((a, e) => a + f(e), 0) / recent.length : NaN;
      const metrics: UpdateMetrics = {
        update: counters.update,
        step: counters.step,
        episodes: ended,
        success_rate: mean((e) => (e.success ? 1 : 0)),
        return_mean: mean((e) => e.return),
        episode_length_mean: mean((e) => e.length),
        reward: { shaped_mean: stats.shapedMean, sparse_mean: stats.sparseMean },
        phi: {
          ...stats.phi,
          queried: stats.queried,
          answered: stats.answered,
          missing: stats.missing,
          late: stats.late,
        },
        losses: { policy: u.policyLoss, value: u.valueLoss, entropy: u.entropy },
        approx_kl: u.approxKl,
        clip_frac: u.clipFrac,
        explained_variance: u.explainedVariance,
        learning_rate: u.learningRate,
        timings: {
          rollout_s: rolloutS,
          reward_wait_s: stats.waitMs / 1000,
          update_s: updateS,
          steps_per_s: perUpdate / (rolloutS + stats.waitMs / 1000 + updateS),
        },
        ...(evaluation ? { eval: evaluation } : {}),
      };
      await hooks.onUpdate?.(metrics, learner);
      if (counters.update % config.checkpointEvery === 0 || counters.update === totalUpdates) {
        await hooks.onCheckpoint?.(learner, counters);
      }
      if (hooks.shouldStop?.()) {
        stopped = counters.update < totalUpdates;
        if (stopped && counters.update % config.checkpointEvery !== 0) {
          // Stopping between boundaries: the checkpoint below resumes at the next boundary's schedule.
          await hooks.onCheckpoint?.(learner, counters);
        }
        break;
      }
    }
    return {
      counters,
      learner,
      choice,
      model: opened?.model.id,
      wallSeconds: (performance.now() - t0) / 1000,
      stopped,
    };
  } finally {
    evalEnv?.close();
    await venv.close();
    await service?.close();
    await opened?.model.close?.();
  }
}

/** The behaviour-cloning warm start: expert demonstrations, cloned into the learner's actor. */
async function cloneExpert(config: TrainConfig, learner: PpoLearner): Promise<WarmStart> {
  const t0 = performance.now();
  const demos = await collectExpertDemonstrations(config.env, config.demos, config.demoSeed);
  const bc = cloneBehavior(learner, demos, { epochs: config.bcEpochs, seed: config.seed });
  return {
    episodes: demos.episodes,
    successes: demos.successes,
    transitions: demos.count,
    epochs: config.bcEpochs,
    loss_first_epoch: bc.epochLoss[0]!,
    loss_final: bc.finalLoss,
    seconds: (performance.now() - t0) / 1000,
  };
}
