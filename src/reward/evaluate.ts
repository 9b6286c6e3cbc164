/**
 * Judging a progress model on held-out episodes of one task, the way the literature does:
 *  - value-order correlation (VOC): Spearman correlation between the model's progress and time along successful
 *    expert demos (up to the step success first holds);
 *  - success accuracy: the success rule (`SuccessDetector`) run on the model's answers over each episode of a
 *    mix of expert demos and perturbed-expert episodes (mostly failures), against the simulator's success test;
 *  - exploration: on random-policy episodes (the states a learner visits early, where shaping has to help), the
 *    Spearman correlation of the model's progress with the task's stage progress over all states, and how often
 *    the model moves in the same direction as the task's progress from one state to the next. Shaping rewards
 *    are those step-to-step differences, so VOC on demos alone says little about them. The same figures on
 *    noisy-expert episodes (mid-training play) and, given a trained policy, on its own episodes: the states a
 *    learner shaped by this model reaches, where a model that errs in the learner's favour is exploited.
 * Episodes are recorded with a few steps of holding still after success, so "several steps above the threshold"
 * is something a successful episode can show.
 */
import type { ManipulationEnv } from '../env/env.ts';
import { recordEpisode, type DemoActor, type DemoPolicy, type RecordedEpisode } from '../data/demos.ts';
import type { ProgressImage, ProgressRequest, ProgressResponse } from './model.ts';
import { spearman } from './metrics.ts';
import type { OpenedModel } from './open-model.ts';
import { RewardService } from './service.ts';
import { DEFAULT_SUCCESS_RULE, SuccessDetector, type SuccessRule } from './success.ts';

export interface RewardEvalOptions {
  /** Expert demos, and as many perturbed episodes. */
  episodes: number;
  /** Episode e of the experts uses seed + e; perturbed ones seed + episodes + e. Keep away from training seeds. */
  seed: number;
  rule?: SuccessRule;
  /** Steps recorded after success (holding still). Default: the rule's `consecutive` + 2. */
  hold?: number;
  /**
   * Random-policy episodes for the exploration figures, and as many noisy-expert episodes for the mid-training
   * ones (default: `episodes`; 0 leaves both out).
   */
  exploration?: number;
  /** A trained policy's episodes (seeds after the noisy ones), for the `on_policy` figures. */
  policy?: { actor: DemoActor; episodes: number };
  /** Called after each recorded episode. */
  onEpisode?: (done: number, total: number) => void;
}

export interface EpisodeEval {
  seed: number;
  policy: DemoPolicy;
  steps: number;
  success: boolean;
  detected: boolean;
  /** VOC of this episode (successful expert demos only). */
  voc: number | null;
  missing: number;
}

/** How well a model's progress tracks the task's stage progress on states off the expert's path. */
export interface ShapingFigures {
  episodes: number;
  states: number;
  /** Spearman correlation of model progress with the task's stage progress, over all states pooled. */
  state_correlation: number;
  /** Of the steps where the task's progress changed (by more than 1e-3), the share where the model moved the same way. */
  step_agreement: number;
  steps_compared: number;
  /**
   * Mean of model minus stage progress over the states: above 0, the model scores them higher than they are,
   * which is what a learner shaped by it can exploit.
   */
  mean_error: number;
}

export interface RewardEvalReport {
  env: string;
  instruction: string;
  model: string;
  cameras: string[];
  image_size: number;
  episodes: { expert: number; perturbed: number; random: number; noisy: number; policy: number };
  voc: { mean: number; min: number; demos: number };
  success: {
    accuracy: number;
    /** Successful episodes detected as such. */
    true_positive_rate: number;
    /** Failed episodes not detected as successful. */
    true_negative_rate: number;
    positives: number;
    negatives: number;
    rule: SuccessRule;
  };
  /** Random-policy episodes: what shaping sees early in training (null when none were run). */
  exploration: ShapingFigures | null;
  /** Noisy-expert episodes: the half-competent play of mid-training (null when none were run). */
  mid_training: ShapingFigures | null;
  /** The given trained policy's episodes (null when no policy was given). */
  on_policy: ShapingFigures | null;
  /** One request at a time, nothing queued: what a single query costs. */
  latency_ms: { p50: number; p95: number };
  /** Camera images scored per second with the service batching a backlog. */
  images_per_s: number;
  /** Answers per second, same conditions (the oracle scores states, not images). */
  answers_per_s: number;
  frames: number;
  answers: Record<ProgressResponse['status'], number>;
  per_episode: EpisodeEval[];
}

function viewsAt(
  ep: RecordedEpisode,
  t: number,
  cameras: readonly string[],
  size: number,
): Record<string, ProgressImage> {
  const frameBytes = cameras.length * size * size * 3;
  const views: Record<string, ProgressImage> = {};
  cameras.forEach((c, i) => {
    const start = t * frameBytes + i * size * size * 3;
    views[c] = { width: size, height: size, rgb: ep.frames.subarray(start, start + size * size * 3) };
  });
  return views;
}

function requestsOf(
  ep: RecordedEpisode,
  envId: number,
  instruction: string,
  cameras: readonly string[],
  size: number,
): ProgressRequest[] {
  const start = viewsAt(ep, 0, cameras, size);
  return ep.oracle.map((oracle, t) => ({
    instruction,
    views: viewsAt(ep, t, cameras, size),
    anchors: { start },
    envId,
    episodeId: ep.seed,
    step: t,
    privileged: { progress: oracle },
  }));
}

/** `env` must not terminate on success (see `holdEnvTask`), so the hold can be recorded. */
export async function evaluateRewardModel(
  env: ManipulationEnv,
  opened: OpenedModel,
  options: RewardEvalOptions,
): Promise<RewardEvalReport> {
  const rule = options.rule ?? DEFAULT_SUCCESS_RULE;
  const hold = options.hold ?? rule.consecutive + 2;
  const { cameras, size, model } = opened;
  const instruction = env.task.instruction;
  const plan: { policy: DemoPolicy; seed: number }[] = [];
  for (let e = 0; e < options.episodes; e++) plan.push({ policy: 'expert', seed: options.seed + e });
  for (let e = 0; e < options.episodes; e++)
    plan.push({ policy: 'perturbed', seed: options.seed + options.episodes + e });
  const exploration = options.exploration ?? options.episodes;
  for (let e = 0; e < exploration; e++)
    plan.push({ policy: 'random', seed: options.seed + 2 * options.episodes + e });
  for (let e = 0; e < exploration; e++)
    plan.push({ policy: 'noisy', seed: options.seed + 2 * options.episodes + exploration + e });
  const policyEpisodes = options.policy?.episodes ?? 0;
  for (let e = 0; e < policyEpisodes; e++)
    plan.push({ policy: 'policy', seed: options.seed + 2 * options.episodes + 2 * exploration + e });

  // Record everything first, so the throughput figure is the model's and not the simulator's.
  const episodes: RecordedEpisode[] = [];
  for (const [i, p] of plan.entries()) {
    episodes.push(
      await recordEpisode(env, p.policy, p.seed, {
        cameras,
        size,
        hold,
        ...(options.policy ? { actor: options.policy.actor } : {}),
      }),
    );
    options.onEpisode?.(i + 1, plan.length);
  }

  const service = new RewardService(model, { maxWaitMs: 1, timeoutMs: 120_000 });
  try {
    // Unloaded latency: a few single requests, each awaited before the next.
    const probe = requestsOf(episodes[0]!, -1, instruction, cameras, size).slice(0, 12);
    const single: number[] = [];
    for (const req of probe) single.push((await service.submit(req)).latencyMs);

    const t0 = performance.now();
    const answers = await Promise.all(
      episodes.map((ep, i) =>
        Promise.all(requestsOf(ep, i, instruction, cameras, size).map((r) => service.submit(r))),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    const frames = answers.reduce((a, x) => a + x.length, 0);

    const status: Record<ProgressResponse['status'], number> = {
      ok: 0,
      parse_error: 0,
      timeout: 0,
      error: 0,
    };
    const perEpisode: EpisodeEval[] = episodes.map((ep, i) => {
      const ans = answers[i]!;
      for (const a of ans) status[a.status]++;
      const detector = new SuccessDetector(rule);
      for (const a of ans) detector.update(a);
      let voc: number | null = null;
      if (ep.policy === 'expert' && ep.successStep !== null) {
        const upto = ans.slice(0, ep.successStep + 1);
        // A missing answer has no place in an order: VOC is computed over the answered frames.
        const pairs = upto.map((a, t) => [a.progress, t] as const).filter(([p]) => Number.isFinite(p));
        const v = spearman(
          pairs.map((p) => p[0]),
          pairs.map((p) => p[1]),
        );
        voc = Number.isFinite(v) ? v : 0;
      }
      return {
        seed: ep.seed,
        policy: ep.policy,
        steps: ep.steps,
        success: ep.success,
        detected: detector.detected,
        voc,
        missing: ans.filter((a) => a.status !== 'ok').length,
      };
    });
    const vocs = perEpisode.flatMap((e) => (e.voc === null ? [] : [e.voc]));
    // Success accuracy is judged on the expert and perturbed episodes, as before the exploration set existed.
    const judged = perEpisode.filter((e) => e.policy === 'expert' || e.policy === 'perturbed');
    const pos = judged.filter((e) => e.success);
    const neg = judged.filter((e) => !e.success);
    const correct = judged.filter((e) => e.success === e.detected).length;
    const sorted = [...single].sort((a, b) => a - b);
    const pct = (q: number): number =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    return {
      env: env.task.name,
      instruction,
      model: model.id,
      cameras: [...cameras],
      image_size: size,
      episodes: {
        expert: options.episodes,
        perturbed: options.episodes,
        random: exploration,
        noisy: exploration,
        policy: policyEpisodes,
      },
      voc: {
        mean: vocs.length ? vocs.reduce((a, b) => a + b, 0) / vocs.length : NaN,
        min: vocs.length ? Math.min(...vocs) : NaN,
        demos: vocs.length,
      },
      success: {
        accuracy: correct / judged.length,
        true_positive_rate: pos.length ? pos.filter((e) => e.detected).length / pos.length : NaN,
        true_negative_rate: neg.length ? neg.filter((e) => !e.detected).length / neg.length : NaN,
        positives: pos.length,
        negatives: neg.length,
        rule,
      },
      exploration: exploration > 0 ? shapingFigures(episodes, answers, 'random') : null,
      mid_training: exploration > 0 ? shapingFigures(episodes, answers, 'noisy') : null,
      on_policy: policyEpisodes > 0 ? shapingFigures(episodes, answers, 'policy') : null,
      latency_ms: { p50: pct(0.5), p95: pct(0.95) },
      images_per_s: (frames * cameras.length) / seconds,
      answers_per_s: frames / seconds,
      frames,
      answers: status,
      per_episode: perEpisode,
    };
  } finally {
    await service.close();
  }
}

function shapingFigures(
  episodes: RecordedEpisode[],
  answers: ProgressResponse[][],
  policy: DemoPolicy,
): ShapingFigures {
  const model: number[] = [];
  const oracle: number[] = [];
  let agree = 0;
  let compared = 0;
  let count = 0;
  episodes.forEach((ep, i) => {
    if (ep.policy !== policy) return;
    count++;
    const ans = answers[i]!;
    ep.oracle.forEach((o, t) => {
      const p = ans[t]!.progress;
      if (Number.isFinite(p)) {
        model.push(p);
        oracle.push(o);
      }
      if (t === 0) return;
      const dOracle = o - ep.oracle[t - 1]!;
      const dModel = p - ans[t - 1]!.progress;
      if (Math.abs(dOracle) > 1e-3 && Number.isFinite(dModel)) {
        compared++;
        if (Math.sign(dModel) === Math.sign(dOracle)) agree++;
      }
    });
  });
  return {
    episodes: count,
    states: model.length,
    state_correlation: spearman(model, oracle),
    step_agreement: compared ? agree / compared : NaN,
    steps_compared: compared,
    mean_error: model.reduce((a, p, k) => a + p - oracle[k]!, 0) / model.length,
  };
}
