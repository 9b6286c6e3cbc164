/**
 * Training on rigs end to end, over a real bridge on loopback: PPO learns a task it only sees through the rig
 * protocol, and `pbridge train --rig` keeps training when a rig leaves, leaves visitors out, and writes the same
 * run directory as a simulated run.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RigHostOptions } from '../src/bridge/rig/host.ts';
import { BridgeClient } from '../src/bridge/client.ts';
import type { BridgeServer } from '../src/bridge/server.ts';
import { cmdTrainRig } from '../src/cli/train-rig.ts';
import { Rng } from '../src/env/rng.ts';
import { loadLearnerCheckpoint } from '../src/learn/checkpoint-io.ts';
import { loadOnnxPolicy } from '../src/onnx/policy.ts';
import type { RigSpec } from '../src/protocol/index.ts';
import { openProgressModel } from '../src/reward/open-model.ts';
import { RewardService } from '../src/reward/service.ts';
import { actionOf, RigClient } from '../src/rig/client.ts';
import { runRigSim } from '../src/rig/sim.ts';
import { defaultRigTrainConfig, RigTrainer } from '../src/train/rig/trainer.ts';
import { startRigServer, TOKEN } from './rig-helpers.ts';

async function oracleReward(): Promise<NonNullable<RigHostOptions['reward']>> {
  const opened = await openProgressModel('oracle');
  const service = new RewardService(opened.model, { maxWaitMs: 0 });
  return { service, id: opened.model.id, cameras: [], close: () => service.close() };
}

/**
 * A one-dimensional rig: proprio is the signed distance e to a target, the action a in [-0.2, 0.2] moves it
 * by a, the success sensor fires within 0.1, and an episode gives up after 30 observations. Starts are
 * |e0| in [0.5, 1], so the best policy needs ceil((|e0| - 0.1) / 0.2) <= 5 moves: 3 to 6 observations.
 */
async function lineRig(
  url: string,
  name: string,
  stop: () => boolean,
): Promise<{ lengths: number[]; successes: boolean[] }> {
  const spec: RigSpec = {
    name,
    instruction: 'move to the target',
    cameras: [],
    proprio: { names: ['error'] },
    // Bounds in the rig's own units: the learner's [-1, 1] is mapped onto them.
    action: { dim: 1, low: [-0.2], high: [0.2], rateHz: 20 },
    successSensor: true,
  };
  const rig = await RigClient.connect(url, TOKEN, spec);
  const rng = new Rng(3);
  const lengths: number[] = [];
  const successes: boolean[] = [];
  try {
    while (!stop()) {
      let e = (rng.uniform(0, 1) < 0.5 ? -1 : 1) * rng.uniform(0.5, 1);
      let k = 0;
      let success = false;
      for (; k < 30; k++) {
        success = Math.abs(e) < 0.1;
        const reply = await rig.step({
          frames: {},
          proprio: Float32Array.of(e),
          time: k / 20,
          success,
          privileged: Math.max(0, 1 - Math.abs(e)),
        });
        if (reply.ended) break;
        // A late action is held, as the protocol asks: the state does not move.
        if (!reply.late) e = Math.max(-1.5, Math.min(1.5, e + actionOf(reply)[0]!));
      }
      lengths.push(Math.min(k + 1, 30));
      successes.push(success);
      await rig.reset(success ? 'episode_end' : 'time_limit');
    }
  } finally {
    rig.close();
  }
  return { lengths, successes };
}

describe('PPO on rigs', () => {
  it('learns a task seen only through the rig protocol (oracle Phi, success sensor)', async () => {
    const trainer = new RigTrainer(
      defaultRigTrainConfig({
        rigs: ['line'],
        steps: 256 * 30,
        rolloutSteps: 256,
        seed: 1,
        reward: 'oracle',
      }),
    );
    const server = await startRigServer({ policy: trainer, observer: trainer, reward: await oracleReward() });
    let done = false;
    try {
      const rig = lineRig(server.wsUrl, 'line', () => done);
      const result = await trainer.run();
      done = true;
      const { lengths, successes } = await rig;
      expect(result.counters.step).toBe(256 * 30);
      const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
      const first = lengths.slice(0, 30);
      const last = lengths.slice(-30);
      // Acting at random the walk rarely reaches the target quickly; the learned policy heads straight there.
      expect(mean(first)).toBeGreaterThan(15);
      expect(mean(last)).toBeLessThan(8);
      expect(mean(successes.slice(-30).map((s) => (s ? 1 : 0)))).toBeGreaterThanOrEqual(0.9);
    } finally {
      done = true;
      await server.close();
    }
  }, 120_000);
});

describe('rig learner bounds', () => {
  it("maps actions onto the first trained rig's bounds and refuses a trained rig with other bounds", async () => {
    const trainer = new RigTrainer(defaultRigTrainConfig({ rigs: ['left', 'right'], rolloutSteps: 64 }));
    const server = await startRigServer({ policy: trainer, observer: trainer });
    const spec = (name: string, low: number[], high: number[]): RigSpec => ({
      name,
      instruction: 'move to the target',
      cameras: [],
      proprio: { names: ['x', 'y'] },
      action: { dim: 2, low, high, rateHz: 10 },
      successSensor: true,
    });
    try {
      const left = await RigClient.connect(server.wsUrl, TOKEN, spec('left', [0, -3], [10, -1]));
      for (let k = 0; k < 20; k++) {
        const a = actionOf(await left.step({ frames: {}, proprio: Float32Array.of(k, -k), time: k }));
        expect(a[0]).toBeGreaterThanOrEqual(0);
        expect(a[0]).toBeLessThanOrEqual(10);
        expect(a[1]).toBeGreaterThanOrEqual(-3);
        expect(a[1]).toBeLessThanOrEqual(-1);
      }
      expect(trainer.bounds).toEqual({ low: [0, -3], high: [10, -1] });
      await expect(RigClient.connect(server.wsUrl, TOKEN, spec('right', [0, -3], [10, 1]))).rejects.toThrow(
        /SPEC_MISMATCH.*high\[1\]/,
      );
      // A visitor (not trained on) with other bounds is served; the host clips into its own bounds.
      const visitor = await RigClient.connect(server.wsUrl, TOKEN, spec('visitor', [-1, -1], [1, 1]));
      const v = actionOf(await visitor.step({ frames: {}, proprio: Float32Array.of(0, 0), time: 0 }));
      expect(Math.abs(v[0]!)).toBeLessThanOrEqual(1);
      left.close();
      visitor.close();
    } finally {
      await server.close();
    }
  });
});

describe('pbridge train --rig', () => {
  it('trains on the named rigs, keeps going when one leaves, and writes a resumable run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pb-rig-train-'));
    const runDir = join(root, 'run');
    const store = join(root, 'store');
    process.env.PBRIDGE_TOKEN = TOKEN;
    let bridge!: BridgeServer;
    let bridgeUp!: () => void;
    const up = new Promise<void>((resolve) => (bridgeUp = resolve));
    const trainingDone = cmdTrainRig(
      [
        '--rig',
        'sim-a,sim-b',
        '--reward',
        'oracle',
        '--rollout',
        '128',
        '--steps',
        '512',
        '--port',
        '0',
      ].concat(['--run-dir', runDir, '--rig-store', store, '--json']),
      {
        onBridge: (b) => {
          bridge = b;
          bridgeUp();
        },
      },
    );
    await up;
    const url = bridge.wsUrl;
    // A viewer gets a scene that passes the protocol's checks, with one stream per named rig.
    const viewer = await BridgeClient.connect(url, { role: 'viewer' });
    const scene = await viewer.next('scene');
    expect(scene.envIds).toEqual([0, 1]);
    expect(scene.envNames).toEqual(['sim-a', 'sim-b']);
    expect(scene.name).toContain('sim-a, sim-b');
    viewer.close();
    const common = {
      env: 'reach',
      url,
      token: TOKEN,
      fast: true,
      maxSteps: 40,
      cameras: ['front'],
      size: 32,
    };
    const leaver = new AbortController();
    let bSteps = 0;
    const rigs = [
      runRigSim({ ...common, name: 'sim-a', episodes: 10_000, seed: 1 }),
      runRigSim({
        ...common,
        name: 'sim-b',
        episodes: 10_000,
        seed: 2,
        signal: leaver.signal,
        // Leaves mid-episode, partway into the first rollout.
        onStep: () => void (++bSteps === 70 && leaver.abort()),
      }),
      runRigSim({ ...common, name: 'visitor', episodes: 3, seed: 3 }),
    ].map((p) => p.catch((err: Error) => err));
    const summary = await trainingDone;
    const outcomes = await Promise.all(rigs);

    expect(summary.steps).toBe(512);
    expect(summary.updates).toBe(4);
    expect(summary.stopped).toBe(false);
    // The visitor was served (by the learner's mean action) and completed its episodes.
    const visitor = outcomes[2] as Awaited<ReturnType<typeof runRigSim>>;
    // The rig that stayed learns the server went away from its summary, not from an error.
    expect(outcomes[0]).toMatchObject({ rig: 'sim-a', stoppedBy: 'server_shutdown' });
    expect(outcomes[1]).toMatchObject({ rig: 'sim-b', stoppedBy: 'aborted' });
    expect(visitor.episodes).toBe(3);
    expect(visitor.policy).toBe('learner');

    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { update: number; step: number; rigs: { per_rig: Record<string, number> } },
      );
    expect(metrics.map((m) => m.step)).toEqual([128, 256, 384, 512]);
    for (const m of metrics) {
      expect(Object.values(m.rigs.per_rig).reduce((a, b) => a + b, 0)).toBe(128);
      expect(m.rigs.per_rig.visitor).toBeUndefined();
    }
    const fromB = metrics.reduce((a, m) => a + (m.rigs.per_rig['sim-b'] ?? 0), 0);
    // sim-b sent 70 observations: at most 69 transitions, all of them kept (no late or held actions here).
    expect(fromB).toBeGreaterThan(0);
    expect(fromB).toBeLessThanOrEqual(69);
    expect(metrics.at(-1)!.rigs.per_rig['sim-a']).toBe(128);

    // sim-b's last episode was cut by its departure: stored, truncated, reason disconnect.
    const bEpisodes = readdirSync(join(store, 'sim-b')).sort();
    const lastLines = readFileSync(join(store, 'sim-b', bEpisodes.at(-1)!, 'steps.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const end = JSON.parse(lastLines.at(-1)!) as { kind: string; reason: string; truncated: boolean };
    expect(end).toMatchObject({ kind: 'end', reason: 'disconnect', truncated: true });

    // The run directory is that of a simulated run: checkpoint, policy and summary, readable by their tools.
    const ck = await loadLearnerCheckpoint(join(runDir, 'checkpoint.pbck'), { numEnvs: 1 });
    expect(ck.extra.step).toBe(512);
    expect(ck.learner.obsDim).toBe(28);
    const policy = await loadOnnxPolicy(join(runDir, 'policy.onnx'));
    expect([policy.obsDim, policy.actDim]).toEqual([28, 4]);
    await policy.close();
    expect(existsSync(join(runDir, 'summary.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'))).toMatchObject({
      kind: 'rig',
      rigs: ['sim-a', 'sim-b'],
      rolloutSteps: 128,
    });
  }, 180_000);

  it('resumes a stopped rig run from its checkpoint', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pb-rig-resume-'));
    const runDir = join(root, 'run');
    process.env.PBRIDGE_TOKEN = TOKEN;
    const session = async (
      args: string[],
      stopAfter?: number,
    ): Promise<Awaited<ReturnType<typeof cmdTrainRig>>> => {
      let bridge!: BridgeServer;
      let bridgeUp!: () => void;
      const up = new Promise<void>((resolve) => (bridgeUp = resolve));
      let updates = 0;
      const training = cmdTrainRig(args.concat(['--port', '0', '--json']), {
        onBridge: (b) => {
          bridge = b;
          bridgeUp();
        },
        extra: {
          onUpdate: () => void updates++,
          shouldStop: () => stopAfter !== undefined && updates >= stopAfter,
        },
      });
      await up;
      const rig = runRigSim({
        env: 'reach',
        url: bridge.wsUrl,
        token: TOKEN,
        fast: true,
        maxSteps: 40,
        cameras: ['front'],
        size: 32,
        name: 'sim-a',
        episodes: 10_000,
      }).catch((err: Error) => err);
      const summary = await training;
      await rig;
      return summary;
    };
    const first = await session(
      ['--rig', 'sim-a', '--reward', 'oracle', '--rollout', '64', '--steps', '256'].concat([
        '--run-dir',
        runDir,
        '--rig-store',
        join(root, 'store'),
      ]),
      1,
    );
    expect(first).toMatchObject({ stopped: true, steps: 64, updates: 1 });
    const second = await session(['--resume', runDir]);
    expect(second).toMatchObject({ stopped: false, steps: 256, updates: 4 });
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([64, 128, 192, 256]);
    const ck = await loadLearnerCheckpoint(join(runDir, 'checkpoint.pbck'), { numEnvs: 1 });
    expect(ck.extra.step).toBe(256);
  }, 120_000);
});
