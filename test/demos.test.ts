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
import { holdEnvTask, NOISY_STD_RANGE, recordEpisode, type RecordedEpisode } from '../src/data/demos.ts';
import { makeEnv } from '../src/env/make.ts';
import { Rng } from '../src/env/rng.ts';
import type { RewardEvalReport } from '../src/reward/evaluate.ts';
import { exportPolicyOnnx } from '../src/onnx/policy.ts';
import { resolveTask } from '../src/env/registry.ts';

const dir = mkdtempSync(join(tmpdir(), 'pb-demos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cameras = ['front', 'wrist'];
const SIZE = 32;

describe('recorded episodes', () => {
  it('records T + 1 frames, success first at successStep and held for `hold` steps', async () => {
    const env = await makeEnv(holdEnvTask(await resolveTask('reach')));
    const ep = await recordEpisode(env, 'expert', 3, { cameras, size: SIZE, hold: 4 });
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
    const a = await recordEpisode(env, 'perturbed', 11, { cameras, size: SIZE });
    const b = await recordEpisode(env, 'perturbed', 11, { cameras, size: SIZE });
    expect(a.perturbation).toEqual(b.perturbation);
    expect(a.steps).toBe(b.steps);
    expect(Buffer.compare(Buffer.from(a.frames), Buffer.from(b.frames))).toBe(0);
    env.close();
  });

  it('noisy episodes draw their noise level per episode and sit between the expert and random play', async () => {
    const env = await makeEnv(await resolveTask('reach'));
    const seeds = [0, 1, 2, 3, 4, 5, 6, 7];
    // One env, so one episode at a time.
    const record = async (policy: 'expert' | 'noisy' | 'random'): Promise<RecordedEpisode[]> => {
      const out: RecordedEpisode[] = [];
      for (const s of seeds) out.push(await recordEpisode(env, policy, s, { cameras: ['front'], size: 16 }));
      return out;
    };
    const best = async (policy: 'expert' | 'random'): Promise<number[]> =>
      (await record(policy)).map((e) => Math.max(...e.oracle));
    const noisy = await record('noisy');
    for (const ep of noisy) {
      expect(ep.noiseStd!).toBeGreaterThanOrEqual(NOISY_STD_RANGE[0]);
      expect(ep.noiseStd!).toBeLessThanOrEqual(NOISY_STD_RANGE[1]);
    }
    expect(new Set(noisy.map((e) => e.noiseStd)).size).toBe(seeds.length);
    // Mean best stage progress reached: the expert's noise-free route beats the noisy one, which beats no aim.
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    const [expert, random] = [mean(await best('expert')), mean(await best('random'))];
    const noisyBest = mean(noisy.map((e) => Math.max(...e.oracle)));
    expect(expert).toBeGreaterThanOrEqual(noisyBest);
    expect(noisyBest).toBeGreaterThan(random + 0.2);
    env.close();
  });

  it('refuses a hold on an env that ends episodes at success', async () => {
    const env = await makeEnv(await resolveTask('reach'));
    await expect(recordEpisode(env, 'expert', 0, { cameras, size: SIZE, hold: 2 })).rejects.toThrow(
      /holdEnvTask/,
    );
    env.close();
  });
});

describe('policy episodes (pbridge demos --policy)', () => {
  const pbridge = (...args: string[]): { code: number; stdout: string; stderr: string } => {
    try {
      return {
        code: 0,
        stdout: execFileSync(process.execPath, ['bin/pbridge.js', ...args], { stdio: 'pipe' }).toString(),
        stderr: '',
      };
    } catch (err) {
      const e = err as { status: number; stdout: Buffer; stderr: Buffer };
      return { code: e.status, stdout: e.stdout.toString(), stderr: e.stderr.toString() };
    }
  };

  it('act with the ONNX policy on the observations the env gives, plus the noise asked for', async () => {
    const env = await makeEnv(await resolveTask('push'));
    // A linear policy, clipped to [-1, 1] by the exporter, simple enough to apply by hand below: it steers the hand
    // to 8 cm above the cube (the stage progress moves; no contact, which would amplify float32 rounding), plus
    // small weights on every other observation entry.
    const rng = new Rng(4);
    const W = Float32Array.from({ length: env.actDim * env.obsDim }, () => rng.uniform(-0.05, 0.05));
    for (const [k, axis] of ['x', 'y', 'z'].entries()) {
      W[k * env.obsDim + env.obsNames.indexOf(`cube_minus_grip.${axis}`)] = 30;
    }
    const b = Float32Array.from({ length: env.actDim }, () => rng.uniform(-0.1, 0.1));
    b[2] = 30 * 0.08;
    const file = join(dir, 'linear.onnx');
    await exportPolicyOnnx(
      {
        obsDim: env.obsDim,
        actDim: env.actDim,
        layers: [{ W, b, activation: 'none' }],
        obsMean: new Float32Array(env.obsDim),
        obsStd: new Float32Array(env.obsDim).fill(1),
        obsClip: Infinity,
        actionLow: -1,
        actionHigh: 1,
        metadata: { action_std: JSON.stringify([0, 0, 0, 0]) },
      },
      file,
    );
    const record = (
      out: string,
      ...extra: string[]
    ): { episodes: Record<string, unknown>[]; meta: unknown } => {
      const r = pbridge(
        'demos',
        '--env',
        'push',
        '--policy',
        file,
        '--episodes',
        '2',
        '--seed',
        '3',
        '--hold',
        '0',
        '--cameras',
        'front',
        '--size',
        '16',
        '--out',
        join(dir, out),
        '--json',
        ...extra,
      );
      expect(r.code, r.stderr).toBe(0);
      return {
        episodes: readFileSync(join(dir, out, 'episodes.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
        meta: JSON.parse(readFileSync(join(dir, out, 'meta.json'), 'utf8')),
      };
    };

    // Noise from the file's action_std (0 here): the episode is the linear map applied step by step.
    const exact = record('exact');
    expect(exact.meta).toMatchObject({ policy_file: file });
    const obs = new Float32Array(env.obsDim);
    const action = new Float32Array(env.actDim);
    for (const [e, ep] of exact.episodes.entries()) {
      expect(ep).toMatchObject({ policy: 'policy', noise_std: 0, seed: 3 + e });
      env.resetInto(obs, 0, 3 + e);
      const oracle = [env.oracleProgress()!];
      for (let t = 0; t < (ep.steps as number); t++) {
        for (let o = 0; o < env.actDim; o++) {
          let v = b[o]!;
          for (let i = 0; i < env.obsDim; i++) v += W[o * env.obsDim + i]! * obs[i]!;
          action[o] = Math.max(-1, Math.min(1, v));
        }
        env.stepInto(action, obs, 0);
        oracle.push(env.oracleProgress()!);
      }
      // onnxruntime computes the map in float32 and in its own order: not bit for bit.
      (ep.oracle as number[]).forEach((v, t) => expect(Math.abs(v - oracle[t]!)).toBeLessThan(1e-4));
      // The hand came over the cube: most of the first stage (a quarter of the progress) is done.
      expect(Math.max(...oracle)).toBeGreaterThan(0.15);
    }

    // reward-eval scores the same policy's states: the oracle's progress is the stage progress itself.
    const evalRun = pbridge(
      'reward-eval',
      '--env',
      'push',
      '--model',
      'oracle',
      '--episodes',
      '1',
      '--exploration',
      '0',
      '--policy',
      file,
      '--policy-episodes',
      '2',
      '--json',
    );
    expect(evalRun.code, evalRun.stderr).toBe(0);
    const onPolicy = (JSON.parse(evalRun.stdout) as RewardEvalReport).on_policy!;
    expect(onPolicy.episodes).toBe(2);
    expect(onPolicy.mean_error).toBeCloseTo(0, 10);

    // --action-noise overrides the file's spread and changes the route.
    const noisy = record('noisy', '--action-noise', '0.5');
    expect(noisy.episodes[0]).toMatchObject({ policy: 'policy', noise_std: 0.5 });
    expect(noisy.episodes[0]!.oracle).not.toEqual(exact.episodes[0]!.oracle);
    env.close();
  });

  it('refuse a policy without action_std unless --action-noise is given, and a wrong signature', async () => {
    const env = await makeEnv(await resolveTask('reach'));
    const { obsDim, actDim } = env;
    env.close();
    const zeroPolicy = async (name: string, dim: number): Promise<string> => {
      const file = join(dir, name);
      const zeros = (n: number): Float32Array => new Float32Array(n);
      const layers = [{ W: zeros(actDim * dim), b: zeros(actDim), activation: 'none' as const }];
      await exportPolicyOnnx(
        { obsDim: dim, actDim, layers, obsMean: zeros(dim), obsStd: zeros(dim).fill(1), obsClip: 5 },
        file,
      );
      return file;
    };
    const out = join(dir, 'never');
    const noStd = await zeroPolicy('no-std.onnx', obsDim);
    const missing = pbridge('demos', '--env', 'reach', '--policy', noStd, '--out', out);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /--action-noise: is required: .*no-std.onnx has no usable action_std metadata/,
    );
    const badNoise = pbridge('demos', '--env', 'reach', '--policy', noStd, '--action-noise=-1', '--out', out);
    expect(badNoise.stderr).toMatch(/--action-noise: must be a number in \[0, 10\], got "-1"/);
    const orphan = pbridge('demos', '--env', 'reach', '--action-noise', '0.3', '--out', out);
    expect(orphan.stderr).toMatch(/--action-noise: only applies to --policy episodes/);
    const evalOrphan = pbridge(
      'reward-eval',
      '--env',
      'reach',
      '--model',
      'oracle',
      '--policy-episodes',
      '3',
    );
    expect(evalOrphan.stderr).toMatch(/--policy-episodes: only applies with --policy/);
    const wrongDim = pbridge(
      'demos',
      '--env',
      'reach',
      '--policy',
      await zeroPolicy('dim3.onnx', 3),
      '--out',
      out,
    );
    expect(wrongDim.code).toBe(2);
    expect(wrongDim.stderr).toMatch(new RegExp(`obs_dim is 3, expected ${obsDim}`));
    expect(existsSync(out)).toBe(false);
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
