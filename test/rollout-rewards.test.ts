/**
 * Shaped rewards of whole rollouts through the real reward service, on hand-worked sequences: terminated
 * (Phi' = 0), truncated (the final state, whose frames are gone after the same-step reset, holds the previous
 * Phi), a fresh episode after a reset, a missing answer (held, never 0), a late answer past the deadline (imputed,
 * then ignored when it arrives) and the reuse of a fixed Phi across the rollout boundary.
 * The model is the oracle: it answers the privileged progress each step carries, so the numbers are ours to set.
 */
import { describe, expect, it } from 'vitest';
import type { ProgressModel, ProgressRequest, ProgressResponse } from '../src/reward/model.ts';
import { OracleProgressModel } from '../src/reward/oracle.ts';
import { RewardService } from '../src/reward/service.ts';
import { checkShapingConfig, type ShapingMode } from '../src/reward/shaping.ts';
import { RolloutRewards } from '../src/train/rollout-rewards.ts';

const GAMMA = 0.9;

/** The oracle, but answers for the listed (env, episode state) keys arrive after `delayMs`. */
class SlowFor implements ProgressModel {
  readonly id = 'slow-oracle';
  readonly maxBatch = 64;
  private readonly oracle = new OracleProgressModel();
  constructor(
    private readonly slow: Set<string>,
    private readonly delayMs: number,
  ) {}
  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    const answers = await this.oracle.predict(batch);
    if (batch.some((r) => this.slow.has(`${r.envId}:${r.step}`))) {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    }
    return answers;
  }
}

function pipeline(model: ProgressModel, mode: ShapingMode = 'potential'): RolloutRewards {
  return new RolloutRewards({
    numEnvs: 2,
    numSteps: 4,
    shaping: checkShapingConfig({ mode, gamma: GAMMA }),
    // One request per model call, so a slow answer delays only itself.
    service: new RewardService(model, { maxBatch: 1, maxWaitMs: 0, maxInFlight: 8 }),
    instruction: 'do it',
    cameras: [],
    imageSize: 0,
    stride: 1,
  });
}

/**
 * env 0: progress 0.1 at reset, then 0.3, 0.5, terminated with reward 1 (new episode at 0.05), then 0.2.
 * env 1: 0.2 at reset, then 0.4, truncated (new episode at 0.1), then 0.3, then an answer that is NaN.
 */
function feed(p: RolloutRewards): void {
  p.start({ progress: [0.1, 0.2] });
  const steps = [
    { progress: [0.3, 0.4], rewards: [0, 0], terminated: [0, 0], truncated: [0, 0], episodeStep: [1, 1] },
    { progress: [0.5, 0.1], rewards: [0, 0], terminated: [0, 0], truncated: [0, 1], episodeStep: [2, 0] },
    { progress: [0.05, 0.3], rewards: [1, 0], terminated: [1, 0], truncated: [0, 0], episodeStep: [0, 1] },
    { progress: [0.2, NaN], rewards: [0, 0], terminated: [0, 0], truncated: [0, 0], episodeStep: [1, 2] },
  ];
  for (const s of steps) p.step(s);
}

describe('rollout rewards', () => {
  it('shapes a rollout with terminal, truncation, reset and a missing answer as worked by hand', async () => {
    const p = pipeline(new OracleProgressModel());
    feed(p);
    const { rewards, stats } = await p.finish(5000);
    // [t][env], r + 0.9 * Phi' - Phi:
    // env 0: 0.9*0.3-0.1 = 0.17; 0.9*0.5-0.3 = 0.15; terminated: 1 + 0 - 0.5 = 0.5; new episode 0.9*0.2-0.05 = 0.13
    // env 1: 0.9*0.4-0.2 = 0.16; truncated, s_T holds 0.4: 0.9*0.4-0.4 = -0.04; 0.9*0.3-0.1 = 0.17;
    //        missing answer holds 0.3: 0.9*0.3-0.3 = -0.03
    const expected = [0.17, 0.16, 0.15, -0.04, 0.5, 0.17, 0.13, -0.03];
    expected.forEach((e, k) => expect(rewards[k]).toBeCloseTo(e, 12));
    // 2 reset states + 2 per step (a reset state replaces an ended episode's, and the truncated s_T is not queried).
    expect(stats).toMatchObject({ queried: 10, answered: 9, missing: 1, late: 0 });
    expect(stats.sparseMean).toBeCloseTo(1 / 8, 12);
  });

  it('imputes an answer that misses the deadline, ignores it when it comes, and reuses fixed Phi next rollout', async () => {
    // env 0's state 2 (progress 0.5) answers after 400 ms; the deadline is 50 ms.
    const p = pipeline(new SlowFor(new Set(['0:2']), 400));
    feed(p);
    const first = await p.finish(50);
    expect(first.stats.late).toBe(1);
    // s2 held s1's 0.3: 0.9*0.3-0.3 = -0.03, then terminated: 1 - 0.3 = 0.7.
    expect(first.rewards[2]).toBeCloseTo(-0.03, 12);
    expect(first.rewards[4]).toBeCloseTo(0.7, 12);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Next rollout: env 0 continues from its state at 0.2, env 1 from its held 0.3.
    const steps = [0.4, 0.6, 0.7, 0.8];
    steps.forEach((v, i) =>
      p.step({
        progress: [v, v],
        rewards: [0, 0],
        terminated: [0, 0],
        truncated: [0, 0],
        episodeStep: [2 + i, 3 + i],
      }),
    );
    const second = await p.finish(5000);
    expect(second.rewards[0]).toBeCloseTo(0.9 * 0.4 - 0.2, 12);
    expect(second.rewards[1]).toBeCloseTo(0.9 * 0.4 - 0.3, 12);
    expect(second.stats.late).toBe(0);
  });

  it('keeps the ablations apart: sparse ignores Phi, naive drops gamma', async () => {
    const sparse = pipeline(new OracleProgressModel(), 'sparse');
    feed(sparse);
    expect(Array.from((await sparse.finish(1000)).rewards)).toEqual([0, 0, 0, 0, 1, 0, 0, 0]);
    const naive = pipeline(new OracleProgressModel(), 'naive');
    feed(naive);
    const r = (await naive.finish(5000)).rewards;
    // 0.3 - 0.1; terminated: 1 + 0 - 0.5
    expect(r[0]).toBeCloseTo(0.2, 12);
    expect(r[4]).toBeCloseTo(0.5, 12);
  });
});
