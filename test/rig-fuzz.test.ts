/**
 * Fuzzing the rig role on a real server: thousands of random and mutated MessagePack frames, wrong types, NaN and
 * Inf values, messages for the wrong role, floods and oversize frames, all while a well-behaved rig keeps being
 * served. Every bad frame must get exactly one answer (a status with a code, or the answer a valid message gets),
 * the server must never hit an internal error, and its memory must stay bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeClient } from '../src/bridge/client.ts';
import type { BridgeServer } from '../src/bridge/server.ts';
import { Rng } from '../src/env/rng.ts';
import { encodeMessage, PROTOCOL_ERROR_CODES, toTensor, type Message } from '../src/protocol/index.ts';
import { RigClient } from '../src/rig/client.ts';
import { brightnessReward, smallObs, smallSpec, startRigServer, TOKEN } from './rig-helpers.ts';

let server: BridgeServer;
const logs: string[] = [];

beforeAll(async () => {
  server = await startRigServer(
    { reward: brightnessReward(), log: (l) => logs.push(l) },
    { maxPayload: 2 * 1024 * 1024, log: (l) => logs.push(l) },
  );
});
afterAll(async () => {
  await server.close();
});

/** A well-behaved rig stepping in the background; resolves with its step count when told to stop. */
function wellBehaved(): { stop: () => Promise<number>; steps: () => number } {
  let running = true;
  let steps = 0;
  const done = (async () => {
    const rig = await RigClient.connect(server.wsUrl, TOKEN, smallSpec({ name: 'good-rig' }));
    for (let k = 0; running; k++) {
      await rig.step(smallObs(k));
      steps++;
      if (k % 25 === 24) await rig.reset('time_limit');
    }
    await rig.reset('done');
    rig.close();
    return steps;
  })();
  return {
    steps: () => steps,
    stop: async () => {
      running = false;
      return done;
    },
  };
}

function validObs(seq: number, episode: number): Message {
  const o = smallObs(seq);
  return {
    type: 'rig_obs',
    seq,
    episode,
    time: o.time,
    frames: o.frames,
    proprio: toTensor(o.proprio as Float32Array),
  };
}

const WEIRD: unknown[] = [
  NaN,
  Infinity,
  -Infinity,
  -1,
  2 ** 60,
  0.5,
  '',
  'x'.repeat(5000),
  null,
  true,
  [],
  [1, 2, 3],
  {},
  { dtype: 'float32', shape: [3], data: new Uint8Array(3) },
  { dtype: 'float99', shape: [1], data: new Uint8Array(4) },
  { dtype: 'float32', shape: [-1], data: new Uint8Array(0) },
  { dtype: 'float32', shape: [1e9], data: new Uint8Array(4) },
  toTensor(Float32Array.from([NaN, 1, 2])),
  toTensor(Float64Array.from([1, Infinity, 2])),
  toTensor(Float32Array.from([1, 2])),
  new Uint8Array(7),
];

/** A frame for the fuzzer: random bytes, a mutated valid message, a valid message with one field replaced, or a
 * message for another role. */
function fuzzFrame(rng: Rng, i: number, episode: number): Uint8Array {
  const kind = i % 4;
  if (kind === 0) {
    const n = rng.int(300 + 1);
    return Uint8Array.from({ length: n }, () => rng.int(255 + 1));
  }
  if (kind === 1) {
    const bytes = encodeMessage(validObs(1_000_000 + i, episode)).slice();
    const flips = 1 + rng.int(8);
    for (let f = 0; f < flips; f++) bytes[rng.int(bytes.length - 1 + 1)] = rng.int(255 + 1);
    if (rng.uniform(0, 1) < 0.3) return bytes.subarray(0, rng.int(bytes.length - 1 + 1));
    return bytes;
  }
  if (kind === 2) {
    const msg = validObs(1_000_000 + i, episode) as unknown as Record<string, unknown>;
    const keys = [
      'type',
      'seq',
      'episode',
      'time',
      'frames',
      'proprio',
      'success',
      'intervention',
      'held',
      'privileged',
    ];
    const key = keys[rng.int(keys.length - 1 + 1)]!;
    msg[key] = WEIRD[rng.int(WEIRD.length - 1 + 1)];
    return encodeMessage(msg as unknown as Message);
  }
  const others: Message[] = [
    {
      type: 'welcome',
      protocol: 'progress-bridge.v1',
      role: 'rig',
      session: 1,
      rateHz: 30,
      maxMessageBytes: 1,
    },
    {
      type: 'rig_action',
      seq: 0,
      episode: 0,
      step: 0,
      action: toTensor(new Float32Array(2)),
      late: false,
      decideMs: 0,
    },
    {
      type: 'rig_ready',
      episode: 0,
      policy: 'x',
      reward: 'y',
      rewardCameras: [],
      gamma: 1,
      deadlineMs: 1,
      store: 's',
    },
    { type: 'metrics', step: 1, values: { a: 1 } },
    { type: 'subscribe' },
    { type: 'hello', role: 'rig', token: TOKEN, rig: smallSpec({ name: 'fuzz-rig' }) },
    { type: 'rig_mark', outcome: 'success', episode: 999 },
  ];
  return encodeMessage(others[rng.int(others.length - 1 + 1)]!);
}

describe('rig fuzz', () => {
  it('answers every bad frame with one status while a good rig keeps being served, memory bounded', async () => {
    const good = wellBehaved();
    const fuzz = await BridgeClient.open(server.wsUrl, {
      role: 'rig',
      token: TOKEN,
      rig: smallSpec({ name: 'fuzz-rig', successSensor: false }),
    });
    await fuzz.next('welcome');
    const ready = await fuzz.next('rig_ready');
    const rng = new Rng(7);
    const codes = new Map<string, number>();
    const heap0 = process.memoryUsage().heapUsed;
    const N = 3000;
    let stepsAtHalf = 0;
    for (let i = 0; i < N; i++) {
      fuzz.sendRaw(fuzzFrame(rng, i, ready.episode));
      // Exactly one answer per frame; warnings (the reward model's, at most one) are not answers.
      let reply = await fuzz.next(undefined, 5000);
      while (reply.type === 'status' && reply.level === 'warning') reply = await fuzz.next(undefined, 5000);
      const key = reply.type === 'status' ? reply.code : reply.type;
      codes.set(key, (codes.get(key) ?? 0) + 1);
      if (i === N / 2) stepsAtHalf = good.steps();
    }
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    expect(fuzz.closed).toBeUndefined();
    expect(fuzz.drain().filter((m) => !(m.type === 'status' && m.level === 'warning'))).toEqual([]);
    // Every answer was a known code or a normal reply, and the bad ones dominate.
    for (const k of codes.keys()) {
      expect([...PROTOCOL_ERROR_CODES, 'rig_action', 'rig_episode']).toContain(k);
    }
    const statuses = [...codes].filter(([k]) => !k.startsWith('rig_')).reduce((a, [, n]) => a + n, 0);
    expect(statuses).toBeGreaterThan(N * 0.7);
    for (const code of [
      'MALFORMED_MESSAGE',
      'NOT_ALLOWED',
      'WRONG_TYPE',
      'OUT_OF_RANGE',
      'ALREADY_GREETED',
    ]) {
      expect(codes.get(code), code).toBeGreaterThan(0);
    }
    // The good rig made progress in both halves of the fuzz run.
    expect(stepsAtHalf).toBeGreaterThan(5);
    expect(good.steps()).toBeGreaterThan(stepsAtHalf + 5);
    expect(heapGrowth).toBeLessThan(96 * 1024 * 1024);

    // A flood of valid observations without waiting: the queue is bounded, the surplus gets OVERLOADED, and each
    // gets exactly one answer.
    fuzz.sendRaw(encodeMessage({ type: 'rig_reset' }));
    const ep = await fuzz.next('rig_episode');
    // Sequence numbers above anything a mutated frame could have set (a seq must increase).
    for (let k = 0; k < 60; k++) fuzz.sendRaw(encodeMessage(validObs(2 ** 52 + k, ep.episode)));
    const flood = new Map<string, number>();
    for (let k = 0; k < 60; k++) {
      let m = await fuzz.next(undefined, 10_000);
      while (m.type === 'status' && m.level === 'warning') m = await fuzz.next(undefined, 10_000);
      const key = m.type === 'status' ? m.code : m.type;
      flood.set(key, (flood.get(key) ?? 0) + 1);
    }
    expect(flood.get('OVERLOADED')).toBeGreaterThan(0);
    expect(flood.get('rig_action')).toBeGreaterThan(0);
    expect((flood.get('OVERLOADED') ?? 0) + (flood.get('rig_action') ?? 0)).toBe(60);

    // Oversize: past maxPayload ws closes that connection (1009); the good rig does not notice.
    const big = await BridgeClient.connect(server.wsUrl, {
      role: 'rig',
      token: TOKEN,
      rig: smallSpec({ name: 'big-rig' }),
    });
    big.sendRaw(new Uint8Array(3 * 1024 * 1024));
    expect((await big.whenClosed()).code).toBe(1009);
    // A viewer may not send rig messages, nor more than its 64 KiB.
    const viewer = await BridgeClient.connect(server.wsUrl, { role: 'viewer' });
    viewer.sendRaw(encodeMessage(validObs(0, 0)));
    expect(await viewer.next('status')).toMatchObject({ code: 'NOT_ALLOWED', ref: 'rig_obs' });
    viewer.sendRaw(new Uint8Array(100 * 1024));
    expect(await viewer.next('status')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    viewer.close();

    const goodSteps = await good.stop();
    expect(goodSteps).toBeGreaterThan(10);
    fuzz.close();
    expect(logs.filter((l) => /internal error|could not handle/.test(l))).toEqual([]);
  });
});
