/**
 * The contract every registered task must keep: shapes match the declared spaces, nothing goes NaN under zero
 * or random actions, the same seed gives the same trajectory bit for bit, different seeds give different
 * resets, and the time limit truncates (never terminates).
 */
import { describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { TASK_NAMES } from '../src/env/registry.ts';
import { Rng } from '../src/env/rng.ts';
import { namesOf } from '../src/sim/mujoco.ts';

function rollout(
  env: Awaited<ReturnType<typeof makeEnv>>,
  seed: number,
  steps: number,
  actSeed: number,
): Float32Array[] {
  const rng = new Rng(actSeed);
  const out = [env.reset({ seed }).obs];
  for (let t = 0; t < steps; t++) {
    const r = env.step(env.actionSpace.sample(rng));
    out.push(r.obs);
    if (r.terminated || r.truncated) break;
  }
  return out;
}

describe.each(TASK_NAMES)('task %s', (name) => {
  it('declares the cameras, spaces and instruction that reward models and learners rely on', async () => {
    const env = await makeEnv(name);
    expect(namesOf(env.mj, env.model, 'camera')).toEqual(expect.arrayContaining(['front', 'side', 'wrist']));
    expect(env.task.instruction.length).toBeGreaterThan(5);
    expect(env.observationSpace.shape).toEqual([env.obsNames.length]);
    expect(env.actionSpace.shape).toEqual([4]);
    expect(new Set(env.obsNames).size).toBe(env.obsNames.length);
    env.close();
  });

  it('keeps shapes and finite values under zero and random actions, for both action modes', async () => {
    for (const actionMode of ['ee_delta', 'joint_delta'] as const) {
      const env = await makeEnv(name, { actionMode });
      const { obs, info } = env.reset({ seed: 3 });
      expect(obs).toHaveLength(env.obsDim);
      expect(info.is_success).toBe(false);
      const rng = new Rng(11);
      for (let t = 0; t < 40; t++) {
        const action = t < 20 ? new Float32Array(env.actDim) : env.actionSpace.sample(rng);
        const r = env.step(action);
        expect(r.obs).toHaveLength(env.obsDim);
        expect(r.obs.every(Number.isFinite)).toBe(true);
        expect(Number.isFinite(r.reward)).toBe(true);
        expect(typeof r.info.is_success).toBe('boolean');
        expect(r.terminated && r.truncated).toBe(false);
        if (r.terminated || r.truncated) env.reset();
      }
      env.close();
    }
  });

  it('replays the same seed and actions bit for bit, and different seeds start differently', async () => {
    const env = await makeEnv(name);
    const a = rollout(env, 42, 30, 5);
    const b = rollout(env, 42, 30, 5);
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(Buffer.from(b[i]!.buffer)).toEqual(Buffer.from(a[i]!.buffer));
    const other = env.reset({ seed: 43 }).obs;
    expect(Buffer.from(other.buffer)).not.toEqual(Buffer.from(a[0]!.buffer));
    env.close();
  });

  it('truncates at the time limit with terminated false', async () => {
    const env = await makeEnv(name, { episodeSteps: 5 });
    env.reset({ seed: 1 });
    let last;
    for (let t = 0; t < 5; t++) last = env.step(new Float32Array(env.actDim));
    expect(last!.truncated || last!.terminated).toBe(true);
    if (!last!.info.is_success) expect(last!.terminated).toBe(false);
    expect(last!.info.step).toBe(5);
    env.close();
  });
});
