/** The bridge server on a real socket (port 0): ordering, backpressure, bad input, authentication, handshake. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BridgeClient, ConnectRefused, RemotePublisher } from '../src/bridge/client.ts';
import type { SceneInit } from '../src/bridge/hub.ts';
import { BridgeServer, type BridgeOptions } from '../src/bridge/server.ts';
import { CLOSE, encodeMessage, fromTensor, SUBPROTOCOL } from '../src/protocol/index.ts';

const servers: BridgeServer[] = [];
const clients: BridgeClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const s of servers.splice(0)) await s.close();
});

async function start(options: BridgeOptions = {}): Promise<BridgeServer> {
  const s = await BridgeServer.start({ port: 0, token: 'test-token', staticDir: false, ...options });
  servers.push(s);
  return s;
}

async function connect(
  s: BridgeServer,
  options: Parameters<typeof BridgeClient.connect>[1],
): Promise<BridgeClient> {
  const c = await BridgeClient.connect(s.wsUrl, options);
  clients.push(c);
  return c;
}

async function open(
  s: BridgeServer,
  options: Parameters<typeof BridgeClient.open>[1],
): Promise<BridgeClient> {
  const c = await BridgeClient.open(s.wsUrl, options);
  clients.push(c);
  return c;
}

/** A chain of `nbody` boxes: enough structure to be a real scene, any size for load tests. */
function chainScene(nbody: number, envIds = [0]): SceneInit {
  return {
    name: `chain-${nbody}`,
    envIds,
    bodies: Array.from({ length: nbody }, (_, i) => ({
      name: i === 0 ? 'world' : `b${i}`,
      parent: Math.max(0, i - 1),
    })),
    geoms: Array.from({ length: nbody - 1 }, (_, i) => ({
      name: `g${i}`,
      body: i + 1,
      geomType: 'box' as const,
      size: [0.05, 0.05, 0.05],
      pos: [0, 0, 0],
      quat: [1, 0, 0, 0],
      rgba: [0.8, 0.3, 0.2, 1],
      material: -1,
      mesh: -1,
      group: 0,
    })),
    meshes: [],
    materials: [],
    cameras: [],
    center: [0, 0, 0],
    extent: 1,
  };
}

/** Poses whose every number encodes `k`, so a received frame says which publish it came from. */
function posesFor(nbody: number, k: number): { pos: Float32Array; quat: Float32Array } {
  return { pos: new Float32Array(3 * nbody).fill(k), quat: new Float32Array(4 * nbody).fill(k) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('bridge streaming', () => {
  it('sends a new viewer the scene once, then frames in order with the published poses', async () => {
    const s = await start({ rateHz: 100 });
    s.hub.setScene(chainScene(4, [0, 1]));
    let k = 0;
    const producer = setInterval(() => {
      k++;
      for (const env of [0, 1]) {
        const p = posesFor(4, k + env / 2);
        s.hub.poses(env, p.pos, p.quat, k * 0.01);
      }
    }, 5);
    try {
      const v = await connect(s, { role: 'viewer' });
      expect(v.welcome).toMatchObject({ protocol: SUBPROTOCOL, role: 'viewer', rateHz: 100 });
      const first = await v.next();
      expect(first.type).toBe('scene');
      const last = new Map<number, number>();
      for (let i = 0; i < 40; i++) {
        const f = await v.next('frame');
        expect(f.sceneId).toBe(1);
        const prev = last.get(f.env) ?? 0;
        expect(f.seq).toBeGreaterThan(prev);
        last.set(f.env, f.seq);
        // Each frame is one consistent publish: the seq-th for this env, every number equal.
        const pos = fromTensor(f.pos);
        expect(pos[0]).toBe(f.seq + f.env / 2);
        expect(new Set(pos).size).toBe(1);
        expect(f.quat.shape).toEqual([4, 4]);
      }
      expect(v.drain().filter((m) => m.type === 'scene')).toHaveLength(0);
      expect(v.invalid).toEqual([]);
    } finally {
      clearInterval(producer);
    }
  });

  it('gives late viewers the current episode curve and the episode history; subscriptions filter envs', async () => {
    const s = await start({ rateHz: 50 });
    s.hub.setScene(chainScene(2, [0, 1]));
    for (let step = 0; step < 5; step++) {
      s.hub.progress(0, { episode: 3, step, phi: step / 10, shaped: 0.01 * step, sparse: 0 });
      s.hub.progress(1, { episode: 1, step, phi: 0.5, shaped: 0, sparse: 0 });
    }
    s.hub.episode({ env: 0, episode: 2, return: 1, length: 40, success: true, totalSteps: 80 });
    s.hub.metrics(80, { kl: 0.01 });
    const v = await open(s, { role: 'viewer' });
    v.send({ type: 'subscribe', envs: [0] });
    let curve = await v.next('progress');
    while (curve.env !== 0) curve = await v.next('progress');
    expect(curve).toMatchObject({ env: 0, episode: 3, step: 0, phi: [0, 0.1, 0.2, 0.3, 0.4] });
    expect(await v.next('episode')).toMatchObject({ env: 0, episode: 2, success: true });
    expect(await v.next('metrics')).toMatchObject({ step: 80, values: { kl: 0.01 } });
    s.hub.progress(0, { episode: 3, step: 5, phi: 0.5, shaped: 0.05, sparse: 1 });
    s.hub.progress(1, { episode: 1, step: 5, phi: 0.5, shaped: 0, sparse: 0 });
    v.drain();
    expect(await v.next('progress')).toMatchObject({ env: 0, step: 5, phi: [0.5], sparse: [1] });
    await sleep(100);
    expect(v.drain().filter((m) => m.type === 'progress' && m.env === 1 && m.step === 5)).toEqual([]);
  });

  it('a viewer that stops reading costs bounded memory, is dropped to the newest frame and does not slow others', async () => {
    const nbody = 2000; // ~56 kB per frame
    const highWater = 256 * 1024;
    const rateHz = 100;
    const s = await start({ rateHz, highWaterBytes: highWater, heartbeatMs: 60_000 });
    s.hub.setScene(chainScene(nbody));
    let k = 0;
    const producer = setInterval(() => {
      const p = posesFor(nbody, ++k);
      s.hub.poses(0, p.pos, p.quat, k);
    }, 1000 / rateHz);
    try {
      const slow = await connect(s, { role: 'viewer', client: 'slow' });
      // Stop reading: the kernel buffers fill, then everything else would pile up in the server's memory.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const fast = await connect(s, { role: 'viewer', client: 'fast' });
      await fast.next('scene');
      const frameBytes = encodeMessage({ type: 'hello', role: 'viewer' }).length + 28 * nbody + 200;
      let maxBuffered = 0;
      let fastFrames = 0;
      const stream = s.hub.envs.get(0)!;
      const version0 = stream.version;
      // Run until enough frames were produced to overflow the kernel's socket buffers (~70 frames here), however
      // slowly a loaded machine runs the producer; time is only a cap.
      const target = 250;
      const t0 = performance.now();
      while (stream.version - version0 < target && performance.now() - t0 < 20_000) {
        await fast.next('frame', 2000);
        fastFrames++;
        const slowStats = s.connections().find((c) => c.session === slow.welcome!.session)!;
        maxBuffered = Math.max(maxBuffered, slowStats.bufferedAmount);
      }
      const produced = stream.version - version0;
      const slowStats = s.connections().find((c) => c.session === slow.welcome!.session)!;
      // What the server holds for the slow peer stays under the high-water mark plus one tick's messages; a
      // queue per viewer would hold ~14 MB by now (100 frames/s of 56 kB; measured 11.7 MB with the bound off).
      // Process memory is not asserted: the clients share this process and GC timing swings it by +-7 MB.
      expect(produced).toBeGreaterThanOrEqual(target);
      expect(maxBuffered).toBeLessThanOrEqual(highWater + 2 * frameBytes);
      // Every produced frame is either sent or dropped; what was sent fits the socket buffers (measured 71 frames,
      // ~4 MB), so most of the 250 were dropped rather than queued.
      expect(slowStats.framesSent + slowStats.framesDropped).toBeGreaterThanOrEqual(produced - 2);
      expect(slowStats.framesDropped).toBeGreaterThan(produced / 2);
      // The fast viewer gets (nearly) every frame the server produced while the slow one was stuck. Compared with
      // what was produced rather than with 100 Hz, so a loaded CI machine slowing the whole process does not count.
      expect(fastFrames).toBeGreaterThanOrEqual(0.9 * produced - 2);
    } finally {
      clearInterval(producer);
    }
  });

  it('sends telemetry before any scene exists (the page treats silence as a dead link)', async () => {
    const s = await start({ telemetryMs: 100 });
    const v = await connect(s, { role: 'viewer' });
    expect(await v.next('telemetry')).toMatchObject({ framesSent: 0, framesDropped: 0, viewers: 1 });
  });

  it('heartbeats terminate a peer that stops answering', async () => {
    const s = await start({ heartbeatMs: 150 });
    const v = await connect(s, { role: 'viewer' });
    (v.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const t0 = performance.now();
    while (s.connections().length > 0 && performance.now() - t0 < 3000) await sleep(50);
    expect(s.connections()).toHaveLength(0);
  });
});

describe('bridge bad input', () => {
  it('answers garbage, text frames, unknown types and bad fields with status codes and keeps serving', async () => {
    const s = await start();
    s.hub.setScene(chainScene(2));
    const v = await connect(s, { role: 'viewer' });
    await v.next('scene');
    v.sendRaw(Uint8Array.from([0xc1, 0xff, 0x00, 0x13]));
    expect(await v.next('status')).toMatchObject({ level: 'error', code: 'MALFORMED_MESSAGE' });
    v.sendRaw('{"type":"hello"}', false);
    expect(await v.next('status')).toMatchObject({
      code: 'MALFORMED_MESSAGE',
      message: expect.stringMatching(/text frames/),
    });
    v.sendRaw(encodeMessage({ type: 'warp', speed: 9 } as never));
    expect(await v.next('status')).toMatchObject({ code: 'UNKNOWN_TYPE', ref: 'warp', path: 'type' });
    v.sendRaw(encodeMessage({ type: 'subscribe', envs: ['all'] } as never));
    expect(await v.next('status')).toMatchObject({ code: 'WRONG_TYPE', path: 'envs[0]', ref: 'subscribe' });
    v.send({ type: 'hello', role: 'viewer' });
    expect(await v.next('status')).toMatchObject({ code: 'ALREADY_GREETED' });
    // Still a working connection.
    const p = posesFor(2, 1);
    s.hub.poses(0, p.pos, p.quat, 0);
    expect((await v.next('frame')).env).toBe(0);
    expect(v.closed).toBeUndefined();
  });

  it('answers an oversize message with PAYLOAD_TOO_LARGE; past maxPayload ws closes with 1009', async () => {
    const s = await start({ viewerMaxMessageBytes: 1024, maxPayload: 64 * 1024 });
    const v = await connect(s, { role: 'viewer' });
    v.sendRaw(new Uint8Array(4096));
    expect(await v.next('status')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    v.send({ type: 'subscribe', envs: [0] });
    await sleep(50);
    expect(v.drain().filter((m) => m.type === 'status')).toEqual([]);
    v.sendRaw(new Uint8Array(128 * 1024));
    expect((await v.whenClosed()).code).toBe(1009);
  });

  it('requires hello first and closes a connection that never sends one', async () => {
    const s = await start({ helloTimeoutMs: 200 });
    const ws = new WebSocket(s.wsUrl, SUBPROTOCOL);
    const got: unknown[] = [];
    ws.on('message', (d) => got.push(d));
    await new Promise((r) => ws.once('open', r));
    ws.send(encodeMessage({ type: 'subscribe' }));
    const closed = await new Promise<number>((r) => ws.once('close', (code) => r(code)));
    expect(closed).toBe(CLOSE.BAD_HELLO);
    expect(got.length).toBeGreaterThanOrEqual(2); // HELLO_REQUIRED for the subscribe, then for the timeout
  });
});

describe('bridge authentication and handshake', () => {
  it('refuses control roles without the token or with a wrong one, and viewers sending control messages', async () => {
    const s = await start();
    await expect(connect(s, { role: 'publisher' })).rejects.toMatchObject({
      status: { code: 'AUTH_REQUIRED' },
    });
    await expect(connect(s, { role: 'publisher', token: 'nope' })).rejects.toMatchObject({
      status: { code: 'AUTH_FAILED' },
    });
    const p = await open(s, { role: 'publisher' });
    expect((await p.whenClosed()).code).toBe(CLOSE.UNAUTHORIZED);
    await expect(connect(s, { role: 'viewer', token: 'wrong' })).rejects.toBeInstanceOf(ConnectRefused);
    const v = await connect(s, { role: 'viewer' });
    v.send({ type: 'scene', sceneId: 9, ...chainScene(2) });
    expect(await v.next('status')).toMatchObject({ code: 'NOT_ALLOWED', ref: 'scene' });
    expect(s.hub.scene).toBeUndefined();
  });

  it('lets a publisher with the token drive what viewers see', async () => {
    const s = await start({ rateHz: 100 });
    const pub = await RemotePublisher.connect(s.wsUrl, 'test-token');
    clients.push(pub.client);
    const v = await connect(s, { role: 'viewer' });
    pub.setScene(chainScene(3, [0, 1]));
    const scene = await v.next('scene');
    expect(scene.envIds).toEqual([0, 1]);
    const p = posesFor(3, 2.5);
    pub.poses(1, p.pos, p.quat, 0.5);
    const f = await v.next('frame');
    expect([f.env, fromTensor(f.pos)[4]]).toEqual([1, 2.5]);
    pub.poses(7, p.pos, p.quat, 0.5);
    expect(await pub.client.next('status')).toMatchObject({ code: 'SCENE_MISMATCH' });
  });

  it('on a non-loopback address every role needs the token', async () => {
    const s = await start({ host: '0.0.0.0' });
    expect(s.viewersNeedToken).toBe(true);
    expect(s.viewerUrl()).toContain('?token=test-token');
    await expect(connect(s, { role: 'viewer' })).rejects.toMatchObject({ status: { code: 'AUTH_REQUIRED' } });
    expect((await connect(s, { role: 'viewer', token: 'test-token' })).welcome?.role).toBe('viewer');
  });

  it('closes a subprotocol mismatch with 4406 and a reason naming the supported one', async () => {
    const s = await start();
    for (const protocols of [['progress-bridge.v0'], []]) {
      const ws = new WebSocket(s.wsUrl, protocols);
      const closed = await new Promise<{ code: number; reason: string }>((r) =>
        ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
      );
      expect(closed.code).toBe(CLOSE.UNSUPPORTED_SUBPROTOCOL);
      expect(closed.reason).toContain(SUBPROTOCOL);
    }
  });

  it('checks Origin for browsers: same origin passes, other sites and rebinding host names are refused', async () => {
    const s = await start();
    const origin = s.url.replace(/\/$/, '');
    expect((await connect(s, { role: 'viewer', origin })).welcome).toBeDefined();
    await expect(connect(s, { role: 'viewer', origin: 'http://evil.example' })).rejects.toThrow(/HTTP 403/);
    // DNS rebinding: a foreign name that resolves to 127.0.0.1 is same-origin with itself, not a loopback name.
    const rebound = await new Promise<number>((resolve) => {
      const ws = new WebSocket(s.wsUrl, SUBPROTOCOL, {
        headers: { host: `evil.example:${s.listenPort}` },
        origin: `http://evil.example:${s.listenPort}`,
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => {});
    });
    expect(rebound).toBe(403);
  });
});

describe('bridge HTTP', () => {
  it('serves the viewer files and status JSON, and nothing outside the viewer directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pbridge-static-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>v</title>');
    const s = await start({ staticDir: dir });
    const index = await fetch(s.url);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toContain('<title>v</title>');
    const status = (await (await fetch(`${s.url}api/status`)).json()) as { protocol: string };
    expect(status.protocol).toBe(SUBPROTOCOL);
    for (const path of ['..%2f..%2fpackage.json', '%2e%2e/%2e%2e/package.json', 'missing.js']) {
      expect([403, 404]).toContain((await fetch(`${s.url}${path}`)).status);
    }
  });
});
