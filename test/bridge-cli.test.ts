/** The bridge commands as users run them: real child processes, real sockets. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeClient, RemotePublisher } from '../src/bridge/client.ts';

const children: ChildProcess[] = [];
const clients: BridgeClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

/** Starts `pbridge ...args` and resolves with the bridge's ws URL once it prints it. */
function pbridge(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ ws: string; out: string[] }> {
  const child = spawn(process.execPath, ['bin/pbridge.js', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no bridge URL:\n${out.join('')}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out.push(d.toString());
      const m = /bridge: (ws:\/\/\S+)/.exec(out.join(''));
      if (m) {
        clearTimeout(timer);
        resolve({ ws: m[1]!, out });
      }
    });
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${out.join('')}`)));
  });
}

describe('bridge commands', () => {
  it('view simulates any MJCF in real time and streams its scene and poses', async () => {
    const { ws, out } = await pbridge(['view', 'robots/arm7/arm7.xml', '--port', '0']);
    expect(out.join('')).toMatch(/viewer: http:\/\/127\.0\.0\.1:\d+\//);
    const v = await BridgeClient.connect(ws, { role: 'viewer' });
    clients.push(v);
    const scene = await v.next('scene');
    expect(scene.name).toBe('arm7.xml');
    const first = await v.next('frame');
    let last = first;
    for (let i = 0; i < 10; i++) last = await v.next('frame');
    expect(last.time).toBeGreaterThan(first.time);
    // Real time: 10 frames at 30 Hz are about a third of a second of simulated time.
    expect(last.time - first.time).toBeLessThan(2);
  });

  it('serve relays a publisher holding PBRIDGE_TOKEN to viewers', async () => {
    const { ws, out } = await pbridge(['serve', '--port', '0'], { PBRIDGE_TOKEN: 'cli-token' });
    expect(out.join('')).not.toMatch(/token:/);
    await expect(BridgeClient.connect(ws, { role: 'publisher' })).rejects.toThrow(/AUTH_REQUIRED/);
    const pub = await RemotePublisher.connect(ws, 'cli-token');
    clients.push(pub.client);
    const v = await BridgeClient.connect(ws, { role: 'viewer' });
    clients.push(v);
    pub.setScene({
      name: 'relay',
      envIds: [0],
      bodies: [{ name: 'world', parent: 0 }],
      geoms: [],
      meshes: [],
      materials: [],
      cameras: [],
      center: [0, 0, 0],
      extent: 1,
    });
    expect((await v.next('scene')).name).toBe('relay');
    pub.episode({ env: 0, episode: 0, return: 1, length: 10, success: true });
    expect(await v.next('episode')).toMatchObject({ success: true, length: 10 });
  });

  it('a port already in use is refused naming --port, and train leaves no run directory behind', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const tmp = mkdtempSync(join(tmpdir(), 'pbridge-port-'));
    const stderrOf = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['bin/pbridge.js', ...args], (_err, _out, stderr) =>
          resolve({ code: child.exitCode, stderr }),
        );
      });
    try {
      const run = join(tmp, 'run');
      const train = await stderrOf([
        ...'train --env reach --reward sparse --steps 64 --port'.split(' '),
        `${port}`,
        '--run-dir',
        run,
      ]);
      expect(train.code).not.toBe(0);
      expect(train.stderr).toMatch(new RegExp(`--port: 127\\.0\\.0\\.1:${port} is already in use`));
      expect(existsSync(run)).toBe(false);
      const serve = await stderrOf(['serve', '--port', `${port}`]);
      expect(serve.code).not.toBe(0);
      expect(serve.stderr).toMatch(/--port: .* is already in use .* --port 0 for any free one/);
    } finally {
      taken.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('train streams the run it is training: scene, poses, Phi with its shaped reward, episodes, metrics, thumbnails', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'pbridge-live-'));
    const run = join(tmp, 'run');
    try {
      const { ws, out } = await pbridge([
        ...'train --env reach --reward default --envs 2 --workers 1 --steps 1000000 --show-envs 2 --port 0'.split(
          ' ',
        ),
        ...['--ppo', 'numSteps=32,numMinibatches=2,updateEpochs=1,gamma=0.9', '--run-dir', run],
      ]);
      expect(out.join('')).toMatch(/viewer: http:\/\/127\.0\.0\.1:\d+\//);
      const v = await BridgeClient.connect(ws, { role: 'viewer' });
      clients.push(v);
      v.send({ type: 'subscribe', envs: [0, 1], thumbnails: true });
      const scene = await v.next('scene', 30_000);
      expect(scene.name).toBe('reach (default)');
      expect(scene.envIds).toEqual([0, 1]);

      // Shaped rewards follow from the stored Phi (gamma 0.9 here), checked across messages: within an
      // episode, shaped(s) = sparse(s) + gamma * Phi(s) - Phi(s - 1).
      const phiOf = new Map<string, number>();
      let checked = 0;
      while (checked < 20) {
        const p = await v.next('progress', 30_000);
        p.phi.forEach((phi, k) => {
          const step = p.step + k;
          const prev = phiOf.get(`${p.env}/${p.episode}/${step - 1}`);
          if (prev !== undefined) {
            expect(p.shaped[k]).toBeCloseTo(p.sparse[k]! + 0.9 * phi - prev, 6);
            checked++;
          }
          phiOf.set(`${p.env}/${p.episode}/${step}`, phi);
        });
      }
      const frame = await v.next('frame', 30_000);
      expect(frame.env === 0 || frame.env === 1).toBe(true);
      // reach episodes last at most 50 steps; the first update comes after 32 steps of each env.
      const episode = await v.next('episode', 60_000);
      expect(episode.length).toBeGreaterThan(0);
      expect(episode.length).toBeLessThanOrEqual(50);
      const metrics = await v.next('metrics', 60_000);
      expect(metrics.step % 64).toBe(0);
      expect(metrics.values.success_rate).toBeGreaterThanOrEqual(0);
      const thumb = await v.next('thumbnail', 30_000);
      expect(thumb.mime).toBe('image/png');
      expect([...thumb.data.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);

      // Ctrl-C (SIGTERM here) stops after the current update and leaves a run that --resume continues.
      const child = children.at(-1)!;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      expect(child.exitCode).toBe(0);
      const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as {
        stopped: boolean;
        steps: number;
      };
      expect(summary.stopped).toBe(true);
      expect(summary.steps).toBeGreaterThanOrEqual(metrics.step);
      expect(existsSync(join(run, 'checkpoint.pbck'))).toBe(true);
      expect(existsSync(join(run, 'policy.onnx'))).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
