/**
 * The binary tensor data extension of the KServe v2 protocol (Triton's `binary_data`): a request body is the JSON
 * inference header followed by each input's raw bytes, the header's length in `Inference-Header-Content-Length`;
 * an answer may be laid out the same way. Element encodings: little-endian, row-major; BOOL one byte; BYTES each
 * element a 4-byte little-endian length then its bytes.
 *
 * Why: an image model's input as JSON numbers is about 3.5 bytes per uint8 pixel plus the parsing on both sides;
 * raw it is one byte.
 */
import { InvalidArgument, RemoteModelError } from '../../sim/errors.ts';
import type { KServeOutputTensor, KServeTensor } from './kserve.ts';

export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * Element width, little-endian reader and writer of each fixed-size datatype, and for integer types the range a
 * value must lie in, so that it is refused rather than wrapped silently.
 */
interface ElementCodec {
  width: number;
  write(out: Buffer, v: number, at: number): void;
  read(bytes: Buffer, at: number): number | boolean;
  range?: [number, number];
}

const CODECS: Record<string, ElementCodec> = {
  BOOL: { width: 1, write: (o, v, at) => void (o[at] = v ? 1 : 0), read: (b, at) => b[at] !== 0 },
  UINT8: {
    width: 1,
    write: (o, v, at) => void o.writeUInt8(v, at),
    read: (b, at) => b.readUInt8(at),
    range: [0, 255],
  },
  INT8: {
    width: 1,
    write: (o, v, at) => void o.writeInt8(v, at),
    read: (b, at) => b.readInt8(at),
    range: [-128, 127],
  },
  UINT16: {
    width: 2,
    write: (o, v, at) => void o.writeUInt16LE(v, at),
    read: (b, at) => b.readUInt16LE(at),
    range: [0, 65_535],
  },
  INT16: {
    width: 2,
    write: (o, v, at) => void o.writeInt16LE(v, at),
    read: (b, at) => b.readInt16LE(at),
    range: [-32_768, 32_767],
  },
  FP16: {
    width: 2,
    write: (o, v, at) => void o.writeUInt16LE(toHalf(v), at),
    read: (b, at) => fromHalf(b.readUInt16LE(at)),
  },
  UINT32: {
    width: 4,
    write: (o, v, at) => void o.writeUInt32LE(v, at),
    read: (b, at) => b.readUInt32LE(at),
    range: [0, 4_294_967_295],
  },
  INT32: {
    width: 4,
    write: (o, v, at) => void o.writeInt32LE(v, at),
    read: (b, at) => b.readInt32LE(at),
    range: [-2_147_483_648, 2_147_483_647],
  },
  FP32: { width: 4, write: (o, v, at) => void o.writeFloatLE(v, at), read: (b, at) => b.readFloatLE(at) },
  UINT64: {
    width: 8,
    write: (o, v, at) => void o.writeBigUInt64LE(BigInt(v), at),
    read: (b, at) => Number(b.readBigUInt64LE(at)),
    range: [0, Number.MAX_SAFE_INTEGER],
  },
  INT64: {
    width: 8,
    write: (o, v, at) => void o.writeBigInt64LE(BigInt(v), at),
    read: (b, at) => Number(b.readBigInt64LE(at)),
    range: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  },
  FP64: { width: 8, write: (o, v, at) => void o.writeDoubleLE(v, at), read: (b, at) => b.readDoubleLE(at) },
};

/** The raw bytes of one input tensor; a value its datatype cannot hold is an InvalidArgument naming the tensor. */
export function encodeTensor(t: KServeTensor): Uint8Array {
  const n = t.data.length;
  if (t.datatype === 'BYTES') {
    const parts = Array.from(t.data, (v) => Buffer.from(String(v), 'utf8'));
    const out = Buffer.alloc(parts.reduce((a, p) => a + 4 + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, at);
      p.copy(out, at + 4);
      at += 4 + p.length;
    }
    return out;
  }
  const codec = CODECS[t.datatype];
  if (codec === undefined) throw new InvalidArgument(`input "${t.name}"`, `unknown datatype ${t.datatype}`);
  const out = Buffer.alloc(n * codec.width);
  const range = codec.range;
  for (let i = 0; i < n; i++) {
    const raw = t.data[i];
    const v = typeof raw === 'boolean' ? (raw ? 1 : 0) : Number(raw);
    if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) {
      throw new InvalidArgument(
        `input "${t.name}"`,
        `value ${i} is ${String(raw)}, not an integer in [${range[0]}, ${range[1]}] (${t.datatype})`,
      );
    }
    codec.write(out, v, i * codec.width);
  }
  return out;
}

/** Elements of an answer's raw output: numbers (booleans for BOOL, strings for BYTES), as JSON answers give them. */
export function decodeTensor(
  datatype: string,
  bytes: Buffer,
  count: number,
  where: string,
): (number | boolean | string)[] {
  if (datatype === 'BYTES') {
    const out: string[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (at + 4 > bytes.length) break;
      const len = bytes.readUInt32LE(at);
      if (at + 4 + len > bytes.length) break;
      out.push(bytes.toString('utf8', at + 4, at + 4 + len));
      at += 4 + len;
    }
    if (at !== bytes.length || out.length !== count) {
      throw new RemoteModelError('bad_response', `${where}: BYTES data does not hold ${count} elements`);
    }
    return out;
  }
  const codec = CODECS[datatype];
  if (codec === undefined)
    throw new RemoteModelError('bad_response', `${where}: unknown datatype ${datatype}`);
  const width = codec.width;
  if (bytes.length !== count * width) {
    throw new RemoteModelError(
      'bad_response',
      `${where}: ${bytes.length} bytes of ${datatype} for ${count} elements (needs ${count * width})`,
    );
  }
  const out = new Array<number | boolean>(count);
  for (let i = 0; i < count; i++) out[i] = codec.read(bytes, i * width);
  return out;
}

/**
 * Splits a binary answer: the JSON header, then each output that declares `parameters.binary_data_size` takes
 * that many bytes, in the order the outputs are listed. Outputs with `data` in the header keep it.
 */
export function splitBinaryAnswer(bytes: Buffer, headerLength: number, where: string): unknown {
  if (!(Number.isInteger(headerLength) && headerLength >= 0 && headerLength <= bytes.length)) {
    throw new RemoteModelError(
      'bad_response',
      `${where}: ${HEADER_LENGTH} is ${headerLength}, but the body has ${bytes.length} bytes`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.toString('utf8', 0, headerLength)) as Record<string, unknown>;
  } catch {
    throw new RemoteModelError('bad_response', `${where}: the inference header is not JSON`);
  }
  if (!header || typeof header !== 'object' || !Array.isArray(header.outputs)) return header;
  let at = headerLength;
  header.outputs = header.outputs.map((o: unknown, i) => {
    const t = o as Partial<KServeOutputTensor> & { parameters?: { binary_data_size?: unknown } };
    const size = t?.parameters?.binary_data_size;
    if (size === undefined) return t;
    const name = typeof t.name === 'string' ? t.name : `outputs[${i}]`;
    if (!(Number.isInteger(size) && (size as number) >= 0 && at + (size as number) <= bytes.length)) {
      throw new RemoteModelError(
        'bad_response',
        `${where}: output "${name}" declares ${String(size)} bytes; ${bytes.length - at} remain in the body`,
      );
    }
    const shape = Array.isArray(t.shape) ? (t.shape as number[]) : [];
    const count = shape.reduce((a, d) => a * d, 1);
    const data = decodeTensor(
      String(t.datatype),
      bytes.subarray(at, at + (size as number)),
      count,
      `${where}: output "${name}"`,
    );
    at += size as number;
    return { ...t, data };
  });
  if (at !== bytes.length) {
    throw new RemoteModelError(
      'bad_response',
      `${where}: ${bytes.length - at} bytes after the outputs' binary data`,
    );
  }
  return header;
}

/** IEEE 754 binary16 bits of a number, rounded to nearest even. */
export function toHalf(v: number): number {
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = mant >>> 13;
  const rest = mant & 0x1fff;
  let out = (e << 10) | half;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) out++; // may carry into the exponent: still correct
  e = out >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : out);
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
