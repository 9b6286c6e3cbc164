/** The wire protocol: every message round-trips, tensors keep their bytes, and bad fields get their codes. */
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  DTYPES,
  encodeMessage,
  fromTensor,
  Message,
  MESSAGES,
  PROTOCOL_ERROR_CODES,
  ProtocolError,
  toTensor,
  type Dtype,
  type MessageType,
  type ProtocolErrorCode,
} from '../src/protocol/index.ts';
import { LEARNER_EXAMPLES } from './learner-examples.ts';
import { RIG_EXAMPLES } from './rig-examples.ts';

const f32 = (...v: number[]): Float32Array => Float32Array.from(v);

/** One valid example of every message; the Record makes the compiler demand a new message here. */
const EXAMPLES: { [T in MessageType]: Extract<Message, { type: T }> } = {
  hello: { type: 'hello', role: 'viewer', token: 'secret', client: 'test' },
  welcome: {
    type: 'welcome',
    protocol: 'progress-bridge.v1',
    role: 'publisher',
    session: 3,
    rateHz: 30,
    maxMessageBytes: 65536,
  },
  subscribe: { type: 'subscribe', envs: [0, 2], thumbnails: false },
  status: {
    type: 'status',
    level: 'error',
    code: 'WRONG_TYPE',
    message: 'bad',
    path: 'envs[0]',
    ref: 'subscribe',
  },
  telemetry: { type: 'telemetry', framesSent: 10, framesDropped: 2, viewers: 1, buffered: 0, uptimeS: 1.5 },
  scene: {
    type: 'scene',
    sceneId: 1,
    name: 'push',
    instruction: 'push the cube',
    envIds: [0, 1],
    bodies: [
      { name: 'world', parent: 0 },
      { name: 'cube', parent: 0, mocap: true },
    ],
    geoms: [
      {
        name: 'floor',
        body: 0,
        geomType: 'plane',
        size: [0, 0, 0.05],
        pos: [0, 0, 0],
        quat: [1, 0, 0, 0],
        rgba: [1, 1, 1, 1],
        material: 0,
        mesh: -1,
        group: 0,
      },
      {
        name: 'm',
        body: 1,
        geomType: 'mesh',
        size: [1, 1, 1],
        pos: [0.1, 0, 0],
        quat: [1, 0, 0, 0],
        rgba: [0.8, 0.1, 0.1, 0.5],
        material: -1,
        mesh: 0,
        group: 2,
      },
    ],
    meshes: [
      {
        name: 'tri',
        vertices: toTensor(f32(0, 0, 0, 1, 0, 0, 0, 1, 0), [3, 3]),
        faces: toTensor(Uint32Array.from([0, 1, 2]), [1, 3]),
      },
    ],
    materials: [
      { name: 'grid', rgba: [1, 1, 1, 1], emission: 0, specular: 0.5, shininess: 0.5, reflectance: 0 },
    ],
    cameras: [{ name: 'front', body: 0, pos: [1, 0, 1], quat: [0.7, 0.7, 0, 0], fovy: 45 }],
    center: [0, 0, 0.3],
    extent: 1.2,
  },
  frame: {
    type: 'frame',
    sceneId: 1,
    env: 1,
    seq: 7,
    time: 0.28,
    pos: toTensor(f32(0, 0, 0, 0.1, -0.2, 0.3), [2, 3]),
    quat: toTensor(f32(1, 0, 0, 0, Math.SQRT1_2, 0, 0, Math.SQRT1_2), [2, 4]),
  },
  progress: {
    type: 'progress',
    env: 0,
    episode: 4,
    step: 10,
    phi: [0.1, 0.2],
    shaped: [0.05, -0.01],
    sparse: [0, 1],
    source: 'oracle',
  },
  episode: {
    type: 'episode',
    env: 0,
    episode: 4,
    return: 1,
    shapedReturn: 1.4,
    length: 53,
    success: true,
    totalSteps: 1000,
  },
  metrics: { type: 'metrics', step: 2048, values: { 'loss/policy': -0.01, kl: 0.003 } },
  thumbnail: {
    type: 'thumbnail',
    env: 0,
    camera: 'front',
    step: 12,
    mime: 'image/png',
    width: 2,
    height: 2,
    data: Uint8Array.from([137, 80, 78, 71]),
  },
  ...LEARNER_EXAMPLES,
  ...RIG_EXAMPLES,
};

/** Tensors compare by dtype, shape and element values; everything else structurally. */
function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('dtype' in o && 'shape' in o && o.data instanceof Uint8Array) {
      return {
        dtype: o.dtype,
        shape: o.shape,
        values: Array.from(fromTensor(o as never) as ArrayLike<number>),
      };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

/**
 * Walks MessagePack bytes accepting only the core format's types (no ext, which is where msgpackr's records
 * and typed arrays live): what any other language's decoder reads.
 */
function plainMsgpack(b: Uint8Array): void {
  let i = 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const value = (): void => {
    const t = b[i++]!;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return;
    if ((t & 0xf0) === 0x80) return repeat(2 * (t & 0x0f));
    if ((t & 0xf0) === 0x90) return repeat(t & 0x0f);
    if ((t & 0xe0) === 0xa0) return void (i += t & 0x1f);
    const sizes: Record<number, number> = {
      0xcc: 1,
      0xcd: 2,
      0xce: 4,
      0xcf: 8,
      0xd0: 1,
      0xd1: 2,
      0xd2: 4,
      0xd3: 8,
      0xca: 4,
      0xcb: 8,
    };
    if (t in sizes) return void (i += sizes[t]!);
    const len = (n: number): number => {
      const v = n === 1 ? dv.getUint8(i) : n === 2 ? dv.getUint16(i) : dv.getUint32(i);
      i += n;
      return v;
    };
    const skip = (n: number): void => {
      // len() moves i past the length field first; the payload starts after it.
      const size = len(n);
      i += size;
    };
    if (t === 0xc4 || t === 0xd9) return skip(1);
    if (t === 0xc5 || t === 0xda) return skip(2);
    if (t === 0xc6 || t === 0xdb) return skip(4);
    if (t === 0xdc) return repeat(len(2));
    if (t === 0xdd) return repeat(len(4));
    if (t === 0xde) return repeat(2 * len(2));
    if (t === 0xdf) return repeat(2 * len(4));
    throw new Error(`non-core MessagePack type 0x${t.toString(16)} at byte ${i - 1}`);
  };
  const repeat = (n: number): void => {
    for (let k = 0; k < n; k++) value();
  };
  value();
  if (i !== b.length) throw new Error(`${b.length - i} trailing bytes`);
}

describe('protocol messages', () => {
  it.each(Object.keys(MESSAGES) as MessageType[])(
    '%s round-trips through encode/decode as core MessagePack',
    (type) => {
      const msg = EXAMPLES[type];
      const bytes = encodeMessage(msg);
      plainMsgpack(bytes);
      const back = decodeMessage(bytes);
      expect(normalise(back)).toEqual(normalise(msg));
    },
  );

  it('frames keep every float32 bit (the msgpackr Float32Array trap)', () => {
    const pos = new Float32Array(300);
    const quat = new Float32Array(400);
    for (let i = 0; i < pos.length; i++) pos[i] = Math.fround(Math.sin(i) * 1e3 + 1e-7 * i);
    for (let i = 0; i < quat.length; i++) quat[i] = Math.fround(Math.cos(i));
    // Several messages through one encoder: stale bytes of an earlier message must not leak into a later one.
    for (let round = 0; round < 3; round++) {
      pos[0] = round + 0.5;
      const bytes = encodeMessage({
        type: 'frame',
        sceneId: 1,
        env: 0,
        seq: round,
        time: 0,
        pos: toTensor(pos, [100, 3]),
        quat: toTensor(quat, [100, 4]),
      });
      const m = decodeMessage(bytes);
      if (m.type !== 'frame') throw new Error('not a frame');
      expect(fromTensor(m.pos)).toEqual(pos);
      expect(fromTensor(m.quat)).toEqual(quat);
    }
  });

  it.each(DTYPES)('%s tensors round-trip, also from unaligned bytes', (dtype: Dtype) => {
    const Ctor = {
      float32: Float32Array,
      float64: Float64Array,
      int8: Int8Array,
      uint8: Uint8Array,
      int16: Int16Array,
      uint16: Uint16Array,
      int32: Int32Array,
      uint32: Uint32Array,
    }[dtype];
    const a = new Ctor(12);
    for (let i = 0; i < a.length; i++)
      a[i] = ((i * 37) % 100) - (dtype.startsWith('u') ? 0 : 50) + (dtype.startsWith('float') ? 0.25 : 0);
    const t = toTensor(a, [3, 4]);
    expect(t.dtype).toBe(dtype);
    expect(t.data.byteLength).toBe(a.byteLength);
    const shifted = new Uint8Array(t.data.byteLength + 1);
    shifted.set(t.data, 1);
    expect(Array.from(fromTensor({ ...t, data: shifted.subarray(1) }) as ArrayLike<number>)).toEqual(
      Array.from(a),
    );
  });
});

interface BadCase {
  what: string;
  msg: unknown;
  code: ProtocolErrorCode;
  path?: string;
}

const scene = EXAMPLES.scene;
const frame = EXAMPLES.frame;
const BAD: BadCase[] = [
  { what: 'not a map', msg: [1, 2], code: 'MALFORMED_MESSAGE' },
  { what: 'no type', msg: { role: 'viewer' }, code: 'MISSING_FIELD', path: 'type' },
  { what: 'type not a string', msg: { type: 7 }, code: 'WRONG_TYPE', path: 'type' },
  { what: 'unknown type', msg: { type: 'teleport' }, code: 'UNKNOWN_TYPE', path: 'type' },
  { what: 'hello without role', msg: { type: 'hello' }, code: 'MISSING_FIELD', path: 'role' },
  {
    what: 'hello with unknown role',
    msg: { type: 'hello', role: 'admin' },
    code: 'INVALID_VALUE',
    path: 'role',
  },
  {
    what: 'hello with numeric token',
    msg: { type: 'hello', role: 'viewer', token: 5 },
    code: 'WRONG_TYPE',
    path: 'token',
  },
  {
    what: 'token too long',
    msg: { type: 'hello', role: 'viewer', token: 'x'.repeat(600) },
    code: 'OUT_OF_RANGE',
    path: 'token',
  },
  {
    what: 'subscribe env negative',
    msg: { type: 'subscribe', envs: [-1] },
    code: 'OUT_OF_RANGE',
    path: 'envs[0]',
  },
  {
    what: 'subscribe env fractional',
    msg: { type: 'subscribe', envs: [0.5] },
    code: 'OUT_OF_RANGE',
    path: 'envs[0]',
  },
  {
    what: 'subscribe envs not an array',
    msg: { type: 'subscribe', envs: 3 },
    code: 'WRONG_TYPE',
    path: 'envs',
  },
  { what: 'frame NaN time', msg: { ...frame, time: NaN }, code: 'OUT_OF_RANGE', path: 'time' },
  { what: 'frame pos not a tensor', msg: { ...frame, pos: [0, 0, 0] }, code: 'WRONG_TYPE', path: 'pos' },
  {
    what: 'frame pos without data',
    msg: { ...frame, pos: { dtype: 'float32', shape: [2, 3] } },
    code: 'MISSING_FIELD',
    path: 'pos.data',
  },
  {
    what: 'frame pos float64',
    msg: { ...frame, pos: toTensor(new Float64Array(6), [2, 3]) },
    code: 'BAD_TENSOR',
    path: 'pos.dtype',
  },
  {
    what: 'frame pos unknown dtype',
    msg: { ...frame, pos: { ...frame.pos, dtype: 'bfloat16' } },
    code: 'BAD_TENSOR',
    path: 'pos.dtype',
  },
  {
    what: 'frame pos short data',
    msg: { ...frame, pos: { ...frame.pos, data: frame.pos.data.subarray(0, 20) } },
    code: 'BAD_TENSOR',
    path: 'pos.data',
  },
  {
    what: 'frame pos wrong width',
    msg: { ...frame, pos: toTensor(new Float32Array(8), [2, 4]) },
    code: 'BAD_TENSOR',
    path: 'pos.shape',
  },
  {
    what: 'frame pos negative dim',
    msg: { ...frame, pos: { ...frame.pos, shape: [-2, 3] } },
    code: 'BAD_TENSOR',
    path: 'pos.shape',
  },
  {
    what: 'frame pos/quat body counts differ',
    msg: { ...frame, quat: toTensor(new Float32Array(12), [3, 4]) },
    code: 'INVALID_VALUE',
    path: 'quat',
  },
  {
    what: 'progress arrays differ',
    msg: { ...EXAMPLES.progress, shaped: [0] },
    code: 'INVALID_VALUE',
    path: 'shaped',
  },
  {
    what: 'progress phi above 1',
    msg: { ...EXAMPLES.progress, phi: [0.5, 1.5] },
    code: 'OUT_OF_RANGE',
    path: 'phi[1]',
  },
  {
    what: 'episode success not boolean',
    msg: { ...EXAMPLES.episode, success: 1 },
    code: 'WRONG_TYPE',
    path: 'success',
  },
  {
    what: 'metrics value a string',
    msg: { ...EXAMPLES.metrics, values: { kl: 'big' } },
    code: 'WRONG_TYPE',
    path: 'values.kl',
  },
  {
    what: 'thumbnail gif',
    msg: { ...EXAMPLES.thumbnail, mime: 'image/gif' },
    code: 'INVALID_VALUE',
    path: 'mime',
  },
  {
    what: 'thumbnail data a string',
    msg: { ...EXAMPLES.thumbnail, data: 'iVBOR' },
    code: 'WRONG_TYPE',
    path: 'data',
  },
  { what: 'scene without bodies', msg: { ...scene, bodies: [] }, code: 'OUT_OF_RANGE', path: 'bodies' },
  {
    what: 'scene with fewer env names than envIds',
    msg: { ...scene, envIds: [0, 1], envNames: ['left'] },
    code: 'INVALID_VALUE',
    path: 'envNames',
  },
  {
    what: 'scene geom type unknown',
    msg: { ...scene, geoms: [{ ...scene.geoms[0]!, geomType: 'torus' }] },
    code: 'INVALID_VALUE',
    path: 'geoms[0].geomType',
  },
  {
    what: 'scene geom size of 2',
    msg: { ...scene, geoms: [{ ...scene.geoms[0]!, size: [1, 2] }] },
    code: 'OUT_OF_RANGE',
    path: 'geoms[0].size',
  },
  {
    what: 'scene geom on a missing body',
    msg: { ...scene, geoms: [{ ...scene.geoms[0]!, body: 9 }] },
    code: 'INVALID_VALUE',
    path: 'geoms[0].body',
  },
  {
    what: 'scene mesh geom without mesh',
    msg: { ...scene, geoms: [{ ...scene.geoms[1]!, mesh: -1 }] },
    code: 'INVALID_VALUE',
    path: 'geoms[0].mesh',
  },
  {
    what: 'scene face index past vertices',
    msg: {
      ...scene,
      meshes: [{ ...scene.meshes[0]!, faces: toTensor(Uint32Array.from([0, 1, 3]), [1, 3]) }],
    },
    code: 'INVALID_VALUE',
    path: 'meshes[0].faces',
  },
  {
    what: 'scene camera fovy 200',
    msg: { ...scene, cameras: [{ ...scene.cameras[0]!, fovy: 200 }] },
    code: 'OUT_OF_RANGE',
    path: 'cameras[0].fovy',
  },
  {
    what: 'scene without envIds',
    msg: { ...scene, envIds: undefined },
    code: 'MISSING_FIELD',
    path: 'envIds',
  },
];

describe('protocol validation', () => {
  it.each(BAD)('rejects $what with $code', ({ msg, code, path }) => {
    let caught: unknown;
    try {
      decodeMessage(encodeMessage(msg as Message));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    const e = caught as ProtocolError;
    expect(e.code).toBe(code);
    if (path !== undefined) expect(e.path).toBe(path);
    expect(PROTOCOL_ERROR_CODES).toContain(e.code);
  });

  it('rejects bytes that are not one MessagePack value', () => {
    for (const bytes of [
      new Uint8Array(0),
      Uint8Array.from([0x92, 0x01]),
      Uint8Array.from([0x81, 0xa1, 0x61, 0x01, 0x01]),
    ]) {
      expect(() => decodeMessage(bytes)).toThrow(expect.objectContaining({ code: 'MALFORMED_MESSAGE' }));
    }
  });

  it('drops fields it does not know (newer peers may add some)', () => {
    const m = Message.parse({ type: 'subscribe', envs: [1], future: { x: 1 } });
    expect(m).toEqual({ type: 'subscribe', envs: [1] });
  });
});
