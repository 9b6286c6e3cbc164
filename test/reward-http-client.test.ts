/**
 * The HTTP layer against real local servers: the OpenAI chat request format, retries (which failures, how many,
 * how long apart), timeouts, the concurrency limit, bad bodies and option validation.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgument, RemoteModelError } from '../src/sim/errors.ts';
import { backoffDelay, retryAfterMs } from '../src/reward/http/backoff.ts';
import { ChatClient } from '../src/reward/http/chat-client.ts';
import { pngDataUrl } from '../src/reward/http/image-url.ts';
import { ConcurrencyLimiter } from '../src/reward/http/limiter.ts';
import { chatAnswer, imagesOf, ScriptedServer, solid, type Script } from './fixtures/reward-http/server.ts';

let server: ScriptedServer;
/** Each test points the one server at its own script and counts from its first request. */
let offset = 0;
function use(script: Script): void {
  offset = server.requests.length;
  server.script = (req, n) => script(req, n - offset);
}
const seen = (): number => server.requests.length - offset;

beforeAll(async () => {
  server = await ScriptedServer.start(() => chatAnswer('+0%'));
});
afterAll(async () => {
  await server.close();
});

/** Options for fast, deterministic retries: 10 ms then 20 ms, no jitter. */
const fast = { backoffMs: 20, maxBackoffMs: 1000, random: () => 0 };

async function failure(p: Promise<unknown>): Promise<RemoteModelError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RemoteModelError);
  return err as RemoteModelError;
}

describe('ChatClient request format', () => {
  it('posts model, messages with PNG image parts, temperature 0, max_tokens and the bearer key', async () => {
    use(() => chatAnswer('+12.5%'));
    const client = new ChatClient({
      baseUrl: `${server.url}/`,
      model: 'robo-vlm',
      apiKey: 'sk-test',
      maxTokens: 32,
    });
    const frame = solid(77, 5, 2);
    const answer = await client.complete([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'how far?' },
          { type: 'image_url', image_url: { url: pngDataUrl(frame) } },
        ],
      },
    ]);
    expect(answer).toEqual({ text: '+12.5%', finishReason: 'stop' });
    const req = server.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.headers['content-type']).toBe('application/json');
    const body = req.json as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'robo-vlm', temperature: 0, max_tokens: 32, stream: false });
    const [img] = imagesOf(body);
    expect([img!.width, img!.height]).toEqual([5, 2]);
    expect(Array.from(img!.pixels)).toEqual(Array.from(frame.rgb));
    client.close();
  });

  it('sends no Authorization header without an apiKey and reads content given as parts', async () => {
    use(() => ({
      body: {
        choices: [
          {
            message: {
              content: [
                { type: 'text', text: '4' },
                { type: 'text', text: '0%' },
              ],
            },
          },
        ],
      },
    }));
    const client = new ChatClient({ baseUrl: server.url, model: 'm' });
    expect((await client.complete([{ role: 'user', content: 'x' }])).text).toBe('40%');
    expect(server.requests.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('lists served models', async () => {
    use(() => ({ body: { object: 'list', data: [{ id: 'a', object: 'model' }, { id: 'b' }] } }));
    expect(await new ChatClient({ baseUrl: server.url, model: 'm' }).listModels()).toEqual(['a', 'b']);
    expect(server.requests.at(-1)!.url).toBe('/v1/models');
  });
});

describe('retries', () => {
  it('retries HTTP 500 and 503 with backoff, then succeeds', async () => {
    use((_req, n) => (n < 2 ? { status: n === 0 ? 500 : 503, body: 'overloaded' } : chatAnswer('ok')));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', retries: 2, ...fast });
    expect((await client.complete([{ role: 'user', content: 'x' }])).text).toBe('ok');
    const times = server.requests.slice(offset).map((r) => r.at);
    expect(times).toHaveLength(3);
    // Backoffs with random 0 are 0.5 * 20 ms and 0.5 * 40 ms; timers never fire early.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(9);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(19);
  });

  it('retries 429 and honours Retry-After', async () => {
    use((_req, n) =>
      n === 0
        ? { status: 429, headers: { 'retry-after': '0.15' }, body: { error: { message: 'slow down' } } }
        : chatAnswer('ok'),
    );
    const client = new ChatClient({ baseUrl: server.url, model: 'm', ...fast });
    await client.complete([{ role: 'user', content: 'x' }]);
    const [a, b] = server.requests.slice(offset);
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(149);
  });

  it('gives up after `retries` extra attempts, with the status and the server message', async () => {
    use(() => ({ status: 502, body: { error: { message: 'upstream model crashed' } } }));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', retries: 3, ...fast, backoffMs: 2 });
    const err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(seen()).toBe(4);
    expect(err.kind).toBe('http');
    expect(err.httpStatus).toBe(502);
    expect(err.code).toBe('REMOTE_MODEL');
    expect(err.message).toContain('HTTP 502: upstream model crashed');
  });

  it('does not retry other 4xx', async () => {
    use(() => ({
      status: 400,
      body: { error: { message: 'At most 4 image(s) may be provided in one request.' } },
    }));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', retries: 5, ...fast });
    const err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(seen()).toBe(1);
    expect(err.httpStatus).toBe(400);
    expect(err.message).toContain('At most 4 image(s)');
  });

  it('retries a dropped connection', async () => {
    use((_req, n) => (n === 0 ? { destroy: true } : chatAnswer('ok')));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', ...fast });
    expect((await client.complete([{ role: 'user', content: 'x' }])).text).toBe('ok');
    expect(seen()).toBe(2);
  });

  it('reports a refused connection as a network error after the retries', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const client = new ChatClient({ baseUrl: `http://127.0.0.1:${port}`, model: 'm', retries: 1, ...fast });
    const err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(err.kind).toBe('network');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe('timeouts, bad bodies, limits', () => {
  it('aborts an attempt after timeoutMs and does not retry it', async () => {
    use(() => ({ ...chatAnswer('late'), delayMs: 5000 }));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', timeoutMs: 200, retries: 3, ...fast });
    const t0 = performance.now();
    const err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('no answer within 200 ms');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(195);
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(seen()).toBe(1);
  });

  it('calls a body that is not JSON, or JSON without choices, a bad response, without retrying', async () => {
    const client = new ChatClient({ baseUrl: server.url, model: 'm', ...fast });
    use(() => ({ body: '<html>502 Bad Gateway</html>' }));
    let err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect([err.kind, seen()]).toEqual(['bad_response', 1]);
    expect(err.message).toContain('<html>502 Bad Gateway</html>');
    use(() => ({ body: { choices: [] } }));
    err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(err.kind).toBe('bad_response');
    expect(err.message).toContain('choices[0].message.content');
    use(() => ({ body: { result: '+10%' } }));
    expect((await failure(client.complete([{ role: 'user', content: 'x' }]))).kind).toBe('bad_response');
  });

  it('refuses an answer larger than maxResponseBytes', async () => {
    use(() => chatAnswer('x'.repeat(50_000)));
    const client = new ChatClient({ baseUrl: server.url, model: 'm', maxResponseBytes: 10_000 });
    const err = await failure(client.complete([{ role: 'user', content: 'x' }]));
    expect(err.kind).toBe('bad_response');
    expect(err.message).toContain('larger than 10000 bytes');
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    use(() => ({ ...chatAnswer('ok'), delayMs: 100 }));
    server.maxInFlight = 0;
    const client = new ChatClient({ baseUrl: server.url, model: 'm', concurrency: 3 });
    const all = Array.from({ length: 10 }, () => client.complete([{ role: 'user', content: 'x' }]));
    await Promise.all(all);
    expect(seen()).toBe(10);
    expect(server.maxInFlight).toBe(3);
  });

  it('close() aborts requests in flight and refuses new ones', async () => {
    use(() => ({ ...chatAnswer('late'), delayMs: 5000 }));
    // concurrency 1: the second request is still waiting for a slot when close() comes.
    const client = new ChatClient({ baseUrl: server.url, model: 'm', concurrency: 1 });
    const pending = [0, 1].map(() => failure(client.complete([{ role: 'user', content: 'x' }])));
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    expect((await Promise.all(pending)).map((e) => e.kind)).toEqual(['closed', 'closed']);
    expect(seen()).toBeLessThanOrEqual(1);
    expect((await failure(client.complete([{ role: 'user', content: 'x' }]))).kind).toBe('closed');
  });
});

describe('options', () => {
  it.each([
    [{ baseUrl: 'ftp://host' }, 'baseUrl', /http: or https:/],
    [{ baseUrl: 'not a url' }, 'baseUrl', /not a URL/],
    [{ baseUrl: 'http://h?x=1' }, 'baseUrl', /query/],
    [{ concurrency: 0 }, 'concurrency', /\[1, 1024\], got 0/],
    [{ timeoutMs: -5 }, 'timeoutMs', /\[1, 3600000\]/],
    [{ retries: 11 }, 'retries', /\[0, 10\], got 11/],
    [{ retries: 1.5 }, 'retries', /integer/],
    [{ maxTokens: 0 }, 'maxTokens', /\[1, 65536\]/],
    [{ temperature: 3 }, 'temperature', /\[0, 2\]/],
    [{ model: '' }, 'model', /served model/],
    [{ apiKey: '' }, 'apiKey', /non-empty/],
  ])('%j is refused naming %s', (bad, field, message) => {
    let err: unknown;
    try {
      new ChatClient({ baseUrl: 'http://127.0.0.1:1', model: 'm', ...bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as InvalidArgument).field).toBe(field);
    expect((err as Error).message).toMatch(message);
  });
});

describe('backoff and the limiter', () => {
  it('doubles per retry up to the cap, with equal jitter', () => {
    expect([0, 1, 2, 3].map((k) => backoffDelay(k, 100, 500, () => 0))).toEqual([50, 100, 200, 250]);
    expect([0, 1, 2, 3].map((k) => backoffDelay(k, 100, 500, () => 0.999999))).toEqual(
      [100, 200, 400, 500].map((d) => expect.closeTo(d, 3)),
    );
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
  });

  it('runs at most `limit` tasks and starts waiting ones in arrival order', async () => {
    const limiter = new ConcurrencyLimiter(2);
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const tasks = [0, 1, 2, 3].map((i) =>
      limiter.run(async () => {
        started.push(i);
        await new Promise<void>((r) => gates.push(r));
        return i;
      }),
    );
    await new Promise((r) => setTimeout(r, 5));
    expect([started, limiter.inFlight, limiter.queued]).toEqual([[0, 1], 2, 2]);
    gates[1]!();
    await new Promise((r) => setTimeout(r, 5));
    expect(started).toEqual([0, 1, 2]);
    gates[0]!();
    gates[2]!();
    await new Promise((r) => setTimeout(r, 5));
    gates[3]!();
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3]);
    expect(limiter.inFlight).toBe(0);
  });
});
