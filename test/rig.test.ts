/**
 * The rig role against a real server on loopback: authentication, spec checks at hello, the action path (zero,
 * ONNX, late), episode control (success sensor, human marks, model-detected success, interventions, resets), the
 * store reading back what was acknowledged, and reconnects starting new episodes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeClient } from '../src/bridge/client.ts';
import type { BridgeServer } from '../src/bridge/server.ts';
import { buildPolicyOnnx } from '../src/onnx/policy.ts';
import { CLOSE } from '../src/protocol/index.ts';
import { actionOf, RigClient, RigRequestFailed } from '../src/rig/client.ts';
import { listEpisodes, readEpisode, readFrame } from '../src/rig/episode-store.ts';
import { encodeJpeg } from '../src/rig/jpeg.ts';
import { loadRigPolicy, type RigPolicy } from '../src/rig/policy.ts';
import {
  BrightnessModel,
  brightnessReward,
  sleep,
  smallObs,
  smallSpec,
  startRigServer,
  tempStore,
  TOKEN,
} from './rig-helpers.ts';
import { RewardService } from '../src/reward/service.ts';

const servers: BridgeServer[] = [];
const rigs: RigClient[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) r.client.ws.terminate();
  for (const s of servers.splice(0)) await s.close();
});

async function server(...args: Parameters<typeof startRigServer>): Promise<BridgeServer> {
  const s = await startRigServer(...args);
  servers.push(s);
  return s;
}

async function rig(s: BridgeServer, spec = smallSpec()): Promise<RigClient> {
  const r = await RigClient.connect(s.wsUrl, TOKEN, spec);
  rigs.push(r);
  return r;
}

async function episodes(s: BridgeServer): Promise<Awaited<ReturnType<typeof readEpisode>>[]> {
  const dirs = await listEpisodes(s.rigs!.storeDir);
  return Promise.all(dirs.map((d) => readEpisode(d)));
}

describe('rig authentication and spec', () => {
  it('refuses a rig without a token or with a wrong one (4401), even on loopback', async () => {
    const s = await server();
    for (const [token, code] of [
      [undefined, 'AUTH_REQUIRED'],
      ['wrong', 'AUTH_FAILED'],
    ] as const) {
      const c = await BridgeClient.open(s.wsUrl, {
        role: 'rig',
        rig: smallSpec(),
        ...(token ? { token } : {}),
      });
      const status = await c.next('status');
      expect(status.code).toBe(code);
      expect((await c.whenClosed()).code).toBe(CLOSE.UNAUTHORIZED);
    }
    expect(s.rigs!.stats()).toEqual([]);
  });

  it('refuses a rig hello without a spec, and rigs on a server without rig support', async () => {
    const s = await server();
    const c = await BridgeClient.open(s.wsUrl, { role: 'rig', token: TOKEN });
    expect(await c.next('status')).toMatchObject({ code: 'MISSING_FIELD', path: 'rig' });
    expect((await c.whenClosed()).code).toBe(CLOSE.BAD_HELLO);
    const { BridgeServer } = await import('../src/bridge/server.ts');
    const plain = await BridgeServer.start({ port: 0, token: TOKEN, staticDir: false });
    servers.push(plain);
    const d = await BridgeClient.open(plain.wsUrl, { role: 'rig', token: TOKEN, rig: smallSpec() });
    expect(await d.next('status')).toMatchObject({ code: 'NOT_ALLOWED' });
  });

  it('checks an ONNX policy against the declared spec at hello, naming the field', async () => {
    const dir = tempStore();
    const path = join(dir, 'policy.onnx');
    // action = clip(W obs, bounds) with W picking q0 and q1: predictable without running the model here.
    writeFileSync(
      path,
      buildPolicyOnnx({
        obsDim: 3,
        actDim: 2,
        layers: [{ W: [1, 0, 0, 0, 1, 0], b: [0.25, 0], activation: 'none' }],
        obsMean: [0, 0, 0],
        obsStd: [1, 1, 1],
        obsClip: Infinity,
      }),
    );
    const s = await server({ policy: await loadRigPolicy(path) });
    for (const [spec, field] of [
      [smallSpec({ proprio: { names: ['a', 'b'] } }), 'rig.proprio.names'],
      [smallSpec({ action: { dim: 3, low: [-1, -1, -1], high: [1, 1, 1], rateHz: 10 } }), 'rig.action.dim'],
    ] as const) {
      const err = await RigClient.connect(s.wsUrl, TOKEN, spec).catch((e: unknown) => e);
      expect((err as { status?: { code: string; path: string } }).status).toMatchObject({
        code: 'SPEC_MISMATCH',
        path: field,
      });
    }
    const r = await rig(s);
    expect(r.ready.policy).toBe(`onnx:${path}`);
    const a = await r.step(smallObs(0, { proprio: Float32Array.from([0.1, -2, 7]) }));
    // q0 + 0.25 = 0.35 inside [-1, 1]; q1 = -2 clipped to the declared low of -0.5.
    expect(Array.from(actionOf(a))).toEqual([Math.fround(0.35), -0.5]);
  });

  it('scores jpeg cameras, refuses a rig without a camera the model reads, and stores frames as received', async () => {
    const s = await server({ reward: brightnessReward() });
    const noFront = smallSpec({ cameras: [{ name: 'side', width: 8, height: 8, encoding: 'raw' }] });
    await expect(RigClient.connect(s.wsUrl, TOKEN, noFront)).rejects.toMatchObject({
      status: { code: 'SPEC_MISMATCH', path: 'rig.cameras' },
    });
    const r = await rig(
      s,
      smallSpec({
        cameras: [
          { name: 'front', width: 37, height: 29, encoding: 'jpeg' },
          { name: 'wrist', width: 37, height: 29, encoding: 'jpeg' },
        ],
      }),
    );
    const grey = (v: number): Uint8Array => encodeJpeg(new Uint8Array(37 * 29 * 3).fill(v), 37, 29, 95);
    const progressive = new Uint8Array(
      readFileSync(new URL('./fixtures/jpeg/progressive.jpg', import.meta.url)),
    );
    for (let k = 0; k < 4; k++)
      await r.step(smallObs(k, { frames: { front: grey(51 * k), wrist: progressive } }));
    // A progressive JPEG on the model's camera cannot be decoded: Phi is missing and held, with one warning.
    await r.step(smallObs(4, { frames: { front: progressive, wrist: progressive } }));
    await r.reset();
    const [ep] = await episodes(s);
    expect(await readFrame(ep!.dir, ep!.steps[1]!.frames.wrist!)).toEqual(Buffer.from(progressive));
    // Brightness of JPEG-coded uniform greys: within a level of 51 k / 255.
    ep!.steps
      .slice(0, 4)
      .forEach((st, k) => expect(Math.abs(st.reward!.phi - (51 * k) / 255)).toBeLessThan(2 / 255));
    expect(ep!.steps[4]!.reward).toMatchObject({ status: 'error', answer: null });
    expect(ep!.steps[4]!.reward!.phi).toBe(ep!.steps[3]!.reward!.phi);
    const warning = r.notices.find((m) => m.level === 'warning');
    expect(warning).toMatchObject({ message: expect.stringMatching(/progressive JPEG/) });
  });
});

describe('rig episodes', () => {
  it('answers every observation after storing it; rewards and Phi read back; a reset truncates', async () => {
    const s = await server({ reward: brightnessReward(), gamma: 0.9 });
    const r = await rig(s);
    expect(r.ready).toMatchObject({ episode: 0, policy: 'zero', reward: 'brightness@test', gamma: 0.9 });
    let last;
    for (let k = 0; k < 6; k++) {
      last = await r.step(smallObs(k));
      expect(last).toMatchObject({ seq: k, episode: 0, step: k, late: false });
      // Zero lies inside both bounds.
      expect(Array.from(actionOf(last))).toEqual([0, 0]);
    }
    // Display trails the loop: by the sixth answer some earlier transition has settled.
    expect(last!.display).toBeDefined();
    const ep = await r.reset('time_limit');
    expect(ep).toMatchObject({ episode: 1, running: true, ended: { episode: 0, steps: 6, truncated: true } });
    const [stored] = await episodes(s);
    expect(stored!.steps.map((x) => x.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(stored!.end).toMatchObject({ reason: 'time_limit', truncated: true, terminated: false });
    expect(stored!.meta).toMatchObject({
      rig: 'bench-arm',
      episode: 0,
      reward: 'brightness@test',
      gamma: 0.9,
    });
    // Phi_k = brightness = 10k / 255; shaped = gamma Phi_k - Phi_{k-1}; the last state keeps its Phi (truncated).
    stored!.steps.forEach((st, k) => {
      const phi = (10 * k) / 255;
      expect(st.reward!.phi).toBeCloseTo(phi, 6);
      expect(st.reward!.shaped).toBeCloseTo(k === 0 ? 0 : 0.9 * phi - (10 * (k - 1)) / 255, 6);
      expect(st.proprio).toEqual([k, k === 0 ? 0 : -k, 0.5]);
      expect(st.action).toEqual([0, 0]);
    });
    expect(stored!.steps[5]!.reward).toMatchObject({ truncated: true, terminated: false });
    const frame = await readFrame(stored!.dir, stored!.steps[3]!.frames.front!);
    expect(frame).toEqual(Buffer.alloc(192, 30));
  });

  it('ends on the success sensor (terminated, reward 1, Phi_T = 0) and refuses observations until reset', async () => {
    const s = await server({ reward: brightnessReward(), gamma: 1 });
    const r = await rig(s);
    await r.step(smallObs(0));
    await r.step(smallObs(1));
    const a = await r.step(smallObs(2, { success: true }));
    expect(a.ended).toMatchObject({
      episode: 0,
      steps: 3,
      terminated: true,
      success: true,
      reason: 'success_sensor',
    });
    // gamma 1: shaped return telescopes to reward - Phi_0 with Phi_T := 0, and Phi_0 = 0 here.
    expect(a.ended!.return).toBe(1);
    expect(a.ended!.shapedReturn).toBeCloseTo(1 - 0, 6);
    await expect(r.step(smallObs(3))).rejects.toMatchObject({ code: 'EPISODE_MISMATCH' });
    expect((await r.reset()).episode).toBe(1);
    await r.step(smallObs(4));
    const [first] = await episodes(s);
    expect(first!.steps[2]!.reward).toMatchObject({ reward: 1, terminated: true });
    expect(first!.terminated).toBe(true);
  });

  it('records a human success mark, failure marks as truncated, and interventions with the executed action', async () => {
    const s = await server({ reward: brightnessReward() });
    const r = await rig(s);
    await r.step(smallObs(0));
    const human = Float32Array.from([0.75, -0.25]);
    await r.step(smallObs(1, { intervention: human, held: true }));
    const marked = await r.mark('success');
    expect(marked).toMatchObject({
      running: false,
      ended: { terminated: true, success: true, reason: 'mark_success' },
    });
    await expect(r.mark('failure')).rejects.toMatchObject({ code: 'EPISODE_MISMATCH' });
    await r.reset();
    await r.step(smallObs(2));
    expect((await r.mark('failure')).ended).toMatchObject({
      truncated: true,
      terminated: false,
      reason: 'mark_failure',
    });
    const [e0, e1] = await episodes(s);
    expect(e0!.steps[1]).toMatchObject({ intervention: [0.75, -0.25], held: true });
    expect(e0!.marks).toMatchObject([{ step: 1, outcome: 'success' }]);
    expect(e0!.steps[1]!.reward).toMatchObject({ reward: 1, terminated: true });
    expect(e1!.end).toMatchObject({ reason: 'mark_failure', truncated: true });
  });

  it('detects success from the model when the rig has no sensor', async () => {
    const s = await server({
      reward: brightnessReward(),
      successRule: { threshold: 0.9, consecutive: 2, confidenceFloor: 0 },
    });
    const r = await rig(s, smallSpec({ successSensor: false }));
    const bright = (k: number) => smallObs(k, { frames: { front: new Uint8Array(192).fill(250) } });
    let ended;
    for (let k = 0; k < 20 && !ended; k++) {
      ended = (await r.step(bright(k))).ended;
      await sleep(5);
    }
    expect(ended).toMatchObject({ terminated: true, success: true, reason: 'success_model' });
  });

  it('reports actions decided past the deadline as late, in the reply and in the store', async () => {
    let delay = 0;
    const slow: RigPolicy = {
      name: 'slow-test-policy',
      async act(obs) {
        await sleep(delay);
        return Float32Array.from([obs[0]!, 0]);
      },
    };
    const s = await server({ policy: slow });
    // 20 Hz: the deadline is one period, 50 ms.
    const r = await rig(s, smallSpec({ action: { dim: 2, low: [-9, -1], high: [9, 1], rateHz: 20 } }));
    expect(r.ready.deadlineMs).toBe(50);
    const onTime = await r.step(smallObs(1));
    expect(onTime.late).toBe(false);
    delay = 120;
    const late = await r.step(smallObs(2));
    expect(late.late).toBe(true);
    expect(late.decideMs).toBeGreaterThan(50);
    expect(Array.from(actionOf(late))).toEqual([2, 0]);
    delay = 0;
    await r.step(smallObs(3, { held: true }));
    await r.reset();
    const [ep] = await episodes(s);
    expect(ep!.steps.map((x) => x.late)).toEqual([false, true, false]);
    expect(ep!.steps[2]!.held).toBe(true);
    expect(s.rigs!.stats()[0]!.late).toBe(1);
  });

  it('answers a policy that hangs with the zero action, late, once the policy timeout passes', async () => {
    let hang = true;
    const stuck: RigPolicy = {
      name: 'stuck-test-policy',
      act: (obs) => (hang ? new Promise<Float32Array>(() => {}) : Float32Array.from([obs[0]!, 0])),
    };
    const s = await server({ policy: stuck, policyTimeoutMs: 150 });
    const r = await rig(s, smallSpec({ action: { dim: 2, low: [-9, -1], high: [9, 1], rateHz: 20 } }));
    const t0 = performance.now();
    const stalled = await r.step(smallObs(1));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(stalled.late).toBe(true);
    expect(Array.from(actionOf(stalled))).toEqual([0, 0]);
    // The rig's queue was not stuck behind it: the next observation gets the policy's answer.
    hang = false;
    expect(Array.from(actionOf(await r.step(smallObs(2, { held: true }))))).toEqual([2, 0]);
    await r.reset();
    const [ep] = await episodes(s);
    expect(ep!.steps[0]!.policy).toBe('zero (policy failed: no answer within 150 ms)');
    expect(ep!.steps[1]!.policy).toBe('stuck-test-policy');
  });

  it('gives bad observations a status and stores nothing for them', async () => {
    const s = await server();
    const r = await rig(s);
    await r.step(smallObs(0));
    const cases: [Parameters<RigClient['step']>[0], string, string][] = [
      [smallObs(1, { frames: {} }), 'MISSING_FIELD', 'frames.front'],
      [smallObs(1, { frames: { front: new Uint8Array(5) } }), 'INVALID_VALUE', 'frames.front'],
      [
        smallObs(1, { frames: { front: new Uint8Array(192), back: new Uint8Array(1) } }),
        'INVALID_VALUE',
        'frames.back',
      ],
      [smallObs(1, { proprio: Float32Array.from([1, 2]) }), 'INVALID_VALUE', 'proprio'],
      [smallObs(1, { proprio: Float32Array.from([1, NaN, 2]) }), 'OUT_OF_RANGE', 'proprio.data'],
      [smallObs(1, { proprio: Float64Array.from([1, Infinity, 2]) }), 'OUT_OF_RANGE', 'proprio.data'],
      [smallObs(1, { intervention: Float32Array.from([1]) }), 'INVALID_VALUE', 'intervention'],
    ];
    for (const [obs, code, path] of cases) {
      const err = (await r.step(obs).catch((e: unknown) => e)) as RigRequestFailed;
      expect(err).toBeInstanceOf(RigRequestFailed);
      expect(err.status).toMatchObject({ code, path });
    }
    // The episode goes on where it was.
    expect((await r.step(smallObs(9))).step).toBe(1);
    r.client.send({
      type: 'rig_obs',
      seq: 1,
      episode: 0,
      time: 0,
      frames: smallObs(0).frames,
      proprio: smallObs(0).proprio as never,
    });
    // A typed array is not a tensor map: refused by type, whichever msgpack encoding it took.
    expect((await r.client.next('status')).code).toMatch(/^(WRONG_TYPE|BAD_TENSOR)$/);
    await r.reset();
    const [ep] = await episodes(s);
    expect(ep!.steps.length).toBe(2);
  });

  it('a disconnect truncates the episode; the reconnecting rig starts the next one', async () => {
    const s = await server({ reward: brightnessReward() });
    const r = await rig(s);
    for (let k = 0; k < 4; k++) await r.step(smallObs(k));
    r.client.ws.terminate();
    const again = await rig(s);
    expect(again.ready.episode).toBe(1);
    await again.step(smallObs(0));
    // A second connection of the same name supersedes the first (its episode is truncated too).
    const third = await rig(s);
    expect(third.ready.episode).toBe(2);
    expect((await again.client.whenClosed()).code).toBe(4409);
    const [e0, e1] = await episodes(s);
    expect(e0!.end).toMatchObject({ reason: 'disconnect', truncated: true, terminated: false, steps: 4 });
    expect(e0!.steps.every((x) => x.reward !== undefined)).toBe(true);
    expect(e1!.end).toMatchObject({ reason: 'disconnect', steps: 1 });
  });

  it('lets a learner hand rigs a policy while they run', async () => {
    const s = await server();
    const r = await rig(s);
    expect(Array.from(actionOf(await r.step(smallObs(0))))).toEqual([0, 0]);
    s.rigs!.setPolicy({
      name: 'learner',
      obsDim: 3,
      actDim: 2,
      act: (o) => Float32Array.from([o[0]! / 10, 0.1]),
    });
    const a = await r.step(smallObs(5));
    expect(Array.from(actionOf(a))).toEqual([0.5, Math.fround(0.1)]);
    s.rigs!.setPolicy({ name: 'wide', obsDim: 7, act: () => new Float32Array(2) });
    expect(await r.client.next('status')).toMatchObject({ level: 'warning', code: 'SPEC_MISMATCH' });
    expect(Array.from(actionOf(await r.step(smallObs(6))))).toEqual([0, 0]);
    await r.reset();
    const [ep] = await episodes(s);
    expect(ep!.steps.map((x) => x.policy)).toEqual(['zero', 'learner', 'zero']);
  });
});

describe('rig reward service plumbing', () => {
  it('closes the reward service with the server', async () => {
    const model = new BrightnessModel();
    const service = new RewardService(model);
    const s = await server({
      reward: { service, id: model.id, cameras: ['front'], close: () => service.close() },
    });
    const r = await rig(s);
    await r.step(smallObs(1));
    servers.splice(servers.indexOf(s), 1);
    await s.close();
    expect(
      (await service.submit({ instruction: 'x', views: {}, envId: 9, episodeId: 0, step: 0 })).error,
    ).toMatch(/closed/);
    const [ep] = await episodes(s);
    expect(ep!.end).toMatchObject({ reason: 'server_shutdown', truncated: true });
  });
});
