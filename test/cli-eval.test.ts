/**
 * `pbridge eval` as other tools call it: a real child process running a real ONNX file in onnxruntime-node and
 * the real MuJoCo env. Proves: a policy exported from a fresh learner for `reach` evaluates with a JSON summary
 * whose totals agree with its per-episode rows, deterministically for a seed; the inverted pendulum evaluates
 * through the same command; a policy whose obs_dim or act_dim does not fit the env exits 2 with
 * ONNX_SIGNATURE_MISMATCH naming the dimension and both sizes; a missing --policy is INVALID_ARGUMENT.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
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
