/** Rolling out a policy in one env: success rate, returns, episode lengths and env steps per second. */
import type { ManipulationEnv } from '../env/env.ts';
import { Rng } from '../env/rng.ts';
import { InvalidArgument } from '../sim/errors.ts';

export type BuiltinPolicy = 'expert' | 'random' | 'zero';
export const BUILTIN_POLICIES: readonly BuiltinPolicy[] = ['expert', 'random', 'zero'];

export interface RolloutSummary {
  env: string;
  policy: BuiltinPolicy;
  episodes: number;
  seed: number;
  success_rate: number;
  mean_return: number;
  mean_episode_length: number;
  env_steps: number;
  env_steps_per_s: number;
  /** Per episode: success, return, length. */
  per_episode: { seed: number; success: boolean; return: number; length: number }[];
}

/** Episode e uses seed + e, so any episode can be replayed on its own. */
export function rollout(
  env: ManipulationEnv,
  policy: BuiltinPolicy,
  episodes: number,
  seed: number,
  onEpisode?: (done: number, summary: RolloutSummary) => void,
): RolloutSummary {
  if (!BUILTIN_POLICIES.includes(policy)) {
    throw new InvalidArgument(
      'policy',
      `must be one of ${BUILTIN_POLICIES.join(', ')}, got ${String(policy)}`,
    );
  }
  const action = new Float32Array(env.actDim);
  const obs = new Float32Array(env.obsDim);
  const rng = new Rng(seed ^ 0xa5a5a5a5);
  const summary: RolloutSummary = {
    env: env.task.name,
    policy,
    episodes,
    seed,
    success_rate: 0,
    mean_return: 0,
    mean_episode_length: 0,
    env_steps: 0,
    env_steps_per_s: 0,
    per_episode: [],
  };
  let stepTime = 0;
  for (let e = 0; e < episodes; e++) {
    env.resetInto(obs, 0, seed + e);
    let ret = 0;
    let success = false;
    for (;;) {
      if (policy === 'expert') env.expertAction(action);
      else if (policy === 'random') env.actionSpace.sample(rng, action);
      else action.fill(0);
      const t0 = performance.now();
      const flags = env.stepInto(action, obs, 0);
      stepTime += performance.now() - t0;
      summary.env_steps++;
      ret += flags.reward;
      success ||= flags.success;
      if (flags.terminated || flags.truncated) break;
    }
    summary.per_episode.push({ seed: seed + e, success, return: ret, length: env.episodeStep });
    const n = summary.per_episode.length;
    summary.success_rate = summary.per_episode.filter((p) => p.success).length / n;
    summary.mean_return = summary.per_episode.reduce((a, p) => a + p.return, 0) / n;
    summary.mean_episode_length = summary.per_episode.reduce((a, p) => a + p.length, 0) / n;
    summary.env_steps_per_s = stepTime > 0 ? (summary.env_steps * 1000) / stepTime : 0;
    onEpisode?.(n, summary);
  }
  return summary;
}
