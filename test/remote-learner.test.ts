/**
 * The remote-learner role against a real server on port 0: the TypeScript client reproduces the in-process
 * VectorEnv step for step (observations, rewards, flags, final observations, shaped rewards worked out here from
 * the in-process env's privileged progress), bad calls get their status codes, and a learner that leaves frees its
 * envs for the next one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeClient, ConnectRefused } from '../src/bridge/client.ts';
import { BridgeServer, type BridgeOptions } from '../src/bridge/server.ts';
import { RemoteVectorEnv, type RemoteVectorEnvOptions } from '../src/clients/remote-vector-env.ts';
import { CLOSE, toTensor, type Message, type MessageOf } from '../src/protocol/index.ts';
import { InvalidAction, ResetNeeded } from '../src/sim/errors.ts';
import type { AutoresetMode } from '../src/vector/layout.ts';
import { VectorEnv } from '../src/vector/vector-env.ts';

const TOKEN = 'learner-test-token';
const TINY = './test/fixtures/tiny-task.ts';
const servers: BridgeServer[] = [];
const clients: BridgeClient[] = [];
const envs: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(envs.splice(0).map((e) => e.close()));
  for (const s of servers.splice(0)) await s.close();
});

async function start(learner: BridgeOptions['learner'] = {}): Promise<BridgeServer> {
  const s = await BridgeServer.start({
    port: 0,
    token: TOKEN,
    staticDir: false,
    learner: { workersPerBatch: 1, tasks: { tiny: TINY }, ...learner },
  });
  servers.push(s);
  return s;
}

async function remote(
  s: BridgeServer,
  o: Omit<RemoteVectorEnvOptions, 'url' | 'token'>,
): Promise<RemoteVectorEnv> {
  const env = await RemoteVectorEnv.create({ url: s.wsUrl, token: TOKEN, ...o });
  envs.push(env);
  return env;
}

async function local(...args: Parameters<typeof VectorEnv.create>): Promise<VectorEnv> {
  const env = await VectorEnv.create(...args);
  envs.push(env);
  return env;
}

async function learner(s: BridgeServer): Promise<BridgeClient> {
  const c = await BridgeClient.connect(s.wsUrl, { role: 'learner', token: TOKEN });
  clients.push(c);
  return c;
}

/** Deterministic actions in [-1, 1], different per step, env and dimension. */
function actionsAt(t: number, n: number, d: number): Float32Array {
  return Float32Array.from({ length: n * d }, (_, k) => Math.sin(1.7 * t + 0.9 * k + 0.3));
}

const bytes = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Replies taken off a client's queue while waiting for another one. */
const early = new WeakMap<BridgeClient, Message[]>();

/** The reply to `req`: the message itself or the status that refused it (await one at a time per client). */
async function answer(c: BridgeClient, req: number): Promise<Message> {
  const kept = early.get(c) ?? [];
  early.set(c, kept);
  const i = kept.findIndex((m) => (m as { req?: number }).req === req);
  if (i >= 0) return kept.splice(i, 1)[0]!;
  for (;;) {
    const m = await c.next(undefined, 20_000);
    if ((m as { req?: number }).req === req) return m;
    kept.push(m);
  }
}

async function status(c: BridgeClient, req: number): Promise<MessageOf<'status'>> {
  const m = await answer(c, req);
  if (m.type !== 'status') throw new Error(`expected a status for req ${req}, got ${m.type}`);
  return m;
}

describe('remote learner: same trajectory as in process', () => {
  it('next-step autoreset, sparse reward: observations, rewards, flags and info are the in-process ones', async () => {
    const s = await start();
    const [r, v] = await Promise.all([
      remote(s, { task: 'tiny', numEnvs: 3 }),
      local({ task: TINY, numEnvs: 3, workers: 1 }),
    ]);
    expect(r.metadata.autoreset_mode).toBe('next-step');
    expect([r.obsDim, r.actDim, r.episodeSteps]).toEqual([v.obsDim, v.actDim, v.episodeSteps]);
    expect(r.obsNames).toEqual(v.obsNames);
    expect(r.singleActionSpace.lowAt(0)).toBe(-1);
    for (const seed of [7, [11, 3, 5]]) {
      const [a, b] = await Promise.all([r.reset({ seed }), v.reset({ seed })]);
      expect(bytes(a.obs).equals(bytes(b.obs))).toBe(true);
      expect(Array.from(a.info.episode_step)).toEqual(Array.from(b.info.episode_step));
      // Episodes of 3 steps: 8 steps cover two ends and the next-step resets after them.
      for (let t = 0; t < 8; t++) {
        const act = actionsAt(t, 3, r.actDim);
        const [x, y] = await Promise.all([r.step(act), v.step(act)]);
        expect(bytes(x.obs).equals(bytes(y.obs))).toBe(true);
        expect(Array.from(x.rewards)).toEqual(Array.from(y.rewards));
        expect(Array.from(x.info.sparse_reward!)).toEqual(Array.from(y.rewards));
        expect(Array.from(x.terminated)).toEqual(Array.from(y.terminated));
        expect(Array.from(x.truncated)).toEqual(Array.from(y.truncated));
        expect(Array.from(x.info.is_success)).toEqual(Array.from(y.info.is_success));
        expect(Array.from(x.info.episode_step)).toEqual(Array.from(y.info.episode_step));
        expect(x.info.final_obs).toBeUndefined();
        expect(Array.from(x.info.phi).every(Number.isNaN)).toBe(true);
      }
    }
  });

  it.each(['same-step', 'next-step'] as AutoresetMode[])(
    '%s autoreset, oracle shaping: final observations and shaped rewards from stored potentials',
    async (mode) => {
      const s = await start();
      const gamma = 0.9;
      const [r, v] = await Promise.all([
        remote(s, { task: 'reach', numEnvs: 2, autoreset: mode, reward: 'oracle', gamma, episodeSteps: 3 }),
        local({ task: 'reach', numEnvs: 2, workers: 1, autoreset: mode, envOptions: { episodeSteps: 3 } }),
      ]);
      expect(r.description).toMatchObject({ shaping: 'potential', gamma, reward: 'oracle', queryStride: 1 });
      const [a, b] = await Promise.all([r.reset({ seed: 4 }), v.reset({ seed: 4 })]);
      expect(bytes(a.obs).equals(bytes(b.obs))).toBe(true);
      // The reference potentials: the oracle's Phi is the privileged progress, clamped; stored per state.
      const clamp = (p: number): number => Math.min(1, Math.max(0, p));
      const phi = Array.from(b.info.progress, clamp);
      expect(Array.from(a.info.phi)).toEqual(phi);
      let ended = [false, false];
      let finals = 0;
      for (let t = 0; t < 8; t++) {
        const act = actionsAt(t, 2, r.actDim);
        const [x, y] = await Promise.all([r.step(act), v.step(act)]);
        expect(bytes(x.obs).equals(bytes(y.obs))).toBe(true);
        expect(Array.from(x.terminated)).toEqual(Array.from(y.terminated));
        expect(Array.from(x.truncated)).toEqual(Array.from(y.truncated));
        expect(Array.from(x.info.sparse_reward!)).toEqual(Array.from(y.rewards));
        if (mode === 'same-step') {
          expect(Array.from(x.info._final_obs!)).toEqual(Array.from(y.info._final_obs!));
          if (y.info._final_obs!.includes(1)) {
            finals++;
            expect(bytes(x.info.final_obs!).equals(bytes(y.info.final_obs!))).toBe(true);
            expect(Array.from(x.info.final_info!.episode_step)).toEqual(
              Array.from(y.info.final_info!.episode_step),
            );
          }
        }
        for (let n = 0; n < 2; n++) {
          const p = clamp(y.info.progress[n]!);
          const term = y.terminated[n] === 1;
          const trunc = y.truncated[n] === 1;
          let expected: number;
          if (mode === 'next-step' && ended[n]) {
            // The reset step: no transition, reward 0, a new episode's first state.
            expected = 0;
            phi[n] = p;
          } else if (term) {
            expected = y.rewards[n]! + gamma * 0 - phi[n]!;
          } else if (trunc && mode === 'same-step') {
            // s_T's frames are gone with the reset: it holds the previous Phi; the new episode starts at p.
            expected = y.rewards[n]! + gamma * phi[n]! - phi[n]!;
            expect(x.info.final_info!.phi![n]).toBe(phi[n]);
            phi[n] = p;
          } else {
            expected = y.rewards[n]! + gamma * p - phi[n]!;
            phi[n] = p;
          }
          expect(x.rewards[n]).toBeCloseTo(expected, 12);
          expect(x.info.phi[n]).toBe(term && mode === 'next-step' ? 0 : phi[n]);
        }
        ended = [0, 1].map((n) => y.terminated[n] === 1 || y.truncated[n] === 1);
        expect(x.timing!.simMs).toBeGreaterThan(0);
      }
      if (mode === 'same-step') expect(finals).toBeGreaterThan(0);
    },
  );
});

describe('remote learner: refusals and limits', () => {
  it('refuses learners without the token or with a wrong one (4401)', async () => {
    const s = await start();
    const none = await BridgeClient.open(s.wsUrl, { role: 'learner' });
    clients.push(none);
    const st = await none.next('status');
    expect(st.code).toBe('AUTH_REQUIRED');
    expect((await none.whenClosed()).code).toBe(CLOSE.UNAUTHORIZED);
    await expect(
      RemoteVectorEnv.create({ url: s.wsUrl, token: 'nope', task: 'tiny', numEnvs: 1 }),
    ).rejects.toThrow(ConnectRefused);
    const viewer = await BridgeClient.connect(s.wsUrl, { role: 'viewer' });
    clients.push(viewer);
    viewer.send({ type: 'vec_open', req: 1, task: 'tiny', numEnvs: 1 });
    expect((await viewer.next('status')).code).toBe('NOT_ALLOWED');
    expect(s.learners.batchCount).toBe(0);
  });

  it('answers bad opens, bad calls, wrong shapes, NaN actions and limits with status codes, and keeps serving', async () => {
    const s = await start({ maxEnvsPerBatch: 8, maxBatchesPerLearner: 1 });
    const c = await learner(s);
    const open = (req: number, extra: Partial<MessageOf<'vec_open'>> = {}): void =>
      c.send({ type: 'vec_open', req, task: 'tiny', numEnvs: 2, ...extra });

    open(1, { task: 'no-such-task' });
    const unknown = await status(c, 1);
    expect(unknown).toMatchObject({ code: 'UNKNOWN_TASK', ref: 'vec_open', path: 'task' });
    expect(unknown.message).toContain('push');
    open(2, { task: TINY });
    expect((await status(c, 2)).code).toBe('UNKNOWN_TASK');
    open(3, { numEnvs: 9 });
    expect(await status(c, 3)).toMatchObject({ code: 'LIMIT_EXCEEDED', path: 'numEnvs' });
    open(4, { reward: 'oracle' });
    expect(await status(c, 4)).toMatchObject({ code: 'MISSING_FIELD', path: 'gamma' });
    open(5, { reward: '/tmp/any.onnx', gamma: 0.99 });
    expect((await status(c, 5)).code).toBe('INVALID_VALUE');
    open(6, { reward: 'fancy', gamma: 0.99 });
    expect(await status(c, 6)).toMatchObject({ code: 'INVALID_VALUE', path: 'reward' });

    open(7);
    const opened = await answer(c, 7);
    expect(opened.type).toBe('vec_opened');
    const env = (opened as MessageOf<'vec_opened'>).env;
    const actDim = (opened as MessageOf<'vec_opened'>).actDim;
    const step = (
      req: number,
      actions: Float32Array | Float64Array | Int32Array,
      shape = [2, actDim],
    ): void => c.send(encodeStep(req, env, actions, shape));

    step(8, new Float32Array(2 * actDim));
    expect(await status(c, 8)).toMatchObject({ code: 'RESET_NEEDED', ref: 'vec_step' });
    c.send({ type: 'vec_reset', req: 9, env, seed: 1 });
    expect((await answer(c, 9)).type).toBe('vec_reset_result');
    c.send({ type: 'vec_reset', req: 10, env, seeds: [1, 2, 3] });
    expect(await status(c, 10)).toMatchObject({ code: 'OUT_OF_RANGE', path: 'seeds' });

    step(11, new Float32Array(3 * actDim), [3, actDim]);
    expect(await status(c, 11)).toMatchObject({ code: 'BAD_TENSOR', path: 'actions.shape' });
    step(12, new Float32Array(2 * actDim), [2 * actDim]);
    expect((await status(c, 12)).code).toBe('BAD_TENSOR');
    step(13, new Int32Array(2 * actDim));
    expect(await status(c, 13)).toMatchObject({ code: 'BAD_TENSOR', path: 'actions.dtype' });
    const nan = new Float32Array(2 * actDim);
    nan[5] = NaN;
    step(14, nan);
    expect(await status(c, 14)).toMatchObject({ code: 'INVALID_ACTION', path: 'actions' });
    const inf = new Float64Array(2 * actDim);
    inf[0] = Infinity;
    step(15, inf);
    expect((await status(c, 15)).code).toBe('INVALID_ACTION');
    c.send(encodeStep(16, env + 100, new Float32Array(2 * actDim), [2, actDim]));
    expect(await status(c, 16)).toMatchObject({ code: 'UNKNOWN_ENV', path: 'env' });

    // Paced: a second step before the first one's reply is refused, not queued; the first is answered.
    step(17, new Float32Array(2 * actDim));
    step(18, new Float32Array(2 * actDim));
    const first = await answer(c, 17);
    const second = await answer(c, 18);
    expect(first.type).toBe('vec_step_result');
    expect(second).toMatchObject({ type: 'status', code: 'REQUEST_IN_FLIGHT', ref: 'vec_step' });

    // Garbage in between changes nothing for the batch.
    c.sendRaw(Uint8Array.from([0x05]));
    expect((await c.next('status')).code).toBe('MALFORMED_MESSAGE');
    step(19, new Float32Array(2 * actDim).fill(0.5));
    expect((await answer(c, 19)).type).toBe('vec_step_result');
    open(21);
    const perLearner = await status(c, 21);
    expect(perLearner.code).toBe('LIMIT_EXCEEDED');
    expect(perLearner.message).toContain('per learner');
    c.send({ type: 'vec_close', req: 20, env });
    expect(await answer(c, 20)).toMatchObject({ type: 'vec_closed', env });
    expect(s.learners.batchCount).toBe(0);
  });

  it('the client raises the in-process error classes; disabled autoreset needs a masked reset', async () => {
    const s = await start();
    const r = await remote(s, { task: 'tiny', numEnvs: 2, autoreset: 'disabled' });
    await expect(r.step(new Float32Array(2 * r.actDim))).rejects.toThrow(ResetNeeded);
    await r.reset({ seed: 0 });
    await expect(r.step(new Float32Array(2 * r.actDim).fill(NaN))).rejects.toThrow(InvalidAction);
    await expect(r.step(new Float32Array(3))).rejects.toThrow(InvalidAction);
    for (let t = 0; t < 3; t++) await r.step(new Float32Array(2 * r.actDim));
    await expect(r.step(new Float32Array(2 * r.actDim))).rejects.toThrow(ResetNeeded);
    const partial = await r.reset({ options: { reset_mask: [true, false] } });
    expect(Array.from(partial.info.episode_step)).toEqual([0, 3]);
    await expect(r.step(new Float32Array(2 * r.actDim))).rejects.toThrow(ResetNeeded);
    await r.reset({ options: { reset_mask: [false, true] } });
    const ok = await r.step(new Float32Array(2 * r.actDim));
    expect(Array.from(ok.info.episode_step)).toEqual([1, 1]);
  });

  it('a learner that disconnects frees its envs, even mid-step; the next learner can open', async () => {
    const s = await start({ maxBatches: 1 });
    const a = await learner(s);
    a.send({ type: 'vec_open', req: 1, task: 'tiny', numEnvs: 2 });
    const opened = (await answer(a, 1)) as MessageOf<'vec_opened'>;
    a.send({ type: 'vec_reset', req: 2, env: opened.env });
    await answer(a, 2);

    const b = await learner(s);
    b.send({ type: 'vec_open', req: 1, task: 'tiny', numEnvs: 1 });
    const refused = await status(b, 1);
    expect(refused.code).toBe('LIMIT_EXCEEDED');
    expect(refused.message).toContain('server');

    a.send(encodeStep(3, opened.env, new Float32Array(2 * opened.actDim), [2, opened.actDim]));
    a.ws.terminate();
    for (let i = 0; i < 200 && s.learners.batchCount > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(s.learners.batchCount).toBe(0);

    b.send({ type: 'vec_open', req: 2, task: 'tiny', numEnvs: 1 });
    const again = await answer(b, 2);
    expect(again.type).toBe('vec_opened');
    b.send({ type: 'vec_reset', req: 3, env: (again as MessageOf<'vec_opened'>).env, seed: 3 });
    expect((await answer(b, 3)).type).toBe('vec_reset_result');
  });
});

function encodeStep(
  req: number,
  env: number,
  actions: Float32Array | Float64Array | Int32Array,
  shape: number[],
): MessageOf<'vec_step'> {
  // Built by hand (an int32 tensor is not a valid vec_step): the server must be the one to refuse it.
  return {
    type: 'vec_step',
    req,
    env,
    actions: toTensor(actions, shape) as MessageOf<'vec_step'>['actions'],
  };
}
