/**
 * `pbridge demos`: episodes with camera frames and progress labels, in the layout `models/train_default.py`
 * reads (documented in docs/reward.md):
 *   DIR/meta.json         format, env, instruction, cameras, size, episode count
 *   DIR/episodes.jsonl    one line per episode: seed, policy, outcome, per-frame labels
 *   DIR/episode-NNNNN.npy frames, uint8 [T + 1, cameras, size, size, 3]
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeEnv } from '../env/make.ts';
import { DEFAULT_TASK, resolveTask } from '../env/registry.ts';
import { encodeNpy } from '../data/npy.ts';
import { DEMO_POLICIES, holdEnvTask, recordEpisode, type DemoActor, type DemoPolicy } from '../data/demos.ts';
import { openPolicyActor, type OpenedActor } from '../data/policy-actor.ts';
import { MAX_IMAGE_SIZE, MIN_IMAGE_SIZE } from '../render/renderer.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { namesOf } from '../sim/mujoco.ts';
import { intOption, optionalNumberOption } from './options.ts';
import { Progress } from './progress.ts';

export const DEMOS_USAGE = `  demos --env NAME|PATH --out DIR [--episodes 50] [--seed 0] [--hold 5] [--cameras front,side,wrist]
        [--size 64] [--json] [--perturbed 0.0 | --random | --noisy | --policy FILE.onnx [--action-noise STD]]
                                                  expert demos with frames and progress labels (for training
                                                  progress models); --perturbed: share of knocked-off episodes;
                                                  --random: uniformly random actions throughout;
                                                  --noisy: the expert with Gaussian action noise throughout
                                                  (standard deviation drawn per episode in 0.15-1.2);
                                                  --policy: a trained ONNX policy's mean action plus noise
                                                  of --action-noise (default: the file's action_std)
                                                  --hold: steps recorded holding still after success
`;

export const DEMOS_FORMAT = 'progress-bridge.demos.v1';
export const DEFAULT_DEMO_CAMERAS = ['front', 'side', 'wrist'] as const;

export interface DemosSummary {
  env: string;
  out: string;
  episodes: number;
  frames: number;
  expert_success_rate: number | null;
  perturbed_success_rate: number | null;
  random_success_rate: number | null;
  noisy_success_rate: number | null;
  policy_success_rate: number | null;
  seconds: number;
}

export async function cmdDemos(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string', default: DEFAULT_TASK },
      out: { type: 'string' },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      perturbed: { type: 'string' },
      random: { type: 'boolean', default: false },
      noisy: { type: 'boolean', default: false },
      policy: { type: 'string' },
      'action-noise': { type: 'string' },
      hold: { type: 'string' },
      cameras: { type: 'string' },
      size: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.out) throw new InvalidArgument('--out', 'is required: the directory to write demos into');
  const episodes = intOption('episodes', values.episodes, 50, 1, 100_000);
  const seed = intOption('seed', values.seed, 0, 0, 2 ** 31);
  const size = intOption('size', values.size, 64, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE);
  const hold = intOption('hold', values.hold, 5, 0, 1000);
  const perturbed = values.perturbed === undefined ? 0 : Number(values.perturbed);
  if (!(perturbed >= 0 && perturbed <= 1)) {
    throw new InvalidArgument('--perturbed', `must be a fraction in [0, 1], got "${values.perturbed}"`);
  }
  const exclusive = [
    values.perturbed !== undefined && '--perturbed',
    values.random && '--random',
    values.noisy && '--noisy',
    values.policy !== undefined && '--policy',
  ];
  const chosen = exclusive.filter((v): v is string => typeof v === 'string');
  if (chosen.length > 1) {
    throw new InvalidArgument(chosen[1]!, `cannot be combined with ${chosen[0]}: pick one kind of episode`);
  }
  if (values['action-noise'] !== undefined && values.policy === undefined) {
    throw new InvalidArgument('--action-noise', 'only applies to --policy episodes');
  }
  const task = await resolveTask(values.env);
  const env = await makeEnv(hold > 0 ? holdEnvTask(task) : task);
  let opened: OpenedActor | undefined;
  try {
    const valid = namesOf(env.mj, env.model, 'camera');
    const cameras = values.cameras ? values.cameras.split(',') : [...DEFAULT_DEMO_CAMERAS];
    for (const c of cameras) {
      if (!valid.includes(c)) {
        throw new InvalidArgument('--cameras', `unknown camera "${c}"; this env has ${valid.join(', ')}`);
      }
    }
    if (values.policy !== undefined) {
      opened = await openPolicyActor(
        values.policy,
        env,
        optionalNumberOption('action-noise', values['action-noise'], 0, 10),
      );
    }
    const actor = opened?.actor;
    const only = values.random ? 'random' : values.noisy ? 'noisy' : actor ? 'policy' : undefined;
    const summary = await writeDemos(
      env,
      values.out,
      {
        episodes,
        seed,
        perturbed,
        ...(only ? { only } : {}),
        ...(actor ? { actor, policyFile: values.policy } : {}),
        cameras,
        size,
        hold,
      },
      !values.json,
    );
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else {
      const rates = DEMO_POLICIES.map((k) => [k, summary[`${k}_success_rate`]] as const)
        .filter(([, r]) => r !== null)
        .map(([k, r]) => `${k} success ${(100 * r!).toFixed(0)}%`);
      console.log(
        `${summary.env}: ${summary.episodes} episodes, ${summary.frames} frames -> ${summary.out} ` +
          `(${[...rates, `${summary.seconds.toFixed(1)} s`].join(', ')})`,
      );
    }
  } finally {
    await opened?.close();
    env.close();
  }
}

export interface WriteDemosOptions {
  episodes: number;
  seed: number;
  /** Share of episodes from the perturbed expert; they are spread evenly through the sequence. */
  perturbed: number;
  /** Every episode from this policy instead of the expert/perturbed mix. */
  only?: 'random' | 'noisy' | 'policy';
  /** Acts in `policy` episodes. */
  actor?: DemoActor;
  /** Recorded in meta.json for `policy` episodes. */
  policyFile?: string;
  cameras: string[];
  size: number;
  /** Steps recorded after the first success, holding still. */
  hold: number;
}

/** Records `episodes` episodes (episode e from seed + e) into `out`. */
export async function writeDemos(
  env: Awaited<ReturnType<typeof makeEnv>>,
  out: string,
  options: WriteDemosOptions,
  showProgress = false,
): Promise<DemosSummary> {
  const t0 = performance.now();
  mkdirSync(out, { recursive: true });
  const { episodes, seed, perturbed, cameras, size, hold } = options;
  const meta = {
    format: DEMOS_FORMAT,
    env: env.task.name,
    instruction: env.task.instruction,
    cameras,
    size,
    hold,
    episode_steps: env.episodeSteps,
    ...(options.policyFile !== undefined ? { policy_file: options.policyFile } : {}),
    episodes: 0,
  };
  const index = join(out, 'episodes.jsonl');
  writeFileSync(index, '');
  const progress = new Progress(episodes, `demos ${env.task.name}`, showProgress);
  let frames = 0;
  const outcome = { expert: [0, 0], perturbed: [0, 0], random: [0, 0], noisy: [0, 0], policy: [0, 0] };
  for (let e = 0; e < episodes; e++) {
    // Bresenham spreading: the e-th episode is perturbed when the running share falls behind `perturbed`.
    const policy: DemoPolicy =
      options.only ?? (Math.floor((e + 1) * perturbed) > Math.floor(e * perturbed) ? 'perturbed' : 'expert');
    const ep = await recordEpisode(env, policy, seed + e, {
      cameras,
      size,
      hold,
      ...(options.actor ? { actor: options.actor } : {}),
    });
    const file = `episode-${String(e).padStart(5, '0')}.npy`;
    writeFileSync(join(out, file), encodeNpy(ep.frames, [ep.steps + 1, cameras.length, size, size, 3]));
    const line = {
      index: e,
      file,
      seed: ep.seed,
      policy: ep.policy,
      perturbation: ep.perturbation ?? null,
      noise_std: ep.noiseStd ?? null,
      steps: ep.steps,
      success: ep.success,
      success_step: ep.successStep,
      terminated: ep.terminated,
      truncated: ep.truncated,
      oracle: ep.oracle.map((v) => Math.round(v * 1e6) / 1e6),
      success_frames: ep.successFrames,
      rewards: ep.rewards,
    };
    appendFileSync(index, JSON.stringify(line) + '\n');
    frames += ep.steps + 1;
    const o = outcome[policy];
    o[0]! += ep.success ? 1 : 0;
    o[1]! += 1;
    progress.update(e + 1, `${frames} frames`);
  }
  progress.finish();
  meta.episodes = episodes;
  writeFileSync(join(out, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  const rate = (o: number[]): number | null => (o[1]! > 0 ? o[0]! / o[1]! : null);
  return {
    env: env.task.name,
    out,
    episodes,
    frames,
    expert_success_rate: rate(outcome.expert),
    perturbed_success_rate: rate(outcome.perturbed),
    random_success_rate: rate(outcome.random),
    noisy_success_rate: rate(outcome.noisy),
    policy_success_rate: rate(outcome.policy),
    seconds: (performance.now() - t0) / 1000,
  };
}
