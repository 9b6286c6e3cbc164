/** `pbridge reward-eval`: how good a progress model is on one task (VOC, success accuracy, latency, images/s). */
import { parseArgs } from 'node:util';
import { makeEnv } from '../env/make.ts';
import { DEFAULT_TASK, resolveTask } from '../env/registry.ts';
import { holdEnvTask } from '../data/demos.ts';
import { openPolicyActor, type OpenedActor } from '../data/policy-actor.ts';
import { evaluateRewardModel, type RewardEvalReport } from '../reward/evaluate.ts';
import { openProgressModel } from '../reward/open-model.ts';
import { DEFAULT_SUCCESS_RULE, checkSuccessRule } from '../reward/success.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { intOption, optionalNumberOption } from './options.ts';
import { Progress } from './progress.ts';

export const REWARD_EVAL_USAGE = `  reward-eval --env NAME|PATH --model default|oracle|PATH.onnx|http://... [--episodes 20] [--seed 1000000]
              [--threshold 0.95] [--consecutive 3] [--exploration N] [--providers cpu] [--json]
              [--policy FILE.onnx [--policy-episodes N] [--action-noise STD]]
                                                  judge a progress model on held-out episodes: value-order
                                                  correlation, success accuracy, agreement with the task's
                                                  progress on random-policy and noisy-expert states
                                                  (--exploration N episodes of each) and on a trained
                                                  policy's states (--policy), latency, images/s
`;

/** Demos for training use seeds from 0; evaluation starts far above them. */
export const EVAL_SEED = 1_000_000;

function fraction(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!(v > 0 && v <= 1)) throw new InvalidArgument(`--${name}`, `must be a number in (0, 1], got "${raw}"`);
  return v;
}

export async function cmdRewardEval(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string', default: DEFAULT_TASK },
      model: { type: 'string', default: 'default' },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      threshold: { type: 'string' },
      consecutive: { type: 'string' },
      exploration: { type: 'string' },
      providers: { type: 'string' },
      policy: { type: 'string' },
      'policy-episodes': { type: 'string' },
      'action-noise': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const episodes = intOption('episodes', values.episodes, 20, 1, 10_000);
  const seed = intOption('seed', values.seed, EVAL_SEED, 0, 2 ** 31);
  const rule = checkSuccessRule({
    ...DEFAULT_SUCCESS_RULE,
    threshold: fraction('threshold', values.threshold, DEFAULT_SUCCESS_RULE.threshold),
    consecutive: intOption('consecutive', values.consecutive, DEFAULT_SUCCESS_RULE.consecutive, 1, 1000),
  });
  for (const flag of ['policy-episodes', 'action-noise'] as const) {
    if (values[flag] !== undefined && values.policy === undefined) {
      throw new InvalidArgument(`--${flag}`, 'only applies with --policy');
    }
  }
  const opened = await openProgressModel(values.model, {
    onnx: {
      ...(values.providers ? { executionProviders: values.providers.split(',') } : {}),
      intraOpThreads: 0,
    },
  });
  const env = await makeEnv(holdEnvTask(await resolveTask(values.env)));
  let actor: OpenedActor | undefined;
  try {
    const exploration = intOption('exploration', values.exploration, episodes, 0, 10_000);
    const policyEpisodes =
      values.policy === undefined
        ? 0
        : intOption('policy-episodes', values['policy-episodes'], episodes, 1, 10_000);
    if (values.policy !== undefined)
      actor = await openPolicyActor(
        values.policy,
        env,
        optionalNumberOption('action-noise', values['action-noise'], 0, 10),
      );
    const progress = new Progress(
      2 * episodes + 2 * exploration + policyEpisodes,
      `reward-eval ${env.task.name}`,
      !values.json,
    );
    const report = await evaluateRewardModel(env, opened, {
      episodes,
      seed,
      rule,
      exploration,
      ...(actor ? { policy: { actor: actor.actor, episodes: policyEpisodes } } : {}),
      onEpisode: (done) => progress.update(done, 'episodes recorded'),
    });
    progress.finish();
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
  } finally {
    await actor?.close();
    env.close();
    await opened.model.close?.();
  }
}

function printReport(r: RewardEvalReport): void {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  console.log(`${r.env} with ${r.model}`);
  console.log(`  instruction:      ${r.instruction}`);
  console.log(
    `  views:            ${r.cameras.length ? `${r.cameras.join(', ')} at ${r.image_size}x${r.image_size}` : 'none (privileged state)'}`,
  );
  console.log(
    `  VOC:              ${r.voc.mean.toFixed(3)} mean, ${r.voc.min.toFixed(3)} worst, over ${r.voc.demos} expert demos`,
  );
  console.log(
    `  success accuracy: ${pct(r.success.accuracy)} (${r.success.positives} successful: ${pct(r.success.true_positive_rate)} detected; ` +
      `${r.success.negatives} failed: ${pct(r.success.true_negative_rate)} rejected; rule: ${r.success.rule.consecutive} answers >= ${r.success.rule.threshold})`,
  );
  for (const [label, x, what] of [
    ['exploration:     ', r.exploration, 'random-policy'],
    ['mid-training:    ', r.mid_training, 'noisy-expert'],
    ['on-policy:       ', r.on_policy, 'trained-policy'],
  ] as const) {
    if (!x) continue;
    console.log(
      `  ${label} state correlation ${x.state_correlation.toFixed(3)}, step agreement ${pct(x.step_agreement)}, ` +
        `mean error ${x.mean_error >= 0 ? '+' : ''}${x.mean_error.toFixed(3)} ` +
        `(${x.states} states of ${x.episodes} ${what} episodes; 50% is chance)`,
    );
  }
  console.log(
    `  latency:          p50 ${r.latency_ms.p50.toFixed(1)} ms, p95 ${r.latency_ms.p95.toFixed(1)} ms (one request at a time)`,
  );
  console.log(
    `  throughput:       ${r.answers_per_s.toFixed(0)} answers/s (${r.images_per_s.toFixed(0)} images/s) batched, ${r.frames} frames`,
  );
  const bad = r.frames - r.answers.ok;
  if (bad > 0) console.log(`  missing answers:  ${bad} (${JSON.stringify(r.answers)})`);
}
