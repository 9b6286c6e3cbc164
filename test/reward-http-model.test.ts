/**
 * HttpProgressModel end to end: each adapter against a local chat server whose answers are scripted by which
 * frames it is shown (frames are solid grey levels, decoded back from the PNGs the client sends). Progress is
 * checked against hand calculations; failures must come back as NaN with their status, never as 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatClient } from '../src/reward/http/chat-client.ts';
import { GenericAdapter } from '../src/reward/http/generic.ts';
import { GrmAdapter } from '../src/reward/http/grm.ts';
import { HttpProgressModel } from '../src/reward/http/http-progress-model.ts';
import { VlacAdapter } from '../src/reward/http/vlac.ts';
import type { ProgressImage, ProgressRequest } from '../src/reward/model.ts';
import { RewardService } from '../src/reward/service.ts';
import {
  chatAnswer,
  levelsOf,
  ScriptedServer,
  solid,
  textOf,
  type Script,
} from './fixtures/reward-http/server.ts';

let server: ScriptedServer;
let offset = 0;
function use(script: Script): void {
  offset = server.requests.length;
  server.script = (req, n) => script(req, n - offset);
}
const chatBodies = (): unknown[] => server.requests.slice(offset).map((r) => r.json);

beforeAll(async () => {
  server = await ScriptedServer.start(() => chatAnswer('0%'));
});
afterAll(async () => {
  await server.close();
});

const client = (extra: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}): ChatClient =>
  new ChatClient({ baseUrl: server.url, model: 'test-vlm', backoffMs: 1, random: () => 0, ...extra });

/** Frames by grey level: the start frame is 0, step k's frame is 10 k, the goal is 250. */
const frames = new Map<number, ProgressImage>();
const frame = (level: number): ProgressImage => {
  if (!frames.has(level)) frames.set(level, solid(level));
  return frames.get(level)!;
};

function request(step: number, extra: Partial<ProgressRequest> = {}): ProgressRequest {
  return {
    instruction: 'push the red cube to the green target',
    views: { front: frame(10 * step) },
    anchors: { start: { front: frame(0) } },
    envId: 0,
    episodeId: 0,
    step,
    ...extra,
  };
}

describe('vlac', () => {
  it('rebuilds V from pair deltas in step order, even when later answers arrive first', async () => {
    // Answer by the AFTER frame; earlier steps answer more slowly, so the calls finish in reverse order.
    const answers: Record<number, string> = { 10: '+50%', 20: '+50%', 30: '-50%', 40: 'no idea', 50: '+20%' };
    use((req) => {
      const [, after] = levelsOf(req.json);
      return { ...chatAnswer(answers[after!] ?? '0%'), delayMs: 120 - after! * 2 };
    });
    const model = new HttpProgressModel(client(), new VlacAdapter());
    const out = await model.predict([0, 1, 2, 3, 4, 5].map((s) => request(s)));
    // Step 0 is the start frame itself: V = 0 with no call. Then 0.5, 0.75 (0.5 + 0.5 * 0.5), 0.375
    // (0.75 - 0.5 * 0.75), missing (V stays 0.375), 0.5 (0.375 + 0.2 * 0.625).
    expect(out.map((a) => a.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'parse_error', 'ok']);
    expect(out[0]!.progress).toBe(0);
    expect(out[1]!.progress).toBe(0.5);
    expect(out[2]!.progress).toBe(0.75);
    expect(out[3]!.progress).toBe(0.375);
    expect(out[4]!.progress).toBeNaN();
    expect(out[5]!.progress).toBeCloseTo(0.5, 12);
    expect(out.map((a) => a.delta)).toEqual([0, 0.5, 0.5, -0.5, undefined, 0.2]);
    expect(out[4]!.raw).toBe('no idea');
    expect(out[5]!.raw).toBe('+20%');
    expect(out[1]!.model).toBe('http-vlac:test-vlm');
    // Each step was judged against the step before: pairs (0, 10), (10, 20), ... (40, 50).
    const pairs = chatBodies().map((b) => levelsOf(b).join('->'));
    expect(pairs.sort()).toEqual(['0->10', '10->20', '20->30', '30->40', '40->50']);
  });

  it('keeps episodes apart: a new episode id starts again at 0, and envs do not mix', async () => {
    use(() => chatAnswer('+50%'));
    const model = new HttpProgressModel(client(), new VlacAdapter());
    const a = await model.predict([request(1), request(1, { envId: 1 })]);
    expect(a.map((x) => x.progress)).toEqual([0.5, 0.5]);
    const b = await model.predict([request(2), request(1, { episodeId: 1 })]);
    expect(b.map((x) => x.progress)).toEqual([0.75, 0.5]);
  });

  it('without a start anchor, the first frame is the reference: V = 0 and no call', async () => {
    use(() => chatAnswer('+50%'));
    const model = new HttpProgressModel(client(), new VlacAdapter({ camera: 'front' }));
    const noAnchor = (s: number): ProgressRequest => ({ ...request(s), anchors: {} });
    const out = await model.predict([noAnchor(3), noAnchor(4)]);
    expect(out.map((x) => x.progress)).toEqual([0, 0.5]);
    expect(chatBodies().map((b) => levelsOf(b))).toEqual([[30, 40]]);
  });

  it('answers timeout and error as NaN, and a later state continues from the last good V', async () => {
    use((req) => {
      const [, after] = levelsOf(req.json);
      if (after === 20) return { ...chatAnswer('+99%'), delayMs: 6000 };
      if (after === 30) return { status: 500, body: 'CUDA out of memory' };
      return chatAnswer('+50%');
    });
    const model = new HttpProgressModel(client({ timeoutMs: 1500, retries: 1 }), new VlacAdapter());
    const out = await model.predict([1, 2, 3, 4].map((s) => request(s)));
    expect(out.map((a) => a.status)).toEqual(['ok', 'timeout', 'error', 'ok']);
    expect(out[1]!.progress).toBeNaN();
    expect(out[2]!.progress).toBeNaN();
    expect(out[2]!.error).toContain('HTTP 500: CUDA out of memory');
    expect(out[1]!.error).toContain('no answer within 1500 ms');
    // Steps 2 and 3 are lost, so step 4 applies +50% to step 1's 0.5.
    expect(out[3]!.progress).toBe(0.75);
    // The 500 was retried once: 4 states, 1 extra attempt.
    expect(server.requests.length - offset).toBe(5);
  });

  it('answers error for a request without the camera, and goes through the reward service', async () => {
    use(() => chatAnswer('+50%'));
    const model = new HttpProgressModel(client(), new VlacAdapter({ camera: 'wrist' }));
    const [a] = await model.predict([request(1)]);
    expect(a!.status).toBe('error');
    expect(a!.error).toMatch(/no view wrist.*front/);

    const service = new RewardService(new HttpProgressModel(client(), new VlacAdapter()), { maxWaitMs: 1 });
    const answers = await Promise.all([1, 2].map((s) => service.submit(request(s))));
    expect(answers.map((x) => x.progress)).toEqual([0.5, 0.75]);
    expect(answers.every((x) => x.latencyMs >= 0)).toBe(true);
    await service.close();
  });
});

describe('grm', () => {
  /** Hops by (BEFORE front level -> AFTER front level): the prompt's images 3 and 6. */
  const hops: Record<string, string> = {
    '0->10': 'The robot moved closer to the block. <score>+40%</score>',
    '250->10': '<score>-50%</score>',
    '10->20': '<score>+50%</score>',
    '0->20': '<score>+60%</score>',
    '250->20': 'The cube is near the target. <score>-30%</score>',
    '20->30': '<score>+10%</score>',
    '0->30': 'unclear',
    '250->30': '<score>-20%</score>',
  };
  const grmScript: Script = (req) => {
    const levels = levelsOf(req.json);
    return chatAnswer(hops[`${levels[2]}->${levels[5]}`] ?? 'no score');
  };
  const withGoal = (s: number): ProgressRequest =>
    request(s, { anchors: { start: { front: frame(0) }, goal: { front: frame(250) } } });

  it('fuses incremental, start- and goal-anchored estimates by their mean, three calls per state', async () => {
    use(grmScript);
    const model = new HttpProgressModel(client(), new GrmAdapter());
    const out = await model.predict([withGoal(1), withGoal(2), withGoal(3)]);
    expect(out.map((a) => a.status)).toEqual(['ok', 'ok', 'ok']);
    // Step 1: incremental hop(0, .4) = .4; start hop(0, .4) = .4; goal hop(1, -.5) = .5; mean 1.3 / 3.
    const phi1 = (0.4 + 0.4 + 0.5) / 3;
    expect(out[0]!.progress).toBeCloseTo(phi1, 12);
    // Step 2: incremental phi1 + .5 (1 - phi1); start .6; goal 1 - .3 = .7.
    const phi2 = (phi1 + 0.5 * (1 - phi1) + 0.6 + 0.7) / 3;
    expect(out[1]!.progress).toBeCloseTo(phi2, 12);
    // Step 3: the start estimate does not parse and is left out: incremental phi2 + .1 (1 - phi2), goal .8.
    const phi3 = (phi2 + 0.1 * (1 - phi2) + 0.8) / 2;
    expect(out[2]!.progress).toBeCloseTo(phi3, 12);
    expect(out.map((a) => a.delta)).toEqual([0.4, 0.5, 0.1]);
    expect(out[2]!.raw).toContain('start: unclear');
    expect(server.requests.length - offset).toBe(9);
    // Eight images each: start reference, goal, 3 x BEFORE, 3 x AFTER (one camera repeated three times).
    const sets = chatBodies().map((b) => levelsOf(b).join(','));
    expect(sets).toContain('0,250,10,10,10,20,20,20'); // incremental, step 2
    expect(sets).toContain('0,250,250,250,250,30,30,30'); // goal-anchored, step 3
  });

  it('without a goal image asks two estimates and shows a blank reference end', async () => {
    use(grmScript);
    const model = new HttpProgressModel(client(), new GrmAdapter());
    const [a] = await model.predict([request(1)]);
    expect(a!.progress).toBeCloseTo(0.4, 12);
    expect(chatBodies().map((b) => levelsOf(b).join(','))).toEqual([
      '0,0,0,0,0,10,10,10',
      '0,0,0,0,0,10,10,10',
    ]);
  });

  it('uses up to three cameras, padded by repetition, and `fuse` picks the estimates', async () => {
    use((req) => chatAnswer(levelsOf(req.json)[2] === 0 ? '<score>+25%</score>' : 'x'));
    const model = new HttpProgressModel(client(), new GrmAdapter({ fuse: ['incremental'] }));
    const twoCams = (s: number): ProgressRequest => ({
      ...withGoal(s),
      views: { front: frame(10 * s), wrist: frame(10 * s + 1) },
      anchors: { start: { front: frame(0), wrist: frame(1) }, goal: { front: frame(250) } },
    });
    const [a] = await model.predict([twoCams(1)]);
    expect(a!.progress).toBe(0.25);
    expect(chatBodies().map((b) => levelsOf(b).join(','))).toEqual(['0,250,0,1,0,10,11,10']);
    expect(textOf(chatBodies()[0])).toContain('BEFORE wrist view');
  });

  it('a state with no usable estimate is missing, and the chain holds its Phi', async () => {
    use((req) => {
      const [, , before, , , after] = levelsOf(req.json);
      if (after === 10) return chatAnswer(before === 0 ? '<score>+40%</score>' : 'x');
      return { status: 503, body: 'busy' };
    });
    const model = new HttpProgressModel(
      client({ retries: 0 }),
      new GrmAdapter({ fuse: ['incremental', 'start'] }),
    );
    const out = await model.predict([request(1), request(2)]);
    expect(out[0]!.progress).toBeCloseTo(0.4, 12);
    expect(out[1]!.status).toBe('error');
    expect(out[1]!.progress).toBeNaN();
    expect(out[1]!.error).toMatch(/incremental: .*HTTP 503.*; start: .*HTTP 503/);
  });
});

describe('generic', () => {
  it('reads a completion percentage; unreadable or out-of-range answers are parse errors', async () => {
    const replies: Record<number, string> = {
      10: 'About 40% of the task is done.',
      20: '150%',
      30: 'The cube has not moved.',
    };
    use((req) => chatAnswer(replies[levelsOf(req.json)[0]!] ?? ''));
    const model = new HttpProgressModel(client(), new GenericAdapter(), { id: 'qwen-generic' });
    const out = await model.predict([request(1), request(2), request(3)]);
    expect(out.map((a) => [a.status, a.model])).toEqual([
      ['ok', 'qwen-generic'],
      ['parse_error', 'qwen-generic'],
      ['parse_error', 'qwen-generic'],
    ]);
    expect(out[0]!.progress).toBe(0.4);
    expect(out[1]!.progress).toBeNaN();
    expect(out[2]!.progress).toBeNaN();
    expect(out[1]!.raw).toBe('150%');
    expect(out[2]!.raw).toBe('The cube has not moved.');
  });

  it('a null message content is a parse error, and a wrong JSON answer an error', async () => {
    const model = new HttpProgressModel(client(), new GenericAdapter());
    use(() => chatAnswer(null));
    expect((await model.predict([request(1)]))[0]!.status).toBe('parse_error');
    use(() => ({ body: { choices: 'none' } }));
    const [a] = await model.predict([request(1)]);
    expect([a!.status, a!.progress]).toEqual(['error', NaN]);
  });
});
