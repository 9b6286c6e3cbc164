/**
 * Recorded episodes (what the default model is trained on and judged with): frames, labels and outcomes agree
 * with the simulator, episodes replay from their seed, and the .npy files are what numpy reads.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { holdEnvTask, NOISY_STD_RANGE, recordEpisode } from '../src/data/demos.ts';
import { makeEnv } from '../src/env/make.ts';
import { resolveTask } from '../src/env/registry.ts';

const dir = mkdtempSync(join(tmpdir(), 'pb-demos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cameras = ['front', 'wrist'];
const SIZE = 32;

describe('recorded episodes', () => {
  it('records T + 1 frames, success first at successStep and held for `hold` steps', async () => {
    const env = await makeEnv(holdEnvTask(await resolveTask('reach')));
    const ep = recordEpisode(env, 'expert', 3, { cameras, size: SIZE, hold: 4 });
    expect(ep.success).toBe(true);
    expect(ep.successStep).not.toBeNull();
    expect(ep.steps).toBe(ep.successStep! + 4);
    expect(ep.frames.length).toBe((ep.steps + 1) * cameras.length * SIZE * SIZE * 3);
    expect(ep.oracle).toHaveLength(ep.steps + 1);
    expect(ep.successFrames.slice(0, ep.successStep!)).not.toContain(true);
    expect(ep.successFrames.slice(ep.successStep!)).toEqual(Array(5).fill(true));
    // The task's stage progress has grown from the start to the success state.
    expect(ep.oracle[ep.successStep!]!).toBeGreaterThan(ep.oracle[0]! + 0.3);
    // Frames change over the episode (the arm moves): the first and last frames differ.
    const frameBytes = cameras.length * SIZE * SIZE * 3;
    const first = ep.frames.subarray(0, frameBytes);
    const last = ep.frames.subarray(ep.steps * frameBytes);
    expect(first.some((v, i) => v !== last[i])).toBe(true);
    env.close();
  });

  it('replays an episode bit for bit from its seed, perturbations included', async () => {
    const env = await makeEnv(await resolveTask('push'));
    const a = recordEpisode(env, 'perturbed', 11, { cameras, size: SIZE });
    const b = recordEpisode(env, 'perturbed', 11, { cameras, size: SIZE });
    expect(a.perturbation).toEqual(b.perturbation);
    expect(a.steps).toBe(b.steps);
    expect(Buffer.compare(Buffer.from(a.frames), Buffer.from(b.frames))).toBe(0);
    env.close();
  });

  it('noisy episodes draw their noise level per episode and sit between the expert and random play', async () => {
    const env = await makeEnv(await resolveTask('reach'));
    const seeds = [0, 1, 2, 3, 4, 5, 6, 7];
    const best = (policy: 'expert' | 'noisy' | 'random'): number[] =>
      seeds.map((s) => Math.max(...recordEpisode(env, policy, s, { cameras: ['front'], size: 16 }).oracle));
    const noisy = seeds.map((s) => recordEpisode(env, 'noisy', s, { cameras: ['front'], size: 16 }));
    for (const ep of noisy) {
      expect(ep.noiseStd!).toBeGreaterThanOrEqual(NOISY_STD_RANGE[0]);
      expect(ep.noiseStd!).toBeLessThanOrEqual(NOISY_STD_RANGE[1]);
    }
    expect(new Set(noisy.map((e) => e.noiseStd)).size).toBe(seeds.length);
    // Mean best stage progress reached: the expert's noise-free route beats the noisy one, which beats no aim.
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    const [expert, random] = [mean(best('expert')), mean(best('random'))];
    const noisyBest = mean(noisy.map((e) => Math.max(...e.oracle)));
    expect(expert).toBeGreaterThanOrEqual(noisyBest);
    expect(noisyBest).toBeGreaterThan(random + 0.2);
    env.close();
  });

  it('refuses a hold on an env that ends episodes at success', async () => {
    const env = await makeEnv(await resolveTask('reach'));
    expect(() => recordEpisode(env, 'expert', 0, { cameras, size: SIZE, hold: 2 })).toThrow(/holdEnvTask/);
    env.close();
  });
});

describe('.npy files', () => {
  it('round-trip and pad the header to 64 bytes, as the format requires', () => {
    const data = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
    const bytes = encodeNpy(data, [2, 3]);
    const headerLen = bytes[8]! | (bytes[9]! << 8);
    expect((10 + headerLen) % 64).toBe(0);
    const path = join(dir, 'a.npy');
    execFileSync('sh', ['-c', `cat > ${path}`], { input: bytes });
    const back = readNpy(path);
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  const python = '/usr/bin/python3';
  const hasNumpy =
    existsSync(python) &&
    (() => {
      try {
        execFileSync(python, ['-c', 'import numpy']);
        return true;
      } catch {
        return false;
      }
    })();

  it.skipIf(!hasNumpy)('are read by numpy with the same shape, dtype and values', () => {
    const frames = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) % 256);
    const path = join(dir, 'frames.npy');
    execFileSync('sh', ['-c', `cat > ${path}`], { input: encodeNpy(frames, [2, 3, 4]) });
    const out = execFileSync(python, [
      '-c',
      `import numpy as np, json; a = np.load("${path}"); print(json.dumps([a.dtype.str, list(a.shape), a.ravel().tolist()]))`,
    ]).toString();
    const [dtype, shape, values] = JSON.parse(out) as [string, number[], number[]];
    expect(dtype).toBe('|u1');
    expect(shape).toEqual([2, 3, 4]);
    expect(values).toEqual(Array.from(frames));
    expect(readFileSync(path).length).toBe(128 + frames.length);
  });
});
