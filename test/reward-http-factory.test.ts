/**
 * createHttpProgressModel: which backend and options a URL selects, checked by the requests a local server
 * receives, and the errors for URLs that cannot work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProgressModel } from '../src/reward/http/factory.ts';
import { HttpProgressModel } from '../src/reward/http/http-progress-model.ts';
import { KServeProgressModel, type KServeEncode } from '../src/reward/http/kserve-progress-model.ts';
import type { ProgressRequest } from '../src/reward/model.ts';
import { InvalidArgument } from '../src/sim/errors.ts';
import { chatAnswer, levelsOf, ScriptedServer, solid, type Reply } from './fixtures/reward-http/server.ts';

let server: ScriptedServer;
/** Models served by GET /v1/models (changed per test). */
let served: string[] = ['only-model'];

beforeAll(async () => {
  server = await ScriptedServer.start((req): Reply => {
    if (req.url.endsWith('/v1/models'))
      return { body: { object: 'list', data: served.map((id) => ({ id })) } };
    if (req.url.endsWith('/v1/chat/completions')) {
      // Generic prompts show one image; GRM prompts show eight.
      return chatAnswer(levelsOf(req.json).length === 8 ? '<score>+40%</score>' : '+50%');
    }
    if (req.url === '/v2/models/net') {
      return {
        body: {
          name: 'net',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
          outputs: [{ name: 'p', datatype: 'FP32', shape: [-1] }],
        },
      };
    }
    if (req.url === '/v2/models/net/infer') {
      const x = (req.json as { inputs: { data: number[] }[] }).inputs[0]!.data;
      return {
        body: { model_name: 'net', outputs: [{ name: 'p', datatype: 'FP32', shape: [x.length], data: x }] },
      };
    }
    return { status: 404, body: { error: 'not found' } };
  });
});
afterAll(async () => {
  await server.close();
});

const request: ProgressRequest = {
  instruction: 'push',
  views: { front: solid(20) },
  anchors: { start: { front: solid(0) } },
  envId: 0,
  episodeId: 0,
  step: 1,
};

async function refused(p: Promise<unknown>): Promise<InvalidArgument> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidArgument);
  return err as InvalidArgument;
}

describe('createHttpProgressModel', () => {
  it('?adapter=vlac&model=NAME: a chat model; the query sets client options, /v1 is stripped', async () => {
    const model = await createHttpProgressModel(
      `${server.url}/v1?adapter=vlac&model=VLAC-8B&maxTokens=16&timeoutMs=5000`,
    );
    expect(model).toBeInstanceOf(HttpProgressModel);
    expect(model.id).toBe('http-vlac:VLAC-8B');
    const [a] = await model.predict([request]);
    expect([a!.status, a!.progress]).toEqual(['ok', 0.5]);
    const sent = server.requests.at(-1)!;
    expect(sent.url).toBe('/v1/chat/completions');
    expect(sent.json).toMatchObject({ model: 'VLAC-8B', max_tokens: 16, temperature: 0 });
    await model.close?.();
  });

  it('options in code win over the query; grm with fuse from a comma list', async () => {
    const model = await createHttpProgressModel(
      `${server.url}?adapter=generic&model=a&fuse=incremental,start`,
      {
        adapter: 'grm',
        model: 'Robo-Dopamine-GRM-3B',
        apiKey: 'k',
      },
    );
    expect(model.id).toBe('http-grm:Robo-Dopamine-GRM-3B');
    const before = server.requests.length;
    const [a] = await model.predict([request]);
    // Two estimates (no goal): incremental hop(0, .4) and start hop(0, .4).
    expect(a!.progress).toBeCloseTo(0.4, 12);
    expect(server.requests.length - before).toBe(2);
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer k');
  });

  it('without a model name, uses the one model the server lists', async () => {
    served = ['only-model'];
    const model = await createHttpProgressModel(`${server.url}/v1/chat/completions?adapter=generic`);
    expect(model.id).toBe('http-generic:only-model');
    served = ['a', 'b'];
    const err = await refused(createHttpProgressModel(`${server.url}?adapter=generic`));
    expect(err.field).toBe('model');
    expect(err.message).toContain('several: a, b');
  });

  it('a /v2/models/NAME URL is KServe and needs encode', async () => {
    const encode: KServeEncode = (batch) => [
      { name: 'x', datatype: 'FP32', shape: [batch.length, 1], data: batch.map((r) => r.step / 10) },
    ];
    const model = await createHttpProgressModel(`${server.url}/v2/models/net?output=p`, { encode });
    expect(model).toBeInstanceOf(KServeProgressModel);
    expect((await model.predict([request]))[0]!.progress).toBeCloseTo(0.1, 6);
    expect((await refused(createHttpProgressModel(`${server.url}/v2/models/net?output=p`))).field).toBe(
      'encode',
    );
    expect((await refused(createHttpProgressModel(`${server.url}/v2/models/net`, { encode }))).field).toBe(
      'output',
    );
  });

  it('refuses what cannot work, naming the field and the valid choices', async () => {
    let err = await refused(createHttpProgressModel(`${server.url}?adapter=gvl&model=m`));
    expect(err.field).toBe('adapter');
    expect(err.message).toContain('valid adapters: vlac, grm, generic');
    err = await refused(createHttpProgressModel(`${server.url}?model=m`));
    expect(err.message).toMatch(/adapter: missing/);
    err = await refused(createHttpProgressModel(`${server.url}?adapter=vlac&model=m&timeout=5`));
    expect(err.message).toMatch(/unknown query parameter "timeout"; valid ones: .*timeoutMs/);
    err = await refused(createHttpProgressModel(`${server.url}?adapter=vlac&model=m&concurrency=lots`));
    expect(err.field).toBe('concurrency');
    err = await refused(createHttpProgressModel('grpc://host:8001?adapter=vlac'));
    expect(err.message).toContain('http: or https:');
    err = await refused(createHttpProgressModel('http://user:secret@host?adapter=vlac&model=m'));
    expect(err.message).toContain('credentials');
    err = await refused(createHttpProgressModel(`${server.url}?adapter=grm&model=m&fuse=incremental,later`));
    expect(err.field).toBe('fuse');
  });
});
