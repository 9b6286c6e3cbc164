/**
 * `pbridge rig-sim` as a separate process against a real server: full episodes round trip into the store, and a
 * rig killed with SIGKILL mid-episode loses no acknowledged step and reads back truncated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeServer } from '../src/bridge/server.ts';
import { RewardService } from '../src/reward/service.ts';
import { OracleProgressModel } from '../src/reward/oracle.ts';
import { decodePng } from '../src/render/png.ts';
import { listEpisodes, readEpisode, readFrame } from '../src/rig/episode-store.ts';
import type { RigSimSummary } from '../src/rig/sim.ts';
import { startRigServer, TOKEN, until } from './rig-helpers.ts';

const servers: BridgeServer[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers.splice(0)) await s.close();
});

function oracle(): NonNullable<Parameters<typeof startRigServer>[0]>['reward'] {
  const service = new RewardService(new OracleProgressModel());
  return { service, id: 'oracle', cameras: [], close: () => service.close() };
}

function rigSim(args: string[]): {
  child: ChildProcess;
  output: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, ['bin/pbridge.js', 'rig-sim', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const output = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, output };
}

describe('pbridge rig-sim', () => {
  it('runs full episodes against the server and the store reads back whole', async () => {
    const s = await startRigServer({ reward: oracle() });
    servers.push(s);
    const { output } = rigSim([
      '--env',
      'push',
      '--url',
      s.wsUrl,
      '--token',
      TOKEN,
      '--episodes',
      '2',
      '--max-steps',
      '12',
      '--fast',
      '--size',
      '32',
      '--intervention-rate',
      '0.25',
      '--json',
    ]);
    const { code, stdout, stderr } = await output;
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as RigSimSummary;
    expect(summary).toMatchObject({
      rig: 'sim-push',
      env: 'push',
      episodes: 2,
      steps: 24,
      policy: 'zero',
      reward: 'oracle',
    });
    expect(summary.latencyMs.p50).toBeGreaterThan(0);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);
    const dirs = await listEpisodes(s.rigs!.storeDir);
    expect(dirs).toHaveLength(2);
    let interventions = 0;
    for (const [i, dir] of dirs.entries()) {
      const ep = await readEpisode(dir);
      expect(ep.tornTail).toBe(false);
      expect(ep.end).toMatchObject({ episode: i, steps: 12, truncated: true, reason: 'time_limit' });
      expect(ep.meta.spec.proprio.names.length).toBe(ep.steps[0]!.proprio.length);
      for (const st of ep.steps) {
        // Every state scored by the oracle from the simulator's privileged progress, none missing.
        expect(st.reward).toMatchObject({ status: 'ok' });
        expect(st.reward!.phi).toBeCloseTo(st.privileged!, 9);
        for (const cam of ['front', 'side', 'wrist']) {
          const png = decodePng(await readFrame(dir, st.frames[cam]!));
          expect([png.width, png.height, png.channels]).toEqual([32, 32, 3]);
        }
        if (st.intervention) interventions++;
      }
      expect(ep.steps.map((x) => x.step)).toEqual([...Array(12).keys()]);
    }
    expect(interventions).toBe(summary.interventions);
  });

  it('a rig killed with SIGKILL mid-episode loses no acknowledged step; the episode reads back truncated', async () => {
    const s = await startRigServer({ reward: oracle() });
    servers.push(s);
    const { child } = rigSim([
      '--env',
      'push',
      '--url',
      s.wsUrl,
      '--token',
      TOKEN,
      '--episodes',
      '1000',
      '--fast',
      '--size',
      '24',
      '--cameras',
      'front',
    ]);
    const conn = await until(() => {
      const c = s.rigs!.rig('sim-push');
      return c && c.acked.length >= 15 ? c : undefined;
    }, 20_000);
    child.kill('SIGKILL');
    // The server notices the dead socket, truncates the episode and closes its files.
    await until(() => (conn.done ? true : undefined));
    await conn.done;
    const acked = [...conn.acked];
    const dirs = await listEpisodes(s.rigs!.storeDir);
    const stored = await Promise.all(dirs.map((d) => readEpisode(d)));
    const storedSeqs = new Set(stored.flatMap((e) => e.steps.map((x) => x.seq)));
    for (const seq of acked) expect(storedSeqs.has(seq)).toBe(true);
    const last = stored[stored.length - 1]!;
    expect(last.end).toMatchObject({ reason: 'disconnect', truncated: true, terminated: false });
    expect(last.truncated).toBe(true);
    expect(last.tornTail).toBe(false);
    expect(last.steps.length).toBe(last.end!.steps);
    // Every stored step settled a reward line before the end line (the server waited for the model's answers).
    expect(last.steps.every((x) => x.reward !== undefined)).toBe(true);
  });
});
