/**
 * `pbridge eval` as other tools call it: a real child process running a real ONNX file in onnxruntime-node and
 * the real MuJoCo env. Proves: a policy exported from a fresh learner for `reach` evaluates with a JSON summary
 * whose totals agree with its per-episode rows, deterministically for a seed; the inverted pendulum evaluates
 * through the same command; a policy whose obs_dim or act_dim does not fit the env exits 2 with
 * ONNX_SIGNATURE_MISMATCH naming the dimension and both sizes; a missing --policy is INVALID_ARGUMENT. With
 * --sample the actions are the mean plus Gaussian noise of the file's action_std: measured on a recording env, the
 * noise has that spread per dimension, zero mean and no correlation between dimensions, replays per episode from its
 * seed, and --action-noise 0 is the mean action exactly.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluatePolicy, type EvalEnv } from '../src/train/evaluate.ts';
import { makeEnv } from '../src/env/make.ts';
import { exportPolicyOnnx, loadOnnxPolicy } from '../src/onnx/index.ts';
import { exportLearnerPolicy } from '../src/learn/export.ts';
import { PpoLearner } from '../src/learn/ppo.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pbridge-cli-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pbridge(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/pbridge.js', ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function exportFresh(path: string, obsDim: number, actDim: number, metadata = {}): Promise<void> {
  const learner = new PpoLearner({
    obsDim,
    actDim,
    numEnvs: 1,
    seed: 3,
    config: { numSteps: 8, numMinibatches: 1 },
  });
  await exportLearnerPolicy(learner, path, { metadata });
}

interface Episode {
  seed: number;
  success: boolean;
  return: number;
  length: number;
}

let reachObs = 0;
let reachAct = 0;
let reachSteps = 0;
beforeAll(async () => {
  const env = await makeEnv('reach');
  reachObs = env.obsDim;
  reachAct = env.actDim;
  reachSteps = env.episodeSteps;
  env.close();
});

describe('pbridge eval', () => {
  it('evaluates an exported policy on reach: JSON totals agree with the episodes, same seed same result', async () => {
    const path = join(dir, 'reach.onnx');
    await exportFresh(path, reachObs, reachAct, { env: 'reach' });
    const args = ['eval', '--policy', path, '--env', 'reach', '--episodes', '3', '--seed', '4', '--json'];
    const r = await pbridge(...args);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ env: 'reach', policy: path, episodes: 3, seed: 4 });
    expect(s.policy_metadata).toMatchObject({
      obs_dim: String(reachObs),
      act_dim: String(reachAct),
      env: 'reach',
    });
    const eps = s.per_episode as Episode[];
    expect(eps.map((e) => e.seed)).toEqual([4, 5, 6]);
    expect(s.success_rate).toBeCloseTo(eps.filter((e) => e.success).length / 3, 12);
    expect(s.mean_return).toBeCloseTo(eps.reduce((a, e) => a + e.return, 0) / 3, 12);
    expect(s.mean_episode_length).toBeCloseTo(eps.reduce((a, e) => a + e.length, 0) / 3, 12);
    expect(s.env_steps).toBe(eps.reduce((a, e) => a + e.length, 0));
    expect(s.steps_per_s).toBeGreaterThan(0);
    expect(s.policy_ms_per_step).toBeGreaterThan(0);
    // reach does not end early except on success.
    for (const e of eps) expect(e.success || e.length === reachSteps).toBe(true);

    const again = JSON.parse((await pbridge(...args)).stdout);
    expect(again.per_episode).toEqual(s.per_episode);
  });

  it('evaluates the inverted pendulum, where the terminating step earns 0', async () => {
    const path = join(dir, 'pendulum.onnx');
    await exportFresh(path, 4, 1);
    const r = await pbridge(
      'eval',
      '--policy',
      path,
      '--env',
      'inverted-pendulum',
      '--episodes',
      '2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.env).toBe('inverted-pendulum');
    for (const e of s.per_episode as Episode[]) {
      expect(e.success).toBe(false);
      expect(e.length).toBeLessThan(1000);
      expect(e.return).toBe(e.length - 1);
    }
  });

  it('refuses a policy whose obs_dim does not fit the env, naming the dimension (exit 2)', async () => {
    const path = join(dir, 'wrong-obs.onnx');
    await exportFresh(path, reachObs + 3, reachAct);
    const r = await pbridge('eval', '--policy', path, '--env', 'reach', '--episodes', '1', '--json');
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout);
    expect(error.code).toBe('ONNX_SIGNATURE_MISMATCH');
    expect(error.message).toContain(`obs_dim is ${reachObs + 3}`);
    expect(error.message).toContain(`observes ${reachObs} values`);

    const human = await pbridge('eval', '--policy', path, '--env', 'reach', '--episodes', '1');
    expect(human.code).toBe(2);
    expect(human.stderr).toMatch(/^error \[ONNX_SIGNATURE_MISMATCH\]: .*obs_dim/m);
  });

  it('refuses a policy whose act_dim does not fit the env, and a missing --policy', async () => {
    const path = join(dir, 'wrong-act.onnx');
    await exportFresh(path, reachObs, reachAct + 1);
    const r = await pbridge('eval', '--policy', path, '--env', 'reach', '--json');
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout);
    expect(error.code).toBe('ONNX_SIGNATURE_MISMATCH');
    expect(error.message).toContain(`act_dim is ${reachAct + 1}`);

    const missing = await pbridge('eval', '--env', 'reach', '--json');
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout).error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('pbridge eval --sample', () => {
  const STD = [0.1, 0.5, 1, 2];
  const OBS = 3;
  const LENGTH = 500;

  /** Ends every episode after LENGTH steps and keeps every action it was given. */
  function recordingEnv(): EvalEnv & { actions: number[][] } {
    let step = 0;
    const actions: number[][] = [];
    return {
      name: 'recording',
      obsDim: OBS,
      actDim: STD.length,
      actions,
      reset(_seed, obs) {
        step = 0;
        obs.fill(0.5);
      },
      step(action) {
        actions.push([...action]);
        step++;
        return { reward: 0, terminated: false, truncated: step === LENGTH, success: false };
      },
      get episodeStep() {
        return step;
      },
      close() {},
    };
  }

  /** A policy whose mean action is the constant `mean` and whose file carries STD as its action_std. */
  async function constantPolicy(name: string, mean: number[]): Promise<string> {
    const path = join(dir, name);
    await exportPolicyOnnx(
      {
        obsDim: OBS,
        actDim: STD.length,
        layers: [{ W: new Float32Array(OBS * STD.length), b: Float32Array.from(mean), activation: 'none' }],
        obsMean: new Float32Array(OBS),
        obsStd: new Float32Array(OBS).fill(1),
        obsClip: 5,
        metadata: { action_std: JSON.stringify(STD) },
      },
      path,
    );
    return path;
  }

  it('adds noise of the given spread per dimension, with zero mean and no cross-correlation', async () => {
    const mean = [0.3, -0.2, 0, 0.7];
    const policy = await loadOnnxPolicy(await constantPolicy('constant.onnx', mean));
    try {
      const env = recordingEnv();
      const s = await evaluatePolicy(policy, env, 8, 11, undefined, STD);
      expect(s.action_std).toEqual(STD);
      const n = env.actions.length;
      expect(n).toBe(8 * LENGTH);
      const noise = env.actions.map((a) => a.map((v, k) => v - mean[k]!));
      for (let k = 0; k < STD.length; k++) {
        const m = noise.reduce((acc, e) => acc + e[k]!, 0) / n;
        const sd = Math.sqrt(noise.reduce((acc, e) => acc + (e[k]! - m) ** 2, 0) / n);
        // 4000 draws: the sample mean is within 4 standard errors of 0, the sample std within 5% of the target.
        expect(Math.abs(m)).toBeLessThan((4 * STD[k]!) / Math.sqrt(n));
        expect(sd / STD[k]!).toBeGreaterThan(0.95);
        expect(sd / STD[k]!).toBeLessThan(1.05);
      }
      const corr = (i: number, j: number): number =>
        noise.reduce((acc, e) => acc + e[i]! * e[j]!, 0) / n / (STD[i]! * STD[j]!);
      for (let i = 0; i < STD.length; i++)
        for (let j = i + 1; j < STD.length; j++) {
          expect(Math.abs(corr(i, j))).toBeLessThan(0.07);
        }

      // Episode 3 of that run (seed 14) replays alone; without noise every action is the mean.
      const alone = recordingEnv();
      await evaluatePolicy(policy, alone, 1, 14, undefined, STD);
      expect(alone.actions).toEqual(env.actions.slice(3 * LENGTH, 4 * LENGTH));
      const plain = recordingEnv();
      const p = await evaluatePolicy(policy, plain, 1, 14);
      expect(p.action_std).toBeNull();
      for (const a of plain.actions) a.forEach((v, k) => expect(v).toBeCloseTo(mean[k]!, 6));
    } finally {
      await policy.close();
    }
  });

  it('reads action_std from the file; --action-noise 0 is the mean action; both at once is refused', async () => {
    const path = join(dir, 'reach-std.onnx');
    await exportFresh(path, reachObs, reachAct, { env: 'reach' });
    const base = ['eval', '--policy', path, '--env', 'reach', '--episodes', '2', '--json'];
    const sampled = JSON.parse((await pbridge(...base, '--sample')).stdout);
    const fileStd = JSON.parse(sampled.policy_metadata.action_std) as number[];
    expect(sampled.action_std).toEqual(fileStd);
    const mean = JSON.parse((await pbridge(...base)).stdout);
    const zero = JSON.parse((await pbridge(...base, '--action-noise', '0')).stdout);
    expect(mean.action_std).toBeNull();
    expect(zero.action_std).toEqual(new Array(reachAct).fill(0));
    expect(zero.per_episode).toEqual(mean.per_episode);

    const both = await pbridge(...base, '--sample', '--action-noise', '0.3');
    expect(both.code).toBe(2);
    expect(JSON.parse(both.stdout).error.message).toContain('--action-noise');
  });
});
