/**
 * The KServe v2 / Triton client and KServeProgressModel against a local server that implements the v2 endpoints
 * and computes each image's mean pixel value (in [0, 1]) as its "progress".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KServeClient, type KServeTensor } from '../src/reward/http/kserve.ts';
import {
  checkInputs,
  KServeProgressModel,
  type KServeEncode,
} from '../src/reward/http/kserve-progress-model.ts';
import type { ProgressRequest } from '../src/reward/model.ts';
import { RemoteModelError } from '../src/sim/errors.ts';
import { ScriptedServer, solid, type Reply, type Script } from './fixtures/reward-http/server.ts';

/** 2 x 2 RGB frames: 12 values per image. */
const PIXELS = 12;

interface ServerModel {
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
  /** Output shape per batch: [B, 1] or [B]. */
  flat?: boolean;
  /** Replaces the computed means (to send NaN as null, out-of-range values, strings). */
  values?: unknown[];
}

const standard: ServerModel = {
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, PIXELS] }],
  outputs: [{ name: 'progress', datatype: 'FP32', shape: [-1, 1] }],
};

/** A v2 server for one model, `progress_net`: health, metadata and an infer that averages each row. */
function v2(model: ServerModel, ready = true): Script {
  return (req): Reply => {
    if (req.method === 'GET' && req.url === '/v2/health/ready')
      return ready ? { body: '' } : { status: 503, body: '' };
    if (req.method === 'GET' && req.url === '/v2/models/progress_net') {
      return { body: { name: 'progress_net', versions: ['1'], platform: 'onnxruntime_onnx', ...model } };
    }
    if (req.method === 'POST' && req.url === '/v2/models/progress_net/infer') {
      const body = req.json as { inputs: KServeTensor[] };
      const pixels = body.inputs.find((t) => t.name === 'pixels');
      if (!pixels) return { status: 400, body: { error: 'input pixels missing' } };
      const [b, n] = pixels.shape as [number, number];
      const data = pixels.data as number[];
      const means = Array.from(
        { length: b },
        (_, i) => data.slice(i * n, (i + 1) * n).reduce((s, x) => s + x, 0) / n,
      );
      return {
        body: {
          model_name: 'progress_net',
          model_version: '1',
          outputs: [
            {
              name: 'progress',
              datatype: 'FP32',
              shape: model.flat ? [b] : [b, 1],
              data: model.values ?? means,
            },
          ],
        },
      };
    }
    return { status: 404, body: { error: `no route ${req.method} ${req.url}` } };
  };
}

let server: ScriptedServer;
let offset = 0;
function use(script: Script): void {
  offset = server.requests.length;
  server.script = (req, n) => script(req, n - offset);
}

beforeAll(async () => {
  server = await ScriptedServer.start(v2(standard));
});
afterAll(async () => {
  await server.close();
});

const client = (extra: Partial<ConstructorParameters<typeof KServeClient>[0]> = {}): KServeClient =>
  new KServeClient({ baseUrl: server.url, backoffMs: 1, random: () => 0, ...extra });

const request = (level: number, step = 0): ProgressRequest => ({
  instruction: 'push',
  views: { front: solid(level, 2, 2) },
  envId: 0,
  episodeId: 0,
  step,
});

/** Each request's front frame, scaled to [0, 1], as one FP32 row. */
const encode: KServeEncode = (batch) => [
  {
    name: 'pixels',
    datatype: 'FP32',
    shape: [batch.length, PIXELS],
    data: Float32Array.from(batch.flatMap((r) => Array.from(r.views.front!.rgb, (v) => v / 255))),
  },
];

async function rejection(p: Promise<unknown>): Promise<RemoteModelError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RemoteModelError);
  return err as RemoteModelError;
}

describe('KServeClient', () => {
  it('reads readiness and model metadata', async () => {
    use(v2(standard));
    const c = client();
    expect(await c.ready()).toBe(true);
    const meta = await c.metadata('progress_net');
    expect(meta).toEqual({
      name: 'progress_net',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: standard.inputs,
      outputs: standard.outputs,
    });
    use(v2(standard, false));
    expect(await client({ retries: 5 }).ready()).toBe(false);
    expect(server.requests.length - offset).toBe(1); // a health check is not retried
  });

  it('sends tensors as {name, shape, datatype, data} with flattened data and asks for the named output', async () => {
    use(v2(standard));
    const r = await client().infer('progress_net', encode([request(51), request(102)]), {
      outputs: ['progress'],
      id: 'q1',
    });
    const sent = server.requests.at(-1)!.json as Record<string, unknown>;
    expect(sent.outputs).toEqual([{ name: 'progress' }]);
    expect(sent.id).toBe('q1');
    const [input] = sent.inputs as { name: string; shape: number[]; datatype: string; data: number[] }[];
    expect([input!.name, input!.datatype, input!.shape, input!.data.length]).toEqual([
      'pixels',
      'FP32',
      [2, 12],
      24,
    ]);
    expect(r.modelName).toBe('progress_net');
    expect(r.outputs[0]!.shape).toEqual([2, 1]);
    expect(r.outputs[0]!.data[1]).toBeCloseTo(0.4, 6);
  });

  it('a metadata answer that is not the protocol is a bad response', async () => {
    use(() => ({ body: { name: 'progress_net', inputs: 'pixels' } }));
    const err = await rejection(client().metadata('progress_net'));
    expect(err.kind).toBe('bad_response');
    expect(err.message).toContain('no inputs array');
  });
});

describe('KServeProgressModel', () => {
  it('predicts the mean pixel value per request, [B, 1] or [B]', async () => {
    use(v2(standard));
    const model = await KServeProgressModel.create({
      client: client(),
      model: 'progress_net',
      encode,
      output: 'progress',
      probe: request(0),
    });
    expect(model.id).toBe('kserve:progress_net');
    // Means of solid frames: 0 / 255, 51 / 255 = 0.2, 255 / 255 = 1.
    const out = await model.predict([request(0), request(51, 1), request(255, 2)]);
    expect(out.map((a) => a.status)).toEqual(['ok', 'ok', 'ok']);
    expect(out[0]!.progress).toBe(0);
    expect(out[1]!.progress).toBeCloseTo(0.2, 6);
    expect(out[2]!.progress).toBeCloseTo(1, 6);

    const flat = { ...standard, outputs: [{ name: 'progress', datatype: 'FP32', shape: [-1] }], flat: true };
    use(v2(flat));
    const m2 = await KServeProgressModel.create({
      client: client(),
      model: 'progress_net',
      encode,
      output: 'progress',
    });
    expect((await m2.predict([request(102)]))[0]!.progress).toBeCloseTo(0.4, 6);
  });

  it('NaN, strings and far-out values are parse errors with NaN progress; small overshoots are clamped', async () => {
    use(v2({ ...standard, values: [null, 1.02, 3, -0.01, 'NaN', 0.5] }));
    const model = await KServeProgressModel.create({
      client: client(),
      model: 'progress_net',
      encode,
      output: 'progress',
    });
    const out = await model.predict([0, 1, 2, 3, 4, 5].map((s) => request(0, s)));
    expect(out.map((a) => a.status)).toEqual(['parse_error', 'ok', 'parse_error', 'ok', 'parse_error', 'ok']);
    expect(out.map((a) => a.progress)).toEqual([NaN, 1, NaN, 0, NaN, 0.5]);
    expect(out[2]!.error).toContain('value 3 is not a progress');
  });

  it('fails at load, naming the tensor, when the model does not take what encode gives', async () => {
    use(v2(standard));
    const base = { client: client(), model: 'progress_net', output: 'progress', probe: request(0) };
    const cases: [KServeEncode, RegExp][] = [
      [
        (b) => [{ ...encode(b)[0]!, datatype: 'INT64' }],
        /input "pixels": model progress_net takes FP32, encode gives INT64/,
      ],
      [
        (b) => [{ ...encode(b)[0]!, shape: [b.length, 6, 2] }],
        /input "pixels": .*shape \[-1, 12\].*encode gives \[1, 6, 2\]/,
      ],
      [(b) => [{ ...encode(b)[0]!, name: 'image' }], /no input "image"; its inputs are: pixels/],
      [
        (b) => [{ ...encode(b)[0]!, data: [1, 2] }],
        /input "pixels": shape \[1, 12\] holds 12 values, data has 2/,
      ],
    ];
    for (const [bad, message] of cases) {
      const err = await rejection(KServeProgressModel.create({ ...base, encode: bad }));
      expect(err.kind).toBe('mismatch');
      expect(err.message).toMatch(message);
    }
    const wrongOutput = await rejection(KServeProgressModel.create({ ...base, encode, output: 'value' }));
    expect(wrongOutput.message).toMatch(/no output "value"; its outputs are: progress/);

    use(
      v2({ ...standard, inputs: [...standard.inputs, { name: 'task_id', datatype: 'INT64', shape: [-1] }] }),
    );
    const absent = await rejection(KServeProgressModel.create({ ...base, encode }));
    expect(absent.message).toMatch(/needs input\(s\) task_id/);
  });

  it('answers every request of a batch error on HTTP failure and timeout on a slow server', async () => {
    use(v2(standard));
    const model = await KServeProgressModel.create({
      client: client({ retries: 1, timeoutMs: 1500 }),
      model: 'progress_net',
      encode,
      output: 'progress',
    });
    use((req) =>
      req.method === 'POST' ? { status: 500, body: { error: 'CUDA error: out of memory' } } : { status: 404 },
    );
    let out = await model.predict([request(0), request(10, 1)]);
    expect(out.map((a) => a.status)).toEqual(['error', 'error']);
    expect(out[0]!.progress).toBeNaN();
    expect(out[0]!.error).toContain('CUDA error: out of memory');
    expect(server.requests.length - offset).toBe(2);

    use(() => ({ body: {}, delayMs: 6000 }));
    out = await model.predict([request(0)]);
    expect([out[0]!.status, out[0]!.progress]).toEqual(['timeout', NaN]);

    // A batch encode cannot handle is an error too, checked before anything is sent.
    use(v2(standard));
    const broken = await KServeProgressModel.create({
      client: client(),
      model: 'progress_net',
      output: 'progress',
      encode: (b) => (b.length > 1 ? [{ ...encode(b)[0]!, datatype: 'FP16' }] : encode(b)),
    });
    const before = server.requests.length;
    out = await broken.predict([request(0), request(0, 1)]);
    expect(out[1]!.error).toMatch(/input "pixels".*FP16/);
    expect(server.requests.length).toBe(before);
  });

  it('checkInputs accepts any size where the metadata says -1', () => {
    const spec = [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }];
    expect(() =>
      checkInputs('m', [{ name: 'x', datatype: 'FP32', shape: [5, 3], data: new Float32Array(15) }], spec),
    ).not.toThrow();
    expect(() =>
      checkInputs('m', [{ name: 'x', datatype: 'FP32', shape: [5, 4], data: new Float32Array(20) }], spec),
    ).toThrow(/"x"/);
    const nan = Float32Array.from([0, 0, 0, 0, NaN, 0]);
    expect(() => checkInputs('m', [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: nan }], spec)).toThrow(
      /input "x": value 4 is NaN/,
    );
  });
});
