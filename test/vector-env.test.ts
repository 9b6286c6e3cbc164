/**
 * Vector env semantics against Gymnasium 1.x's documented autoreset behaviour, worked by hand on a task whose
 * episodes end by truncation after exactly 3 steps, and against single envs as the reference trajectory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { InvalidAction, InvalidArgument, ResetNeeded, UnknownTask, WorkerFailed } from '../src/sim/errors.ts';
import { VectorEnv } from '../src/vector/vector-env.ts';
import { workerSlice } from '../src/vector/layout.ts';

const TINY = './test/fixtures/tiny-task.ts';
const opened: VectorEnv[] = [];
async function open(...args: Parameters<typeof VectorEnv.create>): Promise<VectorEnv> {
  const v = await VectorEnv.create(...args);
  opened.push(v);
  return v;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((v) => v.close()));
});

/** Reference: a single env of the tiny task, seeded like sub-env i, and the observations it goes through. */
async function reference(
  seed: number,
  steps: number,
  action: number[],
): Promise<{ obs: Float32Array[]; resets: Float32Array[] }> {
  const env = await makeEnv(TINY);
  const obs: Float32Array[] = [];
  const resets: Float32Array[] = [env.reset({ seed }).obs];
  for (let t = 0; t < steps; t++) {
    const r = env.step(action);
    obs.push(r.obs);
    if (r.truncated || r.terminated) resets.push(env.reset().obs);
  }
  env.close();
  return { obs, resets };
}

const row = (a: Float32Array, i: number, d: number): Float32Array => a.slice(i * d, (i + 1) * d);
const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('worker slices', () => {
  it('cover all envs contiguously with sizes differing by at most one', () => {
    expect([0, 1, 2].map((w) => workerSlice(8, 3, w))).toEqual([
      [0, 3],
      [3, 6],
      [6, 8],
    ]);
  });
});

describe('VectorEnv', () => {
  it('seeds sub-env i with seed + i and matches single envs step for step, at 1 and 2 workers', async () => {
    const action = [0.3, -0.2, 0.1, 1];
    for (const workers of [1, 2]) {
      const v = await open({ task: TINY, numEnvs: 3, workers });
      const { obs } = await v.reset({ seed: 100 });
      for (let i = 0; i < 3; i++) {
        const ref = await reference(100 + i, 2, action);
        expect(bytes(row(obs, i, v.obsDim))).toEqual(bytes(ref.resets[0]!));
        // Nested rows and a flat array are the same batch.
        await v.step([action, action, action]);
        const s2 = await v.step(Array.from({ length: 3 }, () => action).flat());
        expect(bytes(row(s2.obs, i, v.obsDim))).toEqual(bytes(ref.obs[1]!));
        await v.reset({ seed: 100 });
      }
    }
  });

  it('next-step autoreset: the step after the end resets, ignores the action, reward 0, flags false', async () => {
    const v = await open({ task: TINY, numEnvs: 2, workers: 2, autoreset: 'next-step' });
    expect(v.metadata.autoreset_mode).toBe('next-step');
    const a = [0.5, 0, 0, 1];
    const ref = await reference(7, 3, a);
    await v.reset({ seed: 7 });
    const steps = [];
    for (let t = 0; t < 5; t++) steps.push(await v.step([a, a]));
    // t=0,1: running; t=2: truncated (episode of 3 steps); t=3: reset step; t=4: first step of episode 2.
    expect(steps.map((s) => s.truncated[0])).toEqual([0, 0, 1, 0, 0]);
    expect(steps.map((s) => s.terminated[0])).toEqual([0, 0, 0, 0, 0]);
    expect(steps.map((s) => s.info.episode_step[0])).toEqual([1, 2, 3, 0, 1]);
    expect(bytes(row(steps[2]!.obs, 0, v.obsDim))).toEqual(bytes(ref.obs[2]!));
    expect(bytes(row(steps[3]!.obs, 0, v.obsDim))).toEqual(bytes(ref.resets[1]!));
    expect(steps[3]!.rewards[0]).toBe(0);
    expect(steps[3]!.info.final_obs).toBeUndefined();
  });

  it('same-step autoreset: the ending step returns the new first obs and the last obs in final_obs', async () => {
    const v = await open({ task: TINY, numEnvs: 2, workers: 1, autoreset: 'same-step' });
    const a = [0.5, 0, 0, 1];
    const ref = await reference(7, 3, a);
    await v.reset({ seed: 7 });
    const steps = [];
    for (let t = 0; t < 4; t++) steps.push(await v.step([a, a]));
    expect(steps.map((s) => s.truncated[0])).toEqual([0, 0, 1, 0]);
    expect(steps.map((s) => s.info.episode_step[0])).toEqual([1, 2, 0, 1]);
    const end = steps[2]!;
    expect(end.info._final_obs![0]).toBe(1);
    expect(bytes(row(end.info.final_obs!, 0, v.obsDim))).toEqual(bytes(ref.obs[2]!));
    expect(bytes(row(end.obs, 0, v.obsDim))).toEqual(bytes(ref.resets[1]!));
    expect(end.info.final_info!.episode_step[0]).toBe(3);
    expect(steps[1]!.info._final_obs![0]).toBe(0);
  });

  it('disabled autoreset: stepping an ended sub-env is refused until reset with a mask', async () => {
    const v = await open({ task: TINY, numEnvs: 2, workers: 2, autoreset: 'disabled' });
    const a = [0, 0, 0, 1];
    const first = await v.reset({ seed: 3 });
    for (let t = 0; t < 3; t++) await v.step([a, a]);
    await expect(v.step([a, a])).rejects.toThrow(ResetNeeded);
    await expect(v.step([a, a])).rejects.toThrow(/sub-env 0 has ended/);
    // Without a seed, the reset continues each sub-env's generator: a new episode, not a replay of the first.
    const r = await v.reset({ options: { reset_mask: [true, true] } });
    expect(bytes(row(r.obs, 1, v.obsDim))).not.toEqual(bytes(row(first.obs, 1, v.obsDim)));
    const s = await v.step([a, a]);
    expect(Array.from(s.info.episode_step)).toEqual([1, 1]);
  });

  it('a masked reset leaves unmasked sub-envs untouched', async () => {
    const v = await open({ task: TINY, numEnvs: 2, workers: 1, autoreset: 'disabled' });
    const a = [0.2, 0, 0, 1];
    await v.reset({ seed: 5 });
    const s = await v.step([a, a]);
    const r = await v.reset({ seed: 50, options: { reset_mask: [false, true] } });
    expect(bytes(row(r.obs, 0, v.obsDim))).toEqual(bytes(row(s.obs, 0, v.obsDim)));
    const ref = await reference(51, 0, a);
    expect(bytes(row(r.obs, 1, v.obsDim))).toEqual(bytes(ref.resets[0]!));
  });

  it('validates actions and arguments before touching the workers', async () => {
    const v = await open({ task: TINY, numEnvs: 2, workers: 1 });
    await expect(v.step([0, 0, 0, 0, 0, 0, 0, 0])).rejects.toThrow(ResetNeeded);
    await v.reset({ seed: 0 });
    await expect(v.step([0, 0, 0])).rejects.toThrow(/expected numEnvs \* actDim = 2 \* 4 = 8/);
    await expect(
      v.step([
        [0, 0, 0, 0],
        [0, NaN, 0, 0],
      ]),
    ).rejects.toThrow(InvalidAction);
    await expect(
      v.step([
        [0, 0, 0, 0],
        [0, NaN, 0, 0],
      ]),
    ).rejects.toThrow(/actions\[1\]\[1\] is NaN/);
    await expect(v.reset({ seed: [1] })).rejects.toThrow(/a seed list needs 2 entries/);
    await expect(VectorEnv.create({ task: TINY, numEnvs: 0 })).rejects.toThrow(InvalidArgument);
    await expect(VectorEnv.create({ task: TINY, numEnvs: 2, workers: 3 })).rejects.toThrow(
      /workers: must be/,
    );
    await expect(VectorEnv.create({ task: 'nope', numEnvs: 1 })).rejects.toThrow(UnknownTask);
  });

  it('surfaces a worker that throws as WorkerFailed on the call, and on every later call', async () => {
    const v = await open({ task: './test/fixtures/crashing-task.ts', numEnvs: 2, workers: 2 });
    await v.reset({ seed: 0 });
    await v.step(new Float32Array(8));
    await expect(v.step(new Float32Array(8))).rejects.toThrow(WorkerFailed);
    await expect(v.step(new Float32Array(8))).rejects.toThrow(/boom in isSuccess/);
  });

  it('surfaces a worker thread that exits as WorkerFailed instead of hanging', async () => {
    process.env.PBRIDGE_TEST_CRASH = 'exit';
    try {
      const v = await open({ task: './test/fixtures/crashing-task.ts', numEnvs: 2, workers: 2 });
      await v.reset({ seed: 0 });
      await v.step(new Float32Array(8));
      await expect(v.step(new Float32Array(8))).rejects.toThrow(/exited with code 7/);
      await expect(v.reset()).rejects.toThrow(WorkerFailed);
    } finally {
      delete process.env.PBRIDGE_TEST_CRASH;
    }
  });
});

describe('VectorEnv image observations', () => {
  it('return each camera as [numEnvs, size, size, 3] equal to a single env rendering the same state', async () => {
    const images = { cameras: ['front', 'wrist'], size: 32 };
    const v = await open({ task: 'reach', numEnvs: 2, workers: 2, envOptions: { images } });
    const r = await v.reset({ seed: 3 });
    const s = await v.step([
      [0.5, 0, 0, 1],
      [0, 0.5, 0, 1],
    ]);
    const single = await makeEnv('reach', { images });
    single.reset({ seed: 4 });
    const ref = single.step([0, 0.5, 0, 1]);
    const per = 32 * 32 * 3;
    expect(r.images!.front).toHaveLength(2 * per);
    expect(Buffer.from(s.images!.wrist!.subarray(per))).toEqual(Buffer.from(ref.images!.wrist!));
    expect(Buffer.from(s.images!.front!.subarray(per))).toEqual(Buffer.from(ref.images!.front!));
    single.close();
  });
});
