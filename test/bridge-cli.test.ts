/** The bridge commands as users run them: real child processes, real sockets. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
    if (child.exitCode !== null) continue;
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
});
