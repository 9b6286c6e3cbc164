/**
 * Each task's scripted expert solves it (>= 95% of 20 seeded episodes), and random actions rarely do: the
 * success predicates are neither unreachable nor trivially true.
 */
import { describe, expect, it } from 'vitest';
import { rollout } from '../src/cli/rollout.ts';
import { makeEnv } from '../src/env/make.ts';
import { TASK_NAMES } from '../src/env/registry.ts';

describe.each(TASK_NAMES)('task %s', (name) => {
  it('scripted expert succeeds on >= 95% of 20 seeded episodes', async () => {
    const env = await makeEnv(name);
    const s = rollout(env, 'expert', 20, 1000);
    expect(s.success_rate, JSON.stringify(s.per_episode.filter((p) => !p.success))).toBeGreaterThanOrEqual(
      0.95,
    );
    env.close();
  });

  it('random actions succeed rarely (<= 20% of 20 episodes)', async () => {
    const env = await makeEnv(name);
    const s = rollout(env, 'random', 20, 2000);
    expect(s.success_rate).toBeLessThanOrEqual(0.2);
    env.close();
  });
});

describe('experts in joint_delta mode', () => {
  it('push expert, converted to joint deltas through the controller, still succeeds', async () => {
    const env = await makeEnv('push', { actionMode: 'joint_delta' });
    const s = rollout(env, 'expert', 10, 3000);
    expect(s.success_rate).toBeGreaterThanOrEqual(0.9);
    env.close();
  });
});
