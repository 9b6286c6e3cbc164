/**
 * The KServe v2 binary tensor data extension, against a local server that parses the request body itself (the
 * JSON header's length from `Inference-Header-Content-Length`, then each input's bytes read through typed-array
 * views) and answers with a binary output. Proves: element encodings equal hand-worked bytes (little-endian
 * integers and floats, FP16 rounding, BOOL, BYTES length prefixes); a value an integer type cannot hold is refused
 * naming the tensor; a batch of uint8 camera frames travels as one byte per pixel and scores as the JSON path
 * does; an answer in plain JSON is read too; answers whose binary layout does not add up are `bad_response`
 * naming the output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KServeClient, type KServeTensor } from '../src/reward/http/kserve.ts';
import { decodeTensor, encodeTensor, fromHalf, toHalf } from '../src/reward/http/kserve-binary.ts';
import { KServeProgressModel, type KServeEncode } from '../src/reward/http/kserve-progress-model.ts';
import { createHttpProgressModel } from '../src/reward/http/factory.ts';
import type { ProgressRequest } from '../src/reward/model.ts';
import { InvalidArgument, RemoteModelError } from '../src/sim/errors.ts';
import { ScriptedServer, solid, type Recorded, type Reply } from './fixtures/reward-http/server.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const tensor = (datatype: KServeTensor['datatype'], data: KServeTensor['data']): KServeTensor => ({
  name: 'x',
  datatype,
  shape: [data.length],
  data,
});

describe('binary tensor encodings', () => {
  it('writes each datatype as the hand-worked little-endian bytes', () => {
    expect(hex(encodeTensor(tensor('UINT8', [0, 1, 255])))).toBe('0001ff');
    expect(hex(encodeTensor(tensor('INT8', [-1, 127])))).toBe('ff7f');
    expect(hex(encodeTensor(tensor('UINT16', [0x1234])))).toBe('3412');
    expect(hex(encodeTensor(tensor('INT32', [-2])))).toBe('feffffff');
    expect(hex(encodeTensor(tensor('INT64', [-1, 258])))).toBe('ffffffffffffffff' + '0201000000000000');
    // 1.0f = 0x3f800000, -2.5 = 0xc0200000
    expect(hex(encodeTensor(tensor('FP32', [1, -2.5])))).toBe('0000803f' + '000020c0');
    // 1.0 = 0x3ff0000000000000
    expect(hex(encodeTensor(tensor('FP64', [1])))).toBe('000000000000f03f');
    expect(hex(encodeTensor(tensor('BOOL', [true, false, 1])))).toBe('010001');
    expect(hex(encodeTensor(tensor('BYTES', ['ab', ''])))).toBe('020000006162' + '00000000');
  });

  it('rounds to binary16 as IEEE 754 does', () => {
    // 1 = 0x3c00, -2 = 0xc000, 65504 (largest) = 0x7bff, 2^-24 (smallest subnormal) = 0x0001, 0.1 -> 0x2e66.
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001],
      [0.1, 0x2e66],
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [0, 0],
    ];
    for (const [v, bits] of cases) expect([v, toHalf(v)]).toEqual([v, bits]);
    // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to the even mantissa, 1.
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(fromHalf(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(Number.isNaN(fromHalf(toHalf(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 37) expect(toHalf(fromHalf(h))).toBe(h);
  });

  it('reads back what it writes, for every datatype', () => {
    const cases: [KServeTensor['datatype'], (number | boolean | string)[]][] = [
      ['UINT8', [0, 7, 255]],
      ['INT16', [-32768, 5]],
      ['UINT32', [4294967295]],
      ['INT64', [-9007199254740991, 3]],
      ['FP32', [0.5, -1e-3]],
      ['FP64', [Math.PI]],
      ['BOOL', [true, false]],
      ['BYTES', ['progress', 'é']],
    ];
    for (const [dt, data] of cases) {
      const bytes = Buffer.from(encodeTensor(tensor(dt, data)));
      const back = decodeTensor(dt, bytes, data.length, 'test');
      if (dt === 'FP32') expect(back).toEqual(data.map((v) => Math.fround(v as number)));
      else expect(back).toEqual(data);
    }
  });

  it('refuses a value its integer type cannot hold, naming the tensor, instead of wrapping it', () => {
    expect(() => encodeTensor(tensor('UINT8', [1, 256]))).toThrow(InvalidArgument);
    expect(() => encodeTensor(tensor('UINT8', [1, 256]))).toThrow(/input "x".*value 1 is 256.*\[0, 255\]/);
    expect(() => encodeTensor(tensor('INT32', [0.5]))).toThrow(/value 0 is 0.5/);
  });
});

/** 2 x 2 RGB frames: 12 uint8 values per image. */
const PIXELS = 12;
const request = (level: number): ProgressRequest => ({
  instruction: 'push',
  views: { front: solid(level, 2, 2) },
  envId: 0,
  episodeId: 0,
  step: 0,
});
const encode: KServeEncode = (batch) => [
  {
    name: 'frames',
    datatype: 'UINT8',
    shape: [batch.length, PIXELS],
    data: Uint8Array.from(batch.flatMap((r) => Array.from(r.views.front!.rgb))),
  },
];

const metadata = {
  name: 'progress_net',
  versions: ['1'],
  inputs: [{ name: 'frames', datatype: 'UINT8', shape: [-1, PIXELS] }],
  outputs: [{ name: 'progress', datatype: 'FP32', shape: [-1, 1] }],
};

/** Each frame's mean pixel over 255, from the request bytes: JSON numbers or the binary layout. */
function means(req: Recorded): number[] {
  const declared = req.headers['inference-header-content-length'];
  if (declared === undefined) {
    const t = (req.json as { inputs: KServeTensor[] }).inputs[0]!;
    const data = Array.from(t.data as number[]);
    return Array.from(
      { length: t.shape[0]! },
      (_, i) => data.slice(i * PIXELS, (i + 1) * PIXELS).reduce((a, v) => a + v / 255, 0) / PIXELS,
    );
  }
  const n = Number(declared);
  const header = JSON.parse(req.raw.subarray(0, n).toString('utf8')) as {
    inputs: { shape: number[]; parameters: { binary_data_size: number } }[];
  };
  const input = header.inputs[0]!;
  const pixels = new Uint8Array(req.raw.buffer, req.raw.byteOffset + n, input.parameters.binary_data_size);
  return Array.from(
    { length: input.shape[0]! },
    (_, i) => pixels.subarray(i * PIXELS, (i + 1) * PIXELS).reduce((a, v) => a + v / 255, 0) / PIXELS,
  );
}

/** Answers with the means as a binary FP32 output (or as JSON with `json`), or a broken layout. */
function binaryServer(mode: 'binary' | 'json' | 'short' | 'extra' = 'binary') {
  return (req: Recorded): Reply => {
    if (req.method === 'GET') return { body: metadata };
    const m = means(req);
    if (mode === 'json') {
      return {
        body: {
          model_name: 'progress_net',
          outputs: [{ name: 'progress', datatype: 'FP32', shape: [m.length, 1], data: m }],
        },
      };
    }
    const data = Buffer.from(new Float32Array(m).buffer);
    const size = mode === 'short' ? data.length - 4 : data.length;
    const header = Buffer.from(
      JSON.stringify({
        model_name: 'progress_net',
        outputs: [
          {
            name: 'progress',
            datatype: 'FP32',
            shape: [m.length, 1],
            parameters: { binary_data_size: size },
          },
        ],
      }),
    );
    const body = Buffer.concat([
      header,
      data.subarray(0, size),
      mode === 'extra' ? Buffer.from([1, 2]) : Buffer.alloc(0),
    ]);
    return { body, headers: { 'inference-header-content-length': String(header.length) } };
  };
}

let server: ScriptedServer;
beforeAll(async () => {
  server = await ScriptedServer.start(binaryServer());
});
afterAll(async () => {
  await server.close();
});
const client = (): KServeClient => new KServeClient({ baseUrl: server.url, backoffMs: 1, random: () => 0 });

describe('KServe binary requests and answers', () => {
  it('sends uint8 frames as one byte per pixel after the JSON header and reads the binary output', async () => {
    server.script = binaryServer();
    const batch = [request(0), request(51), request(255)];
    const r = await client().infer('progress_net', encode(batch), { outputs: ['progress'], binary: true });
    const sent = server.requests.at(-1)!;
    expect(sent.headers['content-type']).toBe('application/octet-stream');
    const n = Number(sent.headers['inference-header-content-length']);
    const header = JSON.parse(sent.raw.subarray(0, n).toString('utf8')) as Record<string, unknown>;
    expect(header).toEqual({
      inputs: [
        {
          name: 'frames',
          shape: [3, PIXELS],
          datatype: 'UINT8',
          parameters: { binary_data_size: 3 * PIXELS },
        },
      ],
      outputs: [{ name: 'progress', parameters: { binary_data: true } }],
    });
    expect(sent.raw.length).toBe(n + 3 * PIXELS);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]!.shape).toEqual([3, 1]);
    // solid(level) frames: every pixel is `level`, so the mean is level / 255 (in float32).
    expect(r.outputs[0]!.data).toEqual([0, 51 / 255, 1].map(Math.fround));
  });

  it('asks for every output in binary when none is named, and reads an answer the server sent as JSON', async () => {
    server.script = binaryServer('json');
    const r = await client().infer('progress_net', encode([request(102)]), { binary: true });
    const sent = server.requests.at(-1)!;
    const n = Number(sent.headers['inference-header-content-length']);
    const header = JSON.parse(sent.raw.subarray(0, n).toString('utf8')) as Record<string, unknown>;
    expect(header.parameters).toEqual({ binary_data_output: true });
    expect(header.outputs).toBeUndefined();
    expect(r.outputs[0]!.data).toHaveLength(1);
    expect(r.outputs[0]!.data[0]).toBeCloseTo(102 / 255, 12);
  });

  it('is bad_response naming the output when the binary layout does not add up', async () => {
    for (const [mode, message] of [
      ['short', /output "progress": 8 bytes of FP32 for 3 elements \(needs 12\)/],
      ['extra', /2 bytes after the outputs' binary data/],
    ] as const) {
      server.script = binaryServer(mode);
      const err = await client()
        .infer('progress_net', encode([request(1), request(2), request(3)]), { binary: true })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(RemoteModelError);
      expect((err as RemoteModelError).kind).toBe('bad_response');
      expect((err as Error).message).toMatch(message);
    }
  });

  it('gives a progress model the same answers as the JSON path, from a fraction of the bytes', async () => {
    server.script = binaryServer();
    const batch = [request(10), request(200), request(128), request(64)];
    const base = `${server.url}/v2/models/progress_net?output=progress`;
    const viaBinary = await createHttpProgressModel(`${base}&binary=true`, { encode });
    const binaryAnswers = await viaBinary.predict(batch);
    const binaryBytes = server.requests.at(-1)!.raw.length;
    const viaJson = await createHttpProgressModel(base, { encode });
    server.script = binaryServer('json');
    const jsonAnswers = await viaJson.predict(batch);
    const jsonBytes = server.requests.at(-1)!.raw.length;
    expect(binaryAnswers.map((a) => a.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(binaryAnswers.map((a) => a.progress)).toEqual(jsonAnswers.map((a) => Math.fround(a.progress)));
    expect(binaryAnswers.map((a) => a.progress)).toEqual([10, 200, 128, 64].map((v) => Math.fround(v / 255)));
    expect(binaryBytes).toBeLessThan(jsonBytes);
    expect(viaBinary).toBeInstanceOf(KServeProgressModel);
    await viaBinary.close?.();
    await viaJson.close?.();
  });

  it('refuses a binary query value that is not true or false, by name', async () => {
    await expect(
      createHttpProgressModel(`${server.url}/v2/models/progress_net?output=progress&binary=yes`, { encode }),
    ).rejects.toThrow(/binary must be true or false, got "yes"/);
  });
});
